"""Exact 1-D Earth-Mover distance W1 on 10^6 unsorted samples: ours vs POT and scipy.

Measures ``divergences.emd(x, y)`` against ``ot.emd2_1d(x, y, metric="euclidean")``
(POT: with metric "euclidean" and uniform weights it returns the W1 cost) and
``scipy.stats.wasserstein_distance(x, y)``, for n = m = 10^6 float64 samples
(x ~ N(0, 1), y ~ N(0.5, 1.5^2), seeded, unsorted).  The values must agree to
1e-9 relative (the script fails otherwise).  Targets: ours >= 1.2x as fast as
POT and >= 2x as fast as scipy.

A weighted case (random positive weights) is timed against
``scipy.stats.wasserstein_distance(x, y, wa, wb)`` and ``ot.wasserstein_1d``
(weights normalised, p = 1) for information; it has no target.

Run:  .venv/bin/python benchmarks/bench_emd_1d.py [--quick] [--repeats R]
"""

import numpy as np
import ot
import scipy.stats

import divergences
from _timing import compare, parse_args, relative_difference, report

AGREEMENT = 1e-9


def case(label, ours, peer_name, peer, repeats, target):
    our_time, our_value, peer_time, peer_value, speedup = compare(ours, peer, repeats)
    difference = relative_difference(our_value, peer_value)
    return {
        "case": label,
        "peer": peer_name,
        "ours median s": our_time,
        "peer median s": peer_time,
        "ratio peer/ours": speedup,
        "ours value": float(our_value),
        "peer value": float(peer_value),
        "rel. diff": difference,
        "agree 1e-9": difference <= AGREEMENT,
        "target": f">= {target}x" if target else "(info)",
        "met": speedup >= target if target else None,
    }


def main():
    args = parse_args(__doc__)
    n = 10_000 if args.quick else 1_000_000
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, n)
    y = rng.normal(0.5, 1.5, n)
    wa, wb = rng.random(n), rng.random(n)
    wa_n, wb_n = wa / wa.sum(), wb / wb.sum()

    uniform = f"uniform, n = {n:,}"
    weighted = f"weighted, n = {n:,}"
    ours = lambda: divergences.emd(x, y)  # noqa: E731
    ours_weighted = lambda: divergences.emd(x, y, wa, wb)  # noqa: E731
    rows = [
        case(uniform, ours, "ot.emd2_1d", lambda: ot.emd2_1d(x, y, metric="euclidean"), args.repeats, 1.2),
        case(uniform, ours, "scipy", lambda: scipy.stats.wasserstein_distance(x, y), args.repeats, 2.0),
        case(weighted, ours_weighted, "scipy", lambda: scipy.stats.wasserstein_distance(x, y, wa, wb), args.repeats, None),
        case(weighted, ours_weighted, "ot.wasserstein_1d", lambda: ot.wasserstein_1d(x, y, wa_n, wb_n, p=1), args.repeats, None),
    ]
    report("emd_1d", rows, args, notes=["ratio > 1 means ours is faster; medians of wall-clock times after one warm-up."])
    disagreements = [row for row in rows if not row["agree 1e-9"]]
    if disagreements:
        raise SystemExit(f"values disagree beyond {AGREEMENT:g} relative: {[(r['case'], r['peer']) for r in disagreements]}")


if __name__ == "__main__":
    main()
