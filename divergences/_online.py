"""Costs and kernels computed from the points, block by block: the "online" backend of `sinkhorn`.

Nothing of size n x m is stored.  ``cost[:, rows]`` and ``kernel[:, rows]``
compute the block of rows they are asked for from the coordinates
(``_cost.ground_cost``, then ``_log_kernel.kernel_block``), so the solver's
products, c-transforms and (K * C) products (``_log_kernel``,
``_plan_system``) run unchanged, in O((n + m) d) memory plus one block of
rows; each product pays for the costs and exponentials of its blocks again.
"""

from typing import NamedTuple

import torch

from divergences import _log_kernel
from divergences._cost import ground_cost


class OnlineCost:
    """|x_i - y_j|^p / scale for batches of points x (B, n, d) and y (B, m, d), by blocks of rows."""

    def __init__(self, x, y, p, scale=1.0):
        self.x, self.y, self.p, self.scale = x, y, p, scale
        self.shape = (x.shape[0], x.shape[1], y.shape[1])
        self.dtype, self.device = x.dtype, x.device

    def __getitem__(self, index):
        """The block ``[:, rows]``, (B, rows, m)."""
        everything, rows = index
        if everything != slice(None):
            raise IndexError("an online cost is read by blocks of rows: [:, rows]")
        block = ground_cost(self.x[:, rows], self.y, self.p)
        return block if self.scale == 1 else block / self.scale

    def max(self):
        """The largest cost, a 0-d tensor."""
        return torch.stack([self[:, rows].max() for rows in _log_kernel.row_slices(self.shape)]).max()

    def kernel(self, f, g, eps, a, b):
        """The Gibbs kernel of potentials (f, g), see ``_log_kernel.kernel``."""
        return OnlineKernel(self, f, g, eps, _log_kernel.idle_pairs(a, b))


class OnlineKernel(NamedTuple):
    """exp((f_i + g_j - C_ij) / eps) of an `OnlineCost`, computed by blocks of rows: ``kernel[:, rows]``."""

    cost: OnlineCost
    f: torch.Tensor  # (B, n), float64
    g: torch.Tensor  # (B, m)
    eps: float
    idle: tuple | None  # see ``_log_kernel.idle_pairs``

    @property
    def shape(self):
        return self.cost.shape

    @property
    def dtype(self):
        return self.cost.dtype

    def __getitem__(self, index):
        _, rows = index
        return _log_kernel.kernel_block(self.cost, self.f, self.g, self.eps, self.idle, rows)


def points_gradient(plan, cost, lam, mu, eps):
    """d<P, C>/dx and d<P, C>/dy, (B, n, d) and (B, m, d), from the adjoint (lam, mu), by blocks of rows.

    dL/dC_ij = P_ij (lam_i + mu_j + 1 - C_ij / eps) (``_entropic_cost``); it is
    formed block by block and carried to the points by autograd through that
    block's costs.
    """
    x, y = cost.x.detach(), cost.y.detach().requires_grad_(True)
    grad_x, grad_y = torch.zeros_like(x), torch.zeros_like(y)
    lam, mu = lam.to(cost.dtype), mu.to(cost.dtype)
    u, v = plan.u.to(cost.dtype), plan.v.to(cost.dtype)
    for rows in _log_kernel.row_slices(cost.shape):
        block_plan = u[:, rows, None] * plan.kernel[:, rows] * v[:, None, :]  # (B, rows, m)
        x_rows = x[:, rows].requires_grad_(True)
        with torch.enable_grad():
            block_cost = OnlineCost(x_rows, y, cost.p, cost.scale)[:, :]
            grad_cost = block_plan * (lam[:, rows, None] + mu[:, None, :] + 1 - block_cost.detach() / eps)
            grad_rows, grad_columns = torch.autograd.grad((grad_cost * block_cost).sum(), (x_rows, y))
        grad_x[:, rows] = grad_rows
        grad_y += grad_columns
    return grad_x, grad_y
