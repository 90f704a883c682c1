"""Nested grids over two point clouds (a quadtree in 2-D, an octree in 3-D), sorted once for all their levels.

Level l cuts the cube that bounds both clouds into 2^l cells a side.  The
points are sorted by the Morton code of their cell at the finest level (the
bits of the cell's indices along the axes, interleaved), so that the points of
any cell of any level are consecutive, and so are the children of a cell among
the occupied cells of the next level.
"""

import math
from typing import NamedTuple

import torch

from divergences import _grid
from divergences._log_kernel import WORKING_DTYPE

_LEVELS_BELOW = 2  # levels below the one of about a point a cell (clustered points fill finer cells)
_CODE_BITS = 62  # of an int64 Morton code


class Tree(NamedTuple):
    """The occupied cells of one cloud at every level, 0 (one cell) to the finest."""

    order: torch.Tensor  # (n,) sorted position -> original index
    starts: list  # per level l: (C_l + 1,) offsets of its occupied cells in the sorted order
    children: list  # per level l but the finest: (C_l + 1,) offsets of each cell's children among level l + 1's

    def cells(self, level):
        """The `_grid.Cells` of ``level``."""
        return _grid.Cells(self.order, self.starts[level])

    def children_of(self, level):
        """The cells of ``level`` + 1 grouped by their parent, as `_grid.Cells` of cell indices (for
        ``_grid.covered_pairs``)."""
        return _grid.Cells(None, self.children[level])


def trees(x, y):
    """The `Tree` of x (n, d) and that of y (m, d), on one cube; their finest level has about a point a cell,
    refined `_LEVELS_BELOW` more times."""
    origin, extent = _grid.bounding_cube(x, y)
    d = x.shape[1]
    depth = min(math.ceil(math.log2(max(len(x), len(y), 2)) / d) + _LEVELS_BELOW, _CODE_BITS // d)
    side = extent / 2**depth if extent > 0 else 1.0
    return _tree(x, origin, side, depth), _tree(y, origin, side, depth)


def _tree(points, origin, side, depth):
    points = points.detach().to(WORKING_DTYPE)
    n, d = points.shape
    index = ((points - origin) / side).floor().long().clamp_(0, 2**depth - 1)  # (n, d) at the finest level
    code = torch.zeros(n, dtype=torch.long, device=points.device)
    for bit in range(depth):
        for axis in range(d):
            code |= ((index[:, axis] >> bit) & 1) << (bit * d + d - 1 - axis)
    code, order = torch.sort(code, stable=True)
    starts = []
    for level in range(depth + 1):
        keys = code >> (d * (depth - level))
        first = torch.ones(n, dtype=torch.bool, device=points.device)
        first[1:] = keys[1:] != keys[:-1]
        starts.append(torch.cat([first.nonzero().squeeze(1), torch.tensor([n], device=points.device)]))
    # every start of a level is one of the next level's: its position there is the first child
    children = [torch.searchsorted(finer, coarser) for coarser, finer in zip(starts, starts[1:])]
    return Tree(order, starts, children)
