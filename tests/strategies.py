"""Hypothesis strategies: histograms, weighted point clouds, libraries and dtypes."""

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def histograms(draw, n=None, batch=(), zeros=True):
    """A non-negative (batch..., n) array with positive total mass along the last axis."""
    n = draw(st.integers(1, 12)) if n is None else n
    positive = st.floats(1e-3, 10.0, **finite)
    entries = st.one_of(st.just(0.0), positive) if zeros else positive
    values = draw(hnp.arrays(np.float64, (*batch, n), elements=entries))
    values[..., 0] += 1e-3  # keep every total positive
    return values


@st.composite
def histogram_pairs(draw, zeros=True):
    """Two histograms with the same number of bins."""
    n = draw(st.integers(1, 12))
    return draw(histograms(n=n, zeros=zeros)), draw(histograms(n=n, zeros=zeros))


@st.composite
def clouds(draw, n=None, d=None, scale=10.0):
    """A point cloud (n, d) with coordinates 0 or of magnitude in [1e-6, scale].

    (Below 1e-6, costs fall under the exact solver's pivoting tolerance.)
    """
    n = draw(st.integers(1, 8)) if n is None else n
    d = draw(st.integers(1, 3)) if d is None else d
    coordinate = st.floats(-scale, scale, **finite).filter(lambda v: v == 0 or abs(v) >= 1e-6)
    return draw(hnp.arrays(np.float64, (n, d), elements=coordinate))


@st.composite
def weights(draw, n):
    """Positive weights for n points (not normalised)."""
    return draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.05, 5.0, **finite)))


libraries = st.sampled_from(["numpy", "torch"])
float_dtypes = st.sampled_from(["float32", "float64"])


def as_library(array, library, dtype="float64"):
    """``array`` converted to numpy or torch, in ``dtype``."""
    array = np.asarray(array, dtype=dtype)
    return torch.from_numpy(array) if library == "torch" else array


def as_float(value):
    """A scalar result of either library as a Python float."""
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


@st.composite
def transport_problems(draw, max_points=40):
    """A weighted transport problem (x, y, a, b) of a hard family, weights normalised, some zero.

    Families: uniform clouds, a grid against a shifted grid with a few points
    removed (a degenerate optimal plan), and tight clusters far apart (mass
    has to move between clusters).
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = draw(st.integers(1, 3))
    n, m = draw(st.integers(2, max_points)), draw(st.integers(2, max_points))
    family = draw(st.sampled_from(["uniform", "grid", "clusters"]))
    if family == "uniform":
        x, y = rng.random((n, d)), rng.random((m, d)) + 0.2 * rng.random()
    elif family == "grid":
        x = _grid(n, d)[: max(2, n - int(rng.integers(0, 4)))]
        y = _grid(m, d) + 0.5
    else:
        centres = 10 * rng.random((int(rng.integers(2, 5)), d))
        x = centres[rng.integers(0, len(centres), n)] + 0.01 * rng.normal(size=(n, d))
        y = centres[rng.integers(0, len(centres), m)] + 0.01 * rng.normal(size=(m, d))
    a, b = rng.random(len(x)), rng.random(len(y))
    if draw(st.booleans()):  # some zero weights
        a[rng.random(len(a)) < 0.2] = 0
        b[rng.random(len(b)) < 0.2] = 0
        a[0], b[0] = a[0] + 0.1, b[0] + 0.1
    return x, y, a / a.sum(), b / b.sum()


def _grid(count, d):
    """The regular grid of about ``count`` integer points in d dimensions (at least 2 per side)."""
    side = max(2, round(count ** (1 / d)))
    axes = np.meshgrid(*[np.arange(side, dtype=float)] * d, indexing="ij")
    return np.stack(axes, -1).reshape(-1, d)


def sample_pairs(sizes, dims, elements):
    """Two samples (n, d) and (m, d) of one dimension: n and m drawn from ``sizes``, d from ``dims``."""
    shapes = st.tuples(sizes, sizes, dims)
    return shapes.flatmap(lambda s: st.tuples(hnp.arrays(np.float64, (s[0], s[2]), elements=elements),
                                              hnp.arrays(np.float64, (s[1], s[2]), elements=elements)))
