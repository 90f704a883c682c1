"""prdc: the prdc package of Naeem et al. as the oracle, closed forms, blocks, properties, errors."""

import contextlib
import io
import sys

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import as_library, float_dtypes, libraries, sample_pairs

from divergences import prdc

prdc_package = pytest.importorskip("prdc")
PRDC_MODULE = sys.modules["divergences.prdc"]  # `divergences.prdc` is the function


def oracle(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the sample sizes
        return prdc_package.compute_prdc(real, fake, k)


@pytest.mark.parametrize("n, m, d, k", [(200, 150, 8, 5), (100, 300, 3, 1), (120, 120, 64, 10), (50, 40, 2, 3)])
def test_matches_the_prdc_package(n, m, d, k):
    rng = np.random.default_rng(n + m + d + k)
    real, fake = rng.normal(size=(n, d)), 1.3 * rng.normal(size=(m, d)) + 0.4
    expected = oracle(real, fake, k)
    result = prdc(real, fake, k=k)
    for name in ("precision", "recall", "density", "coverage"):
        assert float(getattr(result, name)) == pytest.approx(float(expected[name]), rel=1e-12), name


def test_blocks_of_rows_give_the_same_counts(monkeypatch):
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(90, 4)), rng.normal(size=(70, 4)) + 0.3
    whole = prdc(real, fake, k=4)
    monkeypatch.setattr(PRDC_MODULE, "_BLOCK_ENTRIES", 200)  # blocks of 2 or 3 rows
    assert prdc(real, fake, k=4) == whole


def test_a_sample_against_itself_is_perfect():
    # Every point lies in its own ball (distance 0 < its radius): precision, recall and coverage are 1.
    # In general position each ball holds exactly k points (its own and k - 1 nearer neighbours; the k-th is
    # on the boundary, not strictly inside), so the balls hold k·N points in all: density = k·N / (k·N) = 1.
    rng = np.random.default_rng(2)
    points = rng.normal(size=(60, 3))
    result = prdc(points, points, k=3)
    assert [float(v) for v in result] == [1.0, 1.0, 1.0, 1.0]


def test_far_apart_samples_score_zero():
    # No generated point is within any real ball and vice versa.
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 1e3
    assert [float(v) for v in prdc(real, fake, k=2)] == [0.0, 0.0, 0.0, 0.0]


def test_dropping_a_mode_lowers_recall_and_coverage_but_not_precision():
    # Two well-separated modes: generating only one keeps precision, and halves recall and coverage.
    rng = np.random.default_rng(4)
    real = np.concatenate([rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 50])
    fake = rng.normal(size=(400, 2))
    result = prdc(real, fake, k=5)
    assert float(result.precision) > 0.9
    assert float(result.recall) <= 0.5 and float(result.coverage) <= 0.5


# Integer coordinates: every squared distance is exact, so ties (many) are ties for both implementations;
# with real coordinates a distance within round-off of a radius is inside or not by the order of operations.
# At least 5 points a side: the package needs k + 2.
@given(sample_pairs(st.integers(5, 12), st.integers(1, 3), st.integers(-4, 4)))
def test_agrees_with_the_package_and_ignores_the_order_of_points(pair):
    real, fake = pair
    result = prdc(real, fake, k=3)
    assert prdc(real[::-1], fake[::-1], k=3) == result
    expected = oracle(real, fake, 3)
    assert [float(v) for v in result] == pytest.approx([float(expected[n]) for n in result._fields], rel=1e-12)
    assert all(0 <= float(v) <= 1 for v in (result.precision, result.recall, result.coverage))


@given(libraries, float_dtypes)
def test_library_dtype_and_shape_follow_the_inputs(library, dtype):
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(2, 30, 3)), rng.normal(size=(2, 20, 3))
    result = prdc(as_library(real, library, dtype), as_library(fake, library, dtype), k=2)
    for value in result:
        assert isinstance(value, torch.Tensor) == (library == "torch")
        assert value.shape == (2,) and str(value.dtype).endswith(dtype)
    loop = [prdc(real[i].astype(dtype), fake[i].astype(dtype), k=2) for i in range(2)]  # batch = loop
    for j in range(4):
        np.testing.assert_allclose(np.asarray(result[j], np.float64), [float(v[j]) for v in loop])


@pytest.mark.parametrize("real, fake, k, error, message", [
    (np.zeros((5, 2)), np.zeros((9, 2)), 5, ValueError, r"`real` should hold at least 6 points.*k = 5"),
    (np.zeros((9, 2)), np.zeros((2, 2)), 2, ValueError, "`fake` should hold at least 3 points"),
    (np.zeros((9, 2)), np.zeros((9, 3)), 2, ValueError, "same dimension"),
    (np.zeros((9, 2)), np.zeros((9, 2)), 0, ValueError, "`k` should be a positive integer"),
    (np.zeros((9, 2)), np.zeros((9, 2)), 2.5, TypeError, "`k` should be a positive integer"),
    (np.full((9, 2), np.nan), np.zeros((9, 2)), 2, ValueError, "`real` should be finite"),
])
def test_bad_arguments_are_refused_by_name(real, fake, k, error, message):
    with pytest.raises(error, match=message):
        prdc(real, fake, k=k)
