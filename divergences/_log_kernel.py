"""Gibbs kernels and c-transforms of a cost matrix, with float64 exponents for every input dtype.

The exponent ``(f_i + g_j - C_ij) / eps`` is a difference of numbers as large
as the largest cost, divided by an eps that may be 10^4 times smaller: in
float32 its round-off alone (about 6e-8 of the largest cost, over eps) would
perturb the kernel by 6e-4 at eps = 1e-4 of the largest cost, which no plan
built on that kernel can meet its marginals through.  So the potentials are
float64 and every exponent is formed in float64, by blocks of rows (a
float64 temporary of at most _BLOCK entries), and only then rounded to the
dtype of the cost: the kernel of a float32 problem is float32, accurate to
its last bit.  Every pass over a block (exponent, clamp, exp; the weighted
products of ``_plan_system``) runs while the block is in cache, which makes
a kernel build about twice as fast as whole-matrix passes in either dtype.
"""

import functools
import math

import torch

WORKING_DTYPE = torch.float64  # potentials, scalings, weights and every reduction
_BLOCK = 1 << 18  # entries of a block of rows (2 MiB in float64: it stays in cache between passes)
_MIN_ROWS, _LARGEST_BLOCK = 16, 1 << 22  # long rows: up to 16 of them a block, within 32 MiB in float64
_CUDA_BLOCK = 1 << 24  # on a GPU, where each pass over a block is a kernel launch (128 MiB in float64)


def row_slices(matrix):
    """Slices of the rows of a (B, n, m) ``matrix`` (a tensor, or anything with its shape and device), in blocks.

    A block holds at most _BLOCK entries on a CPU, _CUDA_BLOCK on a GPU.
    Where rows are long (B m > _BLOCK / 16), a block holds up to _MIN_ROWS of
    them, within _LARGEST_BLOCK entries (at least one row): a matrix product
    of few rows (an online block's exponents) runs 2-3 times slower per entry.
    """
    batch, n, m = matrix.shape
    entries_per_row = max(1, batch * m)
    if matrix.device.type == "cuda":
        step = max(1, _CUDA_BLOCK // entries_per_row)
    else:
        step = max(1, _BLOCK // entries_per_row, min(_MIN_ROWS, _LARGEST_BLOCK // entries_per_row))
    return [slice(start, start + step) for start in range(0, n, step)]


def blocks(matrix):
    """The blocks ``(rows, columns)`` that products over a (B, n, m) ``matrix`` run on, in order of rows.

    The row slices partition the rows; ``columns`` is None (all of them) or an
    index tensor of the columns a block keeps (a multiscale cost, whose other
    entries are truncated).  A tensor or an online cost has `row_slices`.
    """
    return getattr(matrix, "blocks", None) or [(rows, None) for rows in row_slices(matrix)]


def columns_of(values, columns):
    """``values[:, columns]`` of a (B, m, ...) tensor, or ``values`` itself for all columns (None)."""
    return values if columns is None else values[:, columns]


def block(matrix, rows, columns=None):
    """``matrix`` on a block, (B, rows, columns): a tensor's entries, or those an online cost computes."""
    if not isinstance(matrix, torch.Tensor):
        return matrix.block(rows, columns)
    return matrix[:, rows] if columns is None else matrix[:, rows][:, :, columns]


def exponents(cost, f, g, eps):
    """The function ``(rows, columns=None, out=None) -> block`` that gives the `exponent` of ``cost`` on a block.

    An ``_online.OnlineCost`` computes its blocks from the points, the fastest way it has.
    """
    if not isinstance(cost, torch.Tensor):
        return cost.exponents(f, g, eps)
    return functools.partial(exponent, cost, f, g, eps)


def exponent(cost, f, g, eps, rows, columns=None, out=None):
    """(f_i + g_j - C_ij) / eps on a block, in float64, (B, rows, columns); f may be None (0).

    A float64 cost's block is written into ``out`` if given.
    """
    block_cost = block(cost, rows, columns)
    g = columns_of(g, columns)
    if block_cost.dtype == WORKING_DTYPE:
        exponents_block = torch.sub(g[:, None, :], block_cost, out=out)
    else:  # a mixed-dtype sub would be 3 times slower
        exponents_block = block_cost.to(WORKING_DTYPE).neg_().add_(g[:, None, :])
    if f is not None:
        exponents_block.add_(f[:, rows, None])
    return exponents_block.mul_(1 / eps)


def smallest_entry(dtype):
    """The floor of kernel entries: tiny^0.75 (1e-29 in float32, 1e-231 in float64).

    Exponents are clamped there, which keeps ``exp`` off its slow path for
    subnormal results (150 times slower in float32).  Entries are never
    flushed to 0: a kernel whose entries between two clusters sit at the floor
    still connects them, so Sinkhorn's scalings grow until the potentials
    absorb them and the entries come into range.  Scalings stay within
    exp(±L), L = -log(tiny) / 5 (``scaling_limit``), so a floor entry times
    a scaling is still a normal number (products of subnormals are slow
    too), and a floor entry weighs at most tiny^0.35 in the plan: 5e-14 in
    float32, 1e-108 in float64.
    """
    return torch.finfo(dtype).tiny ** 0.75


def scaling_limit(dtype):
    """L such that scalings in [exp(-L), exp(L)] keep products with the kernel normal: -log(tiny) / 5."""
    return -0.2 * math.log(torch.finfo(dtype).tiny)


def kernel(cost, f, g, eps, a, b, out=None):
    """exp((f_i + g_j - C_ij) / eps), (B, n, m) in the dtype of ``cost``, at least ``smallest_entry``.

    Entries between a point of zero weight in ``a`` and one in ``b`` are at
    the floor: no plan uses them, and their potentials, each a c-transform
    against the other side's points of positive weight, could overflow them.
    ``out``, a dead kernel of the same shape, is reused (a fresh (B, n, m)
    tensor costs page faults that take longer than the kernel's arithmetic).
    """
    if not isinstance(cost, torch.Tensor):  # an `_online.OnlineCost`: its kernel is computed when used
        return cost.kernel(f, g, eps, a, b)
    idle, block_exponents = idle_pairs(a, b), exponents(cost, f, g, eps)
    out = torch.empty_like(cost) if out is None else out
    for rows in row_slices(cost):
        kernel_block(block_exponents, cost.dtype, idle, rows, out=out[:, rows])
    return out


def idle_pairs(a, b):
    """(a == 0, b == 0) if some entries pair a point of zero weight in ``a`` with one in ``b``, else None."""
    idle_rows, idle_cols = a == 0, b == 0
    return (idle_rows, idle_cols) if bool(idle_rows.any()) and bool(idle_cols.any()) else None


def kernel_block(block_exponents, dtype, idle, rows, columns=None, out=None, floored=True, work=None):
    """The kernel on a block, (B, rows, columns) in ``dtype`` (written into ``out`` if given).

    ``block_exponents`` is a function from `exponents`; ``floored=False`` skips
    the floor's pass, for exponents known to lie above it (see `above_floor`).
    ``work``, a float64 tensor of the block's shape, takes the exponents of a
    kernel of another dtype (default: a new one).
    """
    exponents_block = block_exponents(rows, columns, out=out if dtype == WORKING_DTYPE else work)
    if idle is not None:
        idle_rows, idle_cols = idle
        exponents_block.masked_fill_(idle_rows[:, rows, None] & columns_of(idle_cols, columns)[:, None, :], -math.inf)
    if out is None:
        out = exponents_block.to(dtype)  # the block itself for a float64 cost
    elif exponents_block is not out:
        out.copy_(exponents_block)
    return out.clamp_(min=math.log(smallest_entry(dtype))).exp_() if floored else out.exp_()


def above_floor(f, g, largest_cost, eps, dtype):
    """Whether every exponent (f_i + g_j - C_ij) / eps, C_ij <= ``largest_cost``, is above the floor's log (by 1).

    A bound from the smallest potentials: then no kernel entry needs the floor's clamp.
    """
    smallest = float((f.amin(-1) + g.amin(-1)).min()) if f.numel() and g.numel() else 0.0
    return (smallest - largest_cost) / eps > math.log(smallest_entry(dtype)) + 1


def c_transform_rows(cost, g, a, b, eps):
    """f_i = eps log(a_i) - eps log sum_{j: b_j > 0} exp((g_j - C_ij) / eps), (B, n); log(a_i) taken as 0 where a_i = 0."""
    block_exponents = exponents(cost, None, torch.where(b > 0, g, -math.inf), eps)
    log_sums = torch.cat([_logsumexp(block_exponents(rows, columns), -1) for rows, columns in blocks(cost)], -1)
    return eps * (_log_weights(a) - log_sums)


def c_transform_columns(cost, f, a, b, eps):
    """g_j = eps log(b_j) - eps log sum_{i: a_i > 0} exp((f_i - C_ij) / eps), (B, m); log(b_j) taken as 0 where b_j = 0."""
    block_exponents = exponents(cost, torch.where(a > 0, f, -math.inf), torch.zeros_like(b), eps)
    log_sums = torch.full_like(b, -math.inf)
    for rows, columns in blocks(cost):
        if columns is None:
            log_sums = torch.logaddexp(log_sums, _logsumexp(block_exponents(rows), 1))
        else:
            log_sums[:, columns] = torch.logaddexp(log_sums[:, columns], _logsumexp(block_exponents(rows, columns), 1))
    return eps * (_log_weights(b) - log_sums)


def _logsumexp(block, dim):
    """log sum exp over ``dim`` of a float64 block, overwriting it; terms are taken at least at the floor.

    (``torch.logsumexp`` takes exp's slow path on terms far below the largest.)
    """
    largest = block.amax(dim, keepdim=True)
    largest = torch.where(torch.isfinite(largest), largest, 0.0)
    block.sub_(largest).clamp_(min=math.log(smallest_entry(block.dtype))).exp_()
    return block.sum(dim).log_().add_(largest.squeeze(dim))


def _log_weights(weights):
    return torch.log(torch.where(weights > 0, weights, 1.0))
