"""Products by an entropic plan and the linear system of its marginals.

A plan is kept in factored form ``P = diag(u) K diag(v)``; every product by P
or P^T is a product by the kernel K (a ``_log_kernel.Kernel``), in the
kernel's dtype, while u, v and everything else are float64 vectors.  The system

    diag(P 1) lam + P mu = rhs_rows,     P^T lam + diag(P^T 1) mu = rhs_cols

is the Hessian of the entropic dual at P: Newton's method solves it for its
step, and the gradient of <P, C> solves it for its adjoint.
"""

import math
from typing import NamedTuple

import torch

from divergences import _log_kernel


class Plan(NamedTuple):
    """``P = u[..., :, None] * kernel * v[..., None, :]``, batched over the first axis."""

    kernel: _log_kernel.Kernel  # (B, n, m)
    u: torch.Tensor  # (B, n)
    v: torch.Tensor  # (B, m)

    def times(self, w):
        """P w, (B, n)."""
        return self.u * self.kernel.times(self.v * w)

    def transposed_times(self, w):
        """P^T w, (B, m)."""
        return self.v * self.kernel.transposed_times(self.u * w)

    def squared_times(self, w):
        """(P * P) w, (B, n), P's entries squared in float64 (``_log_kernel.Kernel.squared_times``)."""
        return self.u.square() * self.kernel.squared_times(self.v.square() * w)

    def marginals(self):
        """Row and column sums of P."""
        row_sums, col_sums = self.kernel.products(self.v, self.u)
        return self.u * row_sums, self.v * col_sums


def transport_cost(plan, cost):
    """<P, C>, (B,), in the dtype of the scalings."""
    row_sums, _ = plan.kernel.weighted_products(cost, plan.u, plan.v)
    return (plan.u * row_sums).sum(-1)


class CostAdjoint(NamedTuple):
    """The plan's transport cost and the adjoint of its marginal constraints."""

    value: torch.Tensor  # <P, C>, (B,)
    lam: torch.Tensor  # (B, n)
    mu: torch.Tensor  # (B, m)
    grad_a: torch.Tensor  # d<P, C>/da, (B, n)
    grad_b: torch.Tensor  # d<P, C>/db, (B, m)
    steps: int  # conjugate-gradient steps


def cost_adjoint(plan, cost, eps, relative_tolerance, max_steps=None, start=None, symmetric=False):
    """<P, C> and its gradients with respect to the marginals of the entropic plan P.

    P is the entropic plan between its own marginals; differentiating them
    gives the system above with right-hand sides r / eps and s / eps,
    r = (P * C) 1 and s = (P * C)^T 1, and then
    dL/da_i = sum_j Q_ij (C_ij - eps mu_j) and dL/db_j = sum_i R_ij (C_ij - eps lam_i),
    with Q (R) the plan with rows (columns) normalised, formed from the
    kernel so that they stay defined on points of zero weight.  ``start`` is
    a first guess of lam (that of a nearby plan), or None.

    A ``symmetric`` plan (a measure against itself: P = P^T, u = v) has r = s,
    and the system's solution lam = mu, from (diag(P 1) + P) lam = r / eps
    (`solve_symmetric`): at small eps, where P is nearly diagonal, the Schur
    complement of the general `solve` nearly vanishes (its conjugate gradients
    ran out of 3000 steps on 20,000 points), while this matrix stays near
    2 diag(P 1).
    """
    row_cost_sums, col_cost_sums = plan.kernel.weighted_products(cost, plan.u, plan.v)
    row_cost, col_cost = plan.u * row_cost_sums, plan.v * col_cost_sums  # r, s
    if symmetric:
        lam, steps = solve_symmetric(plan, row_cost / eps, relative_tolerance, max_steps=max_steps, start=start)
        mu = lam
    else:
        lam, mu, steps = solve(plan, row_cost / eps, col_cost / eps, relative_tolerance, max_steps=max_steps, start=start)
    # (lam + c, mu - c) solves the system too, and shifts the gradients by +-eps c: fix c so that lam has
    # mean 0, or round-off in the marginals' totals, times c, would swamp estimates made from them.
    centre = lam.mean(-1, keepdim=True)
    lam, mu = lam - centre, mu + centre
    kv, ktu = plan.kernel.products(plan.v, plan.u)
    grad_a = _divide(row_cost_sums - eps * plan.kernel.times(plan.v * mu), kv)
    grad_b = _divide(col_cost_sums - eps * plan.kernel.transposed_times(plan.u * lam), ktu)
    return CostAdjoint(row_cost.sum(-1), lam, mu, grad_a, grad_b, steps)


def _divide(numerator, denominator):
    return torch.where(denominator > 0, numerator / torch.where(denominator > 0, denominator, 1.0), 0.0)


def solve(plan, rhs_rows, rhs_cols, relative_tolerance, shift=0.0, max_steps=None, start=None):
    """Solve the marginal system of ``plan``; returns (lam, mu, conjugate-gradient steps).

    mu is eliminated: the Schur complement diag(P 1) - P diag(1 / P^T 1) P^T
    is positive semi-definite with the constant vector in its kernel, and the
    right-hand side is orthogonal to it whenever sum(rhs_rows) = sum(rhs_cols),
    so preconditioned conjugate gradients converge.  A ``shift`` > 0 scales
    both diagonal blocks by (1 + shift), which makes the system definite and
    bounds its condition number by about 1 / shift (Levenberg–Marquardt).
    The solve starts from lam = ``start`` (zero if None).

    The preconditioner is the Schur complement's own diagonal, r_i - sum_j
    P_ij^2 / c_j (`schur_diagonal`), not diag(P 1): where eps is small
    against the points' spacing, P is nearly a matching, the two nearly
    cancel, and diag(P 1) left the system so ill-conditioned that Newton's
    solves took 13,000 to 33,000 conjugate-gradient steps (1000 points in
    3-D at eps = 1e-4); with its own diagonal, 2,600 to 6,500.
    """
    row_mass, col_mass = plan.marginals()
    row_mass, col_mass = (1 + shift) * row_mass, (1 + shift) * col_mass
    inv_col = torch.where(col_mass > 0, 1 / col_mass, 0.0)
    inv_diagonal = torch.where(row_mass > 0, 1 / schur_diagonal(plan, row_mass, inv_col, shift), 0.0)

    def schur(lam):
        return row_mass * lam - plan.times(inv_col * plan.transposed_times(lam))

    rhs = rhs_rows - plan.times(inv_col * rhs_cols)
    if shift == 0:  # the system is singular (constants): keep the right-hand side in its range despite round-off
        rhs = rhs - rhs.mean(-1, keepdim=True)
    lam, steps = _conjugate_gradient(schur, rhs, inv_diagonal, relative_tolerance, plan.kernel.dtype, max_steps, start)
    mu = inv_col * (rhs_cols - plan.transposed_times(lam))
    return lam, mu, steps


def schur_diagonal(plan, row_mass, inv_col, shift):
    """The diagonal of diag(row_mass) - P diag(inv_col) P^T, (B, n), kept above its bound's round-off.

    Since P_ij <= c_j, the sum is at most r_i / (1 + shift)^2 of the shifted r_i = ``row_mass``: the
    diagonal is at least r_i (1 - (1 + shift)^-2), and at least the round-off of r_i in the kernel's
    dtype (sqrt of its machine epsilon, relative) where that bound is smaller: a preconditioner taken
    from a difference that round-off alone decides would amplify it.
    """
    floor = max(1 - (1 + shift) ** -2, math.sqrt(torch.finfo(plan.kernel.dtype).eps))
    return torch.maximum(row_mass - plan.squared_times(inv_col), floor * row_mass)


def solve_symmetric(plan, rhs, relative_tolerance, max_steps=None, start=None):
    """Solve (diag(P 1) + P) lam = ``rhs`` for a symmetric plan; returns (lam, conjugate-gradient steps).

    The matrix is positive semi-definite (diagonally dominant, since P >= 0), and definite unless the plan
    splits into two groups with all of its mass between them; the solve starts from ``start`` (zero if None).
    """
    row_mass, _ = plan.marginals()

    def operator(lam):
        return row_mass * lam + plan.times(lam)

    inv_diagonal = torch.where(row_mass > 0, 0.5 / row_mass, 0.0)
    return _conjugate_gradient(operator, rhs, inv_diagonal, relative_tolerance, plan.kernel.dtype, max_steps, start)


def default_steps(size):
    """The conjugate-gradient steps `solve` takes at most by default, for ``size`` unknowns: 10 size + 100."""
    return 10 * size + 100


def _conjugate_gradient(operator, rhs, inv_diagonal, relative_tolerance, product_dtype, max_steps=None, start=None):
    """Batched Jacobi-preconditioned conjugate gradients for a PSD operator.

    Each problem of the batch stops updating once its residual is small
    enough, so a solved problem is not disturbed by round-off while the
    others go on.  At most ``max_steps`` steps (default `default_steps`); the
    operator's products run in ``product_dtype``, which bounds the accuracy.
    The iterate starts at ``start`` (zero if None); the tolerance stays
    relative to ``rhs``.
    """
    round_off = torch.finfo(product_dtype).eps  # of marginals of total mass 1, in that dtype
    tolerance = (relative_tolerance * rhs.abs().sum(-1, keepdim=True)).clamp(min=round_off)
    if max_steps is None:
        max_steps = default_steps(rhs.shape[-1])
    if start is None:
        x, residual = torch.zeros_like(rhs), rhs.clone()
    else:  # a start is kept only where it leaves less residual than zero does (near a degenerate plan
        # the operator all but vanishes, and a start it cannot see would only add round-off to amplify)
        residual = rhs - operator(start)
        better = residual.abs().sum(-1, keepdim=True) < rhs.abs().sum(-1, keepdim=True)
        x, residual = torch.where(better, start, 0.0), torch.where(better, residual, rhs)
    z = inv_diagonal * residual
    direction = z.clone()
    rz = (residual * z).sum(-1, keepdim=True)
    for step in range(max_steps):
        active = residual.abs().sum(-1, keepdim=True) > tolerance
        if not bool(active.any()):
            return x, step
        image = operator(direction)
        curvature = (direction * image).sum(-1, keepdim=True)
        alpha = torch.where(active & (curvature > 0), rz / curvature, 0.0)
        x = x + alpha * direction
        residual = residual - alpha * image
        z = inv_diagonal * residual
        rz_new = (residual * z).sum(-1, keepdim=True)
        direction = z + torch.where(active & (rz > 0), rz_new / rz, 0.0) * direction
        rz = rz_new
    return x, max_steps


def precise_tolerance(dtype):
    """Relative tolerance for solves that feed gradients: 1e-2 sqrt(machine epsilon)."""
    return 1e-2 * math.sqrt(torch.finfo(dtype).eps)
