"""Exact transport between point clouds without their cost matrix: POT's lazy network simplex.

``ot.emd2_lazy`` computes each cost |x_i - y_j|^p (p = 1 or 2) from the
coordinates when the simplex asks for it, so it needs O((n + m) d) memory
instead of the n x m matrix, at about twice the time of the dense solver.
The guarantees are those of ``_exact``: a capped run is resumed from its
potentials, and the optimum is certified by a dual bound whose c-transforms
are taken by blocks of rows computed from the coordinates, or the caller is
warned.  The plan comes back sparse: at most n + m - 1 pairs.
"""

from typing import NamedTuple

import numpy as np
import ot
import torch

from divergences import _exact, _scaling
from divergences._cost import ground_cost

METRICS = {1.0: "euclidean", 2.0: "sqeuclidean"}
"""The exponents p whose cost |x - y|^p POT computes on the fly, and its names for them."""

_BLOCK = 1 << 20  # cost entries computed at a time for the c-transforms (8 MiB)


class PointCosts(NamedTuple):
    """|x_i - y_j|^p as the certificate and the c-transforms read it, computed by blocks of rows."""

    x: np.ndarray  # (n, d), float64
    y: np.ndarray  # (m, d)
    p: float

    @property
    def shape(self):
        return len(self.x), len(self.y)

    def largest(self):
        return max(float(block.max()) for _, block in self._blocks(slice(None), slice(None)))

    def column_minima(self, u, rows=slice(None)):
        """min over the ``rows`` i of C_ij - u_i, for each column j."""
        u = u[rows]
        v = np.full(len(self.y), np.inf)
        for block_rows, block in self._blocks(rows, slice(None)):
            np.minimum(v, (block - u[block_rows, None]).min(axis=0), out=v)
        return v

    def row_minima(self, v, cols=slice(None)):
        """min over the ``cols`` j of C_ij - v_j, for each row i."""
        v = v[cols]
        return np.concatenate([(block - v).min(axis=1) for _, block in self._blocks(slice(None), cols)])

    def _blocks(self, rows, cols):
        """(slice of the selected rows, their cost block) pairs, each block of at most _BLOCK entries."""
        x, y = torch.from_numpy(self.x[rows]), torch.from_numpy(self.y[cols])
        step = max(1, _BLOCK // max(1, len(y)))
        for start in range(0, len(x), step):
            block_rows = slice(start, start + step)
            yield block_rows, ground_cost(x[block_rows], y, self.p).numpy()


class Solution(NamedTuple):
    """The optimum of one problem, with costs relative to ``unit``^p (at most 1): see ``solve``."""

    value: float
    rows: np.ndarray  # (k,) indices of the pairs that carry mass
    cols: np.ndarray  # (k,)
    masses: np.ndarray  # (k,)
    u: np.ndarray  # (n,)
    v: np.ndarray  # (m,)
    unit: float  # a power of two at least the largest distance between points of positive weight
    shortfall: str | None  # as in ``_exact.solve``


def solve(x, y, a, b, p):
    """Optimal transport between weighted point clouds under |x - y|^p, p in METRICS.

    Parameters
    ----------
    x, y : (n, d) and (m, d) float64 ndarrays
    a, b : (n,) and (m,) float64 ndarrays, >= 0, with the same total mass

    The points are divided by ``unit`` (exactly), so that every cost between
    points of positive weight is at most 1; the value and the potentials are
    those of the divided points.  Only the points of positive weight go to
    the solver; the potentials of the others are c-transforms
    (``_exact.tight_potentials``).
    """
    rows, cols = a > 0, b > 0
    support = np.concatenate([x[rows], y[cols]])
    extent = support.max(axis=0) - support.min(axis=0)  # (d,): its norm bounds every distance
    scale = _scaling.power_of_two_above(float(extent.max()))  # so that the norm neither over- nor underflows
    unit = _scaling.power_of_two_above(scale * float(np.linalg.norm(extent / scale)))
    x, y = x / unit, y / unit
    costs = PointCosts(np.ascontiguousarray(x[rows]), np.ascontiguousarray(y[cols]), p)

    def simplex(cap, warm_start):
        _, log = ot.emd2_lazy(costs.x, costs.y, a[rows], b[cols], metric=METRICS[p], numItermax=cap, log=True,
                              return_matrix=True, check_marginals=False, potentials_init=warm_start)
        return log["G"], log

    value, plan, (support_u, support_v), shortfall = _exact.network_simplex(simplex, costs, a[rows], b[cols])
    u, v = np.zeros(len(a)), np.zeros(len(b))
    u[rows], v[cols] = support_u, support_v
    if not (rows.all() and cols.all()):
        u, v = _exact.tight_potentials(PointCosts(x, y, p), rows, cols, u, v)
    carried = plan.data > 0
    return Solution(value, np.flatnonzero(rows)[plan.row[carried]], np.flatnonzero(cols)[plan.col[carried]],
                    plan.data[carried], u, v, unit, shortfall)
