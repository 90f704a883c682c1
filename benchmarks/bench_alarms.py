"""The monitor's alarms against a ground truth they never read: a detection benchmark fixed in advance, with held-out failures.

The cases, the ground truth and the scoring below were written down and committed before any run
of this version of the benchmark; docs/monitor.md ("The alarm benchmark") reports the results,
generated from the committed raw results by ``--report``.

Cases (`CASES`), each run with the bundled trainer at the quick preset (32x32 faces, DCGAN widths
32) for `EPOCHS` (40) epochs of 3,200 real images, an evaluation every `EVAL_INTERVAL` (3,200) real
images whatever the loss, the monitor's defaults otherwise:

- healthy: every loss (gan, gan-minimax, wgan, wgan-gp) with its own settings, seeds 0 to 9 (seeds
  0 to 4 are the development part, 5 to 9 the held-out part), on the procedural faces;
- causes of failure, each with seeds 0, 1 and 2: a *development* set, on which the alarms may be
  tuned, and a *held-out* set chosen before any of its runs and never used to tune anything.

The benchmark runs in rounds. Round one (scored at commit 8481979, thresholds frozen at b143179)
held out nine causes (one of each kind: optimiser, capacity, data size, batch size, clipping,
penalty, learning rate, architecture; one on the anime faces when ``../shared/data/anime-faces.zip``,
or ``--anime PATH``, exists) and healthy seeds 2 to 4. Two of those healthy runs showed that the
`vanishing_gradient` rule read the wrong gradient for the non-saturating loss; the rule was changed,
so round one's held-out part joined the development set, and round two holds out seven new causes
(optimiser, capacity, data size, batch size, clipping, penalty, learning rate) and seeds 5 to 9,
written down and committed before any of their runs. A record keeps the part it ran in; the report
scores every record in the part the registry gives it today (`in_order`).

Ground truth (`_ground_truth`): at each evaluation, 1,000 images generated from noise of their own
against 1,000 real images neither the trainer nor the monitor sees, in the offline evaluator's
random features: FD, KID, coverage. A run failed when it ends in a state a person sees in its
samples (collapsed, degraded, not learning, NaN) for its last two evaluations; the onset is where
that last stretch began.

Scoring (`_detection`): an alarm counts only inside [onset − 10,000 images, end of run]; earlier,
or on a run that did not fail, it is a false alarm. Per cause and per split: detection rate, name
match, clipped delays with a bootstrap 90% interval, false alarms per 1,000 generator steps of
non-failing stretch; the same for the practitioners' rules, a diversity-drop rule, a
rising-distance rule, and a trivial detector that fires at the end of the warm-up.

Success rule, on the held-out causes: >= 80% of failed runs detected within the tolerance, the name
right in >= 80% of those; 0 false alarms on the healthy runs; a median delay no later than the
best baseline's.

Run:     .venv/bin/python benchmarks/bench_alarms.py [--jobs 2] [--only development|held-out|healthy]
Resume:  the same command (finished runs are kept in benchmarks/raw/alarms.jsonl.gz, run directories
         in runs/bench_alarms)
Report:  .venv/bin/python benchmarks/bench_alarms.py --report   (tables into docs/ from the raw results)
Smoke:   .venv/bin/python benchmarks/bench_alarms.py --quick    (tiny sizes, one seed: checks that it runs)
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import _alarm_report as tables
import _ground_truth as truth
from _campaign import Campaign, read_raw, run_with_truth, write_record
from _detection import DETECTORS, monitor_alarms, outcome, summary
from _injections import AT_KNOWN_STEP, INJECTIONS, halfway
from trainers.alarms import Thresholds
from trainers.config import PRESETS, TrainConfig
from trainers.losses import LOSS_SPECS

ROOT = Path(__file__).resolve().parents[1]
ANIME = ROOT.parent / "shared" / "data" / "anime-faces.zip"
RAW = Path(__file__).resolve().parent / "raw" / "alarms.jsonl.gz"
RUNS = ROOT / "runs" / "bench_alarms"

EPOCHS = 40
EVAL_INTERVAL = 3200
"""Real images between two evaluations: one quick-preset epoch, whatever the loss (50 GAN steps, 10 WGAN steps)."""

CAUSE_SEEDS = (0, 1, 2)
HEALTHY_SEEDS = tuple(range(10))
DEVELOPMENT_HEALTHY_SEEDS = (0, 1, 2, 3, 4)
"""Seeds 0-1 were round one's development part and 2-4 its held-out part; 5-9 are round two's held-out part."""
QUICK_TRUTH_IMAGES = 100


@dataclasses.dataclass(frozen=True)
class Case:
    """One case of the benchmark: a way of training, run with several seeds.

    Attributes
    ----------
    description : str
        What a person reads in the tables.
    kind : str
        What is changed: ``none`` for the healthy runs, else the kind of cause.
    split : str
        ``development`` (the alarms may be tuned on it) or ``held-out`` (never).
    loss : str
    settings : dict
        Fields of `TrainConfig` that differ from the quick preset.
    injection : str or None
        A change of the trainer's code (`_injections.INJECTIONS`).
    data : str
        ``procedural``, or ``anime`` (the anime faces, ``limit`` of them if given).
    limit : int or None
    """

    description: str
    kind: str
    split: str
    loss: str
    settings: dict = dataclasses.field(default_factory=dict)
    injection: str | None = None
    data: str = "procedural"
    limit: int | None = None


def _development(description, kind, loss, **fields):
    return Case(description, kind, "development", loss, **fields)


def _held_out(description, kind, loss, **fields):
    return Case(description, kind, "held-out", loss, **fields)


CAUSES = {
    # development: the earlier benchmark's seven causes, and two failures of the WGAN's own
    "d-wins-minimax": _development("discriminator wins: gan-minimax, critic lr x10", "optimiser", "gan-minimax",
                                   settings={"critic_lr_factor": 10.0}),
    "d-wins-gan": _development("discriminator wins: gan, critic lr x10", "optimiser", "gan",
                               settings={"critic_lr_factor": 10.0}),
    "g-lr-x50": _development("generator lr x50 (gan)", "optimiser", "gan",
                             settings={"lr": 1e-2, "critic_lr_factor": 1 / 50}),
    "nan-halfway": _development("NaN in the generator's weights halfway (wgan)", "injected", "wgan", injection="nan"),
    "collapse-halfway": _development("generator maps all noise to 3 images from halfway (wgan)", "injected", "wgan",
                                     injection="collapse"),
    "wgan-adam-ncritic1": _development("WGAN with Adam (lr 1e-4, beta1 0.5) and n_critic 1", "optimiser", "wgan",
                                       settings={"n_critic": 1}, injection="momentum"),
    "two-g-updates": _development("2 generator updates per critic update (wgan, n_critic 1)", "optimiser", "wgan",
                                  settings={"n_critic": 1}, injection="two_generator_updates"),
    "clip-1": _development("no working weight clipping: c = 1 (wgan)", "clipping", "wgan", settings={"clip": 1.0}),
    "g-lr-div100": _development("generator lr / 100 (wgan; the critic's lr kept)", "optimiser", "wgan",
                                settings={"lr": 5e-7, "critic_lr_factor": 100.0}),
    # round one's held-out causes, chosen before any of its runs and scored at commit 8481979 with the thresholds
    # frozen at b143179 (docs/monitor.md, "Round one"); development since: the vanishing_gradient rule was changed
    # after reading two of their healthy runs
    "adam-default-betas": _development("Adam with its default betas (0.9, 0.999) at lr 1e-3 (gan)", "optimiser", "gan",
                                       settings={"lr": 1e-3}, injection="adam_default_betas"),
    "wide-d": _development("discriminator 4x wider than the generator (gan-minimax, ndf 128)", "capacity",
                           "gan-minimax", settings={"ndf": 128}),
    "small-data": _development("640 training faces (gan)", "data size", "gan", settings={"procedural_images": 640}),
    "batch-8": _development("batch size 8 (wgan)", "batch size", "wgan", settings={"batch_size": 8}),
    "clip-0.1": _development("weight clipping at c = 0.1 (wgan)", "clipping", "wgan", settings={"clip": 0.1}),
    "gp-0.01": _development("gradient penalty weight 0.01 (wgan-gp)", "penalty", "wgan-gp",
                            settings={"gp_weight": 0.01}),
    "rmsprop-lr-x20": _development("RMSProp lr x20, both networks (wgan, 1e-3)", "learning rate", "wgan",
                                   settings={"lr": 1e-3}),
    "narrow-critic": _development("critic 4x narrower than the generator (wgan-gp, ndf 8)", "architecture", "wgan-gp",
                                  settings={"ndf": 8}),
    "anime-1000": _development("1,000 anime faces (gan)", "data size", "gan", data="anime", limit=1000),
    # round two's held-out causes: written down and committed before any of their runs, never used to tune
    "minimax-d-steps-2": _held_out("2 discriminator steps per generator step (gan-minimax, n_critic 2)", "optimiser",
                                   "gan-minimax", settings={"n_critic": 2}),
    "narrow-g": _held_out("generator 4x narrower than the discriminator (gan, ngf 8)", "capacity", "gan",
                          settings={"ngf": 8}),
    "data-160": _held_out("160 training faces (gan)", "data size", "gan", settings={"procedural_images": 160}),
    "batch-128": _held_out("batch size 128 (gan)", "batch size", "gan", settings={"batch_size": 128}),
    "clip-0.001": _held_out("weight clipping at c = 0.001 (wgan)", "clipping", "wgan", settings={"clip": 0.001}),
    "gp-100": _held_out("gradient penalty weight 100 (wgan-gp)", "penalty", "wgan-gp", settings={"gp_weight": 100.0}),
    "gp-adam-lr-x10": _held_out("Adam lr x10, both networks (wgan-gp, 1e-3)", "learning rate", "wgan-gp",
                                settings={"lr": 1e-3}),
}
"""Every cause of failure, by the slug that names its runs; the order of the tables."""

HEALTHY = {loss: Case(f"healthy {loss}", "none", "healthy", loss) for loss in ("gan", "gan-minimax", "wgan", "wgan-gp")}


def runs():
    """{run name: (case, seed)} of every run of the benchmark, in the order to run them: the development part first."""
    healthy = {f"healthy-{loss}-s{seed}": (case, seed) for seed in HEALTHY_SEEDS for loss, case in HEALTHY.items()}
    causes = {f"{slug}-s{seed}": (case, seed) for slug, case in CAUSES.items() for seed in CAUSE_SEEDS}
    everything = {**healthy, **causes}
    # the development part first: the alarms are tuned on it while the held-out part runs
    return dict(sorted(everything.items(), key=lambda item: "held-out" in split_of(*item[1])))


def split_of(case, seed):
    """``development``, ``held-out``, ``healthy (development)`` or ``healthy (held-out)``."""
    if case.split != "healthy":
        return case.split
    return f"healthy ({'development' if seed in DEVELOPMENT_HEALTHY_SEEDS else 'held-out'})"


def config_for(case, seed, *, quick=False, anime=ANIME):
    """The run's `TrainConfig`: the quick preset with the case's settings, evaluated every `EVAL_INTERVAL` images."""
    config = TrainConfig(**{**PRESETS["quick"], "epochs": EPOCHS}, loss=case.loss, seed=seed, progress=False,
                         tensorboard=False, log_every=10)
    if quick:
        config = dataclasses.replace(config, image_size=16, ngf=8, ndf=8, procedural_images=600, holdout_images=60,
                                     eval_images=32, epochs=2, alarm_after_images=1280)
    config = dataclasses.replace(config, **case.settings)
    if case.data == "anime":
        config = dataclasses.replace(config, data=truth.training_zip(anime, case.limit))
    resolved = config.resolved()
    interval = EVAL_INTERVAL // 5 if quick else EVAL_INTERVAL
    return dataclasses.replace(config, eval_every=max(1, interval // (resolved.batch_size * resolved.n_critic)))


def run_one(name, runs_dir, *, quick=False, anime=ANIME):
    """Train run ``name`` (resumed if it was stopped) and leave its raw record in its run directory."""
    case, seed = runs()[name]
    config = config_for(case, seed, quick=quick, anime=anime)
    injection = INJECTIONS[case.injection](config) if case.injection else None
    record = run_with_truth(name, config, Path(runs_dir) / name, data="" if case.data == "procedural" else str(anime),
                            truth_images=QUICK_TRUTH_IMAGES if quick else truth.TRUTH_IMAGES, injection=injection)
    record.update({
        "case": _slug(case), "description": case.description, "kind": case.kind, "split": split_of(case, seed),
        "loss": case.loss, "seed": seed, "data": case.data if case.limit is None else f"{case.data} ({case.limit})",
        "injection": case.injection, "injected_at": halfway(config) if case.injection in AT_KNOWN_STEP else None,
    })
    record["config"]["data"] = case.data
    write_record(Path(runs_dir) / name, record)


def _slug(case):
    return next((slug for slug, other in {**CAUSES, **{f"healthy-{k}": v for k, v in HEALTHY.items()}}.items()
                 if other is case), case.description)


# --- scoring


def evaluations(record):
    return [line for line in record["lines"] if line["kind"] == "eval"]


def planned_images(record):
    return record["config"]["epochs"] * record["config"]["epoch_images"]


def failure(record):
    """The run's `_ground_truth.Failure` or None."""
    return truth.failure_of(evaluations(record), record["end"], record["floor"]["fd"], planned_images(record))


def outcomes(record):
    """{detector: `_detection.Outcome`} of one run."""
    return {name: scored_alarms(record, detector(record)) for name, detector in DETECTORS.items()}


def scored_alarms(record, alarms):
    """The `_detection.Outcome` of one run's ``alarms`` against its ground truth."""
    config = record["config"]
    resolved = TrainConfig(**config).resolved()
    return outcome(alarms, failure(record), end_images=record["end"]["images_seen"],
                   warm_images=config["alarm_after_images"], images_per_step=resolved.batch_size * resolved.n_critic)


def states_at(record):
    """{images seen: set of the ground truth's states} at each evaluation of a run."""
    lines = evaluations(record)
    return {line["images_seen"]: set(state) for line, state in
            zip(lines, truth.states_of(lines, record["floor"]["fd"], planned_images(record)))}


def passing(record):
    """[(first images, last images)] of the run's passing failures (states it recovered from)."""
    lines = evaluations(record)
    return [(lines[start]["images_seen"], lines[end]["images_seen"]) for start, end in
            truth.passing_failures(lines, record["end"], record["floor"]["fd"], planned_images(record))]


EYE_EPOCHS = (10, 20, 30, 40)
"""The epochs whose sample grids the eye check looks at (an evaluation falls on each epoch's end)."""

EYE_CHECK = Path(__file__).resolve().parent / "raw" / "alarms_eye_check.json"
"""The eye check's judgments: {run: {epoch: what a person sees}}, one of `EYE_JUDGMENTS`."""

EYE_JUDGMENTS = ("fine", "not learning", "collapsed", "degraded", truth.NAN)
"""What a person may say of a grid: fine, or one of the ground truth's states (all-black grids: NaN)."""


def eye_sample(records, count=16, seed=0, judged=()):
    """A seeded sample of ``count`` runs for the eye check, none of those ``judged`` already (round one's): half
    that failed by the ground truth, half that did not."""
    import random

    rng = random.Random(seed)
    records = [record for record in records if record["name"] not in judged]
    failed = sorted(record["name"] for record in records if failure(record) is not None)
    fine = sorted(record["name"] for record in records if failure(record) is None)
    return sorted(rng.sample(failed, min(count // 2, len(failed))) + rng.sample(fine, min(count - count // 2, len(fine))))


def eye_sheets(names, runs_dir, out):
    """For each run, one unlabelled picture: the real images, then its grids at `EYE_EPOCHS` (blank where the run
    had stopped); their paths."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, name in enumerate(names):
        samples = Path(runs_dir) / name / "samples"
        real = Image.open(samples / "real.png")
        grids = [real] + [Image.open(samples / f"epoch_{epoch:03d}.png") if (samples / f"epoch_{epoch:03d}.png").exists()
                          else Image.new("RGB", real.size, "white") for epoch in EYE_EPOCHS]  # a run stopped early: blank
        sheet = Image.new("RGB", (sum(grid.width + 10 for grid in grids), max(grid.height for grid in grids)), "white")
        left = 0
        for grid in grids:
            sheet.paste(grid, (left, 0))
            left += grid.width + 10
        paths.append(out / f"sheet_{index:02d}.png")  # numbered, not named: the check is blind to the cause
        sheet.save(paths[-1])
    return paths


def eye_agreement(records, judgments):
    """[(run, epoch, judgment, the truth's states there, agree)] for every judged epoch of a run in ``records``.

    They agree when both say fine (no state), or the judgment is one of the states.
    """
    by_name = {record["name"]: record for record in records}
    rows = []
    for name, epochs in sorted(judgments.items()):
        record = by_name.get(name)
        if record is None:  # judged, but not among these records (the --quick suite's)
            continue
        lines = evaluations(record)
        states = truth.states_of(lines, record["floor"]["fd"], planned_images(record))
        at = {line["images_seen"]: state for line, state in zip(lines, states)}
        for epoch, judgment in sorted(epochs.items(), key=lambda item: int(item[0])):
            state = at.get(int(epoch) * record["config"]["epoch_images"])
            if state is None:  # the run stopped before this epoch (a NaN)
                continue
            agree = (judgment == "fine" and not state) or judgment in state
            rows.append((name, int(epoch), judgment, sorted(state), agree))
    return rows


DOCS = ROOT / "docs" / "monitor.md"
RUNS_DOC = ROOT / "docs" / "alarm_runs.md"
BEGIN, END = "<!-- bench_alarms --report: begin -->", "<!-- bench_alarms --report: end -->"


def in_order(records):
    """The records in the order of `runs`, each in the part the registry puts it in today (a record keeps the part
    of the round it ran in: round one's held-out causes and healthy seeds 2-4 are development since round two)."""
    order = runs()
    names = list(order)
    return [{**record, "split": split_of(*order[record["name"]])}
            for record in sorted(records, key=lambda record: names.index(record["name"]))]


def report_blocks(records):
    """The generated parts of the docs: the block of docs/monitor.md and the whole of docs/alarm_runs.md."""
    scored = tables.scored(in_order(records), outcomes, failure)
    hours = sum(record["cpu_seconds"] for record in records) / 3600
    block = "\n\n".join([
        f"{len(records)} runs, {hours:.1f} CPU hours (one thread each), from `{RAW.relative_to(ROOT)}`.",
        "**Targets** (the held-out causes and the held-out healthy runs):", tables.targets_table(scored),
        "**Every detector on every part** (delays in real images, thousands; a miss is `never`):",
        tables.summary_table(scored),
        "**Per cause** (the monitor; the baseline that detected most):", tables.cause_table(scored),
        "**Where the monitor's false alarms fell** (the ground truth's states at the evaluation each fired at, every "
        "part):", tables.false_alarm_table(scored, states_at),
        "**The failures each alarm names** (a detection's name is right when the samples show one of them):",
        tables.names_table(),
        "**The ground truth against the eye**: " + tables.eye_summary(eye_agreement(records, json.loads(
            EYE_CHECK.read_text()))) if EYE_CHECK.exists() else "**The ground truth against the eye**: not checked yet.",
        "**The report's verdict at the end of each run** (trainers.verdict: an alarm, or the evidence) against the "
        "ground truth: `healthy` should hold no failed run.",
        tables.verdict_table(scored),
    ])
    runs_doc = "\n\n".join([
        "# The alarm benchmark, run by run",
        f"Generated by `benchmarks/bench_alarms.py --report` from `{RAW.relative_to(ROOT)}`; see "
        "[monitor.md](monitor.md#the-alarm-benchmark). Images in thousands of real images seen; a passing failure "
        "is a stretch of evaluations in some failing state that the run recovered from.",
        tables.runs_table(scored, passing)])
    return block, runs_doc + "\n"


def write_report(records):
    """Write the generated tables into docs/monitor.md (between its markers) and docs/alarm_runs.md."""
    block, runs_doc = report_blocks(records)
    text = DOCS.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOCS.write_text(text[:start] + "\n" + block + "\n" + text[end:], encoding="utf-8")
    RUNS_DOC.write_text(runs_doc, encoding="utf-8")
    print(f"written: {DOCS.relative_to(ROOT)} (between its markers), {RUNS_DOC.relative_to(ROOT)}")


SENSITIVITY_DOC = ROOT / "docs" / "alarm_sensitivity.md"
SENSITIVITY_FACTORS = (0.5, 2.0)
"""Each threshold is scored at these multiples of its frozen value, one at a time."""


def sensitivity_doc(records):
    """docs/alarm_sensitivity.md: the monitor scored with each threshold halved and doubled, the others frozen."""
    records = in_order(records)
    frozen = Thresholds()
    rows = ["| threshold | value | held-out failed runs detected | name right | false alarms, held-out causes | "
            "false alarms, healthy runs | development: detected, false alarms |", "|---|---|---|---|---|---|---|"]
    variants = [("(frozen)", None)] + [(field.name, factor) for field in dataclasses.fields(Thresholds)
                                       for factor in SENSITIVITY_FACTORS]
    for name, factor in variants:
        thresholds = frozen if factor is None else _scaled(frozen, name, factor)
        scored = tables.scored(records, lambda record: {"monitor": scored_alarms(record, monitor_alarms(record, thresholds))}, failure)
        parts = {split: summary([outcomes["monitor"] for record, _, outcomes in scored if record["split"].startswith(split)])
                 for split in ("held-out", "healthy", "development")}
        value = "" if factor is None else f"{getattr(thresholds, name):g} ({factor:g} x)"
        held_out = parts["held-out"]
        rows.append(f"| {name} | {value} | {held_out['detected']} of {held_out['failed']} | {held_out['named']} | "
                    f"{held_out['false alarms']} | {parts['healthy']['false alarms']} | "
                    f"{parts['development']['detected']} of {parts['development']['failed']}, {parts['development']['false alarms']} |")
    return "\n\n".join([
        "# The alarms' sensitivity to their thresholds",
        f"Generated by `benchmarks/bench_alarms.py --sensitivity` from `{RAW.relative_to(ROOT)}`: the monitor's "
        "alarms replayed over every run with one threshold at a time halved and doubled (integers rounded, "
        "at least 1), the others at their frozen values; scored as in [monitor.md](monitor.md#the-alarm-benchmark). "
        "The thresholds were frozen before the held-out runs were scored; this table came after and changed nothing.",
        "\n".join(rows)]) + "\n"


def _scaled(thresholds, name, factor):
    value = getattr(thresholds, name) * factor
    if isinstance(getattr(thresholds, name), int):
        value = max(1, round(value))
    return dataclasses.replace(thresholds, **{name: value})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each (default 2)")
    parser.add_argument("--only", choices=("development", "held-out", "healthy"), help="one part only")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seed 0 only: checks that it runs")
    parser.add_argument("--anime", type=Path, default=ANIME, help=f"the anime faces zip (default {ANIME})")
    parser.add_argument("--runs", type=Path, default=RUNS, help=f"where the run directories go (default {RUNS})")
    parser.add_argument("--raw", type=Path, default=RAW, help=f"the raw-results file (default {RAW})")
    parser.add_argument("--report", action="store_true", help="write the docs' tables from the raw results; no run")
    parser.add_argument("--sensitivity", action="store_true",
                        help=f"write {SENSITIVITY_DOC.relative_to(ROOT)}: each threshold halved and doubled; no run")
    parser.add_argument("--eye-sheets", type=Path, metavar="DIR",
                        help="write the eye check's unlabelled sheets (a seeded sample of runs) into DIR; no run")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # a worker: one run
    args = parser.parse_args()
    if args.run:
        run_one(args.run, args.runs, quick=args.quick, anime=args.anime)
        return
    if args.report:
        write_report(read_raw(args.raw))
        return
    if args.sensitivity:
        SENSITIVITY_DOC.write_text(sensitivity_doc(read_raw(args.raw)), encoding="utf-8")
        print(f"written: {SENSITIVITY_DOC.relative_to(ROOT)}")
        return
    if args.eye_sheets:
        names = eye_sample(read_raw(args.raw), judged=json.loads(EYE_CHECK.read_text()) if EYE_CHECK.exists() else ())
        paths = eye_sheets(names, args.runs, args.eye_sheets)
        (args.eye_sheets / "key.json").write_text(json.dumps({path.name: name for path, name in zip(paths, names)}))
        print(f"{len(paths)} sheets in {args.eye_sheets} (real images, then epochs {EYE_EPOCHS}); which run each is: "
              f"key.json, to read once they are judged")
        return
    names = [name for name, (case, seed) in runs().items()
             if (args.only is None or case.split == args.only) and (case.data != "anime" or args.anime.exists())
             and (not args.quick or seed == 0)]
    extra = ["--anime", str(args.anime)] + (["--quick"] if args.quick else [])
    failed = Campaign(__file__, names, args.runs, args.raw, jobs=args.jobs, extra=extra,
                      seconds_per_run=_guess).run()
    records = read_raw(args.raw)
    print(f"{len(records)} runs in {args.raw}; {sum(record['cpu_seconds'] for record in records) / 3600:.1f} CPU hours")
    if failed:
        sys.exit(f"error: {len(failed)} run(s) failed: {', '.join(failed)}")


def _guess(name):
    """A first guess of a run's seconds on one thread (a GAN takes a generator step per batch, a WGAN per five)."""
    case, _ = runs()[name]
    return 420.0 if LOSS_SPECS[case.loss].n_critic == 1 else 300.0


if __name__ == "__main__":
    main()
