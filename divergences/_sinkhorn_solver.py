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
method on the dual takes over
(Brauer et al., 2017): it converges quadratically, and each step is a
conjugate-gradient solve with products by the plan only.
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
        final = eps_k == eps
        budget = max_iter - iterations if final else min(_STAGE_ITERATIONS, max_iter - iterations)
        plan, error, used, stalled = _scale(cost, f, g, a, b, eps_k, tol, budget, overrelaxation, final)
        iterations += used
        if final and stalled:
            plan, error, used = _newton(plan, a, b, tol, max_iter - iterations)
            iterations += used
        if final:
            return Solution(plan, error, iterations)
        f, g = _absorb(f, plan.u, plan, a, eps_k, rows=True), _absorb(g, plan.v, plan, b, eps_k, rows=False)
    raise AssertionError("the eps schedule always ends at eps")


def _scale(cost, f, g, a, b, eps, tol, budget, overrelaxation, final):
    """Over-relaxed Sinkhorn at one eps from potentials (f, g).

    Returns the plan, its error, the iterations used and, at the final eps,
    whether it is too slow and Newton should take over.
    """
    limit = 0.25 * math.log(torch.finfo(cost.dtype).max)
    kernel = _kernel(cost, f, g, eps)
    u, v = torch.ones_like(f), torch.ones_like(g)
    omega, best, column_error, history = overrelaxation, math.inf, math.inf, []
    for step in range(budget + 1):
        kv = kernel_times(kernel, v)  # (B, n)
        error = max(float((u * kv - a).abs().sum(-1).max()), column_error)
        history.append(error)
        stalled = final and _slow(history, tol)
        if error <= tol or step == budget or stalled:
            return Plan(kernel, u, v), error, step, stalled
        if error > 10 * best:
            omega = 1 + (omega - 1) / 2
        best = min(best, error)
        relax = 1.0 if step < _PLAIN_ITERATIONS else omega
        u = _relaxed(u, _ratio(a, kv), relax)
        ktu = kernel_transposed_times(kernel, u)  # (B, m)
        column_error = float((v * ktu - b).abs().sum(-1).max())
        v = _relaxed(v, _ratio(b, ktu), relax)
        if _drifted(u, a, limit) or _drifted(v, b, limit):
            drifted = Plan(kernel, u, v)
            f, g = _absorb(f, u, drifted, a, eps, rows=True), _absorb(g, v, drifted, b, eps, rows=False)
            kernel = _kernel(cost, f, g, eps)
            u, v = torch.ones_like(f), torch.ones_like(g)
            column_error, history = math.inf, []
    raise AssertionError("the loop returns at step == budget")


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
    """Newton's method on the dual, with a backtracking line search per problem.

    Returns the plan, its error and the work used (conjugate-gradient steps
    count as iterations, since each costs the same two products).
    """
    used = 0
    error = _errors(plan, a, b)
    for _ in range(_NEWTON_STEPS):
        if float(error.max()) <= tol or used >= budget:
            break
        rows, cols = plan.marginals()
        forcing = min(0.1, math.sqrt(float(error.max())))
        lam, mu, steps = _plan_system.solve(plan, a - rows, b - cols, forcing)
        used += steps + 1
        step_size = torch.ones_like(error)
        for _ in range(30):
            trial = Plan(plan.kernel, plan.u * torch.exp(step_size[:, None] * lam), plan.v * torch.exp(step_size[:, None] * mu))
            trial_error = _errors(trial, a, b)
            improved = trial_error < error
            if bool(improved.all()):
                break
            step_size = torch.where(improved, step_size, step_size / 2)
        if not bool(improved.any()):
            break
        plan = Plan(
            plan.kernel,
            torch.where(improved[:, None], trial.u, plan.u),
            torch.where(improved[:, None], trial.v, plan.v),
        )
        error = torch.where(improved, trial_error, error)
    return plan, float(error.max()), used


def _errors(plan, a, b):
    """Per-problem L1 error of both marginals, (B,); NaN counts as infinite."""
    rows, cols = plan.marginals()
    error = torch.maximum((rows - a).abs().sum(-1), (cols - b).abs().sum(-1))
    return torch.nan_to_num(error, nan=math.inf)


def _kernel(cost, f, g, eps):
    """exp((f_i + g_j - C_ij) / eps), (B, n, m)."""
    return torch.sub(g[:, None, :] / eps, cost, alpha=1 / eps).add_(f[:, :, None] / eps).exp_()


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


def _absorb(potential, scaling, plan, weights, eps, rows):
    """Fold a scaling into its potential.

    Points of zero weight have a zero scaling; their potential follows the
    c-transform instead (scaling 1 / (K v) or 1 / (K^T u)), so their kernel
    rows stay in range and the gradient with respect to their weight is defined.
    """
    marginal = kernel_times(plan.kernel, plan.v) if rows else kernel_transposed_times(plan.kernel, plan.u)
    positive = weights > 0
    log_scaling = torch.where(positive, torch.log(torch.where(positive, scaling, 1.0)), -torch.log(marginal))
    return potential + eps * log_scaling
