"""The "multiscale" backend of `sinkhorn` (d <= 3): a hierarchy of grids, and at each level only the point pairs
that carry mass.

The points of x and y are sorted into the cells of one grid of about
_POINTS_PER_CELL points a cell (at most half as many cells as points); the
cells' centroids, weighted by their mass, are the points of the next, coarser
level, and so on until a level has at most _BASE_POINTS
points a side, which is solved whole (``_online``), annealed from the largest
cost.  Each level is solved down to the eps at which its points' spacing h
(the cell side of the grid that made them) stops resolving the plan,
``(_START h)^p``; the next finer level starts there:

1. its candidate pairs are the point pairs of the coarse pairs kept;
2. its potentials are carried over by two c-transforms: g from the coarse f
   (over the coarse cells paired with each point's cell), then f from g over
   the candidates;
3. it keeps the candidates whose plan entry exp((f_i + g_j - C_ij) / eps) is
   above exp(-threshold) of the smaller weight of their points (``_sparse``),
   and the solver anneals on them (``_sparse.SparseCost``), dropping pairs
   that way after each stage of its annealing.

So the pairs kept per point stay about constant from level to level, and
shrink as eps does, instead of covering whole cells of the bounding boxes.
A level starts with the pairs within reach of the plan at (_START h)^2, a
ball of radius sqrt(THRESHOLD) _START h: in 3-D about 30 cells of the
coarser level, so 60 to 70 pairs a point at 2 points a cell (230 to 250 at
the 8 of an octree, which at 10^6 points took more than 8 GiB).
The threshold is ``_sparse.THRESHOLD``, plus `_CARRY_MARGIN` for the
candidates carried to a finer level.  The carried potentials miss the fine
ones by about h |x - y| / eps, so a carry can miss pairs; the finest level's
solution is checked for them, and they are added (``_left_out``).
"""

import math
import warnings
from typing import NamedTuple

import torch

from divergences import _grid, _online, _scaling, _sinkhorn_solver, _sparse
from divergences._entropic_cost import SparseEntropicCost
from divergences._log_kernel import WORKING_DTYPE, _log_weights

MAX_DIMENSION = 3
_BASE_POINTS = 512  # a level of at most this many points a side is solved whole (online)
_POINTS_PER_CELL = 2  # of the grid whose cells are the points of the next, coarser level
_START = 0.35  # a level is left for the finer one at eps = (_START h)^p, h its cell side
_CARRY_MARGIN = 0.0  # extra log-mass kept when carrying the pairs to a finer level
_CHUNK = 1 << 22  # candidate pairs formed at once when carrying a level to the finer one
_LEVEL_TOL = 1e-4  # the coarser levels' tol: their potentials are only the finer level's start


class Problem(NamedTuple):
    """One transport problem of the batch, its points sorted by cell, and an upper bound of its largest cost."""

    x: torch.Tensor  # (n, d), sorted (a differentiable gather of the input)
    y: torch.Tensor  # (m, d)
    a: torch.Tensor  # (n,)
    b: torch.Tensor  # (m,)
    largest: float


def problems(x, y, a, b, p):
    """The problems of a flattened batch (B, n, d), (B, m, d), (B, n), (B, m), their points sorted by cell."""
    out = []
    for k in range(x.shape[0]):
        x_cells, y_cells, _ = _grid.grid_cells(x[k], y[k], _POINTS_PER_CELL)
        both = torch.cat([x[k], y[k]]).detach().to(WORKING_DTYPE)
        diagonal = both.amax(0) - both.amin(0)
        unit = _scaling.scale_of(diagonal)
        largest = (float(torch.linalg.vector_norm(diagonal / unit)) * unit) ** p  # the bounding box's diagonal
        out.append(Problem(x[k][x_cells.order], y[k][y_cells.order], a[k][x_cells.order], b[k][y_cells.order], largest))
    return out


def transport_cost(problem, p, scale, eps, options, reports, symmetric=False):
    """<P, C> / scale of one `Problem`, its costs divided by ``scale`` and solved at ``eps`` (scaled), (1,).

    A ``symmetric`` problem (a measure against itself) keeps symmetric pairs at every level, and the solver's
    symmetric updates.
    """
    options = {**options, "symmetric": symmetric}
    largest = problem.largest / scale
    with torch.no_grad():
        x, y = problem.x.detach(), problem.y.detach()
        a, b = problem.a.detach().to(WORKING_DTYPE), problem.b.detach().to(WORKING_DTYPE)
        # (lists that the callee empties: no frame here holds the pairs once the callee drops them)
        started = [_start(x, y, a, b, p, scale, eps, options, largest)]
        carried = [_annealed(x, y, a, b, p, scale, eps, options, largest, started)]
    value, _, excess, *_ = SparseEntropicCost.apply(problem.x, problem.y, problem.a, problem.b, eps, options, reports,
                                                    carried)
    if excess > 0:
        warnings.warn(
            f"sinkhorn(backend='multiscale'): the mass of the pairs left out is bounded by exp({excess:.3g}) times what "
            "tol allows, after the pairs found missing were added; use backend='online' for the untruncated problem.",
            RuntimeWarning, stacklevel=4)
    return value


def _annealed(x, y, a, b, p, scale, eps, options, largest, started):
    """The solver's annealing down to ``eps`` from ``started`` = [(f, g, eps_start, pairs)], which it empties:
    the `_sparse.SparseCost` on the pairs that carry mass at eps, and (f, g, eps), potentials (1, n) and (1, m).

    Done before the final solve, and outside its autograd function, so that the pairs carried over (several
    times those at eps) are freed as the annealing drops them, and before the final solve and its check build
    their own arrays: the annealing holds the only reference to them.
    """
    f, g, start_eps, pairs = started.pop()
    costs = [_sparse.SparseCost(x, y, p, scale, pairs, largest)]
    del pairs
    cost, f, g, _, _ = _sinkhorn_solver._anneal(costs.pop(), a[None], b[None], eps, options["tol"],
                                                options["max_iter"], options["scaling"], options["overrelaxation"],
                                                options["symmetric"], (f[None], g[None], start_eps))
    return cost, (f, g, eps)


def _start(x, y, a, b, p, scale, eps, options, largest):
    """Potentials f (n,) and g (m,) at some eps_start >= ``eps``, eps_start, and the `_sparse.Pairs` that carry
    mass there (with the margin of a carry): from the coarser levels, or from the whole problem if it is small."""
    if len(x) <= _BASE_POINTS and len(y) <= _BASE_POINTS:
        return _whole(x, y, a, b, p, scale, eps, options, largest)
    x_cells, y_cells, side = _grid.grid_cells(x, y, _POINTS_PER_CELL)
    coarse_eps = max(eps, (_START * side) ** p / scale)
    x, y, a, b = x[x_cells.order], y[y_cells.order], a[x_cells.order], b[y_cells.order]
    coarse_x, coarse_y = _centroids(x_cells, x, a), _centroids(y_cells, y, b)
    coarse_a, coarse_b = x_cells.sums(a), y_cells.sums(b)
    big_f, coarse_pairs = _level(coarse_x, coarse_y, coarse_a, coarse_b, p, scale, coarse_eps, options, largest)
    f, g, pairs = _carried(big_f, coarse_x, coarse_a, coarse_pairs, x_cells, y_cells, x, y, a, b, p, scale, coarse_eps)
    x_order, y_order = x_cells.order, y_cells.order
    if not (_identity(x_order) and _identity(y_order)):  # (the finest level's points come sorted)
        pairs = _sparse.Pairs.of(x_order.index_select(0, pairs.rows), y_order.index_select(0, pairs.columns), len(x), len(y))
    return torch.empty_like(f).index_copy_(0, x_order, f), torch.empty_like(g).index_copy_(0, y_order, g), coarse_eps, pairs


def _identity(order):
    return bool((order == torch.arange(len(order), device=order.device)).all())


def _level(x, y, a, b, p, scale, eps, options, largest):
    """The row potentials f (n,) of the problem at ``eps``, and the pairs that carry mass there (with the margin
    of a carry), solved on the pairs its coarser levels give."""
    f, g, start_eps, pairs = _start(x, y, a, b, p, scale, eps, options, largest)
    if start_eps <= eps:
        return f, pairs
    cost = _sparse.SparseCost(x, y, p, scale, pairs, largest, threshold=_sparse.THRESHOLD + _CARRY_MARGIN)
    solution = _sinkhorn_solver.solve(cost, a[None], b[None], eps, start=(f[None], g[None], start_eps),
                                      **_level_options(options))
    plan = solution.plan
    f, g = _sinkhorn_solver._absorb(plan.kernel.f, plan.kernel.g, plan, a[None], b[None], eps)
    return f[0], solution.cost.truncated(f, g, eps, a[None], b[None]).pairs


def _whole(x, y, a, b, p, scale, eps, options, largest):
    """`_start` of a small problem: its potentials at ``eps``, solved on every pair, and the pairs that carry mass."""
    cost = _online.OnlineCost(x[None], y[None], p, scale, largest=largest)
    plan = _sinkhorn_solver.solve(cost, a[None], b[None], eps, **_level_options(options)).plan
    f, g = _sinkhorn_solver._absorb(plan.kernel.f, plan.kernel.g, plan, a[None], b[None], eps)
    rows, columns = torch.meshgrid(torch.arange(len(x), device=x.device), torch.arange(len(y), device=x.device),
                                   indexing="ij")
    every = _sparse.Pairs.of(rows.flatten(), columns.flatten(), len(x), len(y), row_major=True)
    whole = _sparse.SparseCost(x, y, p, scale, every, largest, threshold=_sparse.THRESHOLD + _CARRY_MARGIN)
    return f[0], g[0], eps, whole.truncated(f, g, eps, a[None], b[None]).pairs


def _level_options(options):
    """The solver's options at a coarser level: tol at most _LEVEL_TOL."""
    return {**options, "tol": max(options["tol"], _LEVEL_TOL)}


def _carried(big_f, coarse_x, coarse_a, coarse_pairs, x_cells, y_cells, x, y, a, b, p, scale, eps):
    """Potentials (f, g) of the sorted points at ``eps`` from the coarse potentials ``big_f``, and their pairs.

    g is the c-transform of big_f over the coarse cells paired with each point's cell, f that of g over the
    candidates (the point pairs of the coarse pairs); the pairs are the candidates that carry mass (as
    ``_sparse.SparseCost.truncated`` keeps them).  The candidates are formed by blocks of rows (`_CHUNK` pairs),
    twice: for f and the columns' largest entries, then to keep them; only the pairs kept are stored.
    """
    m = len(y)
    cell_rows, point_columns = _grid.columns_expanded(coarse_pairs, y_cells.starts)  # sorted by (x cell, y point)
    cells_to_points = _sparse.Pairs.of(cell_rows, point_columns, len(coarse_x), m, row_major=True)
    g = _sparse.SparseCost(coarse_x, y, p, scale, cells_to_points, 0.0).c_transform_columns(
        big_f[None], coarse_a[None], b[None], eps)[0]
    log_a, log_b = _log_weights(a), _log_weights(b)
    blocks = _grid.point_blocks(cells_to_points, x_cells, _CHUNK)
    dtype = _sparse.index_dtype(max(len(x), m, _grid.candidates(cells_to_points, x_cells)), x.device)
    axes = _sparse.ScaledAxes(x, y)  # (once for every block's costs)
    f, column_largest = torch.empty_like(a), torch.full_like(b, -math.inf)
    for points in blocks:
        rows, columns = _grid.rows_expanded(cells_to_points, x_cells, points)
        exponents = (g[columns] - axes.costs(rows, columns, p) / scale) / eps
        f[points] = eps * (log_a[points] - _sparse.segment_logsumexp(exponents, _row_starts(rows, points)))
        column_largest.scatter_reduce_(0, columns, exponents + f[rows] / eps, "amax")
    kept_rows, kept_columns = [], []
    for points in blocks:
        rows, columns = _grid.rows_expanded(cells_to_points, x_cells, points)
        exponents = (f[rows] + g[columns] - axes.costs(rows, columns, p) / scale) / eps
        row_largest = torch.segment_reduce(exponents, "max", offsets=_row_starts(rows, points))
        keep = _sparse.carrying(exponents, rows - points.start, columns, log_a[points], log_b,
                                _sparse.THRESHOLD + _CARRY_MARGIN, row_largest, column_largest)
        kept_rows.append(rows[keep].to(dtype))
        kept_columns.append(columns[keep].to(dtype))
    pairs = _sparse.Pairs.of(torch.cat(kept_rows), torch.cat(kept_columns), len(x), m, row_major=True)
    return f, g, pairs


def _row_starts(rows, points):
    """Offsets of each row's run in sorted ``rows``, which are those of the slice ``points``."""
    return _sparse.run_starts(rows - points.start, points.stop - points.start)


def _centroids(cells, points, weights):
    """The weighted mean of each cell's sorted ``points`` (the plain mean for a cell of zero mass), (C, d) float64."""
    points = points.to(WORKING_DTYPE)
    mass = cells.sums(weights)
    weighted = cells.sums(points * weights[:, None]) / torch.where(mass > 0, mass, 1.0)[:, None]
    plain = cells.sums(points) / cells.counts[:, None]
    return torch.where((mass > 0)[:, None], weighted, plain)
