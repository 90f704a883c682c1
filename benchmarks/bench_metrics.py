"""Validation of the feature-space metrics: known degradations, dropped modes, sample-size bias, speed, monitor cost.

Six parts (docs/evaluation.md reports them):

- degradations: held-out real faces against the same number of other real faces degraded by
  each of 5 degradations (`_degradations.DEGRADATIONS`) at 5 intensities. For every metric,
  the Spearman correlation of its values with the intensity (target >= 0.95 for FD and KID in
  the random network's features), and FD between two disjoint sets of real faces (the floor)
  against FD at the mildest intensity. Pixel-space metrics (FD and KID on pooled pixels,
  sliced W1, patch SWD) sit beside them;
- floor: the reference against `--draws` held-out sets of the same size drawn from the other
  faces, each undegraded (the floor) and at the mildest intensity of each degradation: how many
  standard deviations of one FD separate the mildest from the floor (target >= 5, and every
  mildest above every floor). The spreads over subsets of one pool are scaled up to those of
  independent sets; on the procedural faces, which can be drawn afresh, the scaling is checked
  against 24 independent sets;
- modes: the procedural faces with k of their 30 hair x eye modes dropped (the same number of
  faces, from the other modes): precision, recall, density and coverage (targets: recall and
  coverage fall with every drop, precision stays within its binomial noise);
- sizes: FD and KID between two disjoint real sets of n = 500, 2000, 10000 faces, and at the
  mildest blur: FD's bias, which falls as 1/n, against KID, which is unbiased;
- speed: FD + KID + PRDC of 10^4 against 10^4 images at 64 x 64, feature extraction included
  (target <= 60 s on 2 cores);
- monitor: seconds the feature metrics add to one evaluation of the trainer's monitor.

The data are the embedded procedural faces and, when ``../shared/data/anime-faces.zip`` (or
``--anime PATH``) exists, the anime faces; nothing derived from them is written outside
``benchmarks/results`` and the figures' folder.

Run:  .venv/bin/python benchmarks/bench_metrics.py [--quick] [--only PART] [--n N] [--figures DIR]
"""

import math
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from _degradations import DEGRADATIONS, gaussian_blur
from _timing import parse_args, report
from divergences import frechet, kid
from trainers.config import TrainConfig
from trainers.data import load_real_images
from trainers.evaluate import feature_metrics, pixel_metrics
from trainers.features import PixelFeatures, RandomFeatures, extract
from trainers.images import load_images, to_uint8
from trainers.models import Critic, Generator, init_weights
from trainers.modes import modes_of_labels
from trainers.monitor import Monitor, _feature_signals
from trainers.procedural import make_faces

ANIME = Path(__file__).resolve().parents[2] / "shared" / "data" / "anime-faces.zip"
TARGET_SPEARMAN = 0.95
TARGET_SECONDS = 60.0
TARGET_SEPARATION = 5.0
SPREAD_CHECK_DRAWS = 24  # sets drawn to check the floor's spread scaling
DROPPED_MODES = (0, 3, 6, 12, 18, 24)
SAMPLE_SIZES = (500, 2000, 10_000)
METRICS = ("fd", "kid", "precision", "recall", "density", "coverage", "fd_pixels", "kid_pixels", "sliced", "patch_swd")


def options(parser):
    parser.add_argument("--only", choices=("degradations", "floor", "modes", "sizes", "speed", "monitor"),
                        help="one part only")
    parser.add_argument("--draws", type=int, default=8, help="held-out sets drawn for the floor part (default 8)")
    parser.add_argument("--n", type=int, help="faces per set (default 5000; 200 with --quick)")
    parser.add_argument("--anime", type=Path, default=ANIME, help=f"the anime faces zip (default {ANIME}, if present)")
    parser.add_argument("--figures", type=Path, help="write the figures into this folder")


def datasets(args, count):
    """{name: (count, 64, 64, 3) uint8 real faces in a random order}: procedural, and anime when present."""
    faces, _ = make_faces(count, seed=101)
    sets = {"procedural": faces}
    if args.anime.exists() and not args.quick:
        anime = load_images(args.anime, size=64)
        sets["anime"] = anime[np.random.default_rng(0).permutation(len(anime))]
    return sets


def all_metrics(reference, images, reference_features, networks):
    """Every metric of `METRICS` of ``images`` against ``reference`` (its features cached in ``reference_features``)."""
    features = {name: extract(network, images, "cpu") for name, network in networks.items()}
    numbers = feature_metrics(reference_features["random"], features["random"])
    pixels = feature_metrics(reference_features["pixels"], features["pixels"])
    numbers.update(fd_pixels=pixels["fd"], kid_pixels=pixels["kid"], **pixel_metrics(reference, images, "cpu"))
    return numbers


def degradations(args, data, curves):
    n, rows = args.n, []
    networks = {"random": RandomFeatures(), "pixels": PixelFeatures()}
    for name, faces in data.items():
        reference, held_out = faces[:n], faces[n:2 * n]
        reference_features = {key: extract(network, reference, "cpu") for key, network in networks.items()}
        floor = all_metrics(reference, held_out, reference_features, networks)
        for degradation, (degrade, intensities) in DEGRADATIONS.items():
            values = [all_metrics(reference, degrade(held_out, level, np.random.default_rng(1)), reference_features,
                                  networks) for level in intensities]
            curves.setdefault(name, {})[degradation] = {"intensities": list(intensities), "floor": floor,
                                                        "values": values}
            spearman = {metric: float(spearmanr(intensities, [v[metric] for v in values]).statistic)
                        for metric in ("fd", "kid", "fd_pixels", "kid_pixels", "sliced", "patch_swd")}
            rows.append({
                "part": "degradations", "data": name, "n": n, "degradation": degradation,
                "FD (random)": " < ".join(f"{v['fd']:.3g}" for v in values),
                **{f"spearman {metric}": value for metric, value in spearman.items()},
                "FD floor (real vs real)": floor["fd"], "mildest FD / floor": values[0]["fd"] / floor["fd"],
                "KID floor": floor["kid"], "mildest KID": values[0]["kid"],
                "target": f"spearman fd and kid >= {TARGET_SPEARMAN}",
                "met": min(spearman["fd"], spearman["kid"]) >= TARGET_SPEARMAN,
            })
    return rows


def modes(args, data, curves):
    n, rows = args.n, []
    pool_size = int(n / (1 - max(DROPPED_MODES) / 30) * 1.2) + n
    faces, labels = make_faces(pool_size, seed=202)
    face_modes = modes_of_labels(labels)
    reference, pool, pool_modes = faces[:n], faces[n:], face_modes[n:]
    network = RandomFeatures()
    reference_features = extract(network, reference, "cpu")
    order = np.random.default_rng(0).permutation(30)  # the modes in the order they are dropped
    values = []
    for dropped in DROPPED_MODES:
        kept = pool[~np.isin(pool_modes, order[:dropped])][:n]
        values.append(feature_metrics(reference_features, extract(network, kept, "cpu")))
    curves["modes"] = {"dropped": list(DROPPED_MODES), "values": values}
    precision = [v["precision"] for v in values]
    # the binomial standard error of one precision (at least that of one miss in n, for a precision of 1)
    noise = math.sqrt(max(precision[0] * (1 - precision[0]), 1 / n) / n)
    falling = {key: all(b < a for a, b in zip([v[key] for v in values], [v[key] for v in values][1:]))
               for key in ("recall", "coverage")}
    for dropped, v in zip(DROPPED_MODES, values):
        rows.append({"part": "modes", "data": "procedural", "n": n, "modes dropped": dropped,
                     **{key: v[key] for key in ("precision", "recall", "density", "coverage", "fd", "kid")}})
    rows.append({"part": "modes", "data": "procedural", "n": n,
                 "recall falls at every drop": falling["recall"], "coverage falls at every drop": falling["coverage"],
                 "precision spread / its std error": (max(precision) - min(precision)) / noise,
                 "target": "recall and coverage fall at every drop; precision spread within ~4 std errors",
                 "met": falling["recall"] and falling["coverage"] and max(precision) - min(precision) <= 4 * noise})
    return rows


def floor(args, data, curves):
    """FD of the floor and of the mildest intensities over `FLOOR_DRAWS` held-out sets, in their own spread."""
    n, rows = args.n, []
    network = RandomFeatures()
    for name, faces in data.items():
        reference, pool = faces[:n], faces[n:]
        if len(pool) < 2 * n:
            continue
        reference_features, pool_features = extract(network, reference, "cpu"), extract(network, pool, "cpu")
        draws = [np.random.default_rng(seed).choice(len(pool), n, replace=False) for seed in range(args.draws)]
        # the spread over subsets of one finite pool, scaled up to that over independent sets
        correction = math.sqrt((len(pool) - 1) / (len(pool) - n))
        floors = np.array([float(frechet(reference_features, pool_features[draw])) for draw in draws])
        for degradation, (degrade, intensities) in DEGRADATIONS.items():
            mildest = np.array([float(frechet(reference_features, extract(
                network, degrade(pool[draw], intensities[0], np.random.default_rng(seed)), "cpu")))
                for seed, draw in enumerate(draws)])
            spread = correction * math.sqrt((floors.var(ddof=1) + mildest.var(ddof=1)) / 2)
            separation = (mildest.mean() - floors.mean()) / spread
            rows.append({
                "part": "floor", "data": name, "n": n, "draws": args.draws, "degradation": degradation,
                "mildest": intensities[0], "FD floor": f"{floors.mean():.4g} ± {correction * floors.std(ddof=1):.2g}",
                "FD mildest": f"{mildest.mean():.4g} ± {correction * mildest.std(ddof=1):.2g}",
                "mildest / floor": mildest.mean() / floors.mean(),
                "separation (std devs)": separation,
                "every mildest above every floor": bool(mildest.min() > floors.max()),
                "target": f"separation >= {TARGET_SEPARATION:g} std devs",
                "met": bool(separation >= TARGET_SEPARATION and mildest.min() > floors.max()),
            })
        if name == "procedural":
            rows.append(_spread_check(network, reference, reference_features, pool_features, n))
    return rows


def _spread_check(network, reference, reference_features, pool_features, n):
    """The floor's spread over subsets of the pool, scaled as `floor` scales it, against that over independent sets.

    Only the procedural faces can be drawn afresh, so the check of the scaling runs on them.
    """
    pool_size = len(pool_features)
    subsets = [float(frechet(reference_features, pool_features[np.random.default_rng(1000 + seed).choice(
        pool_size, n, replace=False)])) for seed in range(SPREAD_CHECK_DRAWS)]
    independent = [float(frechet(reference_features, extract(network, make_faces(n, seed=2000 + seed)[0], "cpu")))
                   for seed in range(SPREAD_CHECK_DRAWS)]
    scaled = math.sqrt((pool_size - 1) / (pool_size - n)) * np.std(subsets, ddof=1)
    return {"part": "floor", "data": "procedural", "n": n, "draws": SPREAD_CHECK_DRAWS,
            "degradation": "none: the spread of the floor FD, scaled subsets against independent sets",
            "FD floor": f"subsets: {np.mean(subsets):.4g} ± {scaled:.2g} (scaled)",
            "FD mildest": f"independent sets: {np.mean(independent):.4g} ± {np.std(independent, ddof=1):.2g}",
            "scaled spread / independent spread": scaled / np.std(independent, ddof=1)}


def sizes(args, data, curves):
    rows = []
    network = RandomFeatures()
    for name, faces in data.items():
        for n in SAMPLE_SIZES if not args.quick else (50, 100):
            if 2 * n > len(faces):
                continue
            first, second = extract(network, faces[:n], "cpu").double(), extract(network, faces[n:2 * n], "cpu").double()
            blurred = extract(network, gaussian_blur(faces[n:2 * n], 0.5, None), "cpu").double()
            rows.append({"part": "sizes", "data": name, "n": n,
                         "FD real vs real": float(frechet(first, second)),
                         "KID real vs real": float(kid(first, second, seed=0).value),
                         "KID std": float(kid(first, second, seed=0).std),
                         "FD vs blur 0.5": float(frechet(first, blurred)),
                         "KID vs blur 0.5": float(kid(first, blurred, seed=0).value)})
    curves["sizes"] = rows
    return rows


def speed(args, data, curves):
    n = 10_000 if not args.quick else 200
    faces = data["procedural"]
    real, fake = (faces[:n], faces[n:2 * n]) if len(faces) >= 2 * n else make_faces(2 * n, seed=303)[0].reshape(2, n, 64, 64, 3)
    start = time.perf_counter()
    network = RandomFeatures()
    real_features, fake_features = extract(network, real, "cpu"), extract(network, fake, "cpu")
    extracted = time.perf_counter()
    feature_metrics(real_features, fake_features)
    seconds = time.perf_counter() - start
    return [{"part": "speed", "n": n, "features s": extracted - start, "FD + KID + PRDC s": seconds - (extracted - start),
             "total s": seconds, "target": f"<= {TARGET_SECONDS:g} s", "met": seconds <= TARGET_SECONDS}]


def monitor(args, data, curves):
    rows = []
    for eval_images in (128, 512) if not args.quick else (32,):
        config = TrainConfig(eval_images=eval_images, device="cpu", procedural_images=2000, holdout_images=600)
        real = load_real_images(config, torch.device("cpu"))
        torch.manual_seed(0)
        generator, critic = Generator(64, config.nz, config.ngf), Critic(64, config.ndf)
        generator.apply(init_weights)
        critic.apply(init_weights)
        context = SimpleNamespace(generator=generator, critic=critic, device=torch.device("cpu"), data=real,
                                  counters=SimpleNamespace(images_seen=0))
        watcher = Monitor(config)
        watcher(context)  # warm-up
        evaluation = min(_seconds(lambda: watcher(context)) for _ in range(args.repeats))
        fake = generator(torch.randn(eval_images, config.nz, 1, 1)).detach()
        real_images = real.holdout[:eval_images].permute(0, 3, 1, 2)

        def feature_metrics_of_one_evaluation():
            with torch.no_grad():
                _feature_signals(watcher.features(real_images).double(), watcher.features(to_uint8(fake)).double(),
                                 "features")

        features = min(_seconds(feature_metrics_of_one_evaluation) for _ in range(args.repeats))
        rows.append({"part": "monitor", "eval_images": eval_images, "evaluation s": evaluation,
                     "feature metrics s": features, "share": features / evaluation})
    return rows


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def figures(curves, folder):
    """degradations.png (every metric against intensity, each scaled to its largest value) and modes_sizes.png."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, per_degradation in ((k, v) for k, v in curves.items() if k not in ("modes", "sizes")):
        figure = Figure(figsize=(3.2 * len(per_degradation), 3.2), layout="constrained")
        axes = figure.subplots(1, len(per_degradation), squeeze=False)[0]
        for ax, (degradation, curve) in zip(axes, per_degradation.items()):
            for metric, style in (("fd", "o-"), ("kid", "s-"), ("fd_pixels", "o--"), ("sliced", "^:"), ("patch_swd", "v:")):
                ys = np.array([v[metric] for v in curve["values"]])
                ax.plot(range(1, 6), ys / np.abs(ys).max(), style, label=metric.replace("_", " "))
            ax.axhline(curve["floor"]["fd"] / max(v["fd"] for v in curve["values"]), color="0.5", linewidth=1)
            ax.set_title(degradation, fontsize="small")
            ax.set_xticks(range(1, 6), [f"{x:g}" for x in curve["intensities"]])
            ax.set_xlabel("intensity")
        axes[0].set_ylabel("value / largest value")
        axes[0].legend(fontsize="x-small")
        figure.suptitle(f"{name} faces: metrics against degradation intensity (grey: FD of two real sets)")
        figure.savefig(folder / f"degradations_{name}.png", dpi=90)
    if "modes" in curves:
        figure = Figure(figsize=(10, 3.4), layout="constrained")
        left, right = figure.subplots(1, 2)
        for key in ("precision", "recall", "density", "coverage"):
            left.plot(curves["modes"]["dropped"], [v[key] for v in curves["modes"]["values"]], "o-", label=key)
        left.set_xlabel("modes dropped, of 30")
        left.set_title("procedural faces: k-NN metrics (random features, k = 5)")
        left.legend(fontsize="small")
        for row_key, style in (("FD real vs real", "o-"), ("FD vs blur 0.5", "s--")):
            rows = [r for r in curves.get("sizes", []) if r["data"] == "procedural"]
            right.plot([r["n"] for r in rows], [r[row_key] for r in rows], style, label=row_key)
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xlabel("images per set")
        right.set_title("FD's bias falls as 1/n")
        right.legend(fontsize="small")
        figure.savefig(folder / "modes_and_sizes.png", dpi=90)


def main():
    args = parse_args(__doc__, repeats=3, extra=options)
    args.n = args.n or (200 if args.quick else 5000)
    parts = {"degradations": degradations, "floor": floor, "modes": modes, "sizes": sizes, "speed": speed, "monitor": monitor}
    needed = max(2 * max(args.n, max(SAMPLE_SIZES) if args.only in (None, "sizes", "speed") and not args.quick else args.n),
                 4 * args.n if args.only in (None, "floor") else 0)
    data = datasets(args, needed) if args.only != "monitor" else {}
    curves = {}
    for name, part in parts.items():
        if args.only in (None, name):
            report(f"metrics_{name}", part(args, data, curves), args, notes=[
                f"data: {', '.join(data) or 'none'}; random-network features unless a column says pixels.",
                *NOTES.get(name, ())])
    if args.figures is not None:
        figures(curves, args.figures)


NOTES = {
    "degradations": ["spearman: rank correlation of a metric with the 5 intensities (1 = ranked in order).",
                     "floor: the metric between the reference set and another set of real faces of the same size."],
    "monitor": ["best of the repeats; the generator and critic are untrained paper-preset DCGANs on the CPU."],
}


if __name__ == "__main__":
    main()
