"""Costs and kernels computed from the points, block by block: the "online" backend of `sinkhorn`.

Nothing of size n x m is stored.  ``cost.block(rows, columns)``,
``cost.exponents(f, g, eps)(rows, columns)`` and ``kernel.block(rows,
columns)`` compute the block they are asked for from the coordinates, so the
solver's products, c-transforms and (K * C) products (``_log_kernel``,
``_plan_system``) run unchanged, in O((n + m) d) memory plus one block of
rows; each product pays for the exponentials of its blocks again.

For p = 2 a block of exponents (f_i + g_j - C_ij) / eps is one batched matrix
product, in float64, of coordinates augmented by two columns (`_Augmented`).
The points are first centred on their mean and divided by a power of two s
near their largest centred coordinate, which bounds the round-off of the
expansion |x|^2 + |y|^2 - 2 <x, y>: every centred point lies within 2 sqrt(max
C) of every other, so its terms are at most 4 max C, and the error of an
exponent is below 64 u max C / eps (u = 1.1e-16; 7e-11 at eps = 1e-4 max C).
Other p take their costs from exact differences (``_cost.ground_cost``): the
p-th root of the expansion near 0 would amplify its round-off.
"""

import torch

from divergences import _log_kernel, _scaling
from divergences._cost import ground_cost

WORKING_DTYPE = _log_kernel.WORKING_DTYPE
_BLOCK = 1 << 19
"""Entries of a block of rows of an `OnlineCost` on a CPU (4 MiB in float64): twice ``_log_kernel``'s, for every
pass over an online block also pays for a dozen small operations (a Sinkhorn sweep's updates of its rows), which
took a fifth of a sweep at n = m = 5000 in blocks of 2^18 entries."""


class OnlineCost(_log_kernel.Cost):
    """|x_i - y_j|^p / scale for batches of points x (B, n, d) and y (B, m, d), by blocks (a `_log_kernel.Cost`).

    ``largest``: the largest cost, when known (else computed on first use).
    """

    block_entries = _BLOCK

    def __init__(self, x, y, p, scale=1.0, largest=None):
        super().__init__((x.shape[0], x.shape[1], y.shape[1]), x.dtype, x.device, None)
        self.x, self.y, self.p, self.scale = x, y, p, scale
        self._augmented = _Augmented.of(x, y, scale) if p == 2 else None
        self._largest = largest

    def block(self, rows, columns=None):
        """The costs of a block, (B, rows, columns), in the dtype of the points: valid until the next call."""
        if self._augmented is not None:
            shape = self.block_shape(rows, columns)
            costs = self._augmented.costs(rows, columns, out=self.scratch.take("costs", shape, WORKING_DTYPE))
            return costs if self.dtype == WORKING_DTYPE else self.scratch.take("cost", shape, self.dtype).copy_(costs)
        block = ground_cost(self.x[:, rows], _log_kernel.columns_of(self.y, columns), self.p)
        return block if self.scale == 1 else block / self.scale

    def largest(self):
        """The largest cost over the blocks, a float (computed once)."""
        if self._largest is None:
            self._largest = max(float(self.block(rows, columns).max()) for rows, columns in self.blocks)
        return self._largest

    def exponents(self, f, g, eps):
        if self._augmented is not None:
            return self._augmented.exponents(f, g, eps)
        return super().exponents(f, g, eps)

    def kernel(self, f, g, eps, a, b, spare=None):
        """The Gibbs kernel of potentials (f, g), computed when used (see ``_log_kernel.kernel_block``)."""
        return OnlineKernel(self, f, g, eps, _log_kernel.idle_pairs(a, b))


class _Augmented:
    """Centred, rescaled float64 coordinates of p = 2 costs, whose blocks are matrix products.

    With x' = (x - centre) / s and C_ij = w |x'_i - y'_j|^2, w = s^2 / scale:
    (f_i + g_j - C_ij) / eps = <[2 w x'_i / eps, (f_i - w |x'_i|^2) / eps, 1],
    [y'_j, 1, (g_j - w |y'_j|^2) / eps]>.
    """

    def __init__(self, x, y, weight):
        self.x, self.y, self.weight = x, y, weight  # (B, n, d), (B, m, d), (B, 1, 1)
        self.x_norms, self.y_norms = (x * x).sum(-1), (y * y).sum(-1)  # (B, n), (B, m)
        # |x'_i - y'_j|^2 = <[-2 x'_i, |x'_i|^2, 1], [y'_j, 1, |y'_j|^2]>
        self._cost_left = torch.cat([-2 * x, self.x_norms[..., None], torch.ones_like(x[..., :1])], -1)
        self._cost_right = torch.cat([y, torch.ones_like(y[..., :1]), self.y_norms[..., None]], -1).transpose(1, 2)

    @classmethod
    def of(cls, x, y, scale):
        """The augmented form of |x - y|^2 / scale, or None if w = s^2 / scale overflows (costs near the float range)."""
        x, y = x.detach().to(WORKING_DTYPE), y.detach().to(WORKING_DTYPE)
        centre = torch.cat([x, y], 1).mean(1, keepdim=True)
        x, y = x - centre, y - centre
        s = torch.maximum(_scaling.scales_of(x, (-2, -1)), _scaling.scales_of(y, (-2, -1)))  # (B, 1, 1)
        weight = s * (s / scale)
        if not bool(torch.isfinite(weight).all()):
            return None
        return cls(x / s, y / s, weight)

    def costs(self, rows, columns=None, out=None):
        """C on a block, float64 (B, rows, columns), written into ``out`` if given."""
        right = self._cost_right if columns is None else self._cost_right[:, :, columns]
        return torch.bmm(self._cost_left[:, rows], right, out=out).clamp_(min=0).mul_(self.weight)

    def exponents(self, f, g, eps):
        """See `OnlineCost.exponents`; f may be None (0)."""
        factor = self.weight / eps  # (B, 1, 1)
        row_terms = -factor[..., 0] * self.x_norms if f is None else f / eps - factor[..., 0] * self.x_norms
        left = torch.cat([self.x * (2 * factor), row_terms[..., None], torch.ones_like(row_terms[..., None])], -1)
        right = torch.cat([self.y, torch.ones_like(g[..., None]), (g / eps - factor[..., 0] * self.y_norms)[..., None]], -1)
        right = right.transpose(1, 2)

        def block_exponents(rows, columns=None, out=None):
            return torch.bmm(left[:, rows], right if columns is None else right[:, :, columns], out=out)
        return block_exponents


class OnlineKernel(_log_kernel.Kernel):
    """exp((f_i + g_j - C_ij) / eps) of an `OnlineCost`, computed on its blocks: ``kernel.block(rows, columns)``."""

    def __init__(self, cost, f, g, eps, idle):
        super().__init__(cost.shape, cost.dtype, cost.device, cost.blocks)
        self.cost, self.f, self.g, self.eps = cost, f, g, eps  # f (B, n), g (B, m): float64
        self.idle = idle  # see ``_log_kernel.idle_pairs``
        self.exponents = _log_kernel.kernel_exponents(cost, f, g, eps)
        # the floor's pass costs a sixth of a block's work: skipped where no entry can reach the floor
        self.floored = idle is not None or not _log_kernel.above_floor(f, g, cost.largest(), eps, cost.dtype)

    def block(self, rows, columns=None):
        """The kernel on a block, (B, rows, columns): valid until the next call, which reuses its memory."""
        shape = self.block_shape(rows, columns)
        out = self.scratch.take("kernel", shape, self.dtype)
        work = None if self.dtype == WORKING_DTYPE else self.scratch.take("exponents", shape, WORKING_DTYPE)
        return _log_kernel.kernel_block(self.exponents, self.dtype, self.idle, rows, columns, out, self.floored, work)

    def weighted_products(self, cost, u, v):
        def weighted(rows, columns):  # the kernel's block is scratch: multiplied in place
            return self.block(rows, columns).mul_(cost.block(rows, columns))
        return self._block_products(weighted, v, u)


def points_gradient(plan, cost, lam, mu, eps):
    """d<P, C>/dx and d<P, C>/dy, (B, n, d) and (B, m, d), from the adjoint (lam, mu), by blocks of rows.

    dL/dC_ij = G_ij = P_ij (lam_i + mu_j + 1 - C_ij / eps) (``_entropic_cost``)
    and dC_ij/dx_i = -dC_ij/dy_j = H_ij / G_ij (x_i - y_j), with H_ij = G_ij p
    |x_i - y_j|^(p - 2) / scale (0 where x_i = y_j: the cost's gradient
    vanishes there).  So dL/dx = diag(H 1) x - H y and dL/dy = diag(H^T 1) y -
    H^T x: two matrix products a block, no autograd and no (rows, columns, d)
    temporary, in float64 on points centred on their mean (which keeps the
    round-off of the products near that of the differences).
    """
    x, y = cost.x.detach().to(WORKING_DTYPE), cost.y.detach().to(WORKING_DTYPE)
    centre = torch.cat([x, y], 1).mean(1, keepdim=True)
    x, y = x - centre, y - centre
    grad_x, grad_y = torch.zeros_like(x), torch.zeros_like(y)
    row_terms = lam + 1
    for rows, columns in cost.blocks:
        shape = cost.block_shape(rows, columns)
        x_rows, y_columns = x[:, rows], _log_kernel.columns_of(y, columns)
        weights = cost.scratch.take("gradient", shape, WORKING_DTYPE).copy_(plan.kernel.block(rows, columns))
        factor = torch.add(row_terms[:, rows, None], _log_kernel.columns_of(mu, columns)[:, None, :],
                           out=cost.scratch.take("factor", shape, WORKING_DTYPE))
        factor.sub_(cost.block(rows, columns), alpha=1 / eps)
        weights.mul_(factor).mul_(plan.u[:, rows, None]).mul_(_log_kernel.columns_of(plan.v, columns)[:, None, :])
        weights.mul_(_cost_slopes(x_rows, y_columns, cost.p, factor) / cost.scale)  # H
        grad_x[:, rows] = weights.sum(-1)[..., None] * x_rows - torch.bmm(weights, y_columns)
        _log_kernel.add_columns(grad_y, weights.sum(1)[..., None] * y_columns - torch.bmm(weights.transpose(1, 2), x_rows),
                                columns)
    return grad_x.to(cost.dtype), grad_y.to(cost.dtype)


def _cost_slopes(x, y, p, out):
    """p |x_i - y_j|^(p - 2), 0 where x_i = y_j, (B, rows, columns) float64 (in ``out``); the number 2 for p = 2."""
    if p == 2:
        return 2.0
    distances = ground_cost(x, y, 1)
    return torch.where(distances > 0, p * distances ** (p - 2), 0.0, out=out)
