"""Exact Earth-Mover distance in 2-D and 64-D: the overhead of ours over a direct POT call.

Measures ``divergences.emd(x, y, p=1)`` against the direct call
``ot.emd2(a, b, ot.dist(x, y, metric="euclidean"))`` with uniform weights
a = b = 1/n, for n = m = 1000 and 4000 points uniform in [0, 1]^d, d = 2 and
64 (float64, seeded).  Both timings include building the cost matrix.
Target: ours at most 5% slower (overhead = ours / POT - 1 <= 5%).

POT's default ``numItermax=100000`` can stop the network simplex before
optimality (with a "numItermax reached" warning) and then returns a
non-optimal, larger value; ours raises the cap to max(100000, 20 n m)
(divergences/_exact.py), so it may do more work.  The table
reports whether POT's default call warned and the relative gap between its
value and ours.  When it warned, POT is also timed with
``numItermax=max(100000, 20 n m)``, the same work as ours, and the overhead
target is judged against that call; otherwise against the default call.

Run:  .venv/bin/python benchmarks/bench_emd_exact.py [--quick] [--repeats R]
"""

import warnings

import numpy as np
import ot

import divergences
from divergences._exact import _CAP_PER_ENTRY, _MIN_CAP
from _timing import measure, parse_args, relative_difference, report

TARGET_OVERHEAD = 0.05


def measure_with_warnings(fn, repeats):
    """measure(fn, repeats) and whether any call warned, with the warning texts."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seconds, value = measure(fn, repeats)
    return seconds, float(value), sorted({str(w.message) for w in caught})


def case(d, n, repeats, rng):
    x, y = rng.random((n, d)), rng.random((n, d))
    a = b = np.full(n, 1.0 / n)
    cap = max(_MIN_CAP, _CAP_PER_ENTRY * n * n)  # ours' first cap

    def pot(numItermax=100_000):
        return ot.emd2(a, b, ot.dist(x, y, metric="euclidean"), numItermax=numItermax)

    our_time, our_value, our_warnings = measure_with_warnings(lambda: divergences.emd(x, y, p=1), repeats)
    pot_time, pot_value, pot_warnings = measure_with_warnings(pot, repeats)
    pot_capped = any("numItermax" in message for message in pot_warnings)
    same_work_time, same_work_value = pot_time, pot_value
    if pot_capped:
        same_work_time, same_work_value, _ = measure_with_warnings(lambda: pot(cap), repeats)
    overhead = our_time / same_work_time - 1
    return {
        "case": f"d = {d}, n = {n:,}",
        "ours median s": our_time,
        "POT default median s": pot_time,
        "ratio peer/ours": pot_time / our_time,
        "POT same-cap median s": same_work_time if pot_capped else None,
        "overhead": f"{100 * overhead:+.1f}%",
        "ours value": our_value,
        "POT default value": pot_value,
        "POT default warned": pot_capped,
        "POT default gap": relative_difference(pot_value, our_value),
        "rel. diff to optimal POT": relative_difference(our_value, same_work_value),
        "ours warned": bool(our_warnings),
        "target": "overhead <= 5%",
        "met": overhead <= TARGET_OVERHEAD,
    }


def main():
    args = parse_args(__doc__)
    sizes = (100, 300) if args.quick else (1_000, 4_000)
    rng = np.random.default_rng(0)
    rows = [case(d, n, args.repeats, rng) for d in (2, 64) for n in sizes]
    report("emd_exact", rows, args, notes=[
        "ratio peer/ours > 1 means ours is faster; overhead = ours / (POT doing the same work) - 1.",
        "POT default gap = (POT default value - ours) / ours: how far short POT's default iteration cap stops.",
        "POT same-cap: POT with numItermax = max(100000, 20 n^2), only run when the default call warned.",
    ])


if __name__ == "__main__":
    main()
