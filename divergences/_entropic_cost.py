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
weight.
"""

import warnings

import torch

from divergences import _plan_system, _sinkhorn_solver
from divergences._plan_system import kernel_times, kernel_transposed_times


class EntropicCost(torch.autograd.Function):
    """<T_eps, C> for a batch of problems: (B, n, m), (B, n), (B, m) -> (B,)."""

    @staticmethod
    def forward(cost, a, b, eps, options):
        solution = _sinkhorn_solver.solve(cost, a, b, eps, **options)
        if solution.error > options["tol"]:
            warnings.warn(
                f"sinkhorn did not converge: after max_iter={options['max_iter']} iterations the "
                f"marginal error is {solution.error:.3g} > tol={options['tol']:g}. Raise `max_iter`, "
                "or `eps` (a larger eps converges faster).",
                RuntimeWarning,
                stacklevel=6,
            )
        plan = solution.plan
        flat_plan = plan.dense().reshape(cost.shape[0], 1, -1)
        value = torch.bmm(flat_plan, cost.reshape(cost.shape[0], -1, 1)).reshape(-1)
        return value, plan.kernel, plan.u, plan.v

    @staticmethod
    def setup_context(ctx, inputs, output):
        cost, _, _, eps, _ = inputs
        _, kernel, u, v = output
        ctx.mark_non_differentiable(kernel, u, v)
        ctx.save_for_backward(cost, kernel, u, v)
        ctx.eps = eps

    @staticmethod
    @torch.no_grad()
    def backward(ctx, grad, *_):
        cost, kernel, u, v = ctx.saved_tensors
        eps = ctx.eps
        plan = _plan_system.Plan(kernel, u, v)
        weighted_kernel = kernel * cost  # (B, n, m)
        row_cost = u * kernel_times(weighted_kernel, v)  # r
        col_cost = v * kernel_transposed_times(weighted_kernel, u)  # s
        tolerance = _plan_system.precise_tolerance(cost.dtype)
        lam, mu, _ = _plan_system.solve(plan, row_cost / eps, col_cost / eps, tolerance)
        grad_cost = plan.dense() * (lam[:, :, None] + mu[:, None, :] + 1 - cost / eps)
        kv, ktu = kernel_times(kernel, v), kernel_transposed_times(kernel, u)
        grad_a = (kernel_times(weighted_kernel, v) - eps * kernel_times(kernel, v * mu)) / kv
        grad_b = (kernel_transposed_times(weighted_kernel, u) - eps * kernel_transposed_times(kernel, u * lam)) / ktu
        return grad[:, None, None] * grad_cost, grad[:, None] * grad_a, grad[:, None] * grad_b, None, None
