"""Sinkhorn in float32 against float64: accuracy over hard problems, speed, and extreme inputs.

Part (a), accuracy.  60 seeded problems of 2 to 200 points per side, in 1 to
3 dimensions, a third each of three families: uniform clouds, a grid against
a shifted grid with a few points removed (degenerate optimal plans), and
tight clusters far apart (mass has to move between clusters); weights
uniform, random, or random with about 20% zeros.  Each is solved with
``divergences.sinkhorn(x, y, a, b, eps=r * max C, debias=False)`` at r = 1e-3
and 1e-4, in float64 and in float32 (default tol).  Targets: float64 never
warns; no float32 value is more than 1e-3 relative from the float64 one
(relative to max(value, eps)) without a RuntimeWarning.

Part (b), speed.  n = m = 2000 and 10000 uniform points in [0, 1]^2, eps =
1e-3 * max C, debias=False: the same call in float32 and float64 (numpy
inputs, default tol), median over repeats (one repeat at 10000).  Target:
float32 time <= 0.7 x float64 time.

Part (c), extreme inputs from issue 9: a cost that overflows float32 or
float64 (a ValueError), an annealing ratio of 0.999999, eps = 5e-324, and
max_iter = 3.  Target: each returns or raises within 2 s.

Run:  .venv/bin/python benchmarks/bench_sinkhorn_float32.py [--quick] [--repeats R] [--only accuracy|speed|extreme]
"""

import time
import warnings

import numpy as np
import torch

import divergences
from _timing import measure, parse_args, relative_difference, report

FAMILIES = ("uniform", "grid", "clusters")
RELATIVE_EPS = (1e-3, 1e-4)


def options(parser):
    parser.add_argument("--only", choices=("accuracy", "speed", "extreme"), help="run one part only")


def grid(count, d):
    """About ``count`` integer points on a regular grid in d dimensions."""
    side = max(2, round(count ** (1 / d)))
    return np.stack(np.meshgrid(*[np.arange(side, dtype=float)] * d, indexing="ij"), -1).reshape(-1, d)


def problem(rng, family, max_points):
    n, m = rng.integers(2, max_points + 1, size=2)
    d = int(rng.integers(1, 4))
    if family == "uniform":
        x, y = rng.random((n, d)), rng.random((m, d)) + 0.2 * rng.random()
    elif family == "grid":
        x = grid(n, d)[: max(2, n - int(rng.integers(0, 5)))]
        y = grid(m, d) + 0.5
    else:
        centres = 10 * rng.random((int(rng.integers(2, 6)), d))
        x = centres[rng.integers(0, len(centres), n)] + 0.01 * rng.normal(size=(n, d))
        y = centres[rng.integers(0, len(centres), m)] + 0.01 * rng.normal(size=(m, d))
    weights = int(rng.integers(0, 3))  # uniform, random, random with zeros
    a, b = (np.ones(len(x)), np.ones(len(y))) if weights == 0 else (rng.random(len(x)), rng.random(len(y)))
    if weights == 2:
        a[rng.random(len(a)) < 0.2] = 0
        b[rng.random(len(b)) < 0.2] = 0
        a[0], b[0] = a[0] + 0.1, b[0] + 0.1
    return x, y, a / a.sum(), b / b.sum()


def solve(x, y, a, b, eps, dtype):
    """The value, whether it warned, and the seconds it took."""
    arrays = [np.asarray(v, dtype) for v in (x, y, a, b)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        value = divergences.sinkhorn(*arrays, eps=eps, debias=False)
        seconds = time.perf_counter() - start
    return float(value), any(issubclass(w.category, RuntimeWarning) for w in caught), seconds


def accuracy(args):
    rng = np.random.default_rng(0)
    count, max_points = (12, 30) if args.quick else (60, 200)
    cases = [(FAMILIES[i % 3], problem(rng, FAMILIES[i % 3], max_points)) for i in range(count)]
    rows = []
    for relative_eps in RELATIVE_EPS:
        outcomes = []  # (family, float32 rel. error, float32 warned, float64 warned, float32 s, float64 s)
        for family, (x, y, a, b) in cases:
            eps = relative_eps * float(((x[:, None] - y[None]) ** 2).sum(-1).max())
            v64, w64, t64 = solve(x, y, a, b, eps, np.float64)
            v32, w32, t32 = solve(x, y, a, b, eps, np.float32)
            outcomes.append((family, abs(v32 - v64) / max(abs(v64), eps), w32, w64, t32, t64))
        for family in (*FAMILIES, "all"):
            chosen = [o for o in outcomes if family in (o[0], "all")]
            silent = [error for _, error, w32, _, _, _ in chosen if not w32]
            wrong_silent = sum(error > 1e-3 for error in silent)
            warned64 = sum(o[3] for o in chosen)
            rows.append({
                "eps / max C": relative_eps,
                "family": family,
                "problems": len(chosen),
                "float32 > 1e-3 off, no warning": wrong_silent,
                "float32 warned": sum(o[2] for o in chosen),
                "float64 warned": warned64,
                "worst unwarned float32 rel. error": max(silent, default=0.0),
                "float32 s / float64 s": sum(o[4] for o in chosen) / sum(o[5] for o in chosen),
                "met": wrong_silent == 0 and warned64 == 0,
            })
    report("sinkhorn_float32_accuracy", rows, args, notes=[
        "rel. error = |float32 - float64| / max(|float64|, eps); targets: 0 silent misses, float64 never warns.",
        "float32 s / float64 s: total solve time over the family (small problems: overheads dominate).",
    ])


def speed(args):
    rows = []
    for n in (300, 600) if args.quick else (2000, 10_000):
        rng = np.random.default_rng(n)
        x, y = rng.random((n, 2)), rng.random((n, 2))
        eps = 1e-3 * float(torch.cdist(torch.from_numpy(x), torch.from_numpy(y)).max()) ** 2
        repeats = 1 if n >= 10_000 else args.repeats
        times, values = {}, {}
        for dtype in (np.float64, np.float32):
            xs, ys = x.astype(dtype), y.astype(dtype)
            times[dtype], values[dtype] = measure(lambda: divergences.sinkhorn(xs, ys, eps=eps, debias=False), repeats)
        ratio = times[np.float32] / times[np.float64]
        rows.append({
            "n = m": n,
            "float64 median s": times[np.float64],
            "float32 median s": times[np.float32],
            "float32 / float64": ratio,
            "value rel. diff": relative_difference(values[np.float32], values[np.float64]),
            "target": "<= 0.7",
            "met": ratio <= 0.7,
        })
    report("sinkhorn_float32_speed", rows, args, notes=["2-D uniform points, eps = 1e-3 max C, debias=False, default tol."])


def extreme(args):
    rng = np.random.default_rng(1)
    x, y = rng.random((50, 2)), rng.random((40, 2))
    cases = {
        "cost overflows float32": lambda: divergences.sinkhorn(
            np.array([[0, 0], [1e20, 0]], np.float32), np.array([[0, 1]], np.float32), eps=1.0),
        "cost overflows float64 (p = 400)": lambda: divergences.sinkhorn(
            np.array([[0.0, 0.0], [10.0, 0.0]]), np.array([[0.0, 1.0]]), p=400, eps=1.0),
        "scaling = 0.999999": lambda: divergences.sinkhorn(x, y, eps=1e-3, scaling=0.999999),
        "eps = 5e-324": lambda: divergences.sinkhorn(x, y, eps=5e-324),
        "eps = 5e-324, float32": lambda: divergences.sinkhorn(x.astype(np.float32), y.astype(np.float32), eps=5e-324),
        "max_iter = 3": lambda: divergences.sinkhorn(x, y, eps=1e-4, max_iter=3),
    }
    rows = []
    for name, call in cases.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            try:
                outcome = f"value {float(call()):.6g}"
            except ValueError as error:
                outcome = f"ValueError: {str(error)[:60]}..."
            seconds = time.perf_counter() - start
        rows.append({
            "case": name,
            "seconds": seconds,
            "outcome": outcome,
            "warnings": len(caught),
            "met": seconds <= 2.0 and "nan" not in outcome,
        })
    report("sinkhorn_float32_extreme", rows, args, notes=["target: each returns or raises within 2 s, never NaN."])


def main():
    args = parse_args(__doc__, extra=options)
    for name, part in (("accuracy", accuracy), ("speed", speed), ("extreme", extreme)):
        if args.only in (None, name):
            part(args)


if __name__ == "__main__":
    main()
