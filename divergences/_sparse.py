"""A cost and its kernels on an explicit set of point pairs: the truncated problems of the "multiscale" backend.

Only the pairs listed (``Pairs``: row-major, with a column-major permutation)
enter any product; the others are left out as if their kernel entries were 0.
The costs of the pairs are stored in float64 (the exponents are formed from
them, ``_log_kernel``), the kernel in the dtype of the points, as a
compressed-row matrix and its transpose: products by it run in MKL's sparse
matrix-vector product, about 2.5e8 pairs a second on one core, which is the
rate of a dense block product (a gather and a scatter in plain torch run
3-4 times slower).

One problem at a time: shapes are (1, n, m) as the solver expects.
`SparseCost.truncated` drops the pairs that potentials show to carry
negligible mass (see `THRESHOLD`); the solver calls it after each stage of its
annealing, so that the pairs kept shrink with eps.
"""

import math
from typing import NamedTuple

import torch

from divergences import _grid, _log_kernel, _scaling
from divergences._cost import power
from divergences._log_kernel import WORKING_DTYPE
from divergences.extras import ignoring

THRESHOLD = 30.0
"""A pair is kept while its plan entry is above exp(-THRESHOLD) of the smaller weight of its two points."""
_CHUNK = 1 << 20  # pairs whose coordinate differences are formed at once


class Pairs(NamedTuple):
    """Pairs (rows[k], columns[k]) of an n x m matrix, sorted by row then column, with their column-major order.

    The indices are int32 on a CPU where the sizes allow (`index_dtype`)."""

    rows: torch.Tensor  # (K,)
    columns: torch.Tensor  # (K,)
    row_starts: torch.Tensor  # (n + 1,) offsets of each row's pairs
    by_column: torch.Tensor  # (K,) the pairs sorted by column (stably): positions in rows / columns
    column_starts: torch.Tensor  # (m + 1,)

    @classmethod
    def of(cls, rows, columns, n, m, row_major=False):
        """The `Pairs` of index tensors (K,) (each pair once), in any order, or already sorted if ``row_major``."""
        if not row_major:
            order = torch.argsort(rows.long() * m + columns)
            rows, columns = rows[order], columns[order]
        dtype = index_dtype(max(n, m, len(rows)), rows.device)
        rows, columns = rows.to(dtype), columns.to(dtype)
        by_column = torch.argsort(columns, stable=True).to(dtype)
        return cls(rows, columns, run_starts(rows, n), by_column, run_starts(columns.index_select(0, by_column), m))

    def subset(self, keep):
        """The pairs where ``keep`` (K,) bool is true (no sort: both orders are filtered)."""
        kept = keep.nonzero().squeeze(1)
        rows, columns = self.rows.index_select(0, kept), self.columns.index_select(0, kept)
        del kept
        n, m = len(self.row_starts) - 1, len(self.column_starts) - 1
        position = torch.cumsum(keep, 0, dtype=rows.dtype).sub_(1)  # of each kept pair among those kept
        by_column = position.index_select(0, self.by_column[keep.index_select(0, self.by_column)])
        return Pairs(rows, columns, run_starts(rows, n), by_column, run_starts(columns.index_select(0, by_column), m))

    def merged(self, rows, columns):
        """The `Pairs` of these and those of index tensors (K,) more (none among these, each once), and the
        positions (K,) of the new ones there; the order of these is kept, without sorting them again."""
        n, m = len(self.row_starts) - 1, len(self.column_starts) - 1
        keys, order = torch.sort(rows.long() * m + columns)
        positions = torch.searchsorted(self.rows.to(torch.int64, copy=True).mul_(m).add_(self.columns), keys)
        positions += torch.arange(len(keys), device=keys.device)  # (each new pair moves the later ones on by one)
        own = _complement(positions, len(self) + len(keys))
        merged = []
        for old, new in ((self.rows, rows), (self.columns, columns)):
            values = torch.empty(len(own), dtype=old.dtype, device=old.device)
            values[positions] = new[order].to(old.dtype)
            merged.append(values.masked_scatter_(own, old))
        return Pairs.of(*merged, n, m, row_major=True), positions

    def __len__(self):
        return len(self.rows)


def _complement(positions, size):
    """(size,) bool: true except at ``positions``."""
    mask = torch.ones(size, dtype=torch.bool, device=positions.device)
    return mask.index_fill_(0, positions, False)


def index_dtype(size, device):
    """The dtype of the indices of `Pairs` whose sizes (n, m, the number of pairs) are at most ``size``, on
    ``device``: on a CPU int32 where it fits, which halves their memory and is what MKL's sparse products take
    (int64 indices are converted at every product, which made one about 7 times slower); elsewhere int64 (the
    int32 paths of the scatter and segment reductions have not been run on a GPU)."""
    return torch.int32 if size < 2**31 and torch.device(device).type == "cpu" else torch.int64


def run_starts(sorted_indices, size):
    """Offsets (size + 1,) of the runs of 0, 1, ..., size - 1 in ``sorted_indices``, of their dtype."""
    counts = torch.bincount(sorted_indices, minlength=size)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)]).to(sorted_indices.dtype)


def pair_costs(x, y, rows, columns, p):
    """|x_rows - y_columns|^p of each pair of index tensors (K,), float64 (K,), from exact differences, by chunks."""
    return ScaledAxes(x, y).costs(rows, columns, p)


class ScaledAxes:
    """The coordinates of x (n, d) and y (m, d) axis by axis, float64, divided by a power of two above them all
    (exact), so that the squares of the differences cannot overflow where the distances do not.  Made once for
    the many chunks of pairs whose distances are taken."""

    def __init__(self, x, y):
        self.unit = _scaling.scale_of(x, y)
        self.x = [x[:, axis].detach().to(WORKING_DTYPE) / self.unit for axis in range(x.shape[1])]
        self.y = [y[:, axis].detach().to(WORKING_DTYPE) / self.unit for axis in range(y.shape[1])]

    def distances(self, rows, columns):
        """|x_rows - y_columns| of index tensors (K,), from one-value gathers (those of d-vectors run slower)."""
        squares = torch.zeros(len(rows), dtype=WORKING_DTYPE, device=rows.device)
        for x_axis, y_axis in zip(self.x, self.y):
            gaps = x_axis.index_select(0, rows) - y_axis.index_select(0, columns)
            squares.addcmul_(gaps, gaps)
        return squares.sqrt_().mul_(self.unit)

    def costs(self, rows, columns, p):
        """|x_rows - y_columns|^p of index tensors (K,), float64 (K,), by chunks of _CHUNK pairs."""
        out = torch.empty(len(rows), dtype=WORKING_DTYPE, device=rows.device)
        for start in range(0, len(rows), _CHUNK):
            chunk = slice(start, start + _CHUNK)
            out[chunk] = power(self.distances(rows[chunk], columns[chunk]), p)
        return out


def carrying(exponents, rows, columns, log_a, log_b, threshold, row_largest, column_largest):
    """Which pairs to keep, (K,) bool, from their exponents (f_i + g_j - C_ij) / eps and their indices ``rows``
    and ``columns`` (K,): those above the smaller log weight of their points (``log_a`` (n,), ``log_b`` (m,)) less
    ``threshold``, and each row's and column's largest (``row_largest`` (n,), ``column_largest`` (m,)).

    That is, those at or above the least of the three, formed in place: two values per pair at a time.
    """
    floor = log_a.index_select(0, rows)
    torch.minimum(floor, log_b.index_select(0, columns), out=floor).sub_(threshold)
    torch.minimum(floor, row_largest.index_select(0, rows), out=floor)
    torch.minimum(floor, column_largest.index_select(0, columns), out=floor)
    return exponents >= floor


def segment_logsumexp(values, starts):
    """log sum exp of each segment of ``values`` (K,) float64 between consecutive ``starts``; -inf for an empty one."""
    largest = torch.segment_reduce(values, "max", offsets=starts)
    largest = torch.where(torch.isfinite(largest), largest, 0.0)
    lengths = starts[1:] - starts[:-1]
    shifted = (values - torch.repeat_interleave(largest, lengths)).clamp_(min=math.log(_log_kernel.smallest_entry(values.dtype)))
    sums = torch.segment_reduce(shifted.exp_(), "sum", offsets=starts)
    return torch.where(lengths > 0, sums.log() + largest, -math.inf)


class SparseCost(_log_kernel.Cost):
    """|x_i - y_j|^p / scale on the listed ``pairs`` of points x (n, d) and y (m, d), shape (1, n, m).

    ``largest`` is an upper bound of every cost of the whole problem (it sets the solver's scale), ``costs``
    the pairs' costs when known (float64, already divided by ``scale``; else formed when first needed),
    ``threshold`` that of `truncated`.
    """

    def __init__(self, x, y, p, scale, pairs, largest, costs=None, threshold=THRESHOLD):
        super().__init__((1, x.shape[0], y.shape[0]), x.dtype, x.device, [(slice(None), None)])
        self.x, self.y, self.p, self.scale, self.pairs, self._largest = x, y, p, scale, pairs, largest
        self._costs = costs
        self.threshold = threshold
        self._chunks_of_rows = None

    def largest(self):
        return self._largest

    @property
    def costs(self):
        """The pairs' costs, float64 (K,) divided by ``scale``: formed when first needed."""
        if self._costs is None:
            self._costs = pair_costs(self.x, self.y, self.pairs.rows, self.pairs.columns, self.p) / self.scale
        return self._costs

    def without_costs(self):
        """The cost on the same pairs, its costs not yet formed (for one kept until a gradient needs it)."""
        return SparseCost(self.x, self.y, self.p, self.scale, self.pairs, self._largest, threshold=self.threshold)

    def pair_exponents(self, f, g, eps, part=slice(None)):
        """(f_i + g_j - C_ij) / eps of the pairs ``part`` (a slice), float64, for potentials f (1, n) and g (1, m)."""
        exponents = f[0].index_select(0, self.pairs.rows[part])
        exponents += g[0].index_select(0, self.pairs.columns[part])
        return exponents.sub_(self.costs[part]).div_(eps)

    def kernel(self, f, g, eps, a, b, spare=None):
        """The Gibbs kernel of (f, g) on the pairs (``_log_kernel.exponentials``' floor; ``kernel_block``'s idle pairs)."""
        idle = _log_kernel.idle_pairs(a, b)
        values = torch.empty(len(self.pairs), dtype=self.dtype, device=self.device)
        for _, part in self.row_chunks():
            exponents = self.pair_exponents(f, g, _log_kernel.binary_eps(eps), part)
            if idle is not None:
                exponents.masked_fill_(idle[0][0].index_select(0, self.pairs.rows[part])
                                       & idle[1][0].index_select(0, self.pairs.columns[part]), -math.inf)
            values[part] = _log_kernel.exponentials(exponents, self.dtype)
        return SparseKernel(self, values, f, g)

    def c_transform_rows(self, g, a, b, eps):
        g = torch.where(b > 0, g, -math.inf)[0]
        log_sums = torch.empty(self.shape[1], dtype=WORKING_DTYPE, device=self.device)
        for rows, part in self.row_chunks():
            exponents = g.index_select(0, self.pairs.columns[part]).sub_(self.costs[part]).div_(eps)
            log_sums[rows] = segment_logsumexp(exponents, _offsets(self.pairs.row_starts, rows))
        return eps * (_log_kernel._log_weights(a) - log_sums[None])

    def c_transform_columns(self, f, a, b, eps):
        f = torch.where(a > 0, f, -math.inf)[0]
        log_sums = torch.empty(self.shape[2], dtype=WORKING_DTYPE, device=self.device)
        for columns, part in _chunks(self.pairs.column_starts):
            positions = self.pairs.by_column[part]
            exponents = f.index_select(0, self.pairs.rows.index_select(0, positions))
            exponents.sub_(self.costs.index_select(0, positions)).div_(eps)
            log_sums[columns] = segment_logsumexp(exponents, _offsets(self.pairs.column_starts, columns))
        return eps * (_log_kernel._log_weights(b) - log_sums[None])

    def truncated(self, f, g, eps, a, b):
        """The cost on the pairs whose plan entry exp((f_i + g_j - C_ij) / eps) is above exp(-threshold) of
        the smaller of a_i and b_j (a weight of 0 counting as 1), and each row's and column's largest entry.

        Two passes by chunks of rows (the exponents are formed twice): the rows' and columns' largest, then
        which pairs to keep; no temporary of a value per pair but the mask."""
        pairs = self.pairs
        row_largest = torch.empty(self.shape[1], dtype=WORKING_DTYPE, device=self.device)
        column_largest = torch.full((self.shape[2],), -math.inf, dtype=WORKING_DTYPE, device=self.device)
        for rows, part in self.row_chunks():
            exponents = self.pair_exponents(f, g, eps, part)
            row_largest[rows] = torch.segment_reduce(exponents, "max", offsets=_offsets(pairs.row_starts, rows))
            column_largest.scatter_reduce_(0, pairs.columns[part], exponents, "amax")
        log_a, log_b = _log_kernel._log_weights(a)[0], _log_kernel._log_weights(b)[0]
        keep = torch.empty(len(pairs), dtype=torch.bool, device=self.device)
        for _, part in self.row_chunks():
            keep[part] = carrying(self.pair_exponents(f, g, eps, part), pairs.rows[part], pairs.columns[part], log_a,
                                  log_b, self.threshold, row_largest, column_largest)
        if bool(keep.all()):
            return self
        return SparseCost(self.x, self.y, self.p, self.scale, pairs.subset(keep), self._largest, self.costs[keep],
                          self.threshold)

    def row_chunks(self):
        """(rows, pairs) slice pairs: whole rows, about _CHUNK pairs each (made once)."""
        if self._chunks_of_rows is None:
            self._chunks_of_rows = _chunks(self.pairs.row_starts)
        return self._chunks_of_rows

    def with_pairs(self, rows, columns):
        """The cost on its pairs and those (rows, columns) more (index tensors of pairs not among its own); the
        costs of its own pairs are kept."""
        pairs, added = self.pairs.merged(rows, columns)
        costs = torch.empty(len(pairs), dtype=WORKING_DTYPE, device=self.device)
        costs[added] = pair_costs(self.x, self.y, pairs.rows[added], pairs.columns[added], self.p) / self.scale
        costs.masked_scatter_(_complement(added, len(pairs)), self.costs)
        return SparseCost(self.x, self.y, self.p, self.scale, pairs, self._largest, costs, self.threshold)


def _chunks(starts, size=None):
    """(segments, entries) slice pairs over the segments between consecutive ``starts`` (S + 1,): whole segments,
    about ``size`` (default _CHUNK) entries each (a longer segment alone)."""
    segments = _grid.groups(starts[1:] - starts[:-1], size or _CHUNK)
    bounds = starts[[0, *[group.stop for group in segments]]].tolist() if segments else [0]
    return [(group, slice(first, last)) for group, first, last in zip(segments, bounds, bounds[1:])]


def _offsets(starts, segments):
    """The offsets of the ``segments`` (a slice) of ``starts`` from their first entry."""
    return starts[segments.start:segments.stop + 1] - starts[segments.start]


class SparseKernel(_log_kernel.StoredKernel):
    """exp((f_i + g_j - C_ij) / eps) on the pairs of a `SparseCost`, as compressed-row matrices K and K^T."""

    def __init__(self, cost, values, f, g):
        super().__init__(cost.shape, cost.dtype, cost.device, cost.blocks)
        self.values, self.f, self.g = values, f, g  # (not the cost: a kernel outlives the cost it was built on)
        self.matrix = _csr(cost.pairs.row_starts, cost.pairs.columns, values, cost.shape[1:])
        self.transposed = _transposed(cost.pairs, values, cost.shape[1:])

    def times(self, v):
        return (self.matrix @ v[0].to(self.dtype)).to(v.dtype)[None]

    def transposed_times(self, u):
        return (self.transposed @ u[0].to(self.dtype)).to(u.dtype)[None]

    def squared_times(self, w):
        squares = _csr(self.matrix.crow_indices(), self.matrix.col_indices(), self.values.to(WORKING_DTYPE).square(),
                       self.shape[1:])
        return (squares @ w[0]).to(w.dtype)[None]

    def weighted_products(self, cost, u, v):
        weighted = self.values * cost.costs.to(self.dtype)
        rows = _csr(cost.pairs.row_starts, cost.pairs.columns, weighted, cost.shape[1:])
        columns = _transposed(cost.pairs, weighted, cost.shape[1:])
        return (rows @ v[0].to(self.dtype)).to(v.dtype)[None], (columns @ u[0].to(self.dtype)).to(u.dtype)[None]


def _csr(starts, columns, values, shape):
    with ignoring("Sparse CSR tensor support is in beta", UserWarning):
        return torch.sparse_csr_tensor(starts, columns, values, shape, check_invariants=False)


def _transposed(pairs, values, shape):
    return _csr(pairs.column_starts, pairs.rows.index_select(0, pairs.by_column), values.index_select(0, pairs.by_column),
                shape[::-1])


def points_gradient(plan, cost, lam, mu, eps):
    """d<P, C>/dx and d<P, C>/dy, (1, n, d) and (1, m, d), from the adjoint (lam, mu), pair by pair.

    As ``_online.points_gradient``: H_ij = P_ij (lam_i + mu_j + 1 - C_ij / eps) p |x_i - y_j|^(p - 2) / scale,
    dL/dx_i = sum_j H_ij (x_i - y_j), dL/dy_j = -sum_i H_ij (x_i - y_j).
    """
    pairs, p = cost.pairs, cost.p
    x, y = cost.x.detach().to(WORKING_DTYPE), cost.y.detach().to(WORKING_DTYPE)
    weights = plan.kernel.values.to(WORKING_DTYPE) * plan.u[0].index_select(0, pairs.rows)
    weights *= plan.v[0].index_select(0, pairs.columns)
    weights *= (lam[0].index_select(0, pairs.rows) + mu[0].index_select(0, pairs.columns) + 1).sub_(cost.costs / eps)
    grad_x, grad_y = torch.zeros_like(x), torch.zeros_like(y)
    axes = ScaledAxes(cost.x, cost.y) if p != 2 else None
    for start in range(0, len(pairs), _CHUNK):
        chunk = slice(start, start + _CHUNK)
        rows, columns = pairs.rows[chunk], pairs.columns[chunk]
        differences = x.index_select(0, rows) - y.index_select(0, columns)
        slopes = weights[chunk] / cost.scale
        if p == 2:
            slopes = 2 * slopes
        else:
            distances = axes.distances(rows, columns)
            slopes = torch.where(distances > 0, slopes * p * distances ** (p - 2), 0.0)
        terms = slopes[:, None] * differences
        grad_x.index_add_(0, rows, terms)
        grad_y.index_add_(0, columns, -terms)
    return grad_x[None].to(cost.dtype), grad_y[None].to(cost.dtype)
