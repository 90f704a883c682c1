"""A stabilised, annealed, over-relaxed Sinkhorn solver with a Newton finish.

Sinkhorn's matrix scaling runs on an *absorbed* kernel (Schmitzer, 2019):
``K = exp((f_i + g_j - C_ij) / eps)`` for dual potentials f, g that take over
the scalings u, v whenever these drift far from 1, so nothing under- or
overflows however small eps is, yet each iteration is two matrix-vector
products instead of two log-sum-exps.  eps is annealed geometrically from the
largest cost down to the target, and the updates are over-relaxed (Thibault
et al., 2021), falling back towards plain Sinkhorn if the error grows.

At small eps Sinkhorn can crawl (its error may decay like 1/k for a long
while).  When its recent rate predicts too many more iterations, Newton's
method on the dual takes over (Brauer et al., 2017): it converges
quadratically, and each step is a conjugate-gradient solve with products by
the plan only.  Those solves can be long too (2e4 steps on a uniform cloud of
2000 points at eps = 3e-5 of the largest cost, where Sinkhorn then needed
300 iterations), so each round of Newton may take only the work Sinkhorn's
rate predicted; if a round does not halve the error within it, Sinkhorn
goes on, and hands back to Newton whenever its rate is slow again.
Kernels that potentials from a coarser eps leave out of range are
re-centred by one log-domain step first.

The solver stops on its value, not only on its marginals: a plan whose
marginals are off is the exact plan between those marginals, and one
conjugate-gradient solve gives the error of its cost to first order
(``_value_error``).  The kernel is in the dtype of the cost; everything else
is float64 (``_log_kernel``), which is what makes float32 problems accurate.
"""

import math
from typing import NamedTuple

import torch

from divergences import _log_kernel, _plan_system
from divergences._log_kernel import WORKING_DTYPE
from divergences._plan_system import Plan

_STAGE_ITERATIONS = 10  # iterations at each intermediate eps of the annealing
_MAX_STAGES = 100  # the annealing ratio is raised if the schedule would be longer
_PLAIN_ITERATIONS = 3  # plain steps at the start of a stage before over-relaxing
_RATE_WINDOW = 20  # iterations over which the convergence rate is measured
_NEWTON_AFTER = 100  # Newton takes over when Sinkhorn would need more iterations than this
_NEWTON_STEPS = 50
_NEWTON_STEP_WORK = 2  # the least work of a Newton step: one conjugate-gradient step and the step itself
_NEWTON_ROUNDS = 200  # Newton gives up after this many rebuilt kernels without halving its best error
_LINE_SEARCH_STEPS = 30
_MIN_DAMPING = 1e-6  # smallest Levenberg-Marquardt shift, relative to the marginal error
_STALL_ITERATIONS = 200  # Sinkhorn stops if its best error has not fallen by 10% in this many iterations
_ESTIMATE_TOLERANCE = 1e-3  # relative residual of the adjoint solve behind the value's error estimate
_ESTIMATE_STEPS = 500  # cap on that solve's conjugate-gradient steps
_LINEAR_REGIME = 1e-3  # marginal errors up to which that first-order estimate is trusted
_SAME_EPS = 1e-9  # relative difference below which two eps are the same (the schedule's round-off)
RESOLUTION = 1e-14  # eps is at least this fraction of the largest cost (the exponents' round-off)


class Solution(NamedTuple):
    """The solved plan, its transport cost and how far it is from converged.

    ``error`` is the largest L1 marginal error over the batch,
    ``value_error`` the largest estimated relative error of the value at
    the last check (NaN if there was none), and ``status`` one of
    "converged", "max_iter" (the budget ran out) or "stalled" (round-off
    stops progress).
    ``adjoint_guess`` is the adjoint lam of the last error estimate (a start
    for the gradient's solve), or None; ``cost`` the cost the plan was solved
    on (the one given, or the last of its truncations).
    """

    plan: Plan
    value: torch.Tensor  # <P, C>, (B,), float64
    error: float
    value_error: float
    iterations: int
    status: str
    adjoint_guess: torch.Tensor | None = None
    cost: _log_kernel.Cost | None = None


def resolved_eps(largest_cost, eps):
    """The eps solved at: ``eps``, raised to RESOLUTION of the largest cost if below it."""
    return max(eps, RESOLUTION * largest_cost)


def eps_schedule(largest_cost, eps, scaling):
    """The intermediate eps of the annealing: geometric from the largest cost, all above ``eps``.

    At most _MAX_STAGES of them: a ratio closer to 1 is raised to fit.  One
    within _SAME_EPS of ``eps`` is ``eps`` itself, met by round-off (eps =
    1e-3 max C and scaling 0.1 gave a last stage at 1.0000000000000002e-3 max C,
    a whole kernel build and 10 iterations for nothing).
    """
    if largest_cost > eps:
        scaling = min(scaling, (eps / largest_cost) ** (1 / _MAX_STAGES))
    current = largest_cost * scaling
    while current > eps * (1 + _SAME_EPS):
        yield current
        current *= scaling


@torch.no_grad()
def solve(cost, a, b, eps, *, tol, max_iter, scaling, overrelaxation, symmetric=False, start=None):
    """Entropic optimal plans for a batch of cost matrices.

    Parameters
    ----------
    cost : (B, n, m) ``_log_kernel.Cost``, float32 or float64, finite
    a, b : (B, n) and (B, m) tensors, >= 0, each summing to one
    eps : float > 0
    tol : float
        Target L1 error of both marginals, and relative error of the value
        (estimated to first order from the marginal errors; relative to eps
        where the value is below eps).
    max_iter : int
        Cap on the work over all stages: Sinkhorn iterations, kernel builds,
        Newton's and the value estimate's conjugate-gradient steps.
    scaling : float in (0, 1)
        Ratio between successive eps of the annealing.
    overrelaxation : float in [1, 2)
        Over-relaxation factor (1 is plain Sinkhorn).
    symmetric : bool
        Whether the problem is a measure against itself (``cost`` symmetric,
        ``a`` = ``b``): then Sinkhorn keeps u = v and averages each update
        with the last in the log domain (`_scale`), and f = g.
    start : (f, g, eps_start), optional
        Potentials (B, n) and (B, m) solved at ``eps_start`` (a coarser
        problem's, carried over): the annealing starts there, with a stage
        at ``eps_start``, instead of at the largest cost from zero.

    Returns
    -------
    Solution
        Potentials, scalings and sums are float64 whatever the dtype of
        ``cost``; the kernel is in the dtype of ``cost``.
    """
    a, b = a.to(WORKING_DTYPE), b.to(WORKING_DTYPE)
    cost, f, g, iterations, spare = _anneal(cost, a, b, eps, tol, max_iter, scaling, overrelaxation, symmetric, start)
    floor = torch.finfo(cost.dtype).eps  # no marginal error below the dtype's round-off is asked for
    target, newton = min(max(tol, floor), _LINEAR_REGIME), True
    newton_best, rounds_since = math.inf, 0  # Newton's best error, and its rounds since it last halved it
    allowance = math.inf  # the work a round of Newton may take: what Sinkhorn's rate predicted when it handed over
    resumable = False  # Newton stopped on its allowance alone: Sinkhorn may hand over again
    damping = 1.0  # Newton's Levenberg-Marquardt factor, carried from round to round
    adjoint = None  # that of the last value check
    value_error = math.nan  # the value's relative error at the last check (none yet)
    stage = _scale(cost, f, g, a, b, eps, target, _remaining(max_iter, iterations), overrelaxation, newton, spare, symmetric)
    iterations += stage.iterations
    while True:
        if stage.status == "slow":
            limit = _log_kernel.scaling_limit(cost.dtype)
            allowance = stage.predicted or allowance
            budget = min(max_iter - iterations, allowance)
            plan, _, used, limited, damping = _newton(stage.plan, a, b, target, budget, limit, damping)
            iterations += used
            f, g = _absorb(stage.f, stage.g, plan, a, b, eps)
            rebuilt = _rebuilt(cost, f, g, a, b, eps, target, plan.kernel)
            iterations += rebuilt.iterations
            # Newton goes on, on the rebuilt kernel, while each round at least halves the error as
            # that kernel sees it (its round-off can undo a gain below it) or moves the potentials as
            # far as a kernel allows (mass moving between clusters), unless that went on for
            # _NEWTON_ROUNDS rounds in vain; else Sinkhorn goes on, for good unless the allowance
            # alone stopped Newton: then Sinkhorn hands over again if its rate is slow.
            newton_best, rounds_since = (rebuilt.error, 0) if rebuilt.error < newton_best / 2 else (newton_best, rounds_since + 1)
            newton = (limited or rebuilt.error < stage.error / 2) and rounds_since < _NEWTON_ROUNDS and iterations < max_iter
            stage = rebuilt
            if iterations >= max_iter and rebuilt.status != "converged":
                stage = rebuilt._replace(status="max_iter")  # (a Sinkhorn stage would build yet another kernel)
            elif not (newton or rebuilt.status == "converged"):
                resumable = budget - used < _NEWTON_STEP_WORK and rounds_since < _NEWTON_ROUNDS
                stage = _scale(cost, f, g, a, b, eps, target, _remaining(max_iter, iterations), overrelaxation, resumable,
                               rebuilt.plan.kernel, symmetric)
                iterations += stage.iterations
            continue
        if stage.status != "converged":
            value = _plan_system.transport_cost(stage.plan, cost)
            return Solution(stage.plan, value, stage.error, value_error, iterations, stage.status, cost=cost)
        value, value_error, used, adjoint = _value_error(stage, cost, a, b, eps, tol, adjoint, symmetric)
        iterations += used
        # Marginals exact to round-off leave nothing to estimate for a tol above round-off: the estimate is then
        # round-off times an adjoint that a degenerate plan makes arbitrarily large (1e16 relative, seen on a grid).
        converged = value_error <= tol or stage.error <= floor <= tol
        if converged or iterations >= max_iter or target <= floor:
            status = "converged" if converged else "max_iter" if iterations >= max_iter else "stalled"
            return Solution(stage.plan, value, stage.error, value_error, iterations, status, adjoint.lam, cost)
        # The value's error is about proportional to the marginals': aim for half of what tol needs.
        target = max(floor, 0.5 * stage.error * tol / value_error)
        if newton:  # from a plan this close, Newton goes on without an allowance
            stage = stage._replace(status="slow")
            allowance = math.inf
        else:
            f, g = _absorb(stage.f, stage.g, stage.plan, a, b, eps)
            stage = _scale(cost, f, g, a, b, eps, target, _remaining(max_iter, iterations), overrelaxation, False,
                           stage.plan.kernel, symmetric)
            iterations += stage.iterations


def _anneal(cost, a, b, eps, tol, max_iter, scaling, overrelaxation, symmetric, start):
    """The intermediate stages: the cost, potentials for ``eps``, the iterations used and a spare kernel.

    After each stage the cost is truncated by its potentials (``cost.truncated``: a
    cost on a set of pairs drops those that carry no mass at that eps; the others
    stay whole).  (The spare is a kernel no plan uses any more, whose memory the
    next build reuses, if the cost reuses kernels.)
    """
    if start is None:
        f, g = torch.zeros_like(a), torch.zeros_like(b)
        schedule = eps_schedule(cost.largest(), eps, scaling)
    else:
        f, g, start_eps = start
        # down to a stage at eps itself, whose potentials truncate the cost for the final solve
        schedule = [start_eps, *eps_schedule(start_eps, eps, scaling), eps] if start_eps > eps * (1 + _SAME_EPS) else []
    iterations, spare = 0, None
    for eps_k in schedule:
        if iterations >= max_iter:
            break
        budget = min(_STAGE_ITERATIONS, _remaining(max_iter, iterations))
        # A loose tol must not cut the stages short: their potentials are the final solve's start.
        stage = _scale(cost, f, g, a, b, eps_k, min(tol, _LINEAR_REGIME), budget, overrelaxation, False, spare, symmetric)
        iterations += stage.iterations
        f, g = _absorb(stage.f, stage.g, stage.plan, a, b, eps_k)
        spare = stage.plan.kernel if cost.reuses_kernels else None
        stage = None  # (a kernel that no build reuses is freed before the truncation)
        cost = cost.truncated(f, g, eps_k, a, b)
    return cost, f, g, iterations, spare


def _remaining(max_iter, iterations):
    """Sinkhorn iterations left once the kernel is built (which counts as one)."""
    return max(0, max_iter - iterations - 1)


def _value_error(stage, cost, a, b, eps, tol, previous, symmetric=False):
    """<P, C> and the largest relative error of it that the marginal errors of the stage's plan P imply, to first order.

    Relative to the value, or to eps where the value is smaller (a value within
    eps of 0, such as that of a measure against itself, is known to eps only).

    P is the exact entropic plan between its own marginals (a', b'), so the
    cost of the plan between (a, b) differs by <dL/da, a - a'> + <dL/db, b - b'>
    up to second order.  The gradients come from one conjugate-gradient solve,
    warm-started from the ``previous`` check's adjoint (a ``CostAdjoint``), or
    at the first check from the plan's potentials over eps, which solve the
    system up to its entropy terms (``_plan_system.cost_adjoint``).  A plan that has only moved closer to its marginals since then is
    first checked against a bound that holds for any direction of its errors,
    from the previous gradients: if that is within ``tol``, no solve is needed.
    Returns (value, relative error, conjugate-gradient steps, adjoint).
    """
    plan = stage.plan
    row_sums, col_sums = plan.kernel.products(plan.v, plan.u)  # K v also gives the row potentials
    rows, cols = plan.u * row_sums, plan.v * col_sums
    if previous is not None:
        value = _plan_system.transport_cost(plan, cost)
        bound = _error_bound(previous.grad_a, rows - a, a) + _error_bound(previous.grad_b, cols - b, b)
        relative = float((bound / value.abs().clamp(min=eps)).max())
        if relative <= tol:
            return value, relative, 0, previous
    start = stage.f / eps + _log_scaling(plan.u, row_sums, a) if previous is None else previous.lam  # F / eps
    adjoint = _plan_system.cost_adjoint(plan, cost, eps, _ESTIMATE_TOLERANCE, max_steps=_ESTIMATE_STEPS, start=start,
                                          symmetric=symmetric)
    estimate = (((rows - a) * adjoint.grad_a).sum(-1) + ((cols - b) * adjoint.grad_b).sum(-1)).abs()
    relative = torch.where(estimate > 0, estimate / adjoint.value.abs().clamp(min=eps), 0.0)
    return adjoint.value, float(torch.nan_to_num(relative, nan=math.inf).max()), adjoint.steps, adjoint


def _error_bound(gradient, error, weights):
    """The largest |<gradient, error>| over errors of this L1 norm and sum, per problem, (B,).

    Errors vanish on points of zero weight (their scaling is 0), so only
    the gradient on the others counts: half its range times the L1 norm,
    plus its mid-range times the error's total.
    """
    positive = weights > 0
    top = torch.where(positive, gradient, -math.inf).amax(-1)
    bottom = torch.where(positive, gradient, math.inf).amin(-1)
    bound = (top - bottom) / 2 * error.abs().sum(-1) + ((top + bottom) / 2).abs() * error.sum(-1).abs()
    return torch.nan_to_num(bound, nan=math.inf)


class _Stage(NamedTuple):
    plan: Plan
    f: torch.Tensor  # the potentials the plan's kernel was built from
    g: torch.Tensor
    error: float
    iterations: int  # Sinkhorn iterations and kernel builds
    status: str  # "converged", "slow" (Newton should take over), "max_iter" or "stalled"
    predicted: float = 0.0  # if "slow": the iterations Sinkhorn's rate predicted to reach tol


def _rebuilt(cost, f, g, a, b, eps, tol, spare):
    """The plan of potentials (f, g) on a kernel built for them (in ``spare``); "slow" (Newton goes on) if above tol."""
    f, g, kernel = _stable_kernel(cost, f, g, a, b, eps, spare)
    plan = Plan(kernel, *_unit_scalings(a, b))
    error = float(_errors(plan, a, b).max())
    return _Stage(plan, f, g, error, 1, "converged" if error <= tol else "slow")


def _scale(cost, f, g, a, b, eps, tol, budget, overrelaxation, newton, spare, symmetric=False):
    """Over-relaxed Sinkhorn at one eps from potentials (f, g), for at most ``budget`` iterations.

    Its kernels are built in ``spare`` (a dead kernel, or None).  A
    ``symmetric`` problem (a measure against itself) keeps f = g and u = v,
    and updates u to sqrt(u a / (K u)): alternating updates of a kernel
    that is nearly the identity swing u between two states (a / u and u)
    for thousands of iterations; their geometric mean is the fixed point
    there (Knight, 2008; GeomLoss's symmetric Sinkhorn), and each iteration
    needs one product, not two.
    """
    limit = _log_kernel.scaling_limit(cost.dtype)
    f, g, kernel = _stable_kernel(cost, f, g, a, b, eps, spare, symmetric)
    builds = 1
    u, v = _unit_scalings(a, b)
    unknown = 0.0 if symmetric else math.inf  # the columns' error before a sweep measures it (rows' = columns' if symmetric)
    omega, best, column_error, history = overrelaxation, math.inf, unknown, []
    stall_best, stall_step = math.inf, 0
    for step in range(budget + 1):
        # One sweep gives K v, the rows' update from it and K^T of the updated u: the factor of this
        # update is decided before the sweep sees the error (halving it below acts from the next one).
        relax = 1.0 if step < _PLAIN_ITERATIONS else omega
        if symmetric:
            kv = kernel.times(v)
            next_u = _relaxed(u, _ratio(a, kv), 0.5)
        else:
            kv, next_u, ktu = kernel.sweep(v, lambda rows, kv_rows: _relaxed(u[:, rows], _ratio(a[:, rows], kv_rows), relax))
        error = max(float((u * kv - a).abs().sum(-1).max()), column_error)
        history.append(error)
        if error < 0.9 * stall_best:
            stall_best, stall_step = error, step
        predicted = _predicted(history, tol)
        status = (
            "converged" if error <= tol
            else "slow" if newton and predicted > _NEWTON_AFTER
            else "max_iter" if step == budget
            else "stalled" if step - stall_step > _STALL_ITERATIONS
            else None
        )
        if status:
            plan = Plan(kernel, u, v)
            return _Stage(plan, f, g, float(_errors(plan, a, b).max()), step + builds, status, predicted)
        if error > 10 * best:
            omega = 1 + (omega - 1) / 2
        best = min(best, error)
        u = next_u
        if symmetric:
            v = u
        else:
            column_error = float((v * ktu - b).abs().sum(-1).max())
            v = _relaxed(v, _ratio(b, ktu), relax)
        if _drifted(u, a, limit) or _drifted(v, b, limit):
            f, g = _absorb(f, g, Plan(kernel, u, v), a, b, eps)
            f, g, kernel = _stable_kernel(cost, f, g, a, b, eps, kernel, symmetric)
            builds += 1
            u, v = _unit_scalings(a, b)
            column_error, history = unknown, []
    raise AssertionError("the loop returns at step == budget")


def _stable_kernel(cost, f, g, a, b, eps, spare, symmetric=False):
    """The kernel of (f, g), after a log-domain Sinkhorn step if it is out of range.

    Potentials carried over from a larger eps, or far from converged, can
    leave a row or column of the kernel empty (all entries at the floor of
    ``_log_kernel.kernel_block``) or overflow it.  A Sinkhorn step by log-sum-exp
    (the c-transforms) fixes that: afterwards every entry is <= 1 and every
    column has one >= b_j / n.  The kernel is built in ``spare`` (or anew if None).
    A ``symmetric`` problem's potentials are averaged first, and after that
    step: f and g then differ by round-off only, or by a constant that Newton's
    steps leave free, which the average removes.
    """
    if symmetric:
        f = g = (f + g) / 2
    kernel = cost.kernel(f, g, eps, a, b, spare)
    empty = 2 * _log_kernel.smallest_entry(cost.dtype)  # a row or column sum at most this much per entry
    rows, cols = kernel.products(torch.ones_like(g), torch.ones_like(f))
    if _in_range(rows, a, empty * g.shape[-1]) and _in_range(cols, b, empty * f.shape[-1]):
        return f, g, kernel
    g = torch.where(torch.isfinite(g), g, 0.0)
    f = cost.c_transform_rows(g, a, b, eps)
    g = cost.c_transform_columns(f, a, b, eps)
    if symmetric:
        f = g = (f + g) / 2
    return f, g, cost.kernel(f, g, eps, a, b, kernel)


def _in_range(sums, weights, empty):
    return bool((torch.isfinite(sums) & ((sums > empty) | (weights == 0))).all())


def _predicted(history, tol):
    """The iterations Sinkhorn needs to reach ``tol`` at its rate over the last _RATE_WINDOW (inf if not falling).

    0 if the rate is not known yet (or the error fell to 0).
    """
    if len(history) <= _RATE_WINDOW or not math.isfinite(history[-_RATE_WINDOW - 1]):
        return 0.0
    rate = (history[-1] / history[-_RATE_WINDOW - 1]) ** (1 / _RATE_WINDOW)
    if rate >= 1:
        return math.inf
    if rate == 0:
        return 0.0
    return max(0.0, math.log(tol / history[-1]) / math.log(rate))


def _newton(plan, a, b, tol, budget, limit, damping):
    """Newton's method on the dual, with an Armijo line search per problem.

    The dual objective (up to constants and the factor eps) is
    D(u, v) = <a, log u> + <b, log v> - sum(P); its gradient in (log u, log v)
    is the marginal residual and its negative Hessian the marginal system, so
    each step solves that system and backtracks until D rises enough.  Near a
    degenerate plan the system is nearly singular, so its diagonal is shifted
    in proportion to the marginal error, which vanishes at convergence.
    Steps that take a scaling out of [exp(-limit), exp(limit)] are cut too:
    beyond, the kernel's floor entries would weigh in the plan, so Newton
    stops there and the solver rebuilds the kernel.  The conjugate-gradient
    solves keep within ``budget`` too (a solve cut short still gives a
    direction of ascent).
    ``damping`` is the shift's starting factor, carried over from the last
    round.  Returns the plan, its error, the work used (conjugate-gradient
    steps count as iterations, since each costs the same two products),
    whether the limit stopped it and the damping reached.
    """
    used, limited = 0, False
    error = _errors(plan, a, b)
    for _ in range(_NEWTON_STEPS):
        if float(error.max()) <= tol or budget - used < _NEWTON_STEP_WORK or limited:
            break
        rows, cols = plan.marginals()
        largest = float(error.max())
        max_steps = min(_plan_system.default_steps(a.shape[-1]), math.floor(budget - used) - 1)
        lam, mu, steps = _plan_system.solve(plan, a - rows, b - cols, min(0.1, largest), damping * largest, max_steps)
        used += steps + 1
        slope = ((a - rows) * lam).sum(-1) + ((b - cols) * mu).sum(-1)  # (B,), > 0
        start = _dual(plan, a, b)
        step = torch.ones_like(error)
        accepted = torch.zeros_like(error, dtype=torch.bool)
        for _ in range(_LINE_SEARCH_STEPS):
            trial = Plan(plan.kernel, plan.u * torch.exp(step[:, None] * lam), plan.v * torch.exp(step[:, None] * mu))
            # Near convergence the rise of D is below the round-off of sum(P) (in float32 kernels),
            # while the marginal error, its gradient, still measures progress.
            rising = _dual(trial, a, b) >= start + 1e-4 * step * slope
            shrinking = _errors(trial, a, b) <= (1 - 1e-4 * step) * error
            in_range = (_log_range(trial.u, a) <= limit) & (_log_range(trial.v, b) <= limit)
            accepted = (rising | shrinking) & in_range & (slope > 0)
            limited = limited or bool((~in_range).any())
            if bool(accepted.all()):
                break
            step = torch.where(accepted, step, step / 2)
        if not bool(accepted.any()):
            break
        # Levenberg-Marquardt: full steps taken lower the shift (long moves of a cluster's
        # potential along a flat direction), cut ones raise it back.
        damping = max(damping / 10, _MIN_DAMPING) if bool((step == 1).all()) else min(damping * 10, 1.0)
        plan = Plan(
            plan.kernel,
            torch.where(accepted[:, None], trial.u, plan.u),
            torch.where(accepted[:, None], trial.v, plan.v),
        )
        error = _errors(plan, a, b)
    return plan, float(error.max()), used, limited, damping


def _dual(plan, a, b):
    """<a, log u> + <b, log v> - sum(P), per problem; -inf where not finite."""
    rows = plan.times(torch.ones_like(plan.v))
    value = torch.xlogy(a, plan.u).sum(-1) + torch.xlogy(b, plan.v).sum(-1) - rows.sum(-1)
    return torch.where(torch.isfinite(value), value, -math.inf)


def _errors(plan, a, b):
    """Per-problem L1 error of both marginals, (B,); NaN counts as infinite."""
    rows, cols = plan.marginals()
    error = torch.maximum((rows - a).abs().sum(-1), (cols - b).abs().sum(-1))
    return torch.nan_to_num(error, nan=math.inf)


def _unit_scalings(a, b):
    """Scalings that keep the kernel as it is, but 0 on points of zero weight.

    The kernel's rows and columns of such points are c-transforms, of sum
    about 1 each: a first update with them at 1 would add their mass.
    """
    return (a > 0).to(a.dtype), (b > 0).to(b.dtype)


def _ratio(weights, marginal):
    """weights / marginal, 0 where the weight is 0 (even if the marginal underflowed)."""
    return torch.where(weights > 0, weights / marginal, 0.0)


def _relaxed(old, new, omega):
    """old^(1 - omega) new^omega, the over-relaxed scaling (omega = 1: plain); 0 where ``new`` is not positive.

    Computed as old (new / old)^omega where new > 0 (what the other entries
    give, inf or NaN, is discarded): few operations, for `sweep` runs it on
    every block (a dozen small ones cost 15% of an online solve).
    """
    if omega == 1.0:
        return new
    return torch.where(new > 0, old * (new / old) ** omega, 0.0)


def _drifted(scaling, weights, limit):
    """Whether a scaling left [exp(-limit), exp(limit)] on the points of positive weight."""
    return bool((_log_range(scaling, weights) > limit).any())


def _log_range(scaling, weights):
    """Largest |log scaling| over the points of positive weight, per problem, (B,)."""
    return torch.log(torch.where(weights > 0, scaling, 1.0)).abs().amax(-1)


def _absorb(f, g, plan, a, b, eps):
    """Fold the scalings of ``plan`` into the potentials (f, g).

    Points of zero weight have a zero scaling; their potential follows the
    c-transform instead (scaling 1 / (K v) or 1 / (K^T u)), so their kernel
    rows stay in range and the gradient with respect to their weight is defined.
    """
    row_sums, col_sums = plan.kernel.products(plan.v, plan.u)
    return f + eps * _log_scaling(plan.u, row_sums, a), g + eps * _log_scaling(plan.v, col_sums, b)


def _log_scaling(scaling, sums, weights):
    positive = weights > 0
    return torch.where(positive, torch.log(torch.where(positive, scaling, 1.0)), -torch.log(sums))
