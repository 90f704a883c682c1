"""Sinkhorn's online backend (no n x m array) against the tensorized one, its memory, and its reductions.

Part (a), online against tensorized.  n = m = 5000 points uniform in [0, 1]^2,
float64, eps = 1e-2 of the largest cost, ``debias=False``, default tol: the
same value (target: 1e-6 relative) and the time ratio (target: online <= 1.5x).

Part (b), memory.  n = m = 5 10^4 points uniform in [0, 1]^64, float32, eps =
0.05 of the largest cost, ``debias=False``, ``backend="online"``, in a fresh
process: its peak resident memory (VmHWM: the interpreter, torch and
the points included).  Target: <= 1 GiB, where the dense cost alone would be
10 GB.

Part (c), the reduction.  One product by the kernel, K v with
K_ij = exp((g_j - |x_i - y_j|^2) / eps), as the online backend computes it
(``kernel.times`` of an ``_online.OnlineKernel``), in 3-D float32,
in pairs per second: against ``torch.logsumexp`` over a dense matrix of the
same exponents that fits in memory (n = m = 10^4; target >= 0.5x), and
against pykeops' CPU log-sum-exp reduction (``LazyTensor(...).logsumexp``) on
the same data when pykeops is installed (a benchmark-only dependency:
``pip install pykeops``; target >= 5x).

Part (d), multiscale against online.  n = m = 2 10^4 points, the clouds of
(e) in float64, p = 2, eps = 1e-4 as in (e), ``debias=False``, ``max_iter`` =
10^5 for both: the values (target: within 1e-3 relative) and the times.  Online
is the reference and takes hours here: at n = m = 3000 it needed its 10^4
units of work (6 minutes on one thread) to reach a marginal error of 9e-7, and
each pass over 2 10^4 points costs 44 times as much.  (With ``--quick``: n = m
= 2000 at eps = 1e-2, seconds.)  Before 2026-12-08 this part ran at eps = 1e-2,
where multiscale keeps most pairs (the plan's width sqrt(30 eps) = 0.55 of a
unit cube) and ran out of memory and time: it never gave a figure.

Part (e), multiscale at n = m = 10^5, uniform in the unit cube against a
shifted and scaled copy (0.8 x + 0.15), float32, p = 2, eps = 1e-4, in a
fresh process: the debiased value and its gradient with respect to x, their
time (target <= 120 s) and the peak resident memory (target <= 2 GiB).

Part (f), multiscale at n = m = 10^6 in 3-D, the same clouds, float32, p = 2,
in a fresh process: the debiased value (no gradient), its time (target <= 10
minutes) and peak resident memory (target <= 8 GiB).  eps = 1e-5, not the
1e-4 of (e): at a fixed eps the pairs that carry mass per point grow with n
(about 650 a point at 1e-4, 6.5 10^8 in all), while 1e-5 keeps fewer per
point than (e) (the plan's width sqrt(eps) against a spacing n^(-1/3): about
37 a point in the x-y term, against 97 in (e)).

Run:  .venv/bin/python benchmarks/bench_sinkhorn_online.py [--quick] [--repeats R] [--only a|b|c|d|e|f]
"""

import functools
import json
import subprocess
import sys

import torch

import divergences
from _timing import measure, measure_alternately, parse_args, relative_difference, report
from divergences import _online

TARGET_RATIO = 1.5
TARGET_PEAK_GIB = 1.0

_PEAK = """
import json, time, torch
import divergences
x, y = torch.rand(2, {n}, {d}, generator=torch.Generator().manual_seed(0))
largest = max(float(torch.cdist(x[i:i + 1000], y).max()) for i in range(0, {n}, 1000)) ** 2
start = time.perf_counter()
value = float(divergences.sinkhorn(x, y, eps={relative_eps} * largest, debias=False, backend="online"))
seconds = time.perf_counter() - start
with open("/proc/self/status") as status:  # the peak since exec (ru_maxrss would carry the parent's)
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 2**20
print(json.dumps(dict(value=value, seconds=seconds, peak=peak)))
"""


_MULTISCALE_SOLVE = """
import json, time, torch
import divergences
generator = torch.Generator().manual_seed(0)
x = torch.rand({n}, 3, generator=generator).requires_grad_({gradient})
y = 0.8 * torch.rand({n}, 3, generator=generator) + 0.15  # a shifted and scaled copy
start = time.perf_counter()
value = divergences.sinkhorn(x, y, eps={eps}, backend="multiscale")
value_s = time.perf_counter() - start
if {gradient}:
    value.backward()
total_s = time.perf_counter() - start
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 2**20
print(json.dumps(dict(value=float(value), value_s=value_s, total_s=total_s, peak=peak)))
"""
TARGET_MULTISCALE_S = 120.0
TARGET_MULTISCALE_GIB = 2.0
TARGET_MILLION_S = 600.0
TARGET_MILLION_GIB = 8.0


def options(parser):
    parser.add_argument("--only", choices=tuple("abcdef"), help="run one part only")


def against_tensorized(args):
    n = 500 if args.quick else 5000
    x, y = torch.rand(2, n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eps = 1e-2 * float(torch.cdist(x, y).max()) ** 2
    backends = ("tensorized", "online")
    timed = measure_alternately(
        [functools.partial(divergences.sinkhorn, x, y, eps=eps, debias=False, backend=backend) for backend in backends],
        args.repeats)
    times = {backend: seconds for backend, (seconds, _) in zip(backends, timed)}
    values = {backend: value for backend, (_, value) in zip(backends, timed)}
    slower = times["online"] / times["tensorized"]
    difference = relative_difference(values["online"], values["tensorized"])
    return [{
        "case": f"(a) n = m = {n:,}, 2-D, float64, eps = 1e-2 max C",
        "tensorized s": times["tensorized"],
        "online s": times["online"],
        "online / tensorized": slower,
        "value rel. diff": difference,
        "target": f"<= {TARGET_RATIO}x, values to 1e-6",
        "met": slower <= TARGET_RATIO and difference <= 1e-6,
    }]


def memory(args):
    n, d = (5000, 64) if args.quick else (50_000, 64)
    done = subprocess.run([sys.executable, "-c", _PEAK.format(n=n, d=d, relative_eps=0.05)], capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout.splitlines()[-1])  # the last line: importing POT may print (pykeops warnings)
    return [{
        "case": f"(b) n = m = {n:,}, {d}-D, float32, eps = 0.05 max C, online",
        "online s": result["seconds"],
        "peak GiB": result["peak"],
        "dense cost GiB": 4 * n * n / 2**30,
        "value": result["value"],
        "target": f"peak <= {TARGET_PEAK_GIB:g} GiB",
        "met": result["peak"] <= TARGET_PEAK_GIB,
    }]


def reductions(args):
    n = 2000 if args.quick else 10_000
    x, y = torch.rand(2, n, 3, generator=torch.Generator().manual_seed(1))
    g = torch.rand(n, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.01
    eps = 0.01
    kernel = _online.OnlineCost(x[None], y[None], 2.0).kernel(torch.zeros(1, n, dtype=torch.float64), g[None], eps,
                                                              torch.ones(1, n), torch.ones(1, n))
    ones = torch.ones(1, n, dtype=torch.float64)
    exponents = (g.float()[None, :] - torch.cdist(x, y) ** 2) / eps  # (n, n): fits at this size
    reductions = {"online": lambda: kernel.times(ones), "dense": lambda: torch.logsumexp(exponents, dim=1)}
    try:
        from pykeops.torch import LazyTensor
    except ImportError:
        pass
    else:
        x_i, y_j = LazyTensor(x[:, None, :]), LazyTensor(y[None, :, :])
        g_j = LazyTensor(g.float()[None, :, None])
        reductions["pykeops"] = lambda: ((g_j - ((x_i - y_j) ** 2).sum(-1)) / eps).logsumexp(dim=1)
    seconds = dict(zip(reductions, (s for s, _ in measure_alternately(list(reductions.values()), args.repeats))))
    pairs = n * n
    row = {
        "case": f"(c) one reduction, n = m = {n:,}, 3-D float32",
        "online pairs/s": pairs / seconds["online"],
        "dense logsumexp pairs/s": pairs / seconds["dense"],
        "online / dense": seconds["dense"] / seconds["online"],
    }
    if "pykeops" in seconds:
        row["pykeops pairs/s"] = pairs / seconds["pykeops"]
        row["online / pykeops"] = seconds["pykeops"] / seconds["online"]
        row["met"] = row["online / dense"] >= 0.5 and row["online / pykeops"] >= 5
    else:
        row["pykeops pairs/s"] = "not installed"
        row["met"] = row["online / dense"] >= 0.5
    row["target"] = ">= 0.5x dense, >= 5x pykeops"
    return [row]


def multiscale_against_online(args):
    n, eps = (2000, 1e-2) if args.quick else (20_000, 1e-4)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, generator=generator, dtype=torch.float64)
    y = 0.8 * torch.rand(n, 3, generator=generator, dtype=torch.float64) + 0.15  # the clouds of (e)
    times, values = {}, {}
    for backend in ("multiscale", "online"):
        times[backend], values[backend] = measure(
            lambda: divergences.sinkhorn(x, y, eps=eps, debias=False, backend=backend, max_iter=100_000), 1,
            warmup=False)
    difference = relative_difference(values["multiscale"], values["online"])
    return [{
        "case": f"(d) n = m = {n:,}, the clouds of (e), float64, eps = {eps:g}, multiscale vs online",
        "online s": times["online"],
        "multiscale s": times["multiscale"],
        "multiscale / online": times["multiscale"] / times["online"],
        "value rel. diff": difference,
        "target": "values within 1e-3",
        "met": difference <= 1e-3,
    }]


def multiscale_solve(args):
    return [_multiscale_row("(e)", 10_000 if args.quick else 100_000, 1e-4, True, TARGET_MULTISCALE_S,
                            TARGET_MULTISCALE_GIB)]


def multiscale_million(args):
    return [_multiscale_row("(f)", 5_000 if args.quick else 1_000_000, 1e-5, False, TARGET_MILLION_S,
                            TARGET_MILLION_GIB)]


def _multiscale_row(part, n, eps, gradient, target_s, target_gib):
    """The multiscale solve of `_MULTISCALE_SOLVE` in a fresh process, debiased, with the gradient or not: its
    value, times and peak memory against the targets."""
    script = _MULTISCALE_SOLVE.format(n=n, eps=eps, gradient=gradient)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.splitlines()[-1])
    seconds = result["total_s"] if gradient else result["value_s"]
    row = {"case": f"{part} n = m = {n:,}, unit cube vs shifted, scaled copy, float32, eps = {eps:g}, multiscale, "
                   + ("debiased, value and gradient" if gradient else "debiased value"),
           "value": result["value"], "value s": result["value_s"]}
    if gradient:
        row["value and gradient s"] = result["total_s"]
    return {**row, "peak GiB": result["peak"], "target": f"<= {target_s:g} s and <= {target_gib:g} GiB",
            "met": seconds <= target_s and result["peak"] <= target_gib}


def main():
    args = parse_args(__doc__, repeats=3, extra=options)
    parts = {"a": against_tensorized, "b": memory, "c": reductions, "d": multiscale_against_online,
             "e": multiscale_solve, "f": multiscale_million}
    rows = []
    for name, part in parts.items():
        if args.only in (None, name):
            rows.extend(part(args))
    report("sinkhorn_online", rows, args, notes=[
        "(a) and (c): medians of calls in turns, after one warm-up each (`_timing.measure_alternately`); (b): one run in a fresh process, peak = VmHWM.",
        "(c) counts the pairs (i, j) of one product K v or one log-sum-exp over rows.",
    ])


if __name__ == "__main__":
    main()
