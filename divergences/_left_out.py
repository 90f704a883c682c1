"""The mass a truncated plan leaves out, bounded over the cells of nested grids and measured where bounds are loose.

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
the potentials' variation over a cell.

The cell pairs are searched from the coarsest grid down (``_tree``): a cell
pair whose bound, divided by the mass A_I B_J, stays below its level's share
of the allowance (divided by the total masses) is certified; the others are
refined into their children's pairs, so that only the pairs near the plan
reach the finest cells, where they are measured point pair by point pair, and
the pairs left out there that carry mass are returned to be added.  The cell
pairs of one level are disjoint, so the certified mass is at most the
allowance; the work follows the pairs within reach of the plan, not n m.
"""

import math

import torch

from divergences import _grid, _scaling, _sinkhorn_solver, _sparse, _tree
from divergences._log_kernel import WORKING_DTYPE, _log_weights

_ROUNDS = 3  # solves on the pairs found missing, at most
_CHUNK = 1 << 20  # cell pairs bounded, or point pairs measured, at once (about)
_SMALL = 4  # a flagged cell pair of at most this many point pairs is measured rather than refined


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
    x_tree, y_tree = _tree.trees(x, y)
    log_a, log_b = _log_weights(a)[0], _log_weights(b)[0]
    targets_x, targets_y = _barycentric_targets(cost, f, g, eps) if cost.p == 2 else (None, None)
    levels = len(x_tree.starts)
    unit = _scaling.scale_of(x, y)  # (squares that cannot overflow where the distances do not)
    x_sides = [_CellSide(x, f[0] - eps * log_a, log_a, x_tree.cells(level), unit, targets_x, cost.scale)
               for level in range(levels)]
    y_sides = [_CellSide(y, g[0] - eps * log_b, log_b, y_tree.cells(level), unit, targets_y, cost.scale)
               for level in range(levels)]
    share = math.log(allowance / levels) - float(x_sides[0].log_masses[0] + y_sides[0].log_masses[0])
    root = torch.zeros(1, dtype=torch.long, device=x.device)
    waiting = [(0, root, root, False)]  # (level, x cells, y cells, whether to bound their children instead)
    measuring = _Measuring(cost, f, g, eps, log_a, log_b, x_tree, y_tree)
    log_masses = []
    while waiting:
        level, row_cells, column_cells, children = waiting.pop()
        if children:  # (expanded only now, a group at a time)
            row_cells, column_cells = _grid.covered_pairs(row_cells, column_cells, x_tree.children_of(level),
                                                          y_tree.children_of(level))
            level += 1
        x_side, y_side = x_sides[level], y_sides[level]
        exponents = _exponent_bounds(x_side, y_side, row_cells, column_cells, cost.p, cost.scale, eps, unit)
        certified = exponents <= share
        log_masses.append(torch.logsumexp((x_side.log_masses[row_cells] + y_side.log_masses[column_cells]
                                           + exponents)[certified], 0))
        flagged = (~certified).nonzero().squeeze(1)
        row_cells, column_cells = row_cells[flagged], column_cells[flagged]
        sizes = x_side.counts[row_cells] * y_side.counts[column_cells]  # point pairs
        measure = (sizes <= _SMALL) | (level == levels - 1)
        measuring.add(level, row_cells[measure], column_cells[measure], sizes[measure])
        row_cells, column_cells = row_cells[~measure], column_cells[~measure]
        if not len(row_cells):
            continue
        x_children, y_children = x_tree.children_of(level), y_tree.children_of(level)
        sizes = x_children.counts[row_cells] * y_children.counts[column_cells]
        waiting.extend((level, row_cells[group], column_cells[group], True) for group in _grid.groups(sizes, _CHUNK))
    rows, columns, log_measured = measuring.done()
    return rows, columns, float(torch.logsumexp(torch.stack([*log_masses, log_measured]), 0))


def completed_solve(cost, start, a, b, eps, options):
    """``_sinkhorn_solver.solve`` of a ``_sparse.SparseCost``, with the pairs it misses added and solved again, from
    its own potentials, while the mass left out exceeds what tol allows (at most _ROUNDS solves).

    The value moves by at most the mass left out times max C, and tol is relative to eps at least: the allowance
    is half of tol eps / max C.  Returns the last solution and the log of the ratio of the bound on the mass its
    pairs leave out to the allowance (> 0: too much).
    """
    allowance = 0.5 * options["tol"] * eps / max(cost.largest(), eps)
    for solves in range(1, _ROUNDS + 1):
        solution = _sinkhorn_solver.solve(cost, a, b, eps, start=start, **options)
        plan = solution.plan
        f, g = _sinkhorn_solver._absorb(plan.kernel.f, plan.kernel.g, plan, a, b, eps)
        rows, columns, log_left_out = missing_pairs(solution.cost, f, g, eps, a, b, allowance)
        if log_left_out <= math.log(allowance) or not len(rows) or solves == _ROUNDS:
            break
        cost, plan, solution = solution.cost, None, None  # (its kernel freed before the next)
        cost, start = cost.with_pairs(rows, columns), (f, g, eps)
    return solution, log_left_out - math.log(allowance)


class _CellSide:
    """Per-cell quantities of one cloud at one level: centroids (divided by ``unit``, axis by axis), radii, log
    masses, the slopes taken out (p = 2, from the points' barycentric ``targets``; (d, C)) and the largest reduced
    potential."""

    def __init__(self, points, potentials, log_weights, cells, unit, targets=None, scale=1.0):
        order = cells.order
        self.counts = cells.counts
        counts = self.counts.to(WORKING_DTYPE)[:, None]
        points, potentials = points[order], potentials[order]
        centres = cells.sums(points) / counts
        offsets = points - torch.repeat_interleave(centres, self.counts, dim=0)
        self.axes = (centres / unit).T.contiguous()
        self.radii = cells.maxima(torch.linalg.vector_norm(offsets, dim=-1))
        self.log_masses = torch.log(cells.sums(torch.exp(log_weights[order])))
        if targets is None:
            self.slopes = None
            self.largest = cells.maxima(potentials)
        else:
            slopes = 2 * (centres - cells.sums(targets[order]) / counts) / scale
            self.slopes = slopes.T.contiguous()
            self.largest = cells.maxima(potentials - (torch.repeat_interleave(slopes, self.counts, dim=0) * offsets).sum(-1))


def _barycentric_targets(cost, f, g, eps):
    """Each point's mean partner under the plan on the pairs kept: sum_j P_ij y_j / sum_j P_ij, and likewise.
    By chunks of rows and axis by axis (a temporary of one value per pair of a chunk)."""
    pairs = cost.pairs
    x, y = cost.x.detach().to(WORKING_DTYPE), cost.y.detach().to(WORKING_DTYPE)
    row_mass, to_y = torch.zeros(len(x), dtype=WORKING_DTYPE, device=x.device), torch.zeros_like(x)
    column_mass, to_x = torch.zeros(len(y), dtype=WORKING_DTYPE, device=y.device), torch.zeros_like(y)
    for _, part in cost.row_chunks():
        rows, columns = pairs.rows[part], pairs.columns[part]
        weights = cost.pair_exponents(f, g, eps, part).exp_()
        row_mass.index_add_(0, rows, weights)
        column_mass.index_add_(0, columns, weights)
        for axis in range(x.shape[1]):
            to_y[:, axis].index_add_(0, rows, weights * y[:, axis].index_select(0, columns))
            to_x[:, axis].index_add_(0, columns, weights * x[:, axis].index_select(0, rows))
    # (a point whose pairs all underflow is its own target: no slope)
    return (torch.where(row_mass[:, None] > 0, to_y / row_mass[:, None], x),
            torch.where(column_mass[:, None] > 0, to_x / column_mass[:, None], y))


def _exponent_bounds(x_side, y_side, row_cells, column_cells, p, scale, eps, unit):
    """Bounds of (f~_i + g~_j - C_ij) / eps over the point pairs of each cell pair (row_cells[k], column_cells[k]),
    (K,).  Axis by axis, on gathers of one value per pair (a gather of d-vectors, or a sum over a last axis of
    size d, runs several times slower)."""
    squares = torch.zeros(len(row_cells), dtype=WORKING_DTYPE, device=row_cells.device)  # |Delta / unit|^2
    x_slopes, y_slopes = torch.zeros_like(squares), torch.zeros_like(squares)  # |s_I - 2 Delta|^2, |t_J + 2 Delta|^2
    for axis in range(len(x_side.axes)):
        gaps = x_side.axes[axis].index_select(0, row_cells) - y_side.axes[axis].index_select(0, column_cells)
        squares.addcmul_(gaps, gaps)
        if x_side.slopes is not None:
            gaps *= 2 * unit / scale
            x_terms = x_side.slopes[axis].index_select(0, row_cells) - gaps
            y_terms = y_side.slopes[axis].index_select(0, column_cells).add_(gaps)
            x_slopes.addcmul_(x_terms, x_terms)
            y_slopes.addcmul_(y_terms, y_terms)
    largest = x_side.largest.index_select(0, row_cells) + y_side.largest.index_select(0, column_cells)
    x_radii, y_radii = x_side.radii.index_select(0, row_cells), y_side.radii.index_select(0, column_cells)
    if x_side.slopes is None:
        reach = (squares.sqrt_().mul_(unit) - x_radii - y_radii).clamp_(min=0)
        return largest.sub_(reach.pow_(p).div_(scale)).div_(eps)
    largest -= squares.mul_((unit / math.sqrt(scale)) ** 2)
    largest.addcmul_(x_slopes.sqrt_(), x_radii).addcmul_(y_slopes.sqrt_(), y_radii)
    return largest.div_(eps)


class _Measuring:
    """The flagged cell pairs that are measured point pair by point pair, gathered by level and measured in groups
    of about _CHUNK point pairs: the pairs left out there that carry mass, and their total mass."""

    def __init__(self, cost, f, g, eps, log_a, log_b, x_tree, y_tree):
        self.cost, self.f, self.g, self.eps, self.log_a, self.log_b = cost, f, g, eps, log_a, log_b
        self.x_tree, self.y_tree = x_tree, y_tree
        self.kept_keys = cost.pairs.rows.long() * cost.shape[2] + cost.pairs.columns  # sorted: the pairs are row-major
        self.axes = _sparse.ScaledAxes(cost.x, cost.y)
        self.waiting, self.size = {}, 0  # level -> [(x cells, y cells, their point pairs)], and all their point pairs
        self.rows, self.columns, self.log_masses = [], [], []

    def add(self, level, row_cells, column_cells, sizes):
        """Cell pairs of ``level`` to measure, and the point pairs each covers."""
        self.waiting.setdefault(level, []).append((row_cells, column_cells, sizes))
        self.size += int(sizes.sum())
        if self.size >= _CHUNK:
            self._measure()

    def done(self):
        """(rows, columns) of the pairs found missing, and the log of the mass of all pairs measured."""
        self._measure()
        empty = self.kept_keys.new_zeros(0)
        masses = torch.stack(self.log_masses) if self.log_masses else self.f.new_full((1,), -math.inf)
        return torch.cat([empty, *self.rows]), torch.cat([empty, *self.columns]), torch.logsumexp(masses, 0)

    def _measure(self):
        for level, parts in self.waiting.items():
            row_cells, column_cells, sizes = (torch.cat(part) for part in zip(*parts))
            x_cells, y_cells = self.x_tree.cells(level), self.y_tree.cells(level)
            for group in _grid.groups(sizes, _CHUNK):
                self._measure_pairs(*_grid.covered_pairs(row_cells[group], column_cells[group], x_cells, y_cells),
                                    x_cells, y_cells)
        self.waiting, self.size = {}, 0

    def _measure_pairs(self, rows, columns, x_cells, y_cells):
        cost, f, g, eps = self.cost, self.f, self.g, self.eps
        rows, columns = x_cells.order[rows], y_cells.order[columns]
        keys = rows * cost.shape[2] + columns
        kept_keys = self.kept_keys
        position = torch.searchsorted(kept_keys, keys).clamp_(max=max(len(kept_keys) - 1, 0))
        left_out = (kept_keys[position] != keys if len(kept_keys) else torch.ones_like(keys, dtype=torch.bool)).nonzero().squeeze(1)
        rows, columns = rows[left_out], columns[left_out]
        costs = self.axes.costs(rows, columns, cost.p)
        exponents = (f[0][rows] + g[0][columns] - costs / cost.scale) / eps
        self.log_masses.append(torch.logsumexp(exponents, 0))
        carries = (exponents >= torch.minimum(self.log_a[rows], self.log_b[columns]) - cost.threshold).nonzero().squeeze(1)
        self.rows.append(rows[carries])
        self.columns.append(columns[carries])
