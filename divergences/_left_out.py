"""The mass a truncated plan leaves out, bounded over cells of a grid and measured exactly where the bound is loose.

For potentials (f, g) of a solution on a set of pairs (``_sparse``), the pair
(i, j) would carry exp((f_i + g_j - C_ij) / eps) in the whole problem.  Write
f~ = f - eps log a (a weight of 0 counting as 1), and take cells I, J of one
grid (centroids c, radii r, masses A, B).  For any p,

    f~_i + g~_j - C_ij <= max_I f~ + max_J g~ - (|c_I - c_J| - r_I - r_J)_+^p.

For p = 2 the potentials' slopes are taken out first: with s_I = 2 (c_I -
T_I), T_I the cell's barycentric target under the plan (the gradient of f
at an optimum), and Delta = c_I - c_J,

    f~_i + g~_j - C_ij <= F_I + G_J - |Delta|^2 + |s_I - 2 Delta| r_I + |t_J + 2 Delta| r_J,

F_I = max_i (f~_i - <s_I, x_i - c_I>), likewise G_J with t_J = 2 (c_J - S_J):
a bound tight within a few r of the matching cells, where the first is off by
the potentials' variation over a cell (hundreds of eps at small eps).  A cell
pair whose bound, times A_I B_J, stays below its share of the allowance is
certified; the others are measured point pair by point pair, and the pairs
left out there that carry mass are returned to be added.
"""

import math

import torch

from divergences import _grid, _scaling, _sinkhorn_solver, _sparse
from divergences._log_kernel import WORKING_DTYPE, _log_weights

_ROUNDS = 3  # solves on the pairs found missing, at most
_CHECK_CELLS = 8192  # cells a side at most: the bounds are a (cells x cells) matrix, formed by blocks of rows
_ROWS_PER_BLOCK = 64
_CHUNK = 1 << 22  # point pairs measured at once


def missing_pairs(cost, f, g, eps, a, b, allowance):
    """Pairs left out of ``cost`` (a ``_sparse.SparseCost``) that carry mass, and a bound of the mass left out.

    Parameters
    ----------
    cost : ``_sparse.SparseCost`` of one problem (1, n, m)
    f, g : (1, n) and (1, m) float64 absorbed potentials of its solution
    eps : float
    a, b : (1, n) and (1, m) weights
    allowance : float
        The mass left out that the value can take (``_multiscale``): cell pairs are certified against it.

    Returns
    -------
    (rows, columns, log_bound)
        Index tensors of the pairs left out whose plan entry is above exp(-``cost.threshold``) of the smaller
        weight of their points, and the log of a bound on the mass of all pairs left out.
    """
    x, y = cost.x.detach().to(WORKING_DTYPE), cost.y.detach().to(WORKING_DTYPE)
    n, m = len(x), len(y)
    d = x.shape[1]
    per_cell = max(2**d, math.ceil(max(n, m) / _CHECK_CELLS))
    x_cells, y_cells, _ = _grid.grid_cells(x, y, per_cell)
    log_a, log_b = _log_weights(a)[0], _log_weights(b)[0]
    x_side = _CellSide(x, f[0] - eps * log_a, log_a, x_cells)
    y_side = _CellSide(y, g[0] - eps * log_b, log_b, y_cells)
    if cost.p == 2:
        targets_x, targets_y = _barycentric_targets(cost, f, g, eps)
        x_side.take_out_slopes(2 * (x_side.centres - x_side.cell_means(targets_x)) / cost.scale)
        y_side.take_out_slopes(2 * (y_side.centres - y_side.cell_means(targets_y)) / cost.scale)
    cell_count = len(x_side.radii) * len(y_side.radii)
    share = math.log(allowance) - math.log(cell_count)
    certified, flagged = [], []
    for first in range(0, len(x_side.radii), _ROWS_PER_BLOCK):
        rows = slice(first, first + _ROWS_PER_BLOCK)
        bounds = _log_cell_bounds(x_side, y_side, rows, cost.p, cost.scale, eps)  # (rows, Cy)
        above = bounds > share
        certified.append(torch.logsumexp(torch.where(above, -math.inf, bounds).flatten(), 0))
        row_cells, column_cells = above.nonzero().unbind(1)
        flagged.append((row_cells + first, column_cells))
    row_cells, column_cells = (torch.cat(parts) for parts in zip(*flagged))
    log_certified = float(torch.logsumexp(torch.stack(certified), 0))
    if not len(row_cells):
        return x.new_zeros(0, dtype=torch.long), x.new_zeros(0, dtype=torch.long), log_certified
    rows, columns, log_measured = _measured(cost, f, g, eps, log_a, log_b, row_cells, column_cells, x_cells, y_cells)
    larger, smaller = max(log_certified, log_measured), min(log_certified, log_measured)
    return rows, columns, larger if smaller == -math.inf else larger + math.log1p(math.exp(smaller - larger))


def completed_solve(cost, a, b, eps, start, options):
    """``_sinkhorn_solver.solve`` of a ``_sparse.SparseCost``, with the pairs it misses added and solved again, from
    its own potentials, while the mass left out exceeds what tol allows (at most _ROUNDS solves).

    The value moves by at most the mass left out times max C, and tol is relative to eps at least: the allowance
    is half of tol eps / max C.  Returns the last solution and the log of the ratio of the bound on the mass its
    pairs leave out to the allowance (> 0: too much).
    """
    allowance = 0.5 * options["tol"] * eps / max(cost.largest(), eps)
    for _ in range(_ROUNDS):
        solution = _sinkhorn_solver.solve(cost, a, b, eps, start=start, **options)
        plan = solution.plan
        f, g = _sinkhorn_solver._absorb(plan.kernel.f, plan.kernel.g, plan, a, b, eps)
        rows, columns, log_left_out = missing_pairs(solution.cost, f, g, eps, a, b, allowance)
        if log_left_out <= math.log(allowance) or not len(rows):
            break
        cost, start = solution.cost.with_pairs(rows, columns), (f, g, eps)
    return solution, log_left_out - math.log(allowance)


class _CellSide:
    """Per-cell quantities of one cloud: centroids, radii, log masses and the largest reduced potential."""

    def __init__(self, points, potentials, log_weights, cells):
        self.cells, self.points = cells, points[cells.order]
        self.potentials = potentials[cells.order]
        counts = cells.counts.to(WORKING_DTYPE)
        self.centres = cells.sums(self.points) / counts[:, None]
        offsets = self.points - self.centres[cells.of_points()]
        self.offsets = offsets
        self.radii = cells.maxima(torch.linalg.vector_norm(offsets, dim=-1))
        self.log_masses = torch.log(cells.sums(torch.exp(log_weights[cells.order])))
        self.largest = cells.maxima(self.potentials)
        self.slopes = None

    def cell_means(self, values):
        """Mean over each cell of per-point ``values`` (n, d) in the caller's order."""
        return self.cells.sums(values[self.cells.order]) / self.cells.counts.to(WORKING_DTYPE)[:, None]

    def take_out_slopes(self, slopes):
        """Use the bound with linear parts ``slopes`` (C, d): largest becomes max_i (f~_i - <s_I, x_i - c_I>)."""
        self.slopes = slopes
        self.largest = self.cells.maxima(self.potentials - (slopes[self.cells.of_points()] * self.offsets).sum(-1))


def _barycentric_targets(cost, f, g, eps):
    """Each point's mean partner under the plan on the pairs kept: sum_j P_ij y_j / sum_j P_ij, and likewise."""
    pairs = cost.pairs
    weights = torch.exp(cost.pair_exponents(f, g, eps))
    x, y = cost.x.detach().to(WORKING_DTYPE), cost.y.detach().to(WORKING_DTYPE)
    to_y = torch.zeros_like(x).index_add_(0, pairs.rows, weights[:, None] * y[pairs.columns])
    to_x = torch.zeros_like(y).index_add_(0, pairs.columns, weights[:, None] * x[pairs.rows])
    row_mass = torch.zeros(len(x), dtype=WORKING_DTYPE, device=x.device).index_add_(0, pairs.rows, weights)
    column_mass = torch.zeros(len(y), dtype=WORKING_DTYPE, device=y.device).index_add_(0, pairs.columns, weights)
    return to_y / row_mass[:, None], to_x / column_mass[:, None]


def _log_cell_bounds(x_side, y_side, rows, p, scale, eps):
    """log of the bound on the mass of each cell pair of the x cells ``rows`` against every y cell, (rows, Cy)."""
    gaps = x_side.centres[rows, None, :] - y_side.centres[None, :, :]  # Delta, (rows, Cy, d)
    unit = _scaling.scale_of(x_side.centres, y_side.centres)  # (squares that cannot overflow where |Delta| does not)
    distances = torch.linalg.vector_norm(gaps / unit, dim=-1) * unit
    x_radii, y_radii = x_side.radii[rows, None], y_side.radii[None, :]
    if x_side.slopes is None:
        exponents = x_side.largest[rows, None] + y_side.largest[None, :] - (distances - x_radii - y_radii).clamp(min=0) ** p / scale
    else:
        x_terms = torch.linalg.vector_norm(x_side.slopes[rows, None, :] - 2 * gaps / scale, dim=-1) * x_radii
        y_terms = torch.linalg.vector_norm(y_side.slopes[None, :, :] + 2 * gaps / scale, dim=-1) * y_radii
        exponents = x_side.largest[rows, None] + y_side.largest[None, :] - distances**2 / scale + x_terms + y_terms
    return x_side.log_masses[rows, None] + y_side.log_masses[None, :] + exponents / eps


def _measured(cost, f, g, eps, log_a, log_b, row_cells, column_cells, x_cells, y_cells):
    """The pairs left out of ``cost`` in the flagged cell pairs that carry mass, and the log of their total mass.

    The cell pairs are taken in groups that cover about _CHUNK point pairs each.
    """
    m = cost.shape[2]
    kept_keys = cost.pairs.rows * m + cost.pairs.columns  # sorted: the pairs are row-major
    sizes = torch.cumsum(x_cells.counts[row_cells] * y_cells.counts[column_cells], 0)
    ends = torch.searchsorted(sizes, torch.arange(_CHUNK, int(sizes[-1]) + _CHUNK, _CHUNK, device=sizes.device))
    missing_rows, missing_columns, totals = [], [], []
    first = 0
    for end in sorted(set(ends.clamp(max=len(sizes) - 1).tolist())):
        rows, columns = _grid.covered_pairs(row_cells[first:end + 1], column_cells[first:end + 1], x_cells, y_cells)
        first = end + 1
        rows, columns = x_cells.order[rows], y_cells.order[columns]
        keys = rows * m + columns
        position = torch.searchsorted(kept_keys, keys).clamp_(max=max(len(kept_keys) - 1, 0))
        left_out = kept_keys[position] != keys if len(kept_keys) else torch.ones_like(keys, dtype=torch.bool)
        rows, columns = rows[left_out], columns[left_out]
        costs = _sparse.power(_sparse.pair_distances(cost.x, cost.y, rows, columns), cost.p)
        exponents = (f[0][rows] + g[0][columns] - costs / cost.scale) / eps
        totals.append(torch.logsumexp(exponents, 0) if len(exponents) else exponents.new_tensor(-math.inf))
        carries = exponents >= torch.minimum(log_a[rows], log_b[columns]) - cost.threshold
        missing_rows.append(rows[carries])
        missing_columns.append(columns[carries])
    return torch.cat(missing_rows), torch.cat(missing_columns), float(torch.logsumexp(torch.stack(totals), 0))
