"""The transport cost <T_eps, C> of the entropic plan, with exact gradients.

The value is not the optimum of the entropic problem (that would be the dual
objective), so its gradient is not just read off the potentials: the plan
itself moves with C, a and b.  Differentiating the marginal constraints gives
one linear system in (lam, mu), the adjoint of the plan's dual potentials:

    diag(a) lam + P mu = r / eps,     P^T lam + diag(b) mu = s / eps,
    r = (P * C) 1,  s = (P * C)^T 1,

and then
    dL/dC_ij = P_ij (lam_i + mu_j + 1 - C_ij / eps),
    dL/da_i  = sum_j Q_ij (C_ij - eps mu_j),   Q = P with rows normalised,
    dL/db_j  = sum_i R_ij (C_ij - eps lam_i),  R = P with columns normalised.
Q and R are formed from the kernel, so they stay defined on points of zero
weight (``_plan_system.cost_adjoint``).
"""

import torch

from divergences import _left_out, _online, _plan_system, _sinkhorn_solver, _sparse
from divergences._dense import DenseCost, DenseKernel


class EntropicCost(torch.autograd.Function):
    """<T_eps, C> for a batch of problems: (B, n, m), (B, n), (B, m) -> (B,).

    The solver's ``Solution`` (less its plan) is appended to ``reports``, so
    that the public function can warn once, from the caller's line.
    """

    @staticmethod
    def forward(cost, a, b, eps, options, reports):
        solution = _sinkhorn_solver.solve(DenseCost(cost), a, b, eps, **options)
        reports.append(solution._replace(plan=None))
        plan = solution.plan
        guess = solution.adjoint_guess if solution.adjoint_guess is not None else torch.zeros_like(plan.u)
        return solution.value.to(cost.dtype), plan.kernel.matrix, plan.u, plan.v, guess

    @staticmethod
    def setup_context(ctx, inputs, output):
        cost, _, _, eps, options, _ = inputs
        _, kernel, u, v, guess = output
        ctx.mark_non_differentiable(kernel, u, v, guess)
        ctx.save_for_backward(cost, kernel, u, v, guess)
        ctx.eps, ctx.symmetric = eps, options.get("symmetric", False)

    @staticmethod
    @torch.no_grad()
    def backward(ctx, grad, *_):
        cost, kernel, u, v, guess = ctx.saved_tensors
        eps, dtype = ctx.eps, cost.dtype
        plan = _plan_system.Plan(DenseKernel(kernel), u, v)
        adjoint = _plan_system.cost_adjoint(plan, DenseCost(cost), eps, _plan_system.precise_tolerance(dtype), start=guess,
                                            symmetric=ctx.symmetric)
        lam, mu = adjoint.lam.to(dtype), adjoint.mu.to(dtype)
        grad_cost = plan.kernel.dense_plan(u, v) * (lam[:, :, None] + mu[:, None, :] + 1 - cost / eps)
        grad_a, grad_b = adjoint.grad_a.to(dtype), adjoint.grad_b.to(dtype)
        return grad[:, None, None] * grad_cost, grad[:, None] * grad_a, grad[:, None] * grad_b, None, None, None


class OnlineEntropicCost(torch.autograd.Function):
    """<T_eps, C> with C = |x - y|^p / scale never stored: (B, n, d), (B, m, d), (B, n), (B, m) -> (B,).

    ``largest``, the largest unscaled cost when the caller has it, spares the solver a pass over every pair.

    The same solve and adjoint as `EntropicCost`, on an ``_online.OnlineCost``;
    the gradient with respect to the points is formed block by block
    (``_online.points_gradient``), so memory stays O((n + m) d) plus a block.
    """

    @staticmethod
    def forward(x, y, a, b, p, scale, eps, options, reports, largest=None):
        cost = _online.OnlineCost(x, y, p, scale, largest=None if largest is None else largest / scale)
        solution = _sinkhorn_solver.solve(cost, a, b, eps, **options)
        reports.append(solution._replace(plan=None))
        plan = solution.plan
        guess = solution.adjoint_guess if solution.adjoint_guess is not None else torch.zeros_like(plan.u)
        return solution.value.to(x.dtype), plan.kernel.f, plan.kernel.g, plan.u, plan.v, guess

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, y, a, b, p, scale, eps, options, *_ = inputs
        _, f, g, u, v, guess = output
        ctx.mark_non_differentiable(f, g, u, v, guess)
        ctx.save_for_backward(x, y, a, b, f, g, u, v, guess)
        ctx.p, ctx.scale, ctx.eps, ctx.symmetric = p, scale, eps, options.get("symmetric", False)

    @staticmethod
    @torch.no_grad()
    def backward(ctx, grad, *_):
        x, y, a, b, f, g, u, v, guess = ctx.saved_tensors
        cost = _online.OnlineCost(x, y, ctx.p, ctx.scale)
        plan = _plan_system.Plan(cost.kernel(f, g, ctx.eps, a, b), u, v)
        adjoint = _plan_system.cost_adjoint(plan, cost, ctx.eps, _plan_system.precise_tolerance(x.dtype), start=guess,
                                            symmetric=ctx.symmetric)
        grad_x, grad_y = _online.points_gradient(plan, cost, adjoint.lam, adjoint.mu, ctx.eps)
        grad_a, grad_b = adjoint.grad_a.to(x.dtype), adjoint.grad_b.to(x.dtype)
        return (grad[:, None, None] * grad_x, grad[:, None, None] * grad_y, grad[:, None] * grad_a,
                grad[:, None] * grad_b, None, None, None, None, None, None)


class SparseEntropicCost(torch.autograd.Function):
    """<T_eps, C> of one problem on a set of point pairs (``_sparse``): (n, d), (m, d), (n,), (m,) -> (1,).

    ``carried`` is a list [(cost, start)] that the forward empties: a ``_sparse.SparseCost`` on the points
    (detached) and its pairs, and start = (f, g, eps_start), potentials (1, n) and (1, m) carried over from a
    coarser problem (``_multiscale``); so the carried cost is freed once the check of the mass left out adds
    pairs (``_left_out.completed_solve``).  The gradient is taken on the pairs of the solution.  Also returns
    the solution's cost and the log of the ratio of the bound on the mass left out to what tol allows.
    """

    @staticmethod
    def forward(x, y, a, b, eps, options, reports, carried):
        solution, excess = _left_out.completed_solve(*carried.pop(), a[None], b[None], eps, options)
        reports.append(solution._replace(plan=None, cost=None))
        plan = solution.plan
        guess = solution.adjoint_guess if solution.adjoint_guess is not None else torch.zeros_like(plan.u)
        return solution.value.to(x.dtype), solution.cost, excess, plan.kernel.f, plan.kernel.g, plan.u, plan.v, guess

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, _, a, b, eps, options, *_ = inputs
        _, cost, _, f, g, u, v, guess = output
        ctx.mark_non_differentiable(f, g, u, v, guess)
        ctx.save_for_backward(f, g, u, v, guess)
        # (the pairs' costs are formed again in the backward: not held through the other terms' solves)
        ctx.cost, ctx.eps, ctx.dtype, ctx.symmetric = cost.without_costs(), eps, x.dtype, options.get("symmetric", False)
        ctx.a, ctx.b = a.detach(), b.detach()

    @staticmethod
    @torch.no_grad()
    def backward(ctx, grad, *_):
        f, g, u, v, guess = ctx.saved_tensors
        cost, eps, dtype = ctx.cost, ctx.eps, ctx.dtype
        plan = _plan_system.Plan(cost.kernel(f, g, eps, ctx.a[None], ctx.b[None]), u, v)
        adjoint = _plan_system.cost_adjoint(plan, cost, eps, _plan_system.precise_tolerance(dtype), start=guess,
                                            symmetric=ctx.symmetric)
        grad_x, grad_y = _sparse.points_gradient(plan, cost, adjoint.lam, adjoint.mu, eps)
        grad_a, grad_b = adjoint.grad_a.to(dtype), adjoint.grad_b.to(dtype)
        return (grad[:, None, None] * grad_x)[0], (grad[:, None, None] * grad_y)[0], (grad[:, None] * grad_a)[0], \
            (grad[:, None] * grad_b)[0], None, None, None, None
