"""Gibbs kernels and c-transforms, with float64 exponents for every input dtype, and the protocol of costs and kernels.

The exponent ``(f_i + g_j - C_ij) / eps`` is a difference of numbers as large
as the largest cost, divided by an eps that may be 10^4 times smaller: in
float32 its round-off alone (about 6e-8 of the largest cost, over eps) would
perturb the kernel by 6e-4 at eps = 1e-4 of the largest cost, which no plan
built on that kernel can meet its marginals through.  So the potentials are
float64 and every exponent is formed in float64, by blocks of rows (a
float64 temporary of at most _BLOCK entries), and only then rounded to the
dtype of the cost: the kernel of a float32 problem is float32, accurate to
its last bit.  Every pass over a block (exponent, clamp, exp; the weighted
products) runs while the block is in cache, which makes a kernel build about
twice as fast as whole-matrix passes in either dtype.

The solver sees a cost and its kernels through one small protocol, whatever
stores them: ``_dense`` (a (B, n, m) tensor), ``_online`` (computed from the
points block by block) and ``_sparse`` (a set of point pairs, the "multiscale"
backend's).

- A `Cost` has ``shape`` (B, n, m), ``dtype``, ``device`` and ``blocks``, the
  ``(rows, columns)`` its products run on (see `row_slices`); ``block(rows,
  columns)`` gives its entries there, ``largest()`` the largest entry,
  ``exponents(f, g, eps)`` the function that forms a block of exponents, and
  ``kernel(f, g, eps, a, b, spare)`` its Gibbs kernel (built in ``spare``, a
  dead kernel, where ``reuses_kernels``); the c-transforms are
  the base class's; ``truncated(f, g, eps, a, b)`` drops pairs that carry no
  mass (``_sparse``; the others return themselves).
- A `Kernel` has the same attributes and ``block``; the base class gives its
  products (``times``, ``transposed_times``, ``products``, ``sweep``, ``squared_times``,
  ``weighted_products``) block by block, and a stored kernel may replace them
  by whole-matrix products.
"""

import functools
import math

import torch

WORKING_DTYPE = torch.float64  # potentials, scalings, weights and every reduction
_BLOCK = 1 << 18  # entries of a block of rows (2 MiB in float64: it stays in cache between passes)
_MIN_ROWS, _LARGEST_BLOCK = 16, 1 << 22  # long rows: up to 16 of them a block, within 32 MiB in float64
_CUDA_BLOCK = 1 << 24  # on a GPU, where each pass over a block is a kernel launch (128 MiB in float64)


def row_slices(matrix, entries=_BLOCK):
    """Slices of the rows of a (B, n, m) ``matrix`` (a tensor, or anything with its shape and device), in blocks.

    A block holds at most ``entries`` entries on a CPU, _CUDA_BLOCK on a GPU.
    Where rows are long (B m > entries / 16), a block holds up to _MIN_ROWS of
    them, within _LARGEST_BLOCK entries (at least one row): a matrix product
    of few rows (an online block's exponents) runs 2-3 times slower per entry.
    """
    batch, n, m = matrix.shape
    entries_per_row = max(1, batch * m)
    if matrix.device.type == "cuda":
        step = max(1, _CUDA_BLOCK // entries_per_row)
    else:
        step = max(1, entries // entries_per_row, min(_MIN_ROWS, _LARGEST_BLOCK // entries_per_row))
    return [slice(start, start + step) for start in range(0, n, step)]


def columns_of(values, columns):
    """``values[:, columns]`` of a (B, m, ...) tensor, or ``values`` itself for all columns (None)."""
    return values if columns is None else values[:, columns]


def exponent(cost, f, g, eps, rows, columns=None, out=None):
    """(f_i + g_j - C_ij) / eps on a block of a `Cost`, in float64, (B, rows, columns); f may be None (0).

    Written into ``out``, a float64 tensor of the block's shape, if given.
    """
    block_cost = cost.block(rows, columns)
    g = columns_of(g, columns)
    if block_cost.dtype == WORKING_DTYPE:
        exponents_block = torch.sub(g[:, None, :], block_cost, out=out)
    else:  # a mixed-dtype sub would be 3 times slower
        exponents_block = block_cost.to(WORKING_DTYPE) if out is None else out.copy_(block_cost)
        exponents_block.neg_().add_(g[:, None, :])
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


def idle_pairs(a, b):
    """(a == 0, b == 0) if some entries pair a point of zero weight in ``a`` with one in ``b``, else None."""
    idle_rows, idle_cols = a == 0, b == 0
    return (idle_rows, idle_cols) if bool(idle_rows.any()) and bool(idle_cols.any()) else None


def kernel_exponents(cost, f, g, eps):
    """The function ``(rows, columns=None, out=None) -> block`` of a kernel's exponents in base 2, (f_i + g_j - C_ij) / (eps ln 2).

    Kernels are built by ``exp2`` (`kernel_block`), which runs twice as fast
    as ``exp`` in float64 and 2.5 times in float32 (0.85 against 1.67 ns an
    entry in float64, one thread), both within 0.85 ulp; the rounding of
    eps ln 2 moves an exponent E by at most |E| 2^-53, far below the
    round-off of forming it.
    """
    return cost.exponents(f, g, binary_eps(eps))


def binary_eps(eps):
    """eps ln 2: exponents (f_i + g_j - C_ij) divided by it are in base 2, the kernel's entries their `exponentials`."""
    return eps * math.log(2)


def exponentials(exponents, dtype, floored=True):
    """2^exponents of base-2 exponents, float64, in place: kernel entries, at least ``smallest_entry(dtype)``.

    ``floored=False`` skips the floor's pass, for exponents known to lie above it (see `above_floor`).
    """
    if floored:
        exponents.clamp_(min=math.log2(smallest_entry(dtype)))
    return exponents.exp2_()


def kernel_block(block_exponents, dtype, idle, rows, columns=None, out=None, floored=True, work=None):
    """The kernel on a block, (B, rows, columns) in ``dtype`` (written into ``out`` if given).

    ``block_exponents`` is a function from `kernel_exponents` (base 2); ``floored`` is `exponentials`'.
    ``work``, a float64 tensor of the block's shape, takes the exponents of a
    kernel of another dtype (default: a new one).  Entries are exponentials
    in float64, rounded once to ``dtype``: a float32 kernel is correct to its
    last bit (a float32 exponent would be off by |E| 2^-24, 80 ulps of its
    entry at E = 80), at the cost of a float32 ``exp``.
    """
    exponents_block = block_exponents(rows, columns, out=out if dtype == WORKING_DTYPE else work)
    if idle is not None:
        idle_rows, idle_cols = idle
        exponents_block.masked_fill_(idle_rows[:, rows, None] & columns_of(idle_cols, columns)[:, None, :], -math.inf)
    entries = exponentials(exponents_block, dtype, floored)
    if out is None:
        return entries.to(dtype)  # the block itself for a float64 cost
    return out if entries is out else out.copy_(entries)


def above_floor(f, g, largest_cost, eps, dtype):
    """Whether every exponent (f_i + g_j - C_ij) / eps, C_ij <= ``largest_cost``, is above the floor's log (by 1).

    A bound from the smallest potentials: then no kernel entry needs the floor's clamp.
    """
    smallest = float((f.amin(-1) + g.amin(-1)).min()) if f.numel() and g.numel() else 0.0
    return (smallest - largest_cost) / eps > math.log(smallest_entry(dtype)) + 1


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


class Scratch:
    """Flat tensors that every block of a product is computed in, one per purpose and dtype, grown when needed.

    A new block of megabytes at every call cost page faults (a product by an
    online kernel took 30 to 70 ms at n = m = 5000, 28 ms with the memory
    reused), and blocks freed between small tensors that live on can fragment
    the heap under glibc's default allocator; reused, the memory of an online
    solve stays flat in n m (``tests/test_sinkhorn_online.py``).
    """

    def __init__(self, device):
        self.device, self._storage = device, {}

    def take(self, purpose, shape, dtype):
        """A tensor of ``shape`` and ``dtype`` for ``purpose``, valid until the next `take` for the same purpose."""
        size = math.prod(shape)
        storage = self._storage.get((purpose, dtype))
        if storage is None or storage.numel() < size:
            storage = self._storage[purpose, dtype] = torch.empty(size, dtype=dtype, device=self.device)
        return storage[:size].view(shape)


class _Blocked:
    """What costs and kernels share: their shape, dtype, device, blocks and scratch memory."""

    block_entries = _BLOCK
    """Entries of a block of rows on a CPU where no blocks are given (`row_slices`)."""

    def __init__(self, shape, dtype, device, blocks):
        self.shape, self.dtype, self.device = shape, dtype, device
        self.blocks = blocks or [(rows, None) for rows in row_slices(self, self.block_entries)]
        self.scratch = Scratch(device)

    def block_shape(self, rows, columns=None):
        """The shape (B, rows, columns) of a block."""
        return (self.shape[0], len(range(self.shape[1])[rows]), self.shape[2] if columns is None else len(columns))

    def block(self, rows, columns=None):
        """The entries on a block, (B, rows, columns)."""
        raise NotImplementedError


class Cost(_Blocked):
    """A (B, n, m) cost matrix, given by blocks: the protocol of the module's docstring.

    ``blocks`` (None: blocks of rows of all columns) are ``(rows, columns)``
    pairs: the row slices partition the rows, and ``columns`` is None (all)
    or an index tensor of the columns a block keeps (a truncated cost, whose
    other entries are left out of every product).
    """

    reuses_kernels = False
    """Whether ``kernel`` builds in a ``spare`` kernel (the solver keeps a dead one for it only then)."""

    def largest(self):
        """The largest entry, a float."""
        raise NotImplementedError

    def exponents(self, f, g, eps):
        """The function ``(rows, columns=None, out=None) -> block`` of (f_i + g_j - C_ij) / eps, float64 (f may be None)."""
        return functools.partial(exponent, self, f, g, eps)

    def kernel(self, f, g, eps, a, b, spare=None):
        """The Gibbs kernel of potentials (f, g) (see `kernel_block`), built in ``spare``, a dead kernel, if given."""
        raise NotImplementedError

    def truncated(self, f, g, eps, a, b):
        """The cost without the pairs that potentials (f, g) at eps show to carry no mass: itself, for a whole cost."""
        return self

    def c_transform_rows(self, g, a, b, eps):
        """f_i = eps log(a_i) - eps log sum_{j: b_j > 0} exp((g_j - C_ij) / eps), (B, n); log(a_i) taken as 0 where a_i = 0."""
        block_exponents = self.exponents(None, torch.where(b > 0, g, -math.inf), eps)
        log_sums = torch.empty_like(a)
        for rows, columns in self.blocks:
            work = self.scratch.take("exponents", self.block_shape(rows, columns), WORKING_DTYPE)
            log_sums[:, rows] = _logsumexp(block_exponents(rows, columns, out=work), -1)
        return eps * (_log_weights(a) - log_sums)

    def c_transform_columns(self, f, a, b, eps):
        """g_j = eps log(b_j) - eps log sum_{i: a_i > 0} exp((f_i - C_ij) / eps), (B, m); log(b_j) taken as 0 where b_j = 0."""
        block_exponents = self.exponents(torch.where(a > 0, f, -math.inf), torch.zeros_like(b), eps)
        log_sums = torch.full_like(b, -math.inf)
        for rows, columns in self.blocks:
            work = self.scratch.take("exponents", self.block_shape(rows, columns), WORKING_DTYPE)
            part = _logsumexp(block_exponents(rows, columns, out=work), 1)
            if columns is None:
                torch.logaddexp(log_sums, part, out=log_sums)
            else:
                log_sums[:, columns] = torch.logaddexp(log_sums[:, columns], part)
        return eps * (_log_weights(b) - log_sums)


class Kernel(_Blocked):
    """A Gibbs kernel K, (B, n, m), and its products, block by block (the protocol of the module's docstring).

    Products take and give float64 vectors; each runs in the kernel's dtype.
    """

    def times(self, v):
        """K v, (B, n)."""
        out, v_kernel = v.new_empty(self.shape[:2]), v.to(self.dtype)  # (converted once, not once a block)
        for rows, columns in self.blocks:
            out[:, rows] = matrix_times(self.block(rows, columns), columns_of(v_kernel, columns))
        return out

    def transposed_times(self, u):
        """K^T u, (B, m)."""
        total = u.new_zeros(self.shape[0], self.shape[2])
        for rows, columns in self.blocks:
            add_columns(total, matrix_transposed_times(self.block(rows, columns), u[:, rows]), columns)
        return total

    def products(self, v, u):
        """K v and K^T u, (B, n) and (B, m), in one pass over the blocks."""
        return self._block_products(self.block, v, u)

    def sweep(self, v, update):
        """K v, the rows' new scalings ``update(rows, K v on those rows)``, and K^T of them: (B, n), (B, n), (B, m).

        A Sinkhorn iteration: each row's update needs only its own part of
        K v, so each block serves both products.  ``rows`` is a slice.
        """
        kv, u, ktu = v.new_empty(self.shape[:2]), v.new_empty(self.shape[:2]), torch.zeros_like(v)
        v_kernel = v.to(self.dtype)
        for rows, columns in self.blocks:
            block = self.block(rows, columns)
            kv[:, rows] = matrix_times(block, columns_of(v_kernel, columns))
            u[:, rows] = update(rows, kv[:, rows])
            add_columns(ktu, matrix_transposed_times(block, u[:, rows]), columns)
        return kv, u, ktu

    def squared_times(self, w):
        """(K * K) w, (B, n), in float64: entries are squared there (a float32 kernel's squares may underflow)."""
        out = w.new_empty(self.shape[:2])
        for rows, columns in self.blocks:
            block = self.block(rows, columns)
            squares = self.scratch.take("squares", block.shape, WORKING_DTYPE).copy_(block).square_()
            out[:, rows] = matrix_times(squares, columns_of(w, columns))
        return out

    def weighted_products(self, cost, u, v):
        """(K * C) v and (K * C)^T u, (B, n) and (B, m), for a `Cost` C of the same blocks."""
        def weighted(rows, columns):
            out = self.scratch.take("weighted", self.block_shape(rows, columns), self.dtype)
            return torch.mul(self.block(rows, columns), cost.block(rows, columns), out=out)
        return self._block_products(weighted, v, u)

    def _block_products(self, block_of, v, u):
        """M v and M^T u for the matrix M whose blocks ``block_of(rows, columns)`` gives, over the kernel's blocks."""
        rows_out, cols_out, v_kernel = v.new_empty(self.shape[:2]), torch.zeros_like(v), v.to(self.dtype)
        for rows, columns in self.blocks:
            matrix_block = block_of(rows, columns)  # (B, rows, columns)
            rows_out[:, rows] = matrix_times(matrix_block, columns_of(v_kernel, columns))
            add_columns(cols_out, matrix_transposed_times(matrix_block, u[:, rows]), columns)
        return rows_out, cols_out


class StoredKernel(Kernel):
    """A kernel held whole (``_dense``, ``_sparse``), whose `times` and `transposed_times` are single products:
    its products and sweeps are those two."""

    def products(self, v, u):
        return self.times(v), self.transposed_times(u)

    def sweep(self, v, update):
        kv = self.times(v)
        u = update(slice(None), kv)
        return kv, u, self.transposed_times(u)


def matrix_times(matrix, v):
    """M v for a (B, n, m) tensor, (B, n), in the dtype of v (the product runs in the matrix's)."""
    return torch.bmm(matrix, v.to(matrix.dtype).unsqueeze(-1)).squeeze(-1).to(v.dtype)


def matrix_transposed_times(matrix, u):
    """M^T u for a (B, n, m) tensor, (B, m), in the dtype of u (the product runs in the matrix's)."""
    return torch.bmm(u.to(matrix.dtype).unsqueeze(1), matrix).squeeze(1).to(u.dtype)


def add_columns(total, part, columns):
    """total[:, columns] += part, in place (all columns if None)."""
    if columns is None:
        total += part
    else:
        total.index_add_(1, columns, part)
