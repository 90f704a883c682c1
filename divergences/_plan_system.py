"""Products by an entropic plan and the linear system of its marginals.

A plan is kept in factored form ``P = diag(u) K diag(v)``; every product by P
or P^T is one batched matrix-vector product with the kernel K.  The system

    diag(P 1) lam + P mu = rhs_rows,     P^T lam + diag(P^T 1) mu = rhs_cols

is the Hessian of the entropic dual at P: Newton's method solves it for its
step, and the gradient of <P, C> solves it for its adjoint.
"""

import math
from typing import NamedTuple

import torch


class Plan(NamedTuple):
    """``P = u[..., :, None] * kernel * v[..., None, :]``, batched over the first axis."""

    kernel: torch.Tensor  # (B, n, m)
    u: torch.Tensor  # (B, n)
    v: torch.Tensor  # (B, m)

    def times(self, w):
        """P w, (B, n)."""
        return self.u * kernel_times(self.kernel, self.v * w)

    def transposed_times(self, w):
        """P^T w, (B, m)."""
        return self.v * kernel_transposed_times(self.kernel, self.u * w)

    def marginals(self):
        """Row and column sums of P."""
        return self.times(torch.ones_like(self.v)), self.transposed_times(torch.ones_like(self.u))

    def dense(self):
        """P as a (B, n, m) tensor."""
        return self.u[:, :, None] * self.kernel * self.v[:, None, :]


def kernel_times(kernel, v):
    """K v, (B, n)."""
    return torch.bmm(kernel, v.unsqueeze(-1)).squeeze(-1)


def kernel_transposed_times(kernel, u):
    """K^T u, (B, m)."""
    return torch.bmm(u.unsqueeze(1), kernel).squeeze(1)


def solve(plan, rhs_rows, rhs_cols, relative_tolerance, shift=0.0):
    """Solve the marginal system of ``plan``; returns (lam, mu, conjugate-gradient steps).

    mu is eliminated: the Schur complement diag(P 1) - P diag(1 / P^T 1) P^T
    is positive semi-definite with the constant vector in its kernel, and the
    right-hand side is orthogonal to it whenever sum(rhs_rows) = sum(rhs_cols),
    so preconditioned conjugate gradients converge.  A ``shift`` > 0 scales
    both diagonal blocks by (1 + shift), which makes the system definite and
    bounds its condition number by about 1 / shift (Levenberg–Marquardt).
    """
    row_mass, col_mass = plan.marginals()
    row_mass, col_mass = (1 + shift) * row_mass, (1 + shift) * col_mass
    inv_col = torch.where(col_mass > 0, 1 / col_mass, 0.0)
    inv_row = torch.where(row_mass > 0, 1 / row_mass, 0.0)

    def schur(lam):
        return row_mass * lam - plan.times(inv_col * plan.transposed_times(lam))

    rhs = rhs_rows - plan.times(inv_col * rhs_cols)
    lam, steps = _conjugate_gradient(schur, rhs, inv_row, relative_tolerance)
    mu = inv_col * (rhs_cols - plan.transposed_times(lam))
    return lam, mu, steps


def _conjugate_gradient(operator, rhs, inv_diagonal, relative_tolerance):
    """Batched Jacobi-preconditioned conjugate gradients for a PSD operator.

    Each problem of the batch stops updating once its residual is small
    enough, so a solved problem is not disturbed by round-off while the
    others go on.
    """
    round_off = 10 * rhs.shape[-1] * torch.finfo(rhs.dtype).eps  # of sums of n masses
    tolerance = (relative_tolerance * rhs.abs().sum(-1, keepdim=True)).clamp(min=round_off)
    max_steps = 10 * rhs.shape[-1] + 100
    x = torch.zeros_like(rhs)
    residual = rhs.clone()
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
