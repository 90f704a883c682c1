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
the plan only.  Kernels that potentials from a coarser eps leave out of range
are re-centred by one log-domain step first.
"""

import math
from typing import NamedTuple

import torch

from divergences import _plan_system
from divergences._plan_system import Plan, kernel_times, kernel_transposed_times

_STAGE_ITERATIONS = 10  # iterations at each intermediate eps of the annealing
_PLAIN_ITERATIONS = 3  # plain steps at the start of a stage before over-relaxing
_RATE_WINDOW = 20  # iterations over which the convergence rate is measured
_NEWTON_AFTER = 100  # Newton takes over when Sinkhorn would need more iterations than this
_NEWTON_STEPS = 50
_LINE_SEARCH_STEPS = 30
_UNDERFLOW_FRACTION = 0.8  # kernel entries below tiny^0.8 are flushed to 0


class Solution(NamedTuple):
    """The solved plan, its largest marginal error (L1, over the batch) and the work done."""

    plan: Plan
    error: float
    iterations: int


def eps_schedule(largest_cost, eps, scaling):
    """Geometric annealing from the largest cost down to ``eps`` (inclusive)."""
    schedule = []
    current = largest_cost
    while current * scaling > eps:
        current *= scaling
        schedule.append(current)
    return schedule + [eps]


@torch.no_grad()
def solve(cost, a, b, eps, *, tol, max_iter, scaling, overrelaxation):
    """Entropic optimal plans for a batch of cost matrices.

    Parameters
    ----------
    cost : (B, n, m) tensor
    a, b : (B, n) and (B, m) tensors, >= 0, each summing to one
    eps : float > 0
    tol : float
        Target L1 error of both marginals.
    max_iter : int
        Cap on the work, in matrix-vector product pairs, over all stages.
    scaling : float in (0, 1)
        Ratio between successive eps of the annealing.
    overrelaxation : float in [1, 2)
        Over-relaxation factor (1 is plain Sinkhorn).

    Returns
    -------
    Solution
    """
    f = cost.new_zeros(cost.shape[:2])
    g = cost.new_zeros(cost.shape[0], cost.shape[2])
    iterations = 0
    for eps_k in eps_schedule(float(cost.max()), eps, scaling):
        if eps_k > eps:
            budget = min(_STAGE_ITERATIONS, max_iter - iterations)
            plan, (f, g), _, used, _ = _scale(cost, f, g, a, b, eps_k, tol, budget, overrelaxation, newton=False)
            iterations += used
            f, g = _absorb(f, g, plan, a, b, eps_k)
    newton = True
    while True:
        plan, (f, g), error, used, slow = _scale(cost, f, g, a, b, eps, tol, max_iter - iterations, overrelaxation, newton)
        iterations += used
        if not slow:
            return Solution(plan, error, iterations)
        plan, newton_error, used = _newton(plan, a, b, tol, max_iter - iterations)
        iterations += used
        if newton_error <= tol or iterations >= max_iter:
            return Solution(plan, newton_error, iterations)
        # Newton stalled short of tol: Sinkhorn goes on from where it got, and
        # may hand over again only if Newton at least halved the error.
        newton = newton_error < error / 2
        f, g = _absorb(f, g, plan, a, b, eps)


def _scale(cost, f, g, a, b, eps, tol, budget, overrelaxation, newton):
    """Over-relaxed Sinkhorn at one eps from potentials (f, g).

    Returns the plan, the potentials its kernel was built from (f and g may
    have been re-centred), its error, the iterations used and, if ``newton``
    is allowed, whether Sinkhorn is too slow and Newton should take over.
    """
    limit = 0.25 * math.log(torch.finfo(cost.dtype).max)
    f, g, kernel = _stable_kernel(cost, f, g, a, b, eps)
    u, v = torch.ones_like(f), torch.ones_like(g)
    omega, best, column_error, history = overrelaxation, math.inf, math.inf, []
    for step in range(budget + 1):
        kv = kernel_times(kernel, v)  # (B, n)
        error = max(float((u * kv - a).abs().sum(-1).max()), column_error)
        history.append(error)
        slow = newton and _slow(history, tol)
        if error <= tol or step == budget or slow:
            plan = Plan(kernel, u, v)
            return plan, (f, g), float(_errors(plan, a, b).max()), step, slow
        if error > 10 * best:
            omega = 1 + (omega - 1) / 2
        best = min(best, error)
        relax = 1.0 if step < _PLAIN_ITERATIONS else omega
        u = _relaxed(u, _ratio(a, kv), relax)
        ktu = kernel_transposed_times(kernel, u)  # (B, m)
        column_error = float((v * ktu - b).abs().sum(-1).max())
        v = _relaxed(v, _ratio(b, ktu), relax)
        if _drifted(u, a, limit) or _drifted(v, b, limit):
            f, g = _absorb(f, g, Plan(kernel, u, v), a, b, eps)
            f, g, kernel = _stable_kernel(cost, f, g, a, b, eps)
            u, v = torch.ones_like(f), torch.ones_like(g)
            column_error, history = math.inf, []
    raise AssertionError("the loop returns at step == budget")


def _stable_kernel(cost, f, g, a, b, eps):
    """The kernel of (f, g), after a log-domain Sinkhorn step if it is out of range.

    Potentials carried over from a larger eps, or far from converged, can
    leave a row or column of the kernel empty (all entries flushed to 0) or
    overflow it.  A Sinkhorn step by log-sum-exp (the c-transforms) fixes
    that: afterwards every entry is <= 1 and every column has one >= b_j / n.
    """
    kernel = _kernel(cost, f, g, eps)
    rows = kernel_times(kernel, torch.ones_like(g))
    cols = kernel_transposed_times(kernel, torch.ones_like(f))
    if _in_range(rows, a) and _in_range(cols, b):
        return f, g, kernel
    g = torch.where(torch.isfinite(g), g, 0.0)
    f = _c_transform(cost, g, a, eps)
    g = _c_transform(cost.transpose(-1, -2), f, b, eps)
    return f, g, _kernel(cost, f, g, eps)


def _in_range(sums, weights):
    return bool((torch.isfinite(sums) & ((sums > 0) | (weights == 0))).all())


def _c_transform(cost, potential, weights, eps):
    """eps log(w_i) - eps log sum_j exp((potential_j - C_ij) / eps); log(w_i) taken as 0 where w_i = 0."""
    log_weights = torch.log(torch.where(weights > 0, weights, 1.0))
    return eps * (log_weights - torch.logsumexp((potential[:, None, :] - cost) / eps, dim=-1))


def _slow(history, tol):
    """Whether, at its recent rate, Sinkhorn needs over _NEWTON_AFTER more iterations."""
    if len(history) <= _RATE_WINDOW or not math.isfinite(history[-_RATE_WINDOW - 1]):
        return False
    rate = (history[-1] / history[-_RATE_WINDOW - 1]) ** (1 / _RATE_WINDOW)
    if rate >= 1:
        return True
    if rate == 0:
        return False
    return math.log(tol / history[-1]) / math.log(rate) > _NEWTON_AFTER


def _newton(plan, a, b, tol, budget):
    """Newton's method on the dual, with an Armijo line search per problem.

    The dual objective (up to constants and the factor eps) is
    D(u, v) = <a, log u> + <b, log v> - sum(P); its gradient in (log u, log v)
    is the marginal residual and its negative Hessian the marginal system, so
    each step solves that system and backtracks until D rises enough.  Near a
    degenerate plan the system is nearly singular, so its diagonal is shifted
    in proportion to the marginal error, which vanishes at convergence.
    Returns the plan, its error and the work used (conjugate-gradient steps
    count as iterations, since each costs the same two products).
    """
    used = 0
    error = _errors(plan, a, b)
    for _ in range(_NEWTON_STEPS):
        if float(error.max()) <= tol or used >= budget:
            break
        rows, cols = plan.marginals()
        largest = float(error.max())
        lam, mu, steps = _plan_system.solve(plan, a - rows, b - cols, min(0.1, largest), shift=largest)
        used += steps + 1
        slope = ((a - rows) * lam).sum(-1) + ((b - cols) * mu).sum(-1)  # (B,), > 0
        start = _dual(plan, a, b)
        step = torch.ones_like(error)
        accepted = torch.zeros_like(error, dtype=torch.bool)
        for _ in range(_LINE_SEARCH_STEPS):
            trial = Plan(plan.kernel, plan.u * torch.exp(step[:, None] * lam), plan.v * torch.exp(step[:, None] * mu))
            rising = _dual(trial, a, b) >= start + 1e-4 * step * slope
            accepted = rising & (slope > 0)
            if bool(accepted.all()):
                break
            step = torch.where(accepted, step, step / 2)
        if not bool(accepted.any()):
            break
        plan = Plan(
            plan.kernel,
            torch.where(accepted[:, None], trial.u, plan.u),
            torch.where(accepted[:, None], trial.v, plan.v),
        )
        error = _errors(plan, a, b)
    return plan, float(error.max()), used


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


def _kernel(cost, f, g, eps):
    """exp((f_i + g_j - C_ij) / eps), (B, n, m), with entries below exp(-floor) set to 0.

    Those entries are under 1e-30 (float32) or 1e-245 (float64) of the largest
    ones.  Flushing them keeps ``exp`` on its vectorised path: far below 0 it
    falls back to a slow one, 30 times slower in float32.
    """
    floor = _UNDERFLOW_FRACTION * -math.log(torch.finfo(cost.dtype).tiny)
    exponent = torch.sub(g[:, None, :] / eps, cost, alpha=1 / eps).add_(f[:, :, None] / eps)
    kernel = exponent.clamp_(min=-floor).exp_()
    return torch.nn.functional.threshold_(kernel, math.exp(-floor), 0.0)


def _ratio(weights, marginal):
    """weights / marginal, 0 where the weight is 0 (even if the marginal underflowed)."""
    return torch.where(weights > 0, weights / marginal, 0.0)


def _relaxed(old, new, omega):
    """old^(1 - omega) new^omega, the over-relaxed scaling (omega = 1: plain)."""
    if omega == 1.0:
        return new
    positive = new > 0
    safe_old = torch.where(positive, old, 1.0)
    safe_new = torch.where(positive, new, 1.0)
    return torch.where(positive, safe_old * (safe_new / safe_old) ** omega, 0.0)


def _drifted(scaling, weights, limit):
    """Whether a scaling left [exp(-limit), exp(limit)] on the points of positive weight."""
    log_scaling = torch.log(torch.where(weights > 0, scaling, 1.0)).abs()
    return bool((log_scaling > limit).any())


def _absorb(f, g, plan, a, b, eps):
    """Fold the scalings of ``plan`` into the potentials (f, g).

    Points of zero weight have a zero scaling; their potential follows the
    c-transform instead (scaling 1 / (K v) or 1 / (K^T u)), so their kernel
    rows stay in range and the gradient with respect to their weight is defined.
    """
    row_sums = kernel_times(plan.kernel, plan.v)
    col_sums = kernel_transposed_times(plan.kernel, plan.u)
    return f + eps * _log_scaling(plan.u, row_sums, a), g + eps * _log_scaling(plan.v, col_sums, b)


def _log_scaling(scaling, sums, weights):
    positive = weights > 0
    return torch.where(positive, torch.log(torch.where(positive, scaling, 1.0)), -torch.log(sums))
