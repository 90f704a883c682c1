"""Exact discrete optimal transport through POT's network simplex.

POT stops its solver after ``numItermax`` pivots and returns whatever plan it
holds then, with only a warning.  Here the cap starts in proportion to the
problem size, a capped run is resumed from its dual potentials with a larger
cap, and only if that fails too does the caller get a warning with the
duality gap, never a silently non-optimal value.
"""

import warnings

import numpy as np
import ot
import torch

_OPTIMAL = 1
_MAX_ITER_REACHED = 3
_RETRIES = 3


def solve(cost, a, b):
    """Optimal transport cost, plan and dual potentials for one problem.

    Parameters
    ----------
    cost : (n, m) float64 ndarray
    a : (n,) float64 ndarray
    b : (m,) float64 ndarray, with the same total mass as ``a``

    Returns
    -------
    value : float
    plan : (n, m) ndarray
    potentials : tuple of (n,) and (m,) ndarrays
    """
    n, m = cost.shape
    cap = max(100_000, 20 * n * m)
    warm_start = None
    for _ in range(_RETRIES):
        plan, log = ot.emd(a, b, cost, numItermax=cap, log=True, potentials_init=warm_start)
        if log["result_code"] != _MAX_ITER_REACHED:
            break
        warm_start = (log["u"], log["v"])
        cap *= 10
    else:
        gap = log["cost"] - (a @ log["u"] + b @ log["v"])
        warnings.warn(
            f"the exact solver stopped after {cap // 10:,} iterations before optimality; the "
            f"returned cost {log['cost']:.6g} may exceed the optimum by up to the duality gap "
            f"{gap:.3g}. Use `sinkhorn` with a small `eps` for problems this large.",
            RuntimeWarning,
            stacklevel=4,
        )
    if log["result_code"] not in (_OPTIMAL, _MAX_ITER_REACHED):
        raise RuntimeError(f"the exact solver failed: {log['warning']}")
    return float(log["cost"]), plan, (log["u"], log["v"])


class ExactCost(torch.autograd.Function):
    """Batched exact OT cost with the gradients of linear programming duality.

    The derivative of the optimal cost is the optimal plan with respect to the
    cost matrix, and the dual potentials with respect to the weights.
    """

    @staticmethod
    def forward(cost, a, b):
        values, plans, u_all, v_all = [], [], [], []
        for c, wa, wb in zip(_as_numpy(cost), _as_numpy(a), _as_numpy(b)):
            value, plan, (u, v) = solve(c, wa, wb * (wa.sum() / wb.sum()))
            values.append(value)
            plans.append(plan)
            u_all.append(u)
            v_all.append(v)
        like = dict(dtype=cost.dtype, device=cost.device)
        return (
            torch.tensor(values, **like),
            torch.as_tensor(np.stack(plans), **like),
            torch.as_tensor(np.stack(u_all), **like),
            torch.as_tensor(np.stack(v_all), **like),
        )

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, plan, u, v = output
        ctx.mark_non_differentiable(plan, u, v)
        ctx.save_for_backward(plan, u, v)

    @staticmethod
    def backward(ctx, grad, *_):
        plan, u, v = ctx.saved_tensors
        return grad[:, None, None] * plan, grad[:, None] * u, grad[:, None] * v


def _as_numpy(tensor):
    """Float64 numpy copies of a batch of problems (POT's solver needs float64)."""
    return tensor.detach().to("cpu", torch.float64).numpy()
