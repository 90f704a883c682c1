"""Compare training runs: ``curves.png`` and a self-contained ``report.html``.

    python -m trainers.report RUN_DIR [RUN_DIR ...] [--out FILE] [--x {images_seen,epoch}]

Each RUN_DIR is a folder written by a training run (see docs/run_format.md).
"""

from trainers.errors import interrupt_in_one_line

if __name__ == "__main__":  # before torch imports: Ctrl-C there ends in one line
    interrupt_in_one_line("python -m trainers.report")

import io
import math
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from divergences.extras import require


from trainers import _report_html
from trainers.errors import OneLineParser, command
from trainers.files import write_atomically
from trainers.runlog import parse_json, read_metrics_file, record_problem, warn_skipped
from trainers.verdict import finite_number, verdict

matplotlib = require("matplotlib", "train")
Figure = require("matplotlib.figure", "train").Figure
Line2D = require("matplotlib.lines", "train").Line2D


X_AXES = {"images_seen": "images seen", "epoch": "epoch (images seen / epoch_images)"}
"""The x axes the curves can share, and their labels."""

@dataclass(frozen=True)
class Panel:
    """One panel of the curves: its signals, its axis in words, and what a healthy run looks like on it."""

    title: str
    ylabel: str
    caption: str  # one line: what healthy looks like
    signals: tuple  # (kind of metrics line, key, line style, legend label), ...
    log: bool = False
    reference: tuple | None = None  # (label, y) of a horizontal reference line


PANELS = [
    Panel("Losses", "loss", "What each player minimises. A GAN discriminator's loss near 0 means it wins; "
          "WGAN losses are estimates, not targets.",
          (("train", "loss_d", "-", "discriminator / critic"), ("train", "loss_g", "--", "generator"))),
    Panel("W estimate (WGAN)", "E critic(real) − E critic(generated)",
          "W1 times the critic's Lipschitz constant: rises while the critic learns, then falls only as fast as the "
          "samples improve. A steady climb while the distances stay put: not Lipschitz.",
          (("train", "w_estimate", ":", "training batches"), ("eval", "w_estimate", "-", "held-out images"))),
    Panel("JS lower bound (GAN)", "nats", "Healthy: below log 2. Pinned at log 2, the discriminator tells every "
          "sample apart and the generator's gradient vanishes.",
          (("eval", "js_bound", "-", "JS lower bound"),), reference=("log 2", math.log(2))),
    Panel("Sliced W1 to the real images", "distance",
          "Loss-independent, so GAN and WGAN runs compare: should fall towards the dotted floor (real vs real); a "
          "steady rise is divergence. Units: RMS pixel differences.",
          (("eval", "sliced_pixels", "-", "pooled pixels"), ("eval", "sliced_samples", "-", "samples"),
           ("eval", "sliced_pixels_floor", ":", "real vs real (floor)"),
           ("eval", "sliced_samples_floor", ":", "real vs real (floor)")), log=True),
    Panel("Sinkhorn divergence to the real images", "squared distance",
          "The same reading with a cost that weighs large differences more: should fall.",
          (("eval", "sinkhorn_pixels", "-", "pooled pixels"), ("eval", "sinkhorn_samples", "-", "samples")), log=True),
    Panel("Patch sliced W1 (texture and detail)", "patch sliced W1",
          "Local patches at several scales (Progressive GAN's SWD): should fall as details sharpen.",
          (("eval", "sliced_patches", "-", "mean over scales"),), log=True),
    Panel("Fréchet distance (FID's formula)", "Fréchet distance",
          "In a fixed random network's features (points: on the points): should fall; with few images its "
          "floor is above 0.",
          (("eval", "fd_features", "-", "random features"), ("eval", "fd_samples", "-", "samples")), log=True),
    Panel("KID", "unbiased MMD²", "Should fall to about 0 (it can dip below) when generated images match real ones.",
          (("eval", "kid_features", "-", "random features"), ("eval", "kid_samples", "-", "samples"))),
    Panel("Coverage of the real images", "fraction of real images",
          "Real images with a generated one nearby (k = 5): should rise; a fall means modes are being dropped.",
          (("eval", "coverage_features", "-", "random features"), ("eval", "coverage_samples", "-", "samples"))),
    Panel("Gradient norms", "gradient norm",
          "Healthy: bounded, not collapsing. ‖∇x D‖ falling by orders of magnitude means the discriminator "
          "saturated.", (("eval", "grad_norm_g", "-", "‖∇θ L_G‖ (generator)"),
                         ("eval", "grad_norm_x", "--", "‖∇x D‖ at generated images")), log=True),
    Panel("Diversity", "mean pairwise distance",
          "Generated images (solid) should be about as diverse as real ones (dotted); a drop to a fraction "
          "is mode collapse.", (("eval", "diversity_fake", "-", "generated"), ("eval", "diversity_real", ":", "real"))),
    Panel("Modes covered (procedural faces)", "fraction of the 30 modes",
          "Hair × eye colour modes the generated faces fall in: should rise towards the real images'.",
          (("eval", "modes_fraction", "-", "modes covered / modes total"),)),
]
"""The panels of the curves; a panel no run has data for is left out, and so is a missing signal."""

PLOT_LIMIT = 1e200
"""Signal values beyond +-PLOT_LIMIT are not drawn (matplotlib's transforms overflow near 1e300), nor
are values that are not finite numbers."""

REAL_GRID = "real.png"
"""The grid of held-out real images in a run's ``samples/`` (written by the trainer and by `trainers.watch`)."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The first bytes of every PNG file: a sample grid without them is not embedded."""


@dataclass
class Run:
    """What the report reads from one run directory."""

    path: Path
    config: dict
    lines: list  # the metrics.jsonl objects, in file order
    alarms: list  # alarm objects, from metrics.jsonl and alarms.json, in step order
    samples: dict = field(default_factory=dict)  # epoch -> path of samples/epoch_NNN.png
    truncated: bool = False  # True if the last line of metrics.jsonl was cut short
    real_grid: Path | None = None  # samples/real.png: held-out real images, to compare the samples with

    def of_kind(self, kind):
        return [line for line in self.lines if line.get("kind") == kind]

    @property
    def end(self):
        ends = self.of_kind("end")
        return ends[-1] if ends else None

    @property
    def last(self):
        return self.lines[-1] if self.lines else {}

    @cached_property
    def images_per_epoch(self):
        """The run's ``epoch_images`` from config.json.

        A config without a valid one (a run of an older version) gets an estimate, to within one
        logging interval: the start of the last epoch is taken halfway between the last line
        before the last epoch and the first line in it.
        """
        configured = self.config.get("epoch_images")
        if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
            return configured
        logged = [line for line in self.lines if "images_seen" in line and "epoch" in line]
        last_epoch = max((line["epoch"] for line in logged), default=0)
        if last_epoch < 2:
            return max([line["images_seen"] for line in logged] + [1])
        before = max((line["images_seen"] for line in logged if line["epoch"] < last_epoch), default=0)
        first = min(line["images_seen"] for line in logged if line["epoch"] == last_epoch)
        return max((before + first) / 2 / (last_epoch - 1), 1)


def load_run(run_dir):
    """Read a run directory written by a training run.

    Parameters
    ----------
    run_dir : str or path-like
        A folder holding ``config.json`` and ``metrics.jsonl``; ``alarms.json`` and
        ``samples/epoch_NNN.png`` are read when present.

    Returns
    -------
    run : Run

    Raises
    ------
    FileNotFoundError
        If ``run_dir``, its ``config.json`` or its ``metrics.jsonl`` does not exist.
    ValueError
        If ``config.json`` or ``alarms.json`` is not valid JSON of the right shape, or a line of
        ``metrics.jsonl`` other than the last is not a JSON object; the message names the file
        (and the line). A cut-short last line (a run killed while writing it) is dropped and
        recorded in ``run.truncated``.

    Warns
    -----
    UserWarning
        Once per file, naming the records skipped: metrics lines and ``alarms.json`` entries with
        a counter that is not an integer in [0, 2**63) or ``seconds`` that is not a finite number
        >= 0 (`trainers.runlog.record_problem`). Once per run, naming the sample grids refused: a symbolic link, a
        file that resolves outside the run directory, or one that is not a regular PNG file.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"run directory {str(path)!r} does not exist or is not a folder")
    for name in ("config.json", "metrics.jsonl"):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"{str(path)!r} is not a run directory: it has no {name} (see docs/run_format.md)"
            )
    config = _read_json(path / "config.json", dict, "a JSON object")
    lines, truncated = read_metrics_file(path / "metrics.jsonl", strict=False)
    alarms = [line for line in lines if line.get("kind") == "alarm"]
    if (path / "alarms.json").is_file():
        seen = {(a.get("name"), a.get("step")) for a in alarms}
        for alarm in _read_alarms(path / "alarms.json"):
            if (alarm.get("name"), alarm.get("step")) not in seen:
                alarms.append(alarm)
        alarms.sort(key=lambda a: a.get("step", 0))
    return Run(path, config, lines, alarms, _sample_grids(path), truncated, _real_grid(path))


def _read_json(path, expected_type, expected):
    try:
        value = parse_json(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(value, expected_type):
        raise ValueError(f"{str(path)!r} should hold {expected}. Instead, it holds a {type(value).__name__}.")
    return value


def _read_alarms(path):
    """The valid alarm objects of alarms.json, in file order; the others are skipped with a warning."""
    alarms, skipped = [], []
    for number, alarm in enumerate(_read_json(path, list, "a JSON list"), start=1):
        problem = "not a JSON object" if not isinstance(alarm, dict) else record_problem(alarm)
        if problem:
            skipped.append(f"entry {number} ({problem})")
        else:
            alarms.append(alarm)
    warn_skipped(path, skipped)
    return alarms


def _sample_grids(path):
    """The sample grids of a run, ``{epoch: path}`` in epoch order; refused ones are warned about.

    A run of `trainers.watch.Watch` has grids per step, ``step_NNNNNNN.png``: ``{step: path}`` then.
    """
    root = path.resolve()
    samples, refused = {}, []
    grids = sorted((path / "samples").glob("epoch_*.png")) or sorted((path / "samples").glob("step_*.png"))
    for grid in grids:
        epoch = grid.stem.split("_", 1)[1]
        if not (epoch.isascii() and epoch.isdigit()):  # "²" is a digit that int() refuses
            continue
        problem = _grid_problem(grid, root)
        if problem:
            refused.append(f"{grid.name} ({problem})")
        else:
            samples[int(epoch)] = grid
    if refused:
        warnings.warn(f"not embedding {len(refused)} sample grid(s) of {str(path)!r}: {', '.join(refused)}",
                      stacklevel=3)
    return dict(sorted(samples.items()))


def _real_grid(path):
    """``samples/real.png`` if the run has one fit to embed, else None (with a warning if it is not fit)."""
    grid = path / "samples" / REAL_GRID
    if not (grid.exists() or grid.is_symlink()):
        return None
    problem = _grid_problem(grid, path.resolve())
    if problem:
        warnings.warn(f"not embedding {REAL_GRID} of {str(path)!r} ({problem})", stacklevel=3)
        return None
    return grid


def _grid_problem(grid, root):
    """Why a sample grid must not be embedded in the report, or None."""
    if grid.is_symlink():
        return "a symbolic link"
    if not grid.resolve().is_relative_to(root):
        return "outside the run directory"
    if not grid.is_file():
        return "not a regular file"
    try:
        with grid.open("rb") as file:
            signature = file.read(len(PNG_SIGNATURE))
    except OSError as error:
        return f"not readable: {error.strerror}"
    return None if signature == PNG_SIGNATURE else "not a PNG file"


def _series(run, kind, key, x):
    """Return (xs, ys) of one signal of a run, skipping lines without it."""
    if key == "modes_fraction":
        points = [(line, _fraction(line.get("modes_covered"), line.get("modes_total"))) for line in run.of_kind(kind)]
    else:
        points = [(line, finite_number(line.get(key))) for line in run.of_kind(kind)]
    points = [(line, y) for line, y in points if y is not None and abs(y) <= PLOT_LIMIT and "images_seen" in line]
    return [_x(run, line, x) for line, _ in points], [y for _, y in points]


def _fraction(covered, total):
    """covered / total for finite numbers with total > 0, else None."""
    covered, total = finite_number(covered), finite_number(total)
    return covered / total if covered is not None and total else None


def _x(run, line, x):
    return line["images_seen"] if x == "images_seen" else line["images_seen"] / run.images_per_epoch


def plot_curves(runs, path, *, x="images_seen"):
    """Draw the panels of :data:`PANELS` that have data for at least one run into one PNG at ``path``.

    The figure is drawn by matplotlib's Agg renderer without pyplot, so the caller's backend and
    open figures are left alone.
    """
    panels = _panels_with_data(runs, x)
    columns = 2 if len(panels) > 1 else 1
    rows = max(math.ceil(len(panels) / columns), 1)
    figure = Figure(figsize=(7 * columns, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, sharex=True, squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    if not panels:
        axes[0, 0].set_visible(True)
        axes[0, 0].text(0.5, 0.5, "no metrics logged yet", ha="center", va="center", transform=axes[0, 0].transAxes)
    for ax, (panel, curves) in zip(axes.flat, panels):
        _draw_panel(ax, runs, panel, curves, x)
    for ax in axes.flat[:len(panels)]:
        ax.xaxis.set_tick_params(labelbottom=True)
    _run_legend(figure, runs)
    figure.savefig(path, dpi=90)
    return Path(path)


def panel_images(runs, *, x="images_seen"):
    """Each panel of :data:`PANELS` with data, drawn alone: a list of (`Panel`, PNG bytes), for the page."""
    images = []
    for panel, curves in _panels_with_data(runs, x):
        figure = Figure(figsize=(6.4, 3.6), layout="constrained")
        _draw_panel(figure.subplots(), runs, panel, curves, x)
        if len(runs) > 1:
            _run_legend(figure, runs)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        images.append((panel, buffer.getvalue()))
    return images


def _panels_with_data(runs, x):
    """[(panel, curves)] of the panels with data; a curve is (colour, style, label, xs, ys)."""
    colours = _colours()
    panels = []
    for panel in PANELS:
        curves = [(colours[i % len(colours)], style, label, *_series(run, kind, key, x))
                  for i, run in enumerate(runs) for kind, key, style, label in panel.signals]
        curves = [curve for curve in curves if curve[3]]
        if curves:
            panels.append((panel, curves))
    return panels


def _draw_panel(ax, runs, panel, curves, x):
    for colour, style, _, xs, ys in curves:
        ax.plot(xs, ys, style, color=colour, marker="." if len(xs) < 30 else None)
    if panel.reference:
        ax.axhline(panel.reference[1], color="0.3", linestyle="--", linewidth=1)
        ax.annotate(panel.reference[0], (0.01, panel.reference[1]), xycoords=("axes fraction", "data"), va="top",
                    color="0.3")
    if panel.log and not any(y <= 0 for *_, ys in curves for y in ys):
        ax.set_yscale("log")
    labels = dict.fromkeys((label, style) for _, style, label, _, _ in curves)
    if len(labels) > 1:
        ax.legend(handles=[Line2D([], [], color="0.2", linestyle=style, label=label) for label, style in labels],
                  fontsize="small")
    ax.set_title(panel.title)
    ax.set_ylabel(panel.ylabel)
    ax.set_xlabel(X_AXES[x])
    ax.grid(alpha=0.3)
    _mark_alarms(ax, runs, _colours(), x)


def _run_legend(figure, runs):
    colours = _colours()
    handles = [Line2D([], [], color=colours[i % len(colours)], label=label) for i, label in enumerate(run_labels(runs))]
    legend = figure.legend(handles=handles, loc="outside upper center", ncol=min(len(runs), 4), frameon=False)
    for text in legend.get_texts():
        text.set_parse_math(False)  # run names are shown as written: "$" is not mathtext


def _colours():
    return matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]


ALARM_LABEL_GAP = 0.04
"""Alarms closer than this fraction of the x axis share one label; labels of different runs that
close are stacked down the panel instead of drawn over each other."""


def _mark_alarms(ax, runs, colours, x):
    """A dash-dotted line at each alarm, in its run's colour, and labels that never overlap."""
    marks = sorted(((_x(run, alarm, x), i, str(alarm.get("name", "alarm")))
                    for i, run in enumerate(runs) for alarm in run.alarms if "images_seen" in alarm),
                   key=lambda mark: mark[:2])  # alarms at one place keep the order they fired in
    if not marks:
        return
    low, high = ax.get_xlim()
    gap = ALARM_LABEL_GAP * (high - low)
    groups = []  # [position, run index, [names]]: the alarms of one run within `gap` of each other
    for position, run_index, name in marks:
        ax.axvline(position, color=colours[run_index % len(colours)], linestyle="-.", linewidth=1, alpha=0.8)
        same = [g for g in groups if g[1] == run_index and position - g[0] <= gap]
        if same:
            same[-1][2].append(name)
        else:
            groups.append([position, run_index, [name]])
    placed = []  # (position, lowest y fraction taken)
    for position, run_index, names in groups:
        below = [bottom for other, bottom in placed if abs(position - other) <= gap]
        top = min(below, default=1.0)
        label = ", ".join(dict.fromkeys(names))
        # on a white ground above the curves: a curve near the top of the panel would cross the words otherwise
        ax.annotate(label, (position, top), xycoords=("data", "axes fraction"), rotation=90, ha="right", va="top",
                    fontsize="x-small", color=colours[run_index % len(colours)], parse_math=False, zorder=5,
                    bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
        placed.append((position, top - 0.02 * len(label) - 0.05))


def run_labels(runs):
    """One label per run: the folder name, or the path as given when two folders share a name."""
    names = [run.path.name or str(run.path) for run in runs]
    return [name if names.count(name) == 1 else str(run.path) for name, run in zip(names, runs)]


def write_report(run_dirs, out=None, *, x="images_seen", note=None):
    """Write ``curves.png`` and a self-contained ``report.html`` comparing training runs.

    Parameters
    ----------
    run_dirs : sequence of str or path-like, non-empty
        Run directories as written by the trainers (docs/run_format.md), in the order to show them.
    out : str or path-like, optional
        Path of the HTML file. Default: ``report.html`` in the first run directory.
        ``curves.png`` is written next to it.
    x : {"images_seen", "epoch"}, optional
        Shared x axis of the curves. ``"epoch"`` is the images seen over the run's ``epoch_images``.
    note : str, optional
        A paragraph of plain text shown under the title (escaped).

    Returns
    -------
    path : pathlib.Path
        The HTML file. It embeds every image as a base64 data URI and references nothing outside
        itself, so it can be moved, mailed and opened offline.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`load_run`, naming the run directory at fault; ``ValueError`` also if
        ``run_dirs`` is empty or ``x`` is not one of the choices.
    """
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    if not run_dirs:
        raise ValueError("`run_dirs` should name at least one run directory. Instead, received none.")
    if x not in X_AXES:
        raise ValueError(f"`x` should be one of {sorted(X_AXES)}. Instead, received {x!r}.")
    runs = [load_run(run_dir) for run_dir in run_dirs]
    out = Path(out) if out is not None else runs[0].path / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_curves(runs, out.parent / "curves.png", x=x)
    html = _report_html.render(runs, run_labels(runs), [verdict(run) for run in runs], panel_images(runs, x=x), note=note)
    write_atomically(out, lambda file: file.write(html.encode("utf-8")))
    return out


def main(argv=None):
    parser = OneLineParser(prog="python -m trainers.report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories to compare")
    parser.add_argument("--out", type=Path, help="HTML file to write (default: RUN_DIR/report.html of the first run)")
    parser.add_argument("--x", choices=sorted(X_AXES), default="images_seen",
                        help="shared x axis of the curves (default: images_seen)")
    args = parser.parse_args(argv)
    path = command(parser, lambda: write_report(args.run_dirs, args.out, x=args.x))  # a missing or damaged run: one line
    print(path)


if __name__ == "__main__":
    main()
