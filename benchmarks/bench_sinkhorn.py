"""Entropic OT (Sinkhorn) at small eps: ours vs POT (float64) and GeomLoss (float32), at equal accuracy.

Part (a), vs POT.  n = m = 4000 points uniform in [0, 1]^2 (float64, seeded),
cost |x - y|^2, eps = 1e-3: ``divergences.sinkhorn(x, y, eps=1e-3, p=2,
debias=False, tol=1e-5)`` (target L1 marginal error 1e-5) vs
``ot.sinkhorn(a, b, ot.dist(x, y), reg=1e-3, method="sinkhorn_log")`` and the
value sum(G * M), which is exactly what ``ot.sinkhorn2`` computes (the plan
call is timed so that its marginal error can be measured; both timings
include the cost matrix).  Equal accuracy: POT stops on the L2 norm of its
column-marginal error, checked every 10 iterations (its row marginal is exact
after each iteration), ours on the L1 error of both marginals.  So ours'
plan is recomputed with ``divergences._sinkhorn_solver.solve`` (same
arguments as ``sinkhorn``), POT is run with ``stopThr`` = ours' L2 column
error, up to 100000 iterations, and both L1 errors are reported.  POT is
timed once: at full size each of its iterations takes 0.5-2 s on 2 cores, so
it can run for hours; it runs in warm-started segments of 1000 iterations
(bit-identical to one call) and gives up after ``--pot-budget-s`` seconds,
in which case the ratio is a lower bound.  Target: ours >= 20x faster.
POT with its defaults (numItermax=1000, stopThr=1e-9) is reported too, its
value and error, untimed: that is the state after its first segment.

Part (b), vs GeomLoss.  n = 2000 and 10000, float32 torch tensors, the
debiased divergence: ``divergences.sinkhorn(x, y, eps=1e-3, p=2, tol=...)`` vs
``SamplesLoss("sinkhorn", p=2, blur=sqrt(eps / 2), debias=True,
backend="tensorized", scaling=s)``.  GeomLoss conventions (from
geomloss/_legacy/sinkhorn_samples.py and sinkhorn_divergence.py): for p = 2
its cost is C' = |x - y|^2 / 2 and its temperature is eps' = blur^2, so its
Gibbs kernel is exp(-|x - y|^2 / (2 blur^2)); ours is exp(-|x - y|^2 / eps),
hence blur = sqrt(eps / 2) (= 0.02236 for eps = 1e-3) gives the same
entropic plan.  Its ``scaling`` is the ratio between successive *blur*
values (eps' shrinks by scaling^2 per step), with a single iteration per
step, so it runs a fixed number of iterations, not to a tolerance, and it
returns a dual objective (which includes the entropy, in units of C'), not
ours' transport cost: the values are different quantities.  Equal accuracy:
the potentials (F, G) of its x <-> y problem (``debias=False,
potentials=True``; the x <-> y iterations do not depend on the debiasing
terms) imply the plan a_i b_j exp((F_i + G_j - C'_ij) / eps'); its L1
marginal error (computed in float64 from GeomLoss's own float32 cost
matrix) is the tol given to ours, but no tighter than 1e-4 in float32.
GeomLoss is run with its default scaling 0.5 and with scaling 0.9.  Target:
ours >= 1.5x faster.

Run:  .venv/bin/python benchmarks/bench_sinkhorn.py [--quick] [--repeats R] [--only pot|geomloss]
          [--pot-repeats 1] [--pot-max-iter 100000] [--pot-budget-s 3600]
"""

import inspect
import math
import time

import numpy as np
import ot
import torch

import divergences
from _timing import measure, parse_args, ratio, relative_difference, report
from divergences import _sinkhorn_solver
from divergences._cost import ground_cost
from divergences._dense import DenseCost

try:
    from geomloss import SamplesLoss
    from geomloss._legacy.sinkhorn_samples import cost_routines as geomloss_costs
except ImportError:
    SamplesLoss = None

EPS = 1e-3
POT_TOL = 1e-5  # ours' target L1 marginal error in part (a)
FLOAT32_TOL = 1e-4  # the tightest tol asked of ours in float32
POT_SEGMENT = 1000  # POT runs in warm-started segments of this many iterations (a multiple of 10)
# The defaults of divergences.sinkhorn, passed on to the solver when its plan is recomputed.
SOLVER_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(divergences.sinkhorn).parameters.items()
    if name in ("max_iter", "scaling", "overrelaxation")
}


def options(parser):
    parser.add_argument("--only", choices=("pot", "geomloss"), help="run one part only")
    parser.add_argument("--pot-repeats", type=int, default=1, help="timed POT runs in part (a) (default 1)")
    parser.add_argument("--pot-max-iter", type=int, default=100_000, help="cap on POT's iterations in part (a)")
    parser.add_argument("--pot-budget-s", type=float, default=3600.0,
                        help="give up on POT after the segment that ends past this many seconds (default 3600)")


def marginal_errors(rows, cols, a, b):
    """L1 error of both marginals (the larger) and the L2 error of the column marginal."""
    l1 = max(float((rows - a).abs().sum()), float((cols - b).abs().sum()))
    return l1, float(torch.linalg.vector_norm(cols - b))


def ours_plan_errors(x, y, a, b, eps, tol):
    """Errors of the a <-> b plan ours computes, recomputed with the solver ``sinkhorn`` uses."""
    cost = DenseCost(ground_cost(x, y, 2)[None])
    solution = _sinkhorn_solver.solve(cost, a[None], b[None], eps, tol=tol, **SOLVER_DEFAULTS)
    rows, cols = solution.plan.marginals()
    return marginal_errors(rows[0].double(), cols[0].double(), a.double(), b.double())


# ----------------------------------------------------------------------------- part (a): POT


def pot_run(x, y, a, stop, max_iter, budget_s):
    """POT's log-domain Sinkhorn until its L2 column error is below ``stop``, the value sum(G * M).

    It runs in segments of POT_SEGMENT iterations, each warm-started from the
    last one's log-potentials: bit for bit the same iterations (and error
    checks, every 10) as one call, plus one exp of the plan per segment.  It
    stops after ``max_iter`` iterations or once ``budget_s`` seconds are spent.
    """
    start = time.perf_counter()
    M = ot.dist(x, y)  # squared Euclidean
    warm, iterations, first = None, 0, None
    while True:
        plan, log = ot.sinkhorn(a, a, M, reg=EPS, method="sinkhorn_log", numItermax=POT_SEGMENT, stopThr=stop,
                                warmstart=warm, log=True, warn=False)
        iterations += log["niter"] + 1
        converged = log["niter"] < POT_SEGMENT - 1  # it broke out at an error check
        if first is None:
            first = (plan, converged)
        if converged or iterations >= max_iter or time.perf_counter() - start >= budget_s:
            break
        warm = (log["log_u"], log["log_v"])
    value = float(np.sum(plan * M))
    return dict(value=value, plan=plan, iterations=iterations, converged=converged, first=first)


def pot_case(n, args):
    rng = np.random.default_rng(0)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    a = b = np.full(n, 1.0 / n)
    t = torch.from_numpy

    def l1_error(plan):
        return marginal_errors(t(plan.sum(1)), t(plan.sum(0)), t(a), t(b))[0]

    our_time, our_value = measure(lambda: divergences.sinkhorn(x, y, eps=EPS, p=2, debias=False, tol=POT_TOL),
                                  args.repeats)
    our_l1, our_l2_col = ours_plan_errors(t(x), t(y), t(a), t(b), EPS, POT_TOL)

    small = np.random.default_rng(1).random((50, 2))  # POT's warm-up, on a tiny problem
    pot_run(small, small, np.full(50, 1 / 50), 1e-9, 10, math.inf)
    pot_time, pot = measure(lambda: pot_run(x, y, a, our_l2_col, args.pot_max_iter, args.pot_budget_s),
                            args.pot_repeats, warmup=False)

    # POT with its defaults (numItermax=1000, stopThr=1e-9) runs the same first 1000 iterations.
    first_plan, first_converged = pot["first"]
    cost = ot.dist(x, y)
    if POT_SEGMENT == 1000 and not first_converged and our_l2_col >= 1e-9:
        default_plan = first_plan
    else:
        default_plan = ot.sinkhorn(a, b, cost, reg=EPS, method="sinkhorn_log", warn=False)
    default_value = float(np.sum(default_plan * cost))

    speedup = ratio(pot_time, our_time)
    return {
        "case": f"vs POT, n = {n:,}, float64",
        "ours median s": our_time,
        "peer median s": pot_time,
        "ratio peer/ours": speedup,
        "ours L1 err": our_l1,
        "peer L1 err": l1_error(pot["plan"]),
        "peer stopThr (ours L2 col err)": our_l2_col,
        "peer iterations": pot["iterations"],
        "peer reached stopThr": pot["converged"],
        "ours value": float(our_value),
        "peer value": pot["value"],
        "value rel. diff": relative_difference(our_value, pot["value"]),
        "POT default value": default_value,
        "POT default L1 err": l1_error(default_plan),
        "POT default value rel. diff": relative_difference(default_value, our_value),
        "target": ">= 20x",
        # A POT run stopped by the cap or the time budget only gives a lower bound on the ratio.
        "met": speedup >= 20 if pot["converged"] or speedup >= 20 else "unknown",
    }


# ----------------------------------------------------------------------------- part (b): GeomLoss


def geomloss_plan_error(x, y, F, G, eps_prime, block=1024):
    """L1 marginal error (the larger) of the plan a_i b_j exp((F_i + G_j - C'_ij) / eps'), uniform a, b.

    C' is GeomLoss's own float32 cost matrix; the sums run in float64, by blocks of rows.
    """
    n, m = len(x), len(y)
    F, G = F.reshape(n).double(), G.reshape(m).double()  # SamplesLoss returns them as (1, n), (1, m)
    log_a, log_b = -math.log(n), -math.log(m)
    g = G / eps_prime + log_b
    log_rows, log_cols = [], torch.full((m,), -math.inf, dtype=torch.float64)
    for start in range(0, n, block):
        cost = geomloss_costs[2](x[None, start:start + block], y[None])[0].double()
        log_plan = (F[start:start + block, None] - cost) / eps_prime + log_a + g[None, :]
        log_rows.append(torch.logsumexp(log_plan, 1))
        log_cols = torch.logaddexp(log_cols, torch.logsumexp(log_plan, 0))
    rows, cols = torch.cat(log_rows).exp(), log_cols.exp()
    return max(float((rows - 1 / n).abs().sum()), float((cols - 1 / m).abs().sum()))


def geomloss_case(n, scaling, args):
    generator = torch.Generator().manual_seed(n)
    x = torch.rand(n, 2, generator=generator, dtype=torch.float32)
    y = torch.rand(n, 2, generator=generator, dtype=torch.float32)
    blur = math.sqrt(EPS / 2)  # eps' = blur^2 = eps / 2 on the cost |x - y|^2 / 2
    settings = dict(p=2, blur=blur, backend="tensorized", scaling=scaling)
    loss = SamplesLoss("sinkhorn", debias=True, **settings)

    gl_time, gl_value = measure(lambda: loss(x, y), args.repeats)
    F, G = SamplesLoss("sinkhorn", debias=False, potentials=True, **settings)(x, y)
    gl_error = geomloss_plan_error(x, y, F, G, blur**2)
    tol = max(gl_error, FLOAT32_TOL)

    our_time, our_value = measure(lambda: divergences.sinkhorn(x, y, eps=EPS, p=2, tol=tol), args.repeats)
    uniform = torch.full((n,), 1.0 / n, dtype=torch.float32)
    our_error, _ = ours_plan_errors(x, y, uniform, uniform, EPS, tol)
    speedup = ratio(gl_time, our_time)
    return {
        "case": f"vs GeomLoss scaling={scaling}, n = {n:,}, float32",
        "ours median s": our_time,
        "peer median s": gl_time,
        "ratio peer/ours": speedup,
        "ours L1 err": our_error,
        "peer L1 err": gl_error,
        "ours tol": tol,
        "ours value": float(our_value),
        "peer value (dual, cost/2)": float(gl_value),
        "target": ">= 1.5x",
        "met": speedup >= 1.5,
    }


def main():
    args = parse_args(__doc__, extra=options)
    notes = ["ratio peer/ours > 1 means ours is faster; ours: median after one warm-up."]
    if args.only != "geomloss":
        n = 200 if args.quick else 4000
        report("sinkhorn_pot", [pot_case(n, args)], args, notes=notes + [
            f"POT timed {args.pot_repeats} time(s) without warm-up at this size (ot.dist, ot.sinkhorn with "
            "method='sinkhorn_log' in warm-started 1000-iteration segments, sum(G*M)); if it did not reach "
            "stopThr (cap or time budget), the ratio is a lower bound.",
            "POT default = numItermax=1000, stopThr=1e-9 (its first 1000 iterations), untimed.",
            "L1 err = the larger L1 error of the two marginals of the plan.",
        ])
    if args.only != "pot":
        if SamplesLoss is None:
            print("\nGeomLoss is not importable: part (b) skipped (pip install --no-deps geomloss).")
            return
        sizes = (300, 600) if args.quick else (2000, 10_000)
        rows = [geomloss_case(n, scaling, args) for n in sizes for scaling in (0.5, 0.9)]
        report("sinkhorn_geomloss", rows, args, notes=notes + [
            f"GeomLoss blur = sqrt(eps/2) = {math.sqrt(EPS / 2):.5g}; its value is its dual objective on the cost "
            "|x-y|^2/2, ours the debiased transport cost on |x-y|^2: different quantities.",
            f"ours tol = GeomLoss's L1 marginal error, but not below {FLOAT32_TOL:g}.",
        ])


if __name__ == "__main__":
    main()
