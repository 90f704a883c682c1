"""One grid over two point clouds: its occupied cells, and the point pairs that pairs of cells cover."""

import math
from typing import NamedTuple

import torch

from divergences._log_kernel import WORKING_DTYPE


class Cells(NamedTuple):
    """The occupied cells of one cloud: the order that sorts its points by cell, and each cell's offsets there."""

    order: torch.Tensor  # (n,) sorted position -> original index
    starts: torch.Tensor  # (C + 1,) offsets of the cells in the sorted order

    @property
    def counts(self):
        return self.starts[1:] - self.starts[:-1]

    def of_points(self):
        """The cell of each sorted point, (n,)."""
        return torch.repeat_interleave(torch.arange(len(self.counts), device=self.starts.device), self.counts)

    def sums(self, values):
        """Sums of sorted per-point ``values`` (n, ...) over each cell, (C, ...)."""
        return torch.segment_reduce(values, "sum", offsets=self.starts)

    def maxima(self, values):
        """Largest sorted per-point ``values`` (n,) over each cell, (C,)."""
        return torch.segment_reduce(values, "max", offsets=self.starts)


def bounding_cube(x, y):
    """The corner (d,) float64 and the side of the smallest axis-aligned cube from that corner over x (n, d) and
    y (m, d)."""
    both = torch.cat([x, y]).detach().to(WORKING_DTYPE)
    return both.amin(0), float((both.amax(0) - both.amin(0)).max())


def grid_cells(x, y, points_per_cell):
    """The cells of x (n, d) and y (m, d) on one grid over both, lexicographic by cell, and the cell side."""
    origin, extent = bounding_cube(x, y)
    d = x.shape[1]
    per_axis = max(1, math.floor((max(len(x), len(y)) / points_per_cell) ** (1 / d)))  # (cells <= points / per cell)
    side = extent / per_axis if extent > 0 else 1.0
    return _cells(x, origin, side, per_axis), _cells(y, origin, side, per_axis), side


def _cells(points, origin, side, per_axis):
    points = points.detach().to(WORKING_DTYPE)
    index = ((points - origin) / side).floor().long().clamp_(0, per_axis - 1)  # (n, d)
    key = torch.zeros(len(points), dtype=torch.long, device=points.device)
    for axis in range(points.shape[1]):
        key = key * per_axis + index[:, axis]
    sorted_keys, order = torch.sort(key, stable=True)
    _, counts = torch.unique_consecutive(sorted_keys, return_counts=True)
    return Cells(order, torch.cat([counts.new_zeros(1), counts.cumsum(0)]))


def columns_expanded(cell_pairs, column_starts):
    """(x cell, y point) for each y point of the y cell of each pair of cells, in the pairs' order."""
    counts = (column_starts[1:] - column_starts[:-1])[cell_pairs.columns]
    rows, firsts = (torch.repeat_interleave(values, counts) for values in (cell_pairs.rows, column_starts[cell_pairs.columns]))
    return rows, firsts + offsets(counts)


def rows_expanded(cell_rows, x_cells, points=slice(None)):
    """Row-major (x point, y point) pairs: each x point (of the sorted ``points``, a slice of whole cells) with the
    y points of its cell's row of ``cell_rows``."""
    point_cells = x_cells.of_points()[points]
    lengths = (cell_rows.row_starts[1:] - cell_rows.row_starts[:-1])[point_cells]
    rows = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths) + (points.start or 0)
    firsts = torch.repeat_interleave(cell_rows.row_starts[:-1][point_cells], lengths)
    return rows, cell_rows.columns[firsts + offsets(lengths)]


def candidates(cell_rows, x_cells):
    """The number of `rows_expanded` pairs of all the x points."""
    return int(_pairs_per_cell(cell_rows, x_cells).sum())


def _pairs_per_cell(cell_rows, x_cells):
    return (cell_rows.row_starts[1:] - cell_rows.row_starts[:-1]).long() * x_cells.counts


def point_blocks(cell_rows, x_cells, size):
    """Slices of the sorted x points, whole cells each, whose `rows_expanded` pairs number about ``size`` at most
    (a cell with more is a block of its own)."""
    ends = torch.cumsum(_pairs_per_cell(cell_rows, x_cells), 0).tolist()
    starts = x_cells.starts.tolist()
    blocks, first, done = [], 0, 0
    for cell, end in enumerate(ends):
        if end - done > size and cell > first:
            blocks.append(slice(starts[first], starts[cell]))
            first, done = cell, ends[cell - 1]
    blocks.append(slice(starts[first], starts[len(ends)]))
    return blocks


def offsets(lengths):
    """0, 1, ..., length - 1 for each of ``lengths``, concatenated."""
    total = int(lengths.sum())
    return torch.arange(total, device=lengths.device) - torch.repeat_interleave(lengths.cumsum(0) - lengths, lengths)


def covered_pairs(row_cells, column_cells, x_cells, y_cells):
    """The (x point, y point) pairs, in the cells' sorted orders, that the cell pairs (row_cells[k],
    column_cells[k]) cover, cell pair by cell pair, row-major in each."""
    x_counts = x_cells.counts[row_cells]
    points = torch.repeat_interleave(x_cells.starts[row_cells], x_counts) + offsets(x_counts)  # each pair's x points
    lengths = torch.repeat_interleave(y_cells.counts[column_cells], x_counts)  # and the length of their y runs
    firsts = torch.repeat_interleave(y_cells.starts[column_cells], x_counts)
    run_starts = torch.cumsum(lengths, 0) - lengths
    total = int(run_starts[-1] + lengths[-1]) if len(lengths) else 0
    columns = torch.arange(total, device=lengths.device) + torch.repeat_interleave(firsts - run_starts, lengths)
    return torch.repeat_interleave(points, lengths), columns


def groups(sizes, size):
    """Slices of consecutive items whose ``sizes`` (K,) add up to about ``size`` at most (up to twice, or one item
    larger on its own), covering all K."""
    if not len(sizes):
        return []
    windows = (torch.cumsum(sizes, 0) - 1).div_(size, rounding_mode="floor")
    _, counts = torch.unique_consecutive(windows, return_counts=True)
    stops = torch.cumsum(counts, 0).tolist()
    return [slice(start, stop) for start, stop in zip([0, *stops[:-1]], stops)]
