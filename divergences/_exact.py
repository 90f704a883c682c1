"""Exact discrete optimal transport through POT's network simplex.

POT stops its solver after ``numItermax`` pivots and returns whatever plan it
holds then, with only a warning.  Here the cap starts in proportion to the
problem size, a capped run is resumed from its dual potentials with a larger
cap, and only if that fails too does the caller get a warning with the
duality gap, never a silently non-optimal value.
"""

from typing import NamedTuple

import numpy as np
import ot
import torch

from divergences import _scaling
from divergences.extras import ignoring

_OPTIMAL = 1
_MAX_ITER_REACHED = 3
_MIN_CAP = 100_000  # POT's default cap
_CAP_PER_ENTRY = 20  # the first cap grows with the size of the cost matrix
_RETRIES = 3  # each resumes from the last potentials with a cap ten times larger
_RESOLVED = 1e-6  # the relative excess over the optimum beyond which a returned cost is reported


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
        Those of the points of zero weight are c-transforms (see
        ``tight_potentials``).
    shortfall : str or None
        Why the value may not be optimal (the iteration cap, or an optimum
        the dual bound cannot certify), for the public function to warn
        with; None if it is.

    Only the points of positive weight go to the solver: the others carry no
    mass, and a far-away one would only widen the range of the costs, which
    costs the solver digits (which ``_uncertified`` reports).
    """
    rows, cols = a > 0, b > 0
    everywhere = bool(rows.all() and cols.all())
    support_cost = cost if everywhere else cost[np.ix_(rows, cols)]
    # Solved with the largest cost near 1: the solver's tolerances are absolute.
    scale = _scaling.power_of_two_above(max(float(support_cost.max()), -float(support_cost.min())))
    costs = DenseCosts(np.ascontiguousarray(support_cost if scale == 1 else support_cost / scale))

    def simplex(cap, warm_start):
        return ot.emd(a[rows], b[cols], costs.matrix, numItermax=cap, log=True, potentials_init=warm_start)

    value, support_plan, (support_u, support_v), shortfall = network_simplex(simplex, costs, a[rows], b[cols])
    if everywhere:
        return value * scale, support_plan, (support_u * scale, support_v * scale), shortfall
    plan = np.zeros_like(cost)
    plan[np.ix_(rows, cols)] = support_plan
    u, v = np.empty(len(a)), np.empty(len(b))
    u[rows], v[cols] = support_u * scale, support_v * scale
    return value * scale, plan, tight_potentials(DenseCosts(cost), rows, cols, u, v), shortfall


class DenseCosts(NamedTuple):
    """A cost matrix as the certificate and the c-transforms read it (``_exact_lazy.PointCosts`` computes it)."""

    matrix: np.ndarray  # (n, m)

    @property
    def shape(self):
        return self.matrix.shape

    def largest(self):
        return float(self.matrix.max())

    def column_minima(self, u, rows=slice(None), block=256):
        """min over the ``rows`` i of C_ij - u_i, for each column j, by blocks of rows (no (n, m) temporary)."""
        cost, u = self.matrix[rows], u[rows]
        v = np.full(cost.shape[1], np.inf)
        for start in range(0, cost.shape[0], block):
            np.minimum(v, (cost[start : start + block] - u[start : start + block, None]).min(axis=0), out=v)
        return v

    def row_minima(self, v, cols=slice(None)):
        """min over the ``cols`` j of C_ij - v_j, for each row i."""
        return (self.matrix[:, cols] - v[cols]).min(axis=1)


def network_simplex(simplex, costs, a, b):
    """A network simplex resumed with larger caps, its optimum certified; (value, plan, (u, v), shortfall or None).

    ``simplex(cap, warm_start)`` runs POT's solver (dense or lazy) on costs
    near 1 (its tolerances are absolute) and returns its (plan, log); its
    plan has row and column sums (an ndarray or a scipy sparse array).
    ``costs`` (`DenseCosts` or ``_exact_lazy.PointCosts``) are the same
    costs, for the dual bound.
    """
    n, m = costs.shape
    cap = max(_MIN_CAP, _CAP_PER_ENTRY * n * m)
    warm_start, shortfall = None, None
    for _ in range(_RETRIES):
        with ignoring("numItermax reached", UserWarning):
            plan, log = simplex(cap, warm_start)
        if log["result_code"] != _MAX_ITER_REACHED:
            break
        warm_start = (log["u"], log["v"])
        cap *= 10
    else:
        violation = np.abs(plan.sum(1) - a).sum() + np.abs(plan.sum(0) - b).sum()
        lower_bound = _dual_lower_bound(costs, a, b, log["u"])
        shortfall = (
            f"the exact solver stopped after {cap // 10:,} iterations, before optimality: the "
            f"returned cost comes from a plan that misses the marginals by {violation:.3g} (L1, of unit "
            f"mass), and the optimum is at least {lower_bound / log['cost']:.6g} times it (a feasible dual "
            "solution). Use `sinkhorn` with a small `eps` for problems this large."
        )
    if log["result_code"] not in (_OPTIMAL, _MAX_ITER_REACHED):
        raise RuntimeError(f"the exact solver failed: {log['warning']}")
    value = float(log["cost"])
    return value, plan, (log["u"], log["v"]), shortfall or _uncertified(value, costs, a, b, log["u"])


def _uncertified(value, costs, a, b, u):
    """Why a dual bound cannot certify the returned cost optimal to within _RESOLVED of it, or None.

    ``cost`` is >= 0.  The c-transform v_j = min_i (C_ij - u_i) of the
    solver's u makes (u, v) dual feasible, so <a, u> + <b, v> is a lower
    bound on the optimum, whatever the accuracy of u.  It is formed in
    float64, so its round-off, of the order of eps (n + m) times the size of
    the potentials (each C_ij - u_i that attains a minimum is at most
    |v_j| + |u_i|), is added to the gap: where the costs span a wide range,
    the potentials are large and that round-off swamps an optimum far below
    them.  A value of 0 is exact (the plan moves mass at zero cost only).
    """
    if value == 0:
        return None
    v = costs.column_minima(u)
    n, m = costs.shape
    eps = np.finfo(np.float64).eps
    size = a @ np.abs(u) + b @ np.abs(v) + value
    round_off = eps * ((n + m + 1) * size + 2 * float(np.abs(u).max()))  # sums, and each min over C_ij - u_i
    excess = value - (a @ u + b @ v) + round_off
    if excess <= _RESOLVED * value:
        return None
    largest = costs.largest()
    return (
        f"the exact solver cannot certify this optimum: the returned cost, about {_scaling.magnitude(value / largest)} "
        f"of the largest cost, may exceed the optimum by up to about {_scaling.magnitude(excess / largest)} of it (the "
        "round-off of the dual potentials). The costs span too wide a range: drop far-away points, or lower `p`."
    )


def tight_potentials(costs, rows, cols, u, v):
    """The potentials, with those of zero-weight points (outside ``rows``, ``cols``) set to c-transforms.

    They do not enter the optimal cost.  But they are its gradient with
    respect to those weights, and the one-sided derivative when mass is added
    at such a point is the largest value dual feasibility allows,
    u_i = min_j (C_ij - v_j) over the points j of positive weight (likewise
    for v).
    """
    u = np.where(rows, u, costs.row_minima(v, cols))
    v = np.where(cols, v, costs.column_minima(u, rows))
    return u, v


def _dual_lower_bound(costs, a, b, u):
    """A lower bound on the optimal cost: the dual value of u made feasible by c-transforms."""
    v = costs.column_minima(u)
    u = costs.row_minima(v)
    return a @ u + b @ v


class ExactCost(torch.autograd.Function):
    """Batched exact OT cost with the gradients of linear programming duality.

    The derivative of the optimal cost is the optimal plan with respect to the
    cost matrix, and the dual potentials with respect to the weights.  The
    shortfalls of the batch's problems (see ``solve``) are appended to
    ``shortfalls``, so that the public function can warn once, at its caller.
    """

    @staticmethod
    def forward(cost, a, b, shortfalls):
        values, plans, u_all, v_all = [], [], [], []
        for c, wa, wb in zip(as_numpy(cost), as_numpy(a), as_numpy(b)):
            value, plan, (u, v), shortfall = solve(c, wa, wb * (wa.sum() / wb.sum()))
            if shortfall:
                shortfalls.append(shortfall)
            values.append(value)
            plans.append(plan)
            u_all.append(u)
            v_all.append(v)
        like = dict(dtype=cost.dtype, device=cost.device)
        return (
            torch.tensor(values, **like),
            torch.as_tensor(_stacked(plans), **like),
            torch.as_tensor(_stacked(u_all), **like),
            torch.as_tensor(_stacked(v_all), **like),
        )

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, plan, u, v = output
        ctx.mark_non_differentiable(plan, u, v)
        ctx.save_for_backward(plan, u, v)

    @staticmethod
    def backward(ctx, grad, *_):
        plan, u, v = ctx.saved_tensors
        return grad[:, None, None] * plan, grad[:, None] * u, grad[:, None] * v, None


def _stacked(arrays):
    """np.stack, without copying a single array (a plan can be gigabytes)."""
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)


def as_numpy(tensor):
    """Float64, C-contiguous numpy copies of a batch of problems (what POT's solver needs)."""
    return np.ascontiguousarray(tensor.detach().to("cpu", torch.float64).numpy())
