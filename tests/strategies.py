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
