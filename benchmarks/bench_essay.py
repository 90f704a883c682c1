"""The essay's experiment as a measured probability: how often, and when, a GAN breaks and a WGAN does not.

The essay (docs/theory.md, "The argument this project tests") trained a GAN and a WGAN on anime
faces, 10,000 images an epoch: the GAN broke at epoch 18 and never recovered, the WGAN was slower
but stable. One run proves nothing either way; this benchmark repeats the experiment over seeds.

Runs (`RUNS`): gan and wgan with seeds 0 to 7, gan-minimax and wgan-gp with seeds 0 to 3, on the
anime faces (``../shared/data/anime-faces.zip``, or ``--anime PATH``; the procedural faces when
there are none), at a scale two CPU cores afford: 32x32 images and the quick preset's networks
(ngf = ndf = 32), each loss's own optimiser as in the essay (the GANs: Adam 2e-4, beta1 0.5; the
WGAN: RMSProp 5e-5, clip 0.01, n_critic 5, the WGAN paper's Algorithm 1; WGAN-GP: Adam 1e-4,
lambda 10), m = 64, `EPOCHS` (30) epochs of 10,000 real images, an evaluation every `EVAL_INTERVAL`
(10,240) real images, the monitor's defaults otherwise.

"Broke" is the ground truth of the alarm benchmark (`_ground_truth`, docs/monitor.md): 1,000
generated images against 1,000 real ones the run never sees, in random features; a run failed
when it ends collapsed, degraded, not learning or NaN at its last two evaluations, from its onset.
The monitor's alarms are recorded beside it, not used as the truth.

`--report` writes, from the committed raw results alone: the failure rate per loss with a 90%
Clopper-Pearson interval, the time to failure as a Kaplan-Meier curve (figure), the final FD per
loss (figure, each seed a point), the monitor's alarms against the truth on these organic runs
(docs/results.md); and the sample grids of the median and the worst seed of each loss into
``runs/bench_essay/grids`` (not committed: the anime faces are internal-only data).

If no GAN breaks at this scale, `SEARCH` lists, written before any of its runs, the changes of
setting to try, smallest first, each on the GAN and the WGAN alike with seeds 0 to 3
(``--only search``): the smallest under which the GAN breaks in at least half its seeds and the
WGAN in fewer than half.

Run:     .venv/bin/python benchmarks/bench_essay.py [--jobs 2] [--only main|search]
Resume:  the same command (raw results in benchmarks/raw/essay.jsonl.gz, runs in runs/bench_essay)
Report:  .venv/bin/python benchmarks/bench_essay.py --report
GPU:     .venv/bin/python benchmarks/bench_essay.py --scale paper --device cuda  (64x64, 25 epochs, 5 seeds
         a loss: the essay's own scale; about 3 h on one H100, by the paper preset's speed measured there)
"""

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import _ground_truth as truth
from _campaign import Campaign, read_raw, run_with_truth, write_record
from trainers.config import PRESETS, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
ANIME = ROOT.parent / "shared" / "data" / "anime-faces.zip"
RAW = Path(__file__).resolve().parent / "raw" / "essay.jsonl.gz"
RUNS_DIR = ROOT / "runs" / "bench_essay"

EPOCHS = 30
EVAL_INTERVAL = 10_240
"""Real images between two evaluations, whatever the loss (160 GAN steps, 32 WGAN steps): about an epoch."""

SEEDS = {"gan": range(8), "wgan": range(8), "gan-minimax": range(4), "wgan-gp": range(4)}
"""The main part's seeds at the quick scale; the paper scale runs seeds 0-4 of every loss, the smoke scale seed 0."""
SEARCH_SEEDS = range(4)

SEARCH = {
    # written before any run of the search; tried in this order, each on the GAN and the WGAN alike
    "critic-lr-x2": ("the discriminator's / critic's learning rate x2", {"critic_lr_factor": 2.0}),
    "critic-x2-wide": ("the discriminator / critic twice as wide (ndf 64)", {"ndf": 64}),
    "critic-steps-x2": ("twice the discriminator / critic steps per generator step (gan 2, wgan 10)",
                        {"n_critic_factor": 2}),
    "batch-32": ("batch size 32", {"batch_size": 32}),
    "data-2000": ("2,000 training images", {"limit": 2000}),
    "critic-lr-x5": ("the discriminator's / critic's learning rate x5", {"critic_lr_factor": 5.0}),
    "size-64": ("64x64 images, the essay's size (networks of the paper preset)", {"image_size": 64, "ngf": 64, "ndf": 64}),
}
"""The changes of setting the search tries, smallest first: {slug: (description, settings)}."""

SEARCH_LOSSES = ("gan", "wgan")


def runs(only=None, scale="quick"):
    """{run name: (loss, seed, search slug or None)}: the main part, then the search."""
    seeds = {"quick": SEEDS, "paper": {loss: range(5) for loss in SEEDS}, "smoke": {loss: range(1) for loss in SEEDS}}
    named = {}
    if only in (None, "main"):
        named.update({f"{loss}-s{seed}": (loss, seed, None) for loss, chosen in seeds[scale].items() for seed in chosen})
    if only == "search":
        named.update({f"search-{slug}-{loss}-s{seed}": (loss, seed, slug) for slug in SEARCH
                      for loss in SEARCH_LOSSES for seed in SEARCH_SEEDS})
    return named


SMOKE = {"image_size": 16, "ngf": 8, "ndf": 8, "procedural_images": 600, "holdout_images": 60, "eval_images": 32,
         "epochs": 2, "epoch_images": 1024, "alarm_after_images": 512}
"""``--scale smoke``: tiny sizes that only check the benchmark runs (the test suite's)."""


def config_for(loss, seed, search=None, *, anime=ANIME, scale="quick", device="cpu"):
    """The run's `TrainConfig`: the quick preset at 10,000 images an epoch (or the paper preset), the loss's optimiser."""
    preset = {**PRESETS["quick"], "epochs": EPOCHS} if scale != "paper" else {**PRESETS["paper"]}
    config = TrainConfig(**{**preset, "epoch_images": 10_000}, loss=loss, seed=seed, progress=False, tensorboard=False,
                         log_every=10, device=device)
    if scale == "smoke":
        config = dataclasses.replace(config, **SMOKE)
    settings = dict(SEARCH[search][1]) if search else {}
    limit = settings.pop("limit", None)
    if "n_critic_factor" in settings:
        settings["n_critic"] = config.resolved().n_critic * settings.pop("n_critic_factor")
    if anime.exists():
        config = dataclasses.replace(config, data=truth.training_zip(anime, limit))
    elif limit is not None:
        settings["procedural_images"] = limit
    config = dataclasses.replace(config, **settings)
    resolved = config.resolved()
    interval = EVAL_INTERVAL // 20 if scale == "smoke" else EVAL_INTERVAL
    return dataclasses.replace(config, eval_every=max(1, interval // (resolved.batch_size * resolved.n_critic)))


def run_one(name, runs_dir, *, anime=ANIME, scale="quick", device="cpu", only=None):
    """Train run ``name`` (resumed if it was stopped) and leave its raw record in its run directory."""
    loss, seed, search = runs(only, scale)[name]
    config = config_for(loss, seed, search, anime=anime, scale=scale, device=device)
    record = run_with_truth(name, config, Path(runs_dir) / name, data=str(anime) if anime.exists() else "",
                            truth_images=100 if scale == "smoke" else truth.TRUTH_IMAGES)
    record.update({"loss": loss, "seed": seed, "search": search, "scale": scale,
                   "data": "anime" if anime.exists() else "procedural"})
    record["config"]["data"] = record["data"]
    write_record(Path(runs_dir) / name, record)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each (default 2)")
    parser.add_argument("--only", choices=("main", "search"), default="main", help="the part to run (default main)")
    parser.add_argument("--anime", type=Path, default=ANIME, help=f"the anime faces zip (default {ANIME})")
    parser.add_argument("--scale", choices=("quick", "paper", "smoke"), default="quick",
                        help="quick: 32x32, small nets, 30 epochs (CPU); paper: 64x64, the paper preset, 25 epochs (GPU); "
                             "smoke: tiny sizes, a check that it runs")
    parser.add_argument("--device", default="cpu", help="where the runs train (cuda for --scale paper)")
    parser.add_argument("--runs", type=Path, default=RUNS_DIR, help=f"where the run directories go (default {RUNS_DIR})")
    parser.add_argument("--raw", type=Path, default=RAW, help=f"the raw-results file (default {RAW})")
    parser.add_argument("--report", action="store_true", help="write docs/results.md and its figures; no run")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # a worker: one run
    args = parser.parse_args()
    if args.run:
        run_one(args.run, args.runs, anime=args.anime, scale=args.scale, device=args.device, only=args.only)
        return
    if args.report:
        import _essay_report
        _essay_report.write(read_raw(args.raw), RAW, ROOT, args.runs)
        return
    if args.scale != "quick" and args.raw == RAW:
        args.raw = args.raw.with_name(f"essay-{args.scale}.jsonl.gz")
    names = list(runs(args.only, args.scale))
    extra = ["--anime", str(args.anime), "--scale", args.scale, "--device", args.device, "--only", args.only]
    failed = Campaign(__file__, names, args.runs, args.raw, jobs=args.jobs, extra=extra,
                      seconds_per_run=lambda name: _guess(runs(args.only, args.scale)[name][0])).run()
    records = read_raw(args.raw)
    print(f"{len(records)} runs in {args.raw}; {sum(record['cpu_seconds'] for record in records) / 3600:.1f} CPU hours")
    if failed:
        sys.exit(f"error: {len(failed)} run(s) failed: {', '.join(failed)}")


def _guess(loss):
    """A first guess of a run's seconds on one thread, 300,000 images at the quick preset."""
    return {"gan": 720.0, "gan-minimax": 720.0, "wgan": 480.0, "wgan-gp": 720.0}[loss]


def clopper_pearson(failures, runs, level=0.9):
    """The exact (Clopper-Pearson) interval of a binomial proportion, two-sided at ``level``: (low, high)."""
    from scipy.stats import beta

    tail = (1 - level) / 2
    low = 0.0 if failures == 0 else float(beta.ppf(tail, failures, runs - failures + 1))
    high = 1.0 if failures == runs else float(beta.ppf(1 - tail, failures + 1, runs - failures))
    return low, high


def kaplan_meier(times, failed):
    """The Kaplan-Meier estimate of the share not yet failed: [(time, survival)] at each failure time, from (0, 1).

    ``times``: each run's onset if it failed, else the end of its run (censored); ``failed``: which failed.
    """
    curve, survival = [(0.0, 1.0)], 1.0
    for time in sorted({t for t, f in zip(times, failed) if f}):
        at_risk = sum(t >= time for t in times)
        events = sum(t == time and f for t, f in zip(times, failed))
        survival *= 1 - events / at_risk
        curve.append((time, survival))
    return curve


if __name__ == "__main__":
    main()
