"""A stored (B, n, m) cost matrix and its stored kernels: the "tensorized" backend of `sinkhorn`.

Kernels are built block by block of rows (``_log_kernel.kernel_block``, float64
exponents rounded to the cost's dtype) into a (B, n, m) tensor, reused from
kernel to kernel; their products are whole-matrix batched products.
"""

import torch

from divergences import _log_kernel
from divergences._log_kernel import WORKING_DTYPE, matrix_times, matrix_transposed_times


class DenseCost(_log_kernel.Cost):
    """The `_log_kernel.Cost` of a (B, n, m) tensor."""

    reuses_kernels = True

    def __init__(self, matrix):
        super().__init__(matrix.shape, matrix.dtype, matrix.device, None)
        self.matrix = matrix

    def block(self, rows, columns=None):
        block = self.matrix[:, rows]
        return block if columns is None else block[:, :, columns]

    def largest(self):
        return float(self.matrix.max())

    def kernel(self, f, g, eps, a, b, spare=None):
        """exp((f_i + g_j - C_ij) / eps), at least ``_log_kernel.smallest_entry`` (see ``_log_kernel.kernel_block``).

        Entries between a point of zero weight in ``a`` and one in ``b`` are
        at the floor: no plan uses them, and their potentials, each a
        c-transform against the other side's points of positive weight, could
        overflow them.  ``spare``, a dead `DenseKernel` of the same shape, is
        reused (a fresh (B, n, m) tensor costs page faults that take longer
        than the kernel's arithmetic).
        """
        idle, block_exponents = _log_kernel.idle_pairs(a, b), _log_kernel.kernel_exponents(self, f, g, eps)
        out = torch.empty_like(self.matrix) if spare is None else spare.matrix
        for rows, _ in self.blocks:
            work = None if self.dtype == WORKING_DTYPE else self.scratch.take("exponents", self.block_shape(rows), WORKING_DTYPE)
            _log_kernel.kernel_block(block_exponents, self.dtype, idle, rows, out=out[:, rows], work=work)
        return DenseKernel(out, self.blocks)


class DenseKernel(_log_kernel.StoredKernel):
    """A stored kernel, (B, n, m): its products are single batched matrix products."""

    def __init__(self, matrix, blocks=None):
        super().__init__(matrix.shape, matrix.dtype, matrix.device, blocks)
        self.matrix = matrix

    block = DenseCost.block

    def times(self, v):
        return matrix_times(self.matrix, v)

    def transposed_times(self, u):
        return matrix_transposed_times(self.matrix, u)

    def dense_plan(self, u, v):
        """diag(u) K diag(v), (B, n, m) in the kernel's dtype."""
        return u.to(self.dtype)[:, :, None] * self.matrix * v.to(self.dtype)[:, None, :]
