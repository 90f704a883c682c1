"""Exact Earth-Mover distance without the cost matrix: n = m = 2 10^4 in 2-D, in bounded memory.

Measures ``divergences.emd(x, y, p=1)`` with its default ``memory_budget``
(1 GiB: the 3.2 GB float64 cost matrix does not fit, so it goes through POT's
lazy network simplex, plus the certificate of optimality, whose c-transforms
are computed from the coordinates by blocks) against the direct call
``ot.emd2_lazy(x, y, metric="euclidean", numItermax=10**9,
return_matrix=False)`` (POT's default cap of 100,000 pivots stops it long
before the optimum at this size), with
uniform weights, points uniform in [0, 1]^2 (float64, seeded).  Each runs once
in a fresh process, so that its peak resident memory (VmHWM, the
interpreter, numpy, torch and the points included) is its own.
Targets: ours optimal (no warning, the same value as POT to 1e-12) in at
most 1 GiB.  The dense solver would hold the 3.2 GB matrix several times over.

Run:  .venv/bin/python benchmarks/bench_emd_lazy.py [--quick]
"""

import json
import subprocess
import sys

from _timing import parse_args, relative_difference, report

TARGET_PEAK_GIB = 1.0

_RUN = """
import json, time, warnings
import numpy as np
rng = np.random.default_rng(0)
x, y = rng.random(({n}, 2)), rng.random(({n}, 2))
{imports}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    start = time.perf_counter()
    value = float({call})
    seconds = time.perf_counter() - start
with open("/proc/self/status") as status:  # the peak since exec (ru_maxrss would carry the parent's)
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 2**20
print(json.dumps(dict(value=value, seconds=seconds, peak=peak, warnings=[str(w.message)[:200] for w in caught])))
"""

SOLVERS = {
    "ours": ("import divergences", "divergences.emd(x, y)"),
    "POT": ("import ot", 'ot.emd2_lazy(x, y, metric="euclidean", numItermax=10**9, return_matrix=False)'),
}


def run(n, solver):
    imports, call = SOLVERS[solver]
    result = subprocess.run([sys.executable, "-c", _RUN.format(n=n, imports=imports, call=call)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main():
    args = parse_args(__doc__, repeats=1)
    n = 2000 if args.quick else 20_000
    ours, pot = run(n, "ours"), run(n, "POT")
    optimal = not ours["warnings"] and relative_difference(ours["value"], pot["value"]) <= 1e-12
    rows = [{
        "case": f"d = 2, n = m = {n:,}",
        "ours s": ours["seconds"],
        "POT emd2_lazy s": pot["seconds"],
        "ratio POT/ours": pot["seconds"] / ours["seconds"],
        "ours peak GiB": ours["peak"],
        "POT peak GiB": pot["peak"],
        "dense cost matrix GiB": 8 * n * n / 2**30,
        "ours value": ours["value"],
        "value rel. diff": relative_difference(ours["value"], pot["value"]),
        "ours warned": "; ".join(ours["warnings"]) or "no",
        "target": f"optimal, peak <= {TARGET_PEAK_GIB:g} GiB",
        "met": optimal and ours["peak"] <= TARGET_PEAK_GIB,
    }]
    report("emd_lazy", rows, args, notes=[
        "one run each, in a fresh process; peak = VmHWM (interpreter, libraries and points included).",
        "ours = POT's lazy simplex + the certificate of optimality (c-transforms over all n x m costs, by blocks).",
    ])


if __name__ == "__main__":
    main()
