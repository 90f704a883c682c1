"""The essay benchmark's report (`bench_essay.py --report`), computed from its raw results alone.

Writes docs/results.md's generated block (between its markers) and its two figures (docs/results/),
and the sample grids of the median and the worst seed of each loss into the runs folder (not
committed: the anime faces are internal-only data).
"""

import shutil
from pathlib import Path

import _ground_truth as truth
from _detection import TOLERANCE_IMAGES, monitor_alarms, outcome, summary
from bench_essay import EPOCHS, SEARCH, SEARCH_LOSSES, SEEDS, clopper_pearson, kaplan_meier
from trainers.config import TrainConfig

BEGIN, END = "<!-- bench_essay --report: begin -->", "<!-- bench_essay --report: end -->"
EPOCH_IMAGES = 10_000
LOSSES = tuple(SEEDS)


def evaluations(record):
    return [line for line in record["lines"] if line["kind"] == "eval"]


def failure(record):
    planned = record["config"]["epochs"] * record["config"]["epoch_images"]
    return truth.failure_of(evaluations(record), record["end"], record["floor"]["fd"], planned)


def final_fd(record):
    finite = [line for line in evaluations(record) if line.get("truth_finite", True)]
    return finite[-1]["truth_fd"] if finite else float("nan")


def rows(records):
    """Per loss: runs, failures, the 90% interval of the rate, onsets (epochs) and what the samples show."""
    table = []
    for loss in LOSSES:
        part = [record for record in records if record["loss"] == loss and record.get("search") is None]
        if not part:
            continue
        failures = [failure(record) for record in part]
        failed = [found for found in failures if found is not None]
        low, high = clopper_pearson(len(failed), len(part))
        onsets = sorted(found.images / EPOCH_IMAGES for found in failed)
        states = sorted({state for found in failed for state in found.states})
        fds = sorted(final_fd(record) for record in part)
        table.append({"loss": loss, "runs": len(part), "failed": len(failed), "low": low, "high": high,
                      "onsets": onsets, "states": states, "median fd": fds[len(fds) // 2], "fds": fds})
    return table


def rate_table(table):
    lines = ["| loss | runs | failed | failure rate [90% Clopper–Pearson] | onsets (epoch) | what the samples show | "
             "final FD (median; range) |", "|---|---|---|---|---|---|---|"]
    for row in table:
        onsets = ", ".join(f"{onset:.1f}" for onset in row["onsets"]) or "-"
        lines.append(f"| {row['loss']} | {row['runs']} | {row['failed']} | {row['failed'] / row['runs']:.0%} "
                     f"[{row['low']:.0%}, {row['high']:.0%}] | {onsets} | {', '.join(row['states']) or '-'} | "
                     f"{row['median fd']:.1f}; {row['fds'][0]:.1f}–{row['fds'][-1]:.1f} |")
    return "\n".join(lines)


def alarms_table(records):
    """The monitor's alarms against the truth on these organic runs, per loss (the alarm benchmark's scoring)."""
    lines = ["| loss | failed runs | detected | name right | median delay (images) | false alarms (runs with one) |",
             "|---|---|---|---|---|---|"]
    for loss in LOSSES:
        part = [record for record in records if record["loss"] == loss and record.get("search") is None]
        if not part:
            continue
        results = []
        for record in part:
            resolved = TrainConfig(**record["config"]).resolved()
            results.append(outcome(monitor_alarms(record), failure(record), end_images=record["end"]["images_seen"],
                                   warm_images=resolved.alarm_after_images,
                                   images_per_step=resolved.batch_size * resolved.n_critic))
        numbers = summary(results)
        delay = numbers["median delay"]
        shown = "-" if delay is None else "never" if delay == float("inf") else f"{delay:+,.0f}"
        lines.append(f"| {loss} | {numbers['failed']} | {numbers['detected']} | {numbers['named']} | {shown} | "
                     f"{numbers['false alarms']} ({numbers['runs with a false alarm']}) |")
    return "\n".join(lines)


def search_rows(records):
    """Per change of `SEARCH` with runs, in its order: per loss of `SEARCH_LOSSES` the runs, failures and onsets
    (epochs), and whether the change answers the search (at least half the GAN's runs fail, fewer than half the
    WGAN's)."""
    table = []
    for slug, (description, _) in SEARCH.items():
        losses = {}
        for loss in SEARCH_LOSSES:
            part = [record for record in records if record.get("search") == slug and record["loss"] == loss]
            failed = [found for found in map(failure, part) if found is not None]
            losses[loss] = {"runs": len(part), "failed": len(failed),
                            "onsets": sorted(found.images / EPOCH_IMAGES for found in failed)}
        if any(counts["runs"] for counts in losses.values()):
            table.append({"change": slug, "description": description, "losses": losses,
                          "answers": answers(losses["gan"], losses["wgan"])})
    return table


def answers(gan, wgan):
    """Whether a change with these counts ({"runs", "failed"} per loss) answers the search: at least half the
    GAN's runs failed and fewer than half the WGAN's (each with runs)."""
    return gan["runs"] > 0 and wgan["runs"] > 0 and 2 * gan["failed"] >= gan["runs"] and 2 * wgan["failed"] < wgan["runs"]


def search_table(table):
    lines = ["| change | GAN failed | GAN onsets (epoch) | WGAN failed | WGAN onsets (epoch) | answers the search |",
             "|---|---|---|---|---|---|"]
    for row in table:
        cells = []
        for loss in SEARCH_LOSSES:
            counts = row["losses"][loss]
            cells += [f"{counts['failed']} of {counts['runs']}",
                      ", ".join(f"{onset:.1f}" for onset in counts["onsets"]) or "-"]
        lines.append(f"| {row['description']} (`{row['change']}`) | {' | '.join(cells)} | "
                     f"{'yes' if row['answers'] else 'no'} |")
    return "\n".join(lines)


def figures(records, table, folder):
    """The Kaplan-Meier curves and the final FDs, as PNG files in ``folder``; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    survival = Figure(figsize=(6, 3.6), layout="constrained")
    ax = survival.subplots()
    for loss in LOSSES:
        part = [record for record in records if record["loss"] == loss and record.get("search") is None]
        if not part:
            continue
        found = [failure(record) for record in part]
        times = [f.images / EPOCH_IMAGES if f else record["end"]["images_seen"] / EPOCH_IMAGES
                 for f, record in zip(found, part)]
        curve = kaplan_meier(times, [f is not None for f in found])
        xs, ys = [0.0], [1.0]
        for time, value in curve[1:]:
            xs += [time, time]
            ys += [ys[-1], value]
        xs.append(EPOCHS)
        ys.append(ys[-1])
        ax.plot(xs, ys, label=f"{loss} ({len(part)} seeds)")
    ax.set_xlabel("epoch (10,000 real images)")
    ax.set_ylabel("share of runs not yet failed")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("Time to failure (Kaplan–Meier; ground truth)")
    ax.legend(fontsize=8)
    survival.savefig(folder / "time_to_failure.png", dpi=110)

    spread = Figure(figsize=(6, 3.2), layout="constrained")
    ax = spread.subplots()
    for index, row in enumerate(table):
        ax.scatter([index] * len(row["fds"]), row["fds"], s=18, alpha=0.8)
        ax.hlines(row["median fd"], index - 0.25, index + 0.25, color="black")
    ax.set_xticks(range(len(table)), [row["loss"] for row in table])
    ax.set_ylabel("FD to unseen real images")
    ax.set_title("Final FD of every seed (line: median)")
    spread.savefig(folder / "final_fd.png", dpi=110)
    return [folder / "time_to_failure.png", folder / "final_fd.png"]


def grids(records, runs_dir):
    """Copy the last sample grid of the median and the worst seed (by final FD) of each loss into ``runs_dir/grids``."""
    target = Path(runs_dir) / "grids"
    target.mkdir(parents=True, exist_ok=True)
    for loss in LOSSES:
        part = sorted((record for record in records if record["loss"] == loss and record.get("search") is None),
                      key=final_fd)
        for label, record in (("median", part[len(part) // 2]), ("worst", part[-1])) if part else ():
            samples = sorted((Path(runs_dir) / record["name"] / "samples").glob("epoch_*.png"))
            if samples:
                shutil.copyfile(samples[-1], target / f"{loss}-{label}-{record['name']}.png")
    return target


def block(records, raw_path, root):
    """docs/results.md's generated block: the numbers of ``records``, read from ``raw_path``."""
    hours = sum(record["cpu_seconds"] for record in records) / 3600
    return "\n\n".join([
        f"{len(records)} runs, {hours:.1f} CPU hours (one thread each), from `{Path(raw_path).relative_to(root)}`.",
        rate_table(rows(records)),
        "![Time to failure](results/time_to_failure.png)\n\n![Final FD](results/final_fd.png)",
        f"**The monitor's alarms against the ground truth** on these runs (the alarm benchmark's scoring: a "
        f"detection within {TOLERANCE_IMAGES:,} images before the onset or after it; any other alarm is false):",
        alarms_table(records),
        *([f"**The search** (the changes of `SEARCH`, in its order; a change answers it when at least half the "
           f"GAN's runs fail and fewer than half the WGAN's):", search_table(searched)]
          if (searched := search_rows(records)) else []),
    ])


def generated(root):
    """The generated block as docs/results.md holds it now."""
    text = (root / "docs" / "results.md").read_text(encoding="utf-8")
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()


def write(records, raw_path, root, runs_dir):
    """Write the report of ``records`` (docs/results.md's block, docs/results/*.png, the grids)."""
    figures(records, rows(records), root / "docs" / "results")
    grid_folder = grids(records, runs_dir)
    block_text = block(records, raw_path, root)
    path = root / "docs" / "results.md"
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    path.write_text(text[:start] + "\n" + block_text + "\n" + text[end:], encoding="utf-8")
    print(f"written: docs/results.md (between its markers), docs/results/*.png; grids in {grid_folder}")
