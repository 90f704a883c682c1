"""Entropic optimal transport (Sinkhorn) between point clouds."""

import functools
import math
import warnings

import torch

from divergences import _multiscale, _online, _scaling, _sinkhorn_solver, _validation
from divergences._cost import ground_cost
from divergences._entropic_cost import EntropicCost, OnlineEntropicCost

__all__ = ["sinkhorn"]

BACKENDS = ("auto", "tensorized", "online", "multiscale")
TENSORIZED_BUDGET = 2**30
"""Default ``memory_budget`` of `sinkhorn`: the bytes "auto" lets the tensorized backend take (1 GiB)."""


def sinkhorn(
    x,
    y,
    a=None,
    b=None,
    *,
    p=2,
    eps,
    debias=True,
    tol=None,
    max_iter=10_000,
    scaling=0.1,
    overrelaxation=1.8,
    backend="auto",
    memory_budget=TENSORIZED_BUDGET,
):
    r"""Entropic optimal transport cost, or the debiased Sinkhorn divergence.

    With ``T_eps(α, β)`` the entropic optimal plan

    .. math::

        T_\varepsilon(\alpha, \beta) = \mathop{\arg\min}_{\pi \in \Pi(a, b)}
        \langle \pi, C \rangle + \varepsilon \, \mathrm{KL}(\pi \,\|\, a \otimes b),
        \qquad C_{ij} = \|x_i - y_j\|^p,

    ``debias=False`` returns its transport cost :math:`\langle T_\varepsilon, C \rangle`
    and ``debias=True`` the debiased divergence

    .. math::

        \langle T_\varepsilon(\alpha, \beta), C \rangle
        - \tfrac12 \langle T_\varepsilon(\alpha, \alpha), C \rangle
        - \tfrac12 \langle T_\varepsilon(\beta, \beta), C \rangle,

    which is 0 when the two measures coincide.

    Parameters
    ----------
    x : (n,) or (..., n, d) array_like or torch.Tensor
        Support of the first measure.  Leading axes are batch axes, broadcast
        against ``y``, ``a`` and ``b``.
    y : (m,) or (..., m, d) array_like or torch.Tensor
        Support of the second measure, in the same dimension d.
    a, b : (..., n) and (..., m) array_like or torch.Tensor, >= 0, optional
        Weights of the points, each normalised to sum to one.  Default: uniform.
    p : float >= 1, optional
        Exponent of the ground cost ‖x - y‖^p.  Default 2.
    eps : float > 0
        Entropic regularisation, in the units of the cost (POT's ``reg``):
        ``eps = 1e-3`` with points in the unit square and p = 2 is about 5e-4
        of the largest cost.  Nothing overflows at any eps, in float32 as in
        float64; down to 1e-4 of the largest cost the solver converges on the
        problems of ``benchmarks/bench_sinkhorn_float32.py``, and where it
        does not (far clusters with p = 1 in float32, say) it warns.  An eps
        below 1e-14 of the largest cost is raised to it, with a warning.
    debias : bool, optional
        Subtract the self-transport terms (default) or not.
    tol : float > 0, optional
        Target accuracy, of both the plan and the value: the solver stops once
        the L1 error of the plan's marginals is at most ``tol`` and the error
        of the value that this marginal error implies (to first order, see
        Notes) is at most ``tol`` relative to the value, or to eps if the
        value is smaller.  Default 1e-6 in float64 and 1e-4 in float32.
    max_iter : int, optional
        Cap on the work per call, over the whole eps annealing and the whole
        batch (which is solved together): Sinkhorn iterations, kernel builds,
        and the conjugate-gradient steps of Newton's method and of the value's
        error estimate, each of which costs about the same.
    scaling : float in (0, 1), optional
        Ratio between successive eps of the annealing, which starts at the
        largest cost.  Default 0.1: fewer stages; potentials carried over
        too far are re-centred by a log-domain step, so any ratio is safe.
        A ratio so close to 1 that the annealing would take over 100 stages
        is lowered to take 100.
    overrelaxation : float in [1, 2), optional
        Over-relaxation factor of the scaling updates; 1 is plain Sinkhorn.
    backend : {"auto", "tensorized", "online", "multiscale"}, optional
        "tensorized" stores the (B, n, m) cost and its kernels; "online"
        stores nothing of size n x m: costs and kernel entries are computed
        from the points by blocks of rows whenever a product needs them
        (memory O((n + m) d) plus a block, and each product pays for its
        exponentials again).  Both solve the same problem by the same steps:
        the same value to solver tolerance, the same gradients.
        "multiscale" (d <= 3) solves on the point pairs that carry mass,
        found through a hierarchy of grids and dropped as eps falls; the mass
        of the pairs left out is bounded after the solve, pairs are added
        while it could move the value by more than ``tol`` times eps, and a
        warning says if it still could (docs/api.md).  "auto" (default) is
        tensorized while three (B, n, m) arrays of the input's dtype (the
        cost and two kernels) fit ``memory_budget``, else multiscale in
        d <= 3 and online above.
    memory_budget : float >= 0, optional
        Bytes "auto" lets the tensorized backend take; default 2^30 (1 GiB:
        n = m = 6,500 in float64, 9,400 in float32), ``math.inf`` for no limit.

    Returns
    -------
    value : (...) ndarray or torch.Tensor
        In the library, dtype and device of the inputs.  It is a transport cost
        (a W_p^p-like quantity), not its p-th root: as eps → 0 it tends to
        ``emd(x, y, a, b, p=p) ** p``.  Torch inputs get exact gradients with
        respect to ``x``, ``y``, ``a`` and ``b`` (implicit differentiation of
        the converged plan).

    Raises
    ------
    ValueError
        Empty inputs, NaN or infinite values, negative weights or zero total
        weight, shape mismatches, ``eps <= 0``, ``p < 1``, out-of-range options,
        numpy and torch mixed, tensors on different devices, or a cost
        ‖x - y‖^p that overflows the dtype (points too far apart for this p:
        rescale them, or use float64).
    TypeError
        Non-numeric inputs or options of the wrong type.

    Warns
    -----
    RuntimeWarning
        If ``tol`` is not reached, because ``max_iter`` ran out or because
        round-off (or an eps too small to converge) stopped progress; the
        message gives the errors reached and the settings to change.  Also
        if eps was raised to 1e-14 of the largest cost.

    Notes
    -----
    The solver works in the log domain through an absorbed kernel, anneals eps
    from the largest cost down to the target, over-relaxes its updates and
    finishes with Newton's method; see ``divergences/_sinkhorn_solver.py``.

    A plan whose marginals are off is the exact entropic plan between its own
    marginals, so the error of its cost is, to first order, the inner product
    of the marginal errors with the cost's gradient in (a, b), which one
    conjugate-gradient solve gives.  The solver tightens its marginal target
    until that estimate is within ``tol``: this, and not the marginal error
    alone, bounds the error of the value.

    **float32.** The kernel and its matrix-vector products are float32, so
    they take half the memory and time; the potentials, scalings and sums are
    float64, and so is every kernel exponent before it is rounded.  Over 60
    hard problems (2 to 200 points; grids, far clusters, uniform; zero
    weights) at eps = 1e-3 and 1e-4 of the largest cost, every float32 value
    was within 1e-4 of the float64 one (relative to max(value, eps)), or
    warned (1 of 120 did); the promise is 1e-3 or a RuntimeWarning
    (``benchmarks/bench_sinkhorn_float32.py``).

    The value with ``debias=False``
    matches ``ot.sinkhorn2(a, b, C, reg=eps)``; with ``debias=True`` it matches
    ``ot.bregman.empirical_sinkhorn_divergence`` (which also clips negative
    values to 0; this function does not, as that would zero the gradient).
    GeomLoss's ``SamplesLoss("sinkhorn", p=2)`` uses the cost ‖x - y‖²/2, a
    ``blur`` with eps = blur^p, and the dual objective rather than the
    transport cost, so its values differ.

    Examples
    --------
    Between single points the only plan moves everything, at cost ‖x - y‖^p:

    >>> float(sinkhorn([[0.0, 0.0]], [[3.0, 4.0]], eps=0.1, debias=False))
    25.0

    Between a measure and itself the debiased divergence is 0:

    >>> float(sinkhorn([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], eps=0.01))
    0.0
    """
    converter, (x, y, a, b) = _validation.convert(x=x, y=y, a=a, b=b, optional=("a", "b"))
    p = _validation.check_exponent(p)
    debias = _validation.check_flag("debias", debias)
    options = _check_options(converter.dtype, eps, tol, max_iter, scaling, overrelaxation)
    eps = options.pop("eps")
    backend = _validation.check_choice("backend", backend, BACKENDS)
    memory_budget = _validation.check_size("memory_budget", memory_budget)
    x, y, a, b, batch = _validation.check_measures(x, y, a, b)
    a = _validation.uniform_if_none(a, x)
    b = _validation.uniform_if_none(b, y)
    if backend == "auto":
        problems, n, m = math.prod(batch), x.shape[-2], y.shape[-2]
        largest = max(n * m, n * n, m * m) if debias else n * m
        fits = 3 * problems * largest * x.element_size() <= memory_budget
        backend = "tensorized" if fits else "multiscale" if x.shape[-1] <= _multiscale.MAX_DIMENSION else "online"
    elif backend == "multiscale" and x.shape[-1] > _multiscale.MAX_DIMENSION:
        raise ValueError(f"backend='multiscale' needs points of at most {_multiscale.MAX_DIMENSION} dimensions; "
                         f"these have {x.shape[-1]}: use backend='online'")
    reports, solved_eps = [], []
    solve = functools.partial(_transport_cost, p=p, eps=eps, backend=backend, options=options,
                              reports=reports, solved_eps=solved_eps)
    matched = _matched_order(x, y, a, b)
    if matched:  # one measure in two orders: y's points in x's order give the self terms' numbers, so exactly 0
        y, b = matched
    value = solve(x, y, a, b, symmetric=matched is not None)
    if debias:
        self_x = solve(x, x, a, a, symmetric=True)
        self_y = solve(y, y, b, b, symmetric=True)
        value = value - 0.5 * (self_x + self_y)
    _warn_if_eps_raised(eps, max(solved_eps))
    _warn_if_not_converged(reports, options, converter.dtype)
    return converter.back(value.reshape(batch))


def _transport_cost(x, y, a, b, *, p, eps, backend, options, reports, solved_eps, symmetric=False):
    """<T_eps, C> over the flattened batch, (B,), by the tensorized, online or multiscale backend.

    The solver's reports are appended to ``reports``, and the eps solved at
    to ``solved_eps``.  ``symmetric``: (x, a) and (y, b) are the same
    measure, which the solver's symmetric updates use.
    """
    if backend != "tensorized":  # the lazy backends take one flat batch axis
        x, y, a, b = _validation.flat_batch(x, y, a, b)
    if backend == "multiscale":
        values = []
        for problem in _multiscale.problems(x, y, a, b, p):
            scale, solved = _solved_scale(problem.largest, eps, x.dtype, p, solved_eps)
            values.append(_multiscale.transport_cost(problem, p, scale, solved, options, reports, symmetric) * scale)
        return torch.cat(values)
    options = {**options, "symmetric": symmetric}
    if backend == "online":
        largest = _online.OnlineCost(x.detach(), y.detach(), p).largest()
        scale, solved = _solved_scale(largest, eps, x.dtype, p, solved_eps)
        value, *_ = OnlineEntropicCost.apply(x, y, a, b, p, scale, solved, options, reports, largest)
        return value * scale
    cost = ground_cost(x, y, p)
    n, m = cost.shape[-2:]
    scale, solved = _solved_scale(float(cost.max().detach()), eps, cost.dtype, p, solved_eps)
    cost = (cost / scale).reshape(-1, n, m)
    value, *_ = EntropicCost.apply(cost, a.reshape(-1, n), b.reshape(-1, m), solved, options, reports)
    return value * scale


def _matched_order(x, y, a, b):
    """(y, b) with their points in the order of x's, when (x, a) and (y, b) are one measure listed in two orders
    (the same order included); else None.

    Then the x-y term is solved as the self terms are, with symmetric updates, and the divergence of a
    measure with itself is exactly 0.  The points are sorted along one fixed direction (ties, which only
    distinct points placed on purpose produce, make the match fail, not go wrong: points are compared
    exactly).  Weights normalised in two orders may differ in their last bits: within `_WEIGHT_ROUND_OFF`
    units of round-off, b takes a's values, and its gradient passes through unchanged.
    """
    if x.shape != y.shape or a.shape != b.shape:
        return None
    if torch.equal(x, y) and torch.equal(a, b):
        return y, b
    direction = torch.randn(x.shape[-1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    direction = direction.to(device=x.device, dtype=x.dtype)
    x_order, y_order = (torch.argsort(points.detach() @ direction, dim=-1, stable=True) for points in (x, y))
    if not torch.equal(_rows(x, x_order), _rows(y, y_order)):
        return None
    order = y_order.gather(-1, torch.argsort(x_order, dim=-1))  # y's point that matches each of x's
    reordered = b.gather(-1, order)
    if not torch.allclose(reordered, a, rtol=_WEIGHT_ROUND_OFF * torch.finfo(a.dtype).eps, atol=0):
        return None
    return _rows(y, order), reordered + (a - reordered).detach()  # a - b is exact this close: the sum is a


_WEIGHT_ROUND_OFF = 64
"""Units of round-off by which the weights of one measure, normalised in two orders, may differ."""


def _rows(points, order):
    """The points (..., n, d) in ``order`` (..., n)."""
    return points.gather(-2, order[..., None].expand(points.shape))


def _solved_scale(largest, eps, dtype, p, solved_eps):
    """The power of two the costs are divided by, and the eps solved at (scaled), appended to ``solved_eps``.

    ``largest`` is the largest cost (or a bound of it): finite inputs give a finite cost or inf, never NaN.
    """
    if not math.isfinite(largest) or largest > torch.finfo(dtype).max:
        name = str(dtype).removeprefix("torch.")
        raise ValueError(
            f"the cost ||x - y||^p overflows {name}: points of `x` and `y` are too far apart for p={p:g} "
            f"in {name} (costs must stay below {torch.finfo(dtype).max:.3g}). Rescale `x` and `y`, "
            + ("or lower `p`." if dtype == torch.float64 else "lower `p`, or use float64.")
        )
    # <T_eps, C> is homogeneous in (C, eps): solved with the larger of the largest cost and eps near 1,
    # then scaled back, so subnormal or huge costs and eps lose no digits.
    scale = _scaling.power_of_two_above(max(largest, eps), dtype)
    solved = _sinkhorn_solver.resolved_eps(largest / scale, eps / scale)
    solved_eps.append(solved * scale)
    return scale, solved


def _warn_if_eps_raised(eps, solved_eps):
    if solved_eps > eps:
        warnings.warn(
            f"sinkhorn: eps={eps:g} is below the resolution of the cost, {_sinkhorn_solver.RESOLUTION:g} of the "
            f"largest cost; solved at eps about {_scaling.magnitude(solved_eps)}, which changes the value by at most "
            f"about eps log(n m).",
            RuntimeWarning,
            stacklevel=3,
        )


def _warn_if_not_converged(reports, options, dtype):
    failed = [report for report in reports if report.status != "converged"]
    if not failed:
        return
    error = max(report.error for report in failed)
    value_error = max(report.value_error for report in failed)
    value_text = ("" if math.isnan(value_error)
                  else f", and the value's estimated relative error about {_scaling.magnitude(value_error)} at the last check")
    if any(report.status == "stalled" for report in failed):
        cause = "stalled"
        advice = "Round-off, or an eps too small to converge, stops progress short of tol: raise `eps` or `tol`"
        advice += ", or use float64." if dtype == torch.float32 else "."
    else:
        cause = f"ran out of max_iter={options['max_iter']} iterations"
        advice = "Raise `max_iter`, or `eps` (a larger eps converges faster)."
    warnings.warn(
        f"sinkhorn did not converge to tol={options['tol']:g}: it {cause} with the marginal error about "
        f"{_scaling.magnitude(error)}{value_text}. {advice}",
        RuntimeWarning,
        stacklevel=3,
    )


def _check_options(dtype, eps, tol, max_iter, scaling, overrelaxation):
    eps = _validation.check_positive("eps", eps)
    if tol is None:
        tol = 1e-6 if dtype == torch.float64 else 1e-4
    tol = _validation.check_positive("tol", tol)
    max_iter = _validation.check_count("max_iter", max_iter)
    scaling = _validation.check_positive("scaling", scaling)
    if scaling >= 1:
        raise ValueError(f"`scaling` should be in (0, 1). Instead, received {scaling!r}.")
    overrelaxation = _validation.check_real("overrelaxation", overrelaxation)
    if not 1 <= overrelaxation < 2:
        raise ValueError(f"`overrelaxation` should be in [1, 2). Instead, received {overrelaxation!r}.")
    return dict(eps=eps, tol=tol, max_iter=max_iter, scaling=scaling, overrelaxation=overrelaxation)
