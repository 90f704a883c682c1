"""The GPU check: one script for a person with one CUDA GPU, under 8 minutes; one JSON and a table.

Each row is one measurement, or says why it was not taken:

1. the test suite's CUDA tests (``pytest -m "slow or not slow" -k cuda``): their counts;
2. Sinkhorn (tensorized) on the GPU, float32 against float64: n = m = 2000 and 10^4, 2-D, eps =
   1e-3 of the largest cost, default tol: seconds, the float32/float64 time ratio and the
   values' relative difference (the float32 promise: within 1e-3, or a warning);
3. ``sliced`` on 10^7 points a side in 3-D float32, 64 directions: seconds and projected
   points per second; ``emd`` (its solver runs on the CPU) on GPU tensors, n = 2000 in 2-D;
4. online Sinkhorn: one reduction K v in 3-D float32 at n = m = 10^5 and 10^6, in pairs/s (target
   on a GPU: 10^11), and a whole solve at n = m = 10^5 (10^4 and 10^5, and 10^4, with ``--device cpu``);
   the same whole solve by the multiscale backend (at 10^6 points: not measured yet, said so);
5. the trainer at the paper preset (64x64, widths 64, batch 64), GAN and WGAN: generator steps/s
   plain, with ``--bf16``, with ``--compile`` and with both;
6. the monitor: seconds per evaluation on the GPU, and its share of training at the default
   ``eval_every``.

On a machine without CUDA every GPU row is skipped and says so.  ``--device cpu`` runs the same
measurements on the CPU, and ``--quick`` at tiny sizes (what the test suite does, so that the
script itself is tested).  Results go to ``benchmarks/results/gpu_check.json``.

Run:  .venv/bin/python benchmarks/gpu_check.py [--device cuda|cpu] [--quick]
"""

import math
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

import divergences
from divergences import _online
from _timing import parse_args, relative_difference, report
from bench_trainer import paper_config, seconds_per_evaluation, steady_seconds_per_step

ROOT = Path(__file__).resolve().parent.parent
NOT_MEASURED = "not measured yet: a whole multiscale solve at 10^6 points (see bench_sinkhorn_online.py (e) on a CPU)"
ONLINE_TARGET = 1e11  # pairs/s of an online reduction on a GPU, 3-D float32
SCALE_SIZES = {  # online: n of one reduction, n of a whole solve (a CPU does 1.4e9 pairs/s, a GPU about 100 times more)
    "cuda": {"reduction": (10**5, 10**6), "solve": 10**5},
    "cpu": {"reduction": (10**4, 10**5), "solve": 10**4},
    "quick": {"reduction": (2000,), "solve": 1000},
}


def options(parser):
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                        help="where to measure (default cuda; its rows are skipped without a CUDA device)")


def synchronised(fn):
    """Seconds of ``fn()`` once its work on the device has finished, and its result."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def cuda_tests(device, quick):
    if device != "cuda":
        return [{"part": "CUDA tests", "result": "skipped: runs on CUDA only"}]
    command = [sys.executable, "-m", "pytest", "-q", "-m", "slow or not slow", "-k", "cuda", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-200:]
    return [{"part": "CUDA tests", "result": summary, "met": done.returncode == 0}]


def sinkhorn_rows(device, quick):
    rows = []
    for n in (200, 400) if quick else (2000, 10_000):
        generator = torch.Generator().manual_seed(n)
        x, y = torch.rand(2, n, 2, generator=generator, dtype=torch.float64)
        eps = 1e-3 * float(torch.cdist(x, y).max()) ** 2
        seconds, values, warned = {}, {}, {}
        for dtype in (torch.float64, torch.float32):
            xs, ys = x.to(device, dtype), y.to(device, dtype)
            divergences.sinkhorn(xs[:50], ys[:50], eps=eps, debias=False)  # warm-up
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                seconds[dtype], value = synchronised(lambda: divergences.sinkhorn(xs, ys, eps=eps, debias=False))
            values[dtype], warned[dtype] = float(value), bool(caught)
        difference = relative_difference(values[torch.float32], values[torch.float64])
        rows.append({
            "part": f"sinkhorn n = m = {n:,}, 2-D, eps = 1e-3 max C",
            "float64 s": seconds[torch.float64],
            "float32 s": seconds[torch.float32],
            "float32 / float64": seconds[torch.float32] / seconds[torch.float64],
            "value rel. diff": difference,
            "result": "float32 warned" if warned[torch.float32] else "no warning",
            "met": difference <= 1e-3 or warned[torch.float32],
        })
    return rows


def sliced_and_emd_rows(device, quick):
    n = 10**5 if quick else 10**7
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, generator=generator).to(device)
    y = (torch.rand(n, 3, generator=generator) + 0.1).to(device)
    seconds, value = synchronised(lambda: divergences.sliced(x, y, p=2, n_projections=64, seed=0))
    rows = [{
        "part": f"sliced, {n:,} points a side, 3-D float32, 64 directions",
        "float32 s": seconds,
        "result": f"{2 * n * 64 / seconds:.3g} projected points/s; value {float(value):.6g}",
        "met": math.isfinite(float(value)),
    }]
    m = 200 if quick else 2000
    points = torch.rand(2, m, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    seconds, value = synchronised(lambda: divergences.emd(points[0].to(device), points[1].to(device)))
    reference = float(divergences.emd(points[0], points[1]))
    rows.append({
        "part": f"emd, n = m = {m:,}, 2-D, tensors on {device} (solved on the CPU)",
        "float64 s": seconds,
        "value rel. diff": relative_difference(float(value), reference),
        "result": f"returned on {value.device.type}",
        "met": value.device.type == torch.device(device).type and float(value) == reference,
    })
    return rows


def scale_rows(device, quick):
    """Online Sinkhorn: one reduction (pairs/s; target on a GPU: 10^11 in 3-D float32); a whole solve, online and multiscale."""
    sizes = SCALE_SIZES["quick" if quick else device]
    rows = []
    for n in sizes["reduction"]:
        pairs_per_second = _online_reduction(n, device)
        row = {"part": f"online reduction K v, n = m = {n:,}, 3-D float32", "result": f"{pairs_per_second:.3g} pairs/s"}
        if device == "cuda":
            row["met"] = pairs_per_second >= ONLINE_TARGET
        rows.append(row)
    n = sizes["solve"]
    x, y = torch.rand(2, n, 3, generator=torch.Generator().manual_seed(2)).to(device)
    for backend in ("online", "multiscale"):
        seconds, value = synchronised(lambda: divergences.sinkhorn(x, y, eps=0.01 * 3, debias=False, backend=backend))
        rows.append({"part": f"{backend} sinkhorn, n = m = {n:,}, 3-D float32, eps = 1e-2 max C", "float32 s": seconds,
                     "result": f"value {float(value):.6g}", "met": math.isfinite(float(value))})
    rows.append({"part": "multiscale sinkhorn, n = m = 10^6", "result": NOT_MEASURED})
    return rows


def _online_reduction(n, device):
    """Pairs per second of one product K v by an online kernel, uniform points in [0, 1]^3, float32."""
    generator = torch.Generator().manual_seed(3)
    x, y = (points.to(device) for points in torch.rand(2, 1, n, 3, generator=generator))
    f = torch.zeros(1, n, dtype=torch.float64, device=device)
    g = (0.01 * torch.rand(1, n, generator=generator, dtype=torch.float64)).to(device)
    ones = torch.ones(1, n, device=device)
    kernel = _online.OnlineCost(x, y, 2.0).kernel(f, g, 0.01, ones, ones)
    v = ones.double()
    synchronised(lambda: kernel.times(v))  # warm-up
    seconds, _ = synchronised(lambda: kernel.times(v))
    return n * n / seconds


def trainer_rows(device, quick):
    rows = []
    for loss in ("gan", "wgan"):
        steps = 2 if quick else {"gan": 20, "wgan": 10}[loss]
        for flags in ({}, {"bf16": True}, {"compile": True}, {"bf16": True, "compile": True}):
            name = " + ".join(flags) or "plain"
            if quick and flags.get("compile"):
                rows.append({"part": f"trainer {loss}, {name}", "result": "skipped with --quick (compiling takes minutes)"})
                continue
            seconds = steady_seconds_per_step(paper_config(loss, steps, quick, device, **flags))
            rows.append({"part": f"trainer {loss}, paper preset, {name}", "generator steps/s": 1 / seconds})
        config = paper_config(loss, steps, quick, device)
        evaluation, eval_every = seconds_per_evaluation(config, repeats=1 if quick else 3)
        plain = next(row for row in rows if row["part"].startswith(f"trainer {loss}, paper preset, plain"))
        rows.append({
            "part": f"monitor, {loss}",
            "s per evaluation": evaluation,
            "result": f"{100 * evaluation * plain['generator steps/s'] / eval_every:.3g}% of training at "
                      f"eval_every = {eval_every}",
        })
    return rows


PARTS = (cuda_tests, sinkhorn_rows, sliced_and_emd_rows, scale_rows, trainer_rows)


def main():
    args = parse_args(__doc__, repeats=1, extra=options)
    available = args.device == "cpu" or torch.cuda.is_available()
    rows, started = [], time.perf_counter()
    for part in PARTS:
        if not available:
            rows.append({"part": _title(part), "result": "skipped: no CUDA device on this machine"})
            continue
        rows.extend(part(args.device, args.quick))
    device = (torch.cuda.get_device_name() if available else "no CUDA device") if args.device == "cuda" else "cpu"
    notes = [f"device: {device}; torch {torch.__version__}; {time.perf_counter() - started:.0f} s in all"]
    if not available:
        notes.append("No CUDA device: every GPU measurement was skipped. Run this on a machine with one.")
    report("gpu_check", rows, args, notes)


def _title(part):
    return re.sub(r"_rows$", "", part.__name__).replace("_", " ")


if __name__ == "__main__":
    main()
