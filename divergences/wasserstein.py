"""Exact Earth-Mover (Wasserstein) distances."""

import functools
import math
import warnings

import numpy as np
import torch

from divergences import _exact, _exact_lazy, _onedim, _scaling, _validation
from divergences._cost import TOO_FAR_APART, ground_cost, power, power_mean, root

DENSE_BUDGET = 2**30
"""Default ``memory_budget`` of `emd`: the bytes the exact solver on cost matrices may take (1 GiB)."""
_DENSE_ARRAYS = 8  # n x m float64 arrays that solving one problem on its cost matrix holds at its peak (6-9 measured)

__all__ = ["emd", "emd_cost"]


def emd(x, y, a=None, b=None, *, p=1, memory_budget=DENSE_BUDGET):
    r"""Exact p-Wasserstein distance between two discrete measures.

    .. math::

        W_p(\alpha, \beta) = \Big( \min_{\pi \in \Pi(a, b)}
        \sum_{i,j} \pi_{ij} \, \|x_i - y_j\|^p \Big)^{1/p},
        \qquad \alpha = \sum_i a_i \delta_{x_i}, \quad \beta = \sum_j b_j \delta_{y_j}

    Parameters
    ----------
    x : (n,) or (..., n, d) array_like or torch.Tensor
        Support of the first measure: n points on the line, or n points in
        R^d.  Leading axes are batch axes, broadcast against ``y``, ``a``, ``b``.
    y : (m,) or (..., m, d) array_like or torch.Tensor
        Support of the second measure, in the same dimension d.
    a : (..., n) array_like or torch.Tensor, >= 0, optional
        Weights of the points ``x``, normalised to sum to one (as in
        :func:`scipy.stats.wasserstein_distance`).  Default: uniform.
    b : (..., m) array_like or torch.Tensor, >= 0, optional
        Weights of the points ``y``.  Default: uniform.
    p : float >= 1, optional
        Exponent of the ground cost ‖x - y‖^p (Euclidean norm).  Default 1,
        the Earth-Mover distance.
    memory_budget : float >= 0, optional
        Bytes the exact solver may take in d > 1; default 2^30 (1 GiB),
        ``math.inf`` for no limit.  On its cost matrix it takes about 8
        float64 arrays of n x m per problem (6 to 9 measured), and a batch is
        solved in chunks of problems that fit.  A problem that does not fit
        alone is solved without its cost matrix, by POT's lazy network simplex
        (``ot.emd2_lazy``: memory O((n + m) d), about twice the time), which
        needs p = 1 or 2.

    Returns
    -------
    distance : (...) ndarray or torch.Tensor
        W_p, the p-th root of the optimal transport cost, in the library,
        dtype and device of the inputs.  Torch inputs get gradients with
        respect to ``x``, ``y``, ``a`` and ``b``.

    Raises
    ------
    ValueError
        Empty inputs, NaN or infinite values, negative weights or zero total
        weight, shape mismatches, ``p < 1``, numpy and torch mixed, tensors
        on different devices, or p other than 1 and 2 where one problem's
        cost matrix exceeds ``memory_budget``.
    TypeError
        Non-numeric inputs.
    RuntimeError
        If POT's solver reports an infeasible or unbounded problem, which
        validated inputs never are.

    Warns
    -----
    RuntimeWarning
        If the exact solver stops before optimality even after its iteration
        cap was raised a hundredfold; the message gives the returned cost and
        a lower bound on the optimum (from a feasible dual solution).

    Notes
    -----
    On the line (d = 1) the sorted coupling is optimal, so W_p is computed
    exactly in O((n + m) log(n + m)) for any weights and any p.  In higher
    dimension POT's network simplex solves the linear program; the iteration
    cap grows with the problem so the value is optimal, not just close.

    The gradient with respect to the points is the optimal plan's; at
    coincident points ``x_i = y_j`` it is taken as 0.  With respect to the
    weights it is given by the dual potentials.

    ``emd(x, y, a, b)`` equals ``scipy.stats.wasserstein_distance(x, y, a, b)``
    for 1-D inputs, and ``emd(x, y, a, b, p=p) ** p`` equals
    ``ot.emd2(a, b, ot.dist(x, y, metric="euclidean") ** p)`` with normalised
    weights: POT returns the cost W_p^p, this function W_p.

    Examples
    --------
    Between two point masses W_1 is their distance:

    >>> float(emd([0.0], [3.0]))
    3.0
    >>> float(emd([[0.0, 0.0]], [[3.0, 4.0]]))
    5.0

    Shifting a measure by c moves it by |c|, whatever p:

    >>> float(emd([0.0, 1.0, 5.0], [2.0, 3.0, 7.0], p=2))
    2.0
    """
    converter, (x, y, a, b) = _validation.convert(x=x, y=y, a=a, b=b, optional=("a", "b"))
    p = _validation.check_exponent(p)
    memory_budget = _validation.check_size("memory_budget", memory_budget)
    x, y, a, b, batch = _validation.check_measures(x, y, a, b)
    x, y, scale = _scaling.rescaled_points(x, y)  # no difference of the rescaled points overflows
    scale = scale[..., 0, 0]
    if x.shape[-1] == 1:
        weights, gaps = _onedim.quantile_gaps(x[..., 0], y[..., 0], a, b)
        return converter.back(_validation.check_fits(power_mean(weights, gaps, p, (-1,)) * scale, "the distance", TOO_FAR_APART))
    a = _validation.uniform_if_none(a, x)
    b = _validation.uniform_if_none(b, y)
    per_problem, shortfalls = _DENSE_ARRAYS * 8 * x.shape[-2] * y.shape[-2], []
    if per_problem > memory_budget:
        distance = _lazy_distance(x, y, a, b, batch, p, per_problem, memory_budget, shortfalls)
    else:
        dense = functools.partial(_dense_distance, shortfalls=shortfalls)
        fitting = min(memory_budget / per_problem, math.prod(batch))  # problems whose solves fit the budget together
        distance = _in_chunks(dense, x, y, a, b, batch, p, max(1, math.floor(fitting)))
    _warn_once(shortfalls)
    return converter.back(_validation.check_fits(distance * scale, "the distance", TOO_FAR_APART))


def _dense_distance(x, y, a, b, p, shortfalls):
    """W_p of each problem, (...), by the exact solver on its cost matrix; see `_batched_exact` for ``shortfalls``."""
    # Costs relative to the largest distance, so that none overflows, whatever p, and
    # none underflows unless it is negligible next to the largest (see _check_resolved).
    distance = ground_cost(x, y, 1)
    unit = _scaling.scales_of(distance, (-2, -1))
    if p == 1:
        value = _batched_exact(distance / unit, a, b, shortfalls)
    else:
        cost = (distance / unit) ** p
        value, plan = _batched_exact(cost, a, b, shortfalls, return_plan=True)
        _check_resolved(value, plan, distance, cost, p)
    return root(value, p) * unit[..., 0, 0]


def _in_chunks(function, x, y, a, b, batch, p, size):
    """``function(x, y, a, b, p)`` over the batch, ``size`` problems at a time (all at once if they fit), (*batch,).

    The inputs have the whole batch shape (``_validation.check_measures`` expanded them).
    """
    if math.prod(batch) <= size:
        return function(x, y, a, b, p)
    x, y, a, b = _validation.flat_batch(x, y, a, b)
    parts = [function(*(v[start:start + size] for v in (x, y, a, b)), p) for start in range(0, len(x), size)]
    return torch.cat(parts).reshape(batch)



def _lazy_distance(x, y, a, b, batch, p, per_problem, memory_budget, shortfalls):
    """W_p of each problem, (*batch,), by ``_exact_lazy`` (no cost matrix), with the gradients of duality.

    The value is <P, C> summed over the plan's pairs, differentiable with
    respect to the points (the plan is optimal, so its own derivative does
    not enter), plus <u, a - a> and <v, b - b> (zero), whose gradients are
    the potentials.
    """
    if p not in _exact_lazy.METRICS:
        raise ValueError(
            f"`p`={p!r} needs the cost matrix, and the exact solver on it about {per_problem / 2**30:.3g} GiB, above "
            f"`memory_budget`={memory_budget:.4g} bytes; without it only p = 1 and p = 2 are solved. Raise "
            "`memory_budget`, or use `sinkhorn`."
        )
    distances = []
    for xi, yi, ai, bi in zip(*_validation.flat_batch(x, y, a, b)):
        wa, wb = (_exact.as_numpy(w) for w in (ai, bi))
        solution = _exact_lazy.solve(_exact.as_numpy(xi), _exact.as_numpy(yi), wa, wb * (wa.sum() / wb.sum()), p)
        if solution.shortfall:
            shortfalls.append(solution.shortfall)
        like = dict(dtype=x.dtype, device=x.device)
        rows, cols = (torch.as_tensor(index, device=x.device) for index in (solution.rows, solution.cols))
        if not (np.isfinite(solution.u).all() and np.isfinite(solution.v).all()):
            raise _unresolvable(p, x.dtype)  # far points of zero weight: their potentials overflow
        gaps = torch.linalg.vector_norm((xi[rows] - yi[cols]) / solution.unit, dim=-1)  # (k,), unit: a power of two
        cost = power(gaps, p)
        masses = torch.as_tensor(solution.masses, **like)
        value = (masses * cost).sum()
        value = value + (torch.as_tensor(solution.u, **like) * (ai - ai.detach())).sum()
        value = value + (torch.as_tensor(solution.v, **like) * (bi - bi.detach())).sum()
        _check_resolved(value[None], masses[None, :, None], gaps[None, :, None], cost[None, :, None], p)
        distances.append(root(value, p) * solution.unit)
    return torch.stack(distances).reshape(batch)


def _check_resolved(value, plan, distance, cost, p):
    """Refuse a value that the underflow of (|x - y| / unit)^p could have changed.

    Costs below the smallest normal float lose their digits (to 0 at worst),
    which moves the optimum by at most that much per unit of mass: harmless
    unless the optimum itself is that small while the plan moves mass at a
    positive distance (a large p and distances that span a wide range).
    """
    unresolved = torch.finfo(cost.dtype).tiny / torch.finfo(cost.dtype).eps
    moves = ((plan > 0) & (distance > 0) & (cost < unresolved)).flatten(-2).any(-1)
    if bool((moves & (value < unresolved)).any()):
        raise _unresolvable(p, cost.dtype)


def _unresolvable(p, dtype):
    return ValueError(
        f"`p`={p:g} is too large for these points: their distances raised to p span more than the range of "
        f"{str(dtype).removeprefix('torch.')}, so the optimal cost cannot be resolved. Use a smaller `p`."
    )


def emd_cost(a, b, cost, *, return_plan=False):
    r"""Exact optimal transport cost between histograms, for any cost matrix.

    .. math::

        \min_{\pi \ge 0,\ \pi 1 = a,\ \pi^\top 1 = b} \ \sum_{i,j} \pi_{ij} C_{ij}

    This is POT's ``ot.emd2(a, b, M)`` convention: the histograms are not
    normalised and the value is the cost itself (no root).

    Parameters
    ----------
    a : (..., n) array_like or torch.Tensor, >= 0
        Source histogram.
    b : (..., m) array_like or torch.Tensor, >= 0
        Target histogram, with the same total mass as ``a`` (to a relative
        1e-6; it is rescaled to exactly that mass).
    cost : (..., n, m) array_like or torch.Tensor
        Cost of moving a unit of mass from bin i to bin j; any finite values.
    return_plan : bool, optional
        Also return the optimal plan.

    Returns
    -------
    value : (...) ndarray or torch.Tensor
        The optimal cost, differentiable in ``a``, ``b`` and ``cost`` for
        torch inputs: the plan is the gradient with respect to ``cost``, and
        the dual potentials are the gradients with respect to ``a`` and ``b``
        (defined up to opposite constant shifts, as the masses must stay equal).
    plan : (..., n, m) ndarray or torch.Tensor
        The optimal plan (without gradient); only with ``return_plan=True``.

    Raises
    ------
    ValueError
        Empty inputs, NaN or infinite values, negative or zero-total masses,
        unequal total masses, or a cost matrix whose shape is not (n, m).
    TypeError
        Non-numeric inputs.

    Examples
    --------
    Moving half the mass one bin over, at unit cost:

    >>> cost = [[0.0, 1.0], [1.0, 0.0]]
    >>> float(emd_cost([1.0, 0.0], [0.5, 0.5], cost))
    0.5
    """
    converter, (a, b, cost) = _validation.convert(a=a, b=b, cost=cost)
    return_plan = _validation.check_flag("return_plan", return_plan)
    mass_a, mass_b = _validation.check_mass("a", a), _validation.check_mass("b", b)
    _validation.check_nonempty("cost", cost)
    if cost.ndim < 2 or cost.shape[-2:] != (a.shape[-1], b.shape[-1]):
        raise ValueError(
            f"`cost` should have shape (..., {a.shape[-1]}, {b.shape[-1]}) to match `a` and `b`. "
            f"Instead, received an array of shape {tuple(cost.shape)}."
        )
    batch = _validation.broadcast_batch(a=a.shape[:-1], b=b.shape[:-1], cost=cost.shape[:-2])
    ratio = ((mass_a.scaled_total / mass_b.scaled_total).detach() * (mass_a.scale / mass_b.scale))[..., 0]
    mismatch = float((1 - torch.minimum(ratio, 1 / ratio)).max())  # |total a - total b| / the larger
    if mismatch > 1e-6:
        raise ValueError(
            "`a` and `b` should have the same total mass. Instead, their totals differ by a "
            f"relative {mismatch:.3g}; normalise both (or use `emd`, which does)."
        )
    # The solver sees unit masses and costs in [0, 2]: the value scales back exactly,
    # and the network simplex stays exact whatever the size or sign of the inputs.
    cost_scale = _scaling.scales_of(cost, (-2, -1))
    unit_cost = cost / cost_scale
    lowest = unit_cost.detach().amin((-2, -1), keepdim=True)
    expand = dict(a=(*batch, a.shape[-1]), b=(*batch, b.shape[-1]), cost=(*batch, *cost.shape[-2:]))
    shortfalls = []
    value, plan = _batched_exact(
        (unit_cost - lowest).expand(expand["cost"]),
        mass_a.normalised.expand(expand["a"]),
        mass_b.normalised.expand(expand["b"]),
        shortfalls,
        return_plan=True,
    )
    _warn_once(shortfalls)
    total, total_scale = mass_a.scaled_total[..., 0], mass_a.scale[..., 0]
    # Small factors first, the two powers of two last: no product overflows unless the result does.
    value = (value + lowest[..., 0, 0]) * total * cost_scale[..., 0, 0] * total_scale
    plan = plan * total.detach()[..., None, None] * total_scale[..., None, None]
    explanation = "`a` and `b` carry too much mass for the size of `cost`. Rescale them."
    value = _validation.check_fits(value, "the optimal cost", explanation)
    if return_plan:
        return converter.back(value), converter.back(_validation.check_fits(plan, "the optimal plan", explanation))
    return converter.back(value)


def _batched_exact(cost, a, b, shortfalls, return_plan=False):
    """Exact OT over the batch axes of (*batch, n, m) costs.

    Why the solver could not vouch for a problem's optimum is appended to
    ``shortfalls``, for the public function to warn once (`_warn_once`).
    """
    batch, (n, m) = cost.shape[:-2], cost.shape[-2:]
    value, plan, _, _ = _exact.ExactCost.apply(cost.reshape(-1, n, m), a.reshape(-1, n), b.reshape(-1, m), shortfalls)
    value = value.reshape(batch)
    if return_plan:
        return value, plan.reshape(*batch, n, m)
    return value


def _warn_once(shortfalls):
    """One warning for the problems of a batch whose optimum the solver could not vouch for, at the caller of
    the public function (which calls this)."""
    if shortfalls:
        others = f" ({len(shortfalls) - 1} more problem(s) of the batch too)" if len(shortfalls) > 1 else ""
        warnings.warn(shortfalls[0] + others, RuntimeWarning, stacklevel=3)
