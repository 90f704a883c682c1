"""The "multiscale" backend of `sinkhorn` (d <= 3): online products over the cell pairs that carry mass.

The points of x and y are sorted into the cells of one grid (about
_POINTS_PER_CELL points a cell, at most _MAX_CELLS cells).  A coarse problem
between the cells' centroids, at the same eps, gives potentials; two
c-transforms carry them to the points.  From potentials (f, g) (absorbed:
P_ij = exp((f_i + g_j - C_ij) / eps)) the mass the plan puts on a pair of
cells (I, J) is at most

    delta_IJ = A_I B_J exp((phi_I + psi_J - D_IJ) / eps),

with A_I, B_J the cells' masses, phi_I the largest f_i - eps log a_i over
the cell (psi_J likewise) and D_IJ the cost between the cells' bounding boxes
(a lower bound of C_ij).  The pairs of smallest bound are dropped while their
bounds sum to at most delta* = (tol eps / max(max C, eps))^2 / 2, and the problem
restricted to the pairs kept (``_online.OnlineCost`` with ``blocks``) is
solved by the usual solver: annealing, Newton, value check and implicit
gradients, on block-sparse products.  Its potentials are then checked the
same way, and the pairs they need added and the problem solved again, at most
_ROUNDS times (a `RuntimeWarning` says so if the bound still exceeds delta*).

Why delta* bounds the error: the truncated solution's potentials are feasible
for the dual of the whole problem, whose objective they miss by eps delta
(delta the mass of the dropped pairs); its plan is feasible for the primal.
So the entropic objectives differ by at most eps delta, and since that
objective is eps-strongly convex in KL between plans of the same marginals,
KL(P_truncated | P) <= delta: by Pinsker, |<P_truncated - P, C>| <= max C
sqrt(2 delta) <= tol eps.  (max C is bounded from the cells' boxes.)
"""

import math
import warnings
from typing import NamedTuple

import torch

from divergences import _online, _scaling, _sinkhorn_solver
from divergences._entropic_cost import OnlineEntropicCost
from divergences._log_kernel import WORKING_DTYPE

MAX_DIMENSION = 3
_POINTS_PER_CELL = 32
_MAX_CELLS = 2048  # the (cells x cells) bound matrices stay below 40 MB
_ROWS_PER_BLOCK = 128  # rows of consecutive cells a product block gathers (fewer, and Python's overhead shows)
_ROUNDS = 3
_COARSE_WORK = 500  # cap on the coarse solve's work: its potentials only choose the pairs, checked after the solve


class Cells(NamedTuple):
    """The occupied cells of one cloud: its points sorted by cell, their offsets and bounding boxes."""

    order: torch.Tensor  # (n,) sorted position -> original index
    starts: torch.Tensor  # (C + 1,) offsets of the cells in the sorted order
    lower: torch.Tensor  # (C, d) float64
    upper: torch.Tensor  # (C, d)

    @property
    def counts(self):
        return self.starts[1:] - self.starts[:-1]

    def of_points(self):
        """The cell of each sorted point, (n,)."""
        return torch.repeat_interleave(torch.arange(len(self.counts), device=self.starts.device), self.counts)

    def sums(self, values):
        """Sums of sorted per-point ``values`` (n,) over each cell, (C,)."""
        return torch.zeros(len(self.counts), dtype=values.dtype, device=values.device).index_add_(0, self.of_points(), values)

    def maxima(self, values):
        """Largest sorted per-point ``values`` (n,) over each cell, (C,) (-inf for a cell of only -inf)."""
        out = torch.full((len(self.counts),), -math.inf, dtype=values.dtype, device=values.device)
        return out.scatter_reduce_(0, self.of_points(), values, "amax")


def grid_cells(x, y):
    """The cells of x (n, d) and y (m, d) on one grid over both, lexicographic by cell."""
    both = torch.cat([x, y]).detach().to(WORKING_DTYPE)
    origin, extent = both.amin(0), float((both.amax(0) - both.amin(0)).max())
    d = both.shape[1]
    per_axis = max(1, min(math.ceil((max(len(x), len(y)) / _POINTS_PER_CELL) ** (1 / d)),
                          math.floor(_MAX_CELLS ** (1 / d) + 1e-9)))
    side = extent / per_axis if extent > 0 else 1.0
    return _cells(x, origin, side, per_axis), _cells(y, origin, side, per_axis)


def _cells(points, origin, side, per_axis):
    points = points.detach().to(WORKING_DTYPE)
    index = ((points - origin) / side).floor().long().clamp_(0, per_axis - 1)  # (n, d)
    key = torch.zeros(len(points), dtype=torch.long, device=points.device)
    for axis in range(points.shape[1]):
        key = key * per_axis + index[:, axis]
    sorted_keys, order = torch.sort(key, stable=True)
    _, counts = torch.unique_consecutive(sorted_keys, return_counts=True)
    starts = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    cell = torch.repeat_interleave(torch.arange(len(counts), device=points.device), counts)
    sorted_points = points[order]
    d = points.shape[1]
    lower = torch.full((len(counts), d), math.inf, dtype=WORKING_DTYPE, device=points.device)
    upper = torch.full((len(counts), d), -math.inf, dtype=WORKING_DTYPE, device=points.device)
    lower.scatter_reduce_(0, cell[:, None].expand(-1, d), sorted_points, "amin")
    upper.scatter_reduce_(0, cell[:, None].expand(-1, d), sorted_points, "amax")
    return Cells(order, starts, lower, upper)


def box_costs(x_cells, y_cells, p):
    """Smallest and largest |x - y|^p between the cells' boxes, (Cx, Cy) each, float64.

    The boxes are divided by a power of two above their largest coordinate first (exact), so that the squared
    gaps cannot overflow where the distances themselves do not.
    """
    unit = 2 * _scaling.scale_of(x_cells.lower, x_cells.upper, y_cells.lower, y_cells.upper)
    nearest = torch.zeros(len(x_cells.lower), len(y_cells.lower), dtype=WORKING_DTYPE, device=x_cells.lower.device)
    farthest = torch.zeros_like(nearest)
    for axis in range(x_cells.lower.shape[1]):
        x_low, x_high = x_cells.lower[:, axis, None] / unit, x_cells.upper[:, axis, None] / unit
        y_low, y_high = y_cells.lower[None, :, axis] / unit, y_cells.upper[None, :, axis] / unit
        nearest += ((y_low - x_high).clamp(min=0) + (x_low - y_high).clamp(min=0)) ** 2
        farthest += torch.maximum(y_high - x_low, x_high - y_low) ** 2
    return (nearest.sqrt() * unit) ** p, (farthest.sqrt() * unit) ** p


class Problem(NamedTuple):
    """One transport problem of the batch, its points sorted by cell."""

    x: torch.Tensor  # (n, d), sorted (a differentiable gather of the input)
    y: torch.Tensor  # (m, d)
    a: torch.Tensor  # (n,)
    b: torch.Tensor  # (m,)
    x_cells: Cells
    y_cells: Cells
    nearest: torch.Tensor  # (Cx, Cy) unscaled box costs
    largest: float  # an upper bound of the largest cost (from the boxes)


def problems(x, y, a, b, p):
    """The problems of a flattened batch (B, n, d), (B, m, d), (B, n), (B, m), sorted by cell."""
    out = []
    for k in range(x.shape[0]):
        x_cells, y_cells = grid_cells(x[k], y[k])
        nearest, farthest = box_costs(x_cells, y_cells, p)
        out.append(Problem(x[k][x_cells.order], y[k][y_cells.order], a[k][x_cells.order], b[k][y_cells.order],
                           x_cells, y_cells, nearest, float(farthest.max())))
    return out


def transport_cost(problem, p, scale, eps, options, reports, symmetric=False):
    """<P, C> / scale of one `Problem`, its costs divided by ``scale`` and solved at ``eps`` (scaled), (1,).

    Only the last round's solver report goes to ``reports``: an earlier round, on too few pairs, may have stalled,
    and its solution is not the one returned.  A ``symmetric`` problem (a measure against itself, whose x and y
    cells are the same) keeps a symmetric set of cell pairs, in blocks of one row cell each (`_blocks`), so
    that its truncated kernel is symmetric too and the solver's symmetric updates apply.
    """
    if symmetric:
        options = {**options, "symmetric": True}
    x, y, a, b = problem.x[None], problem.y[None], problem.a[None], problem.b[None]
    nearest = problem.nearest / scale
    target = math.log(0.5) + 2 * math.log(options["tol"] * eps / max(problem.largest / scale, eps))  # log delta*
    f, g = _start(problem, p, scale, eps, options)
    kept = _kept_pairs(_log_bounds(problem, nearest, f, g, eps), target, symmetric)
    for _ in range(max(1, _ROUNDS)):
        blocks, round_reports = _blocks(problem, kept, 0 if symmetric else _ROWS_PER_BLOCK), []
        value, f, g, u, v, _ = OnlineEntropicCost.apply(x, y, a, b, p, scale, eps, options, round_reports, blocks)
        f = f + eps * torch.log(torch.where(a > 0, u, 1.0))  # absorbed potentials of the points of positive weight
        g = g + eps * torch.log(torch.where(b > 0, v, 1.0))
        bounds = _log_bounds(problem, nearest, f[0], g[0], eps)
        excluded = _excluded_bound(bounds, kept)
        if excluded <= target:
            reports.extend(round_reports)
            return value
        kept = kept | _kept_pairs(bounds, target, symmetric)
    reports.extend(round_reports)
    warnings.warn(
        f"sinkhorn(backend='multiscale'): after {max(1, _ROUNDS)} round(s) the mass of the cell pairs left out is still "
        f"bounded by only exp({excluded:.3g}), above the exp({target:.3g}) that keeps the value within tol; "
        "use backend='online' for the untruncated problem.", RuntimeWarning, stacklevel=4)
    return value


def _start(problem, p, scale, eps, options):
    """Potentials (f, g) of the points from the coarse problem between the cells' centroids (same eps).

    The coarse solve stops at tol 1e-4 or after _COARSE_WORK units of work, converged or not: at eps = 1e-4 in
    the unit cube it ran out of 10^4 (4 s of a 265 s solve at n = 10^4), and the pairs its potentials choose are
    checked, and extended, after the fine solve anyway.
    """
    x_cells, y_cells = problem.x_cells, problem.y_cells
    a, b = problem.a.detach().to(WORKING_DTYPE), problem.b.detach().to(WORKING_DTYPE)
    x_centres = _centroids(x_cells, problem.x.detach())
    y_centres = _centroids(y_cells, problem.y.detach())
    coarse_a, coarse_b = x_cells.sums(a), y_cells.sums(b)
    coarse = _online.OnlineCost(x_centres[None], y_centres[None], p, scale)
    coarse_options = {**options, "tol": max(options["tol"], 1e-4), "max_iter": min(options["max_iter"], _COARSE_WORK)}
    solution = _sinkhorn_solver.solve(coarse, coarse_a[None], coarse_b[None], eps, **coarse_options)
    plan = solution.plan
    big_f, big_g = _sinkhorn_solver._absorb(plan.kernel.f, plan.kernel.g, plan, coarse_a[None], coarse_b[None], eps)
    to_y = _online.OnlineCost(x_centres[None], problem.y.detach()[None], p, scale)
    g = to_y.c_transform_columns(big_f, coarse_a[None], b[None], eps)
    to_x = _online.OnlineCost(problem.x.detach()[None], y_centres[None], p, scale)
    f = to_x.c_transform_rows(big_g, a[None], coarse_b[None], eps)
    return f[0], g[0]


def _centroids(cells, points):
    """The mean of each cell's sorted ``points``, (C, d), in their dtype."""
    sums = torch.zeros(len(cells.counts), points.shape[1], dtype=WORKING_DTYPE, device=points.device)
    sums.index_add_(0, cells.of_points(), points.to(WORKING_DTYPE))
    return (sums / cells.counts[:, None]).to(points.dtype)


def _log_bounds(problem, nearest, f, g, eps):
    """log delta_IJ of the module's docstring, (Cx, Cy).

    A point of zero weight counts as one of weight 1: its potential is a
    c-transform, whose kernel row (column) sums to about 1 and gives the
    gradient with respect to its weight; the bound then keeps that row's
    left-out part below delta* of it.
    """
    x_weights = torch.where(problem.a > 0, problem.a, 1).detach().to(WORKING_DTYPE)
    y_weights = torch.where(problem.b > 0, problem.b, 1).detach().to(WORKING_DTYPE)
    phi = problem.x_cells.maxima(f - eps * torch.log(x_weights))
    psi = problem.y_cells.maxima(g - eps * torch.log(y_weights))
    mass_x, mass_y = problem.x_cells.sums(x_weights), problem.y_cells.sums(y_weights)
    return (torch.log(mass_x)[:, None] + torch.log(mass_y)[None, :]
            + (phi[:, None] + psi[None, :] - nearest) / eps)


def _kept_pairs(bounds, target, symmetric=False):
    """The cell pairs to keep, (Cx, Cy) bool: all but those of smallest bound whose bounds sum to at most exp(target).

    ``bounds`` are the `_log_bounds`; every cell keeps at least the pair of its largest bound.  ``symmetric``:
    a pair is kept with its transpose (which only adds pairs).
    """
    flat = bounds.flatten()
    ascending, order = torch.sort(flat)
    dropped = int((torch.logcumsumexp(ascending, 0) <= target).sum())
    kept = torch.ones_like(flat, dtype=torch.bool)
    kept[order[:dropped]] = False
    kept = kept.view_as(bounds)
    kept[torch.arange(len(bounds)), bounds.argmax(1)] = True
    kept[bounds.argmax(0), torch.arange(bounds.shape[1])] = True
    return kept | kept.T if symmetric else kept


def _excluded_bound(bounds, kept):
    """log of the bound on the mass of the pairs left out: logsumexp of their `_log_bounds` (-inf if none)."""
    return float(torch.logsumexp(torch.where(kept, -math.inf, bounds).flatten(), 0))


def _blocks(problem, kept, rows_per_block):
    """Product blocks: runs of consecutive x cells of about ``rows_per_block`` rows (at least one cell), with the
    columns their pairs keep."""
    x_starts, y_starts = problem.x_cells.starts.tolist(), problem.y_cells.starts
    y_counts = problem.y_cells.counts
    blocks, first = [], 0
    cells = len(x_starts) - 1
    while first < cells:
        last = first + 1
        while last < cells and x_starts[last + 1] - x_starts[first] <= rows_per_block:
            last += 1
        columns_cells = kept[first:last].any(0).nonzero().squeeze(1)
        columns = _ranges(y_starts[columns_cells], y_counts[columns_cells])
        blocks.append((slice(x_starts[first], x_starts[last]), columns))
        first = last
    return blocks


def _ranges(starts, counts):
    """The concatenation of range(start, start + count) over the pairs, a long tensor."""
    offsets = torch.repeat_interleave(starts - torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]]), counts)
    return torch.arange(int(counts.sum()), device=starts.device) + offsets
