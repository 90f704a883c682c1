"""frechet, frechet_gaussians, gaussian_fit: closed forms of W2 between Gaussians, scipy's sqrtm formula, properties."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import as_library, float_dtypes, libraries, sample_pairs

from divergences import frechet, frechet_gaussians, gaussian_fit


def sqrtm_formula(x, y):
    """The FID formula as pytorch-fid computes it: numpy.cov and scipy.linalg.sqrtm of Σx Σy."""
    mean_x, mean_y = x.mean(0), y.mean(0)
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(cov_x @ cov_y).real
    return np.sum((mean_x - mean_y) ** 2) + np.trace(cov_x) + np.trace(cov_y) - 2 * np.trace(root)


def random_cov(rng, d):
    factor = rng.normal(size=(d, d))
    return factor @ factor.T / d + 0.1 * np.eye(d)


def test_commuting_covariances_give_the_sum_of_squared_root_differences():
    # Diagonal covariances: W2² = |μx - μy|² + Σ (sqrt(a_i) - sqrt(b_i))².
    a, b = np.array([4.0, 1.0, 9.0]), np.array([1.0, 1.0, 0.25])
    mean_x, mean_y = np.array([1.0, 2.0, 3.0]), np.array([0.0, 2.0, 5.0])
    expected = 1 + 4 + (2 - 1) ** 2 + 0 + (3 - 0.5) ** 2
    assert float(frechet_gaussians(mean_x, np.diag(a), mean_y, np.diag(b))) == pytest.approx(expected, rel=1e-14)


def test_non_commuting_covariances_match_the_sqrtm_formula():
    # tr((Σx^½ Σy Σx^½)^½) = tr((Σx Σy)^½): scipy's sqrtm of the product is the oracle on well-conditioned covariances.
    rng = np.random.default_rng(0)
    for d in (2, 5, 20):
        cov_x, cov_y = random_cov(rng, d), random_cov(rng, d)
        mean_x, mean_y = rng.normal(size=d), rng.normal(size=d)
        root = scipy.linalg.sqrtm(cov_x @ cov_y).real
        expected = np.sum((mean_x - mean_y) ** 2) + np.trace(cov_x + cov_y - 2 * root)
        assert float(frechet_gaussians(mean_x, cov_x, mean_y, cov_y)) == pytest.approx(expected, rel=1e-10)


def test_a_point_mass_against_a_gaussian_is_the_mean_gap_plus_the_trace():
    # Σx = 0: W2² = |μx - μy|² + tr Σy (every bit of y's spread must move).
    rng = np.random.default_rng(1)
    cov = random_cov(rng, 4)
    value = frechet_gaussians(np.zeros(4), np.zeros((4, 4)), np.ones(4), cov)
    assert float(value) == pytest.approx(4 + np.trace(cov), rel=1e-13)


def test_samples_match_the_sqrtm_formula_of_pytorch_fid():
    rng = np.random.default_rng(2)
    for n, m, d in ((50, 60, 5), (300, 200, 20), (500, 500, 64)):
        x = rng.normal(size=(n, d))
        y = 1.5 * rng.normal(size=(m, d)) @ random_cov(rng, d) + 0.3
        assert float(frechet(x, y)) == pytest.approx(sqrtm_formula(x, y), rel=1e-9)


def test_fewer_points_than_dimensions_agrees_with_the_covariance_route():
    # n - 1 <= d: the samples are their own factors; the stored statistics go through eigh. Both are exact.
    rng = np.random.default_rng(3)
    for n, m, d in ((5, 7, 30), (10, 300, 20), (100, 120, 2048)):
        x, y = rng.normal(size=(n, d)), 2 * rng.normal(size=(m, d)) + 0.1
        fit_x, fit_y = gaussian_fit(x), gaussian_fit(y)
        expected = frechet_gaussians(fit_x.mean, fit_x.cov, fit_y.mean, fit_y.cov)
        assert float(frechet(x, y)) == pytest.approx(float(expected), rel=1e-10)


def test_a_shift_by_c_gives_the_squared_norm_of_c():
    # Same covariance, means c apart: FD = |c|².
    rng = np.random.default_rng(4)
    x, shift = rng.normal(size=(40, 6)), rng.normal(size=6)
    assert float(frechet(x, x + shift)) == pytest.approx(float(shift @ shift), rel=1e-10)


def test_scaling_by_s_gives_s_minus_1_squared_times_the_trace():
    # Σy = s² Σx with the same mean: tr(Σx + s² Σx - 2 s Σx) = (s - 1)² tr Σx.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 4))
    x -= x.mean(0)
    trace = np.trace(np.cov(x, rowvar=False))
    assert float(frechet(x, 3 * x)) == pytest.approx(4 * trace, rel=1e-10)


def test_gaussian_fit_is_numpy_mean_and_cov():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(25, 3))
    fit = gaussian_fit(x)
    np.testing.assert_allclose(fit.mean, x.mean(0), rtol=1e-14)
    np.testing.assert_allclose(fit.cov, np.cov(x, rowvar=False), rtol=1e-12)


@given(sample_pairs(st.integers(2, 9), st.integers(1, 6), st.floats(-5, 5)))
def test_symmetric_non_negative_and_permutation_invariant(pair):
    x, y = pair
    value = float(frechet(x, y))
    scale = 1 + np.abs(x).max() ** 2 + np.abs(y).max() ** 2
    assert value >= 0
    assert float(frechet(y, x)) == pytest.approx(value, abs=1e-9 * scale)
    assert float(frechet(x[::-1], y[::-1])) == pytest.approx(value, abs=1e-9 * scale)


@given(hnp.arrays(np.float64, st.tuples(st.integers(2, 9), st.integers(1, 6)), elements=st.floats(-5, 5)))
def test_a_sample_is_at_distance_zero_from_itself(x):
    assert float(frechet(x, x)) <= 1e-9 * (1 + np.abs(x).max() ** 2)


@given(libraries, float_dtypes)
def test_library_dtype_and_shape_follow_the_inputs(library, dtype):
    rng = np.random.default_rng(7)
    x, y = as_library(rng.normal(size=(2, 20, 3)), library, dtype), as_library(rng.normal(size=(2, 15, 3)), library, dtype)
    value = frechet(x, y)
    assert isinstance(value, torch.Tensor) == (library == "torch")
    assert value.shape == (2,) and str(value.dtype).endswith(dtype)
    # float32 inputs are accumulated in float64: the result is float64's, rounded.
    exact = frechet(as_library(np.asarray(x, np.float64) if library == "numpy" else x.double().numpy(), "numpy"),
                    as_library(np.asarray(y, np.float64) if library == "numpy" else y.double().numpy(), "numpy"))
    np.testing.assert_allclose(np.asarray(value, np.float64), exact, rtol=1e-6)


def test_a_batch_equals_a_loop():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(3, 12, 4)), rng.normal(size=(1, 9, 4)) + 1
    batched = frechet(x, y)
    np.testing.assert_allclose(batched, [float(frechet(x[i], y[0])) for i in range(3)], rtol=1e-12)


def test_gradients_pass_gradcheck_in_float64():
    rng = np.random.default_rng(9)
    for n, m, d in ((20, 30, 4), (3, 4, 4)):  # covariance factors and sample factors
        x = torch.tensor(rng.normal(size=(n, d)), requires_grad=True)
        y = torch.tensor(rng.normal(size=(m, d)) + 0.5, requires_grad=True)
        assert torch.autograd.gradcheck(frechet, (x, y))
    mean_x, mean_y = (torch.tensor(rng.normal(size=3), requires_grad=True) for _ in range(2))
    cov_x, cov_y = (torch.tensor(random_cov(rng, 3), requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(lambda a, b, c, e: frechet_gaussians(a, (b + b.T) / 2, c, (e + e.T) / 2),
                                    (mean_x, cov_x, mean_y, cov_y))


def test_float32_on_features_of_large_norm_stays_accurate():
    # Accumulated in float64: float32 features far from the origin lose nothing to cancellation.
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(200, 8)) + 1e3, rng.normal(size=(200, 8)) + 1e3 + 0.1
    exact = float(frechet(x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)))
    assert float(frechet(x.astype(np.float32), y.astype(np.float32))) == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((1, 3)), np.zeros((4, 3)), "`x` should hold at least 2 points"),
    (np.zeros((4, 3)), np.zeros((4, 2)), "same dimension"),
    (np.zeros((0, 3)), np.zeros((4, 3)), "`x` should not be empty"),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), np.zeros((4, 2)), "`x` should be finite"),
    (np.zeros((2, 4, 3)), np.zeros((3, 4, 3)), "batch"),
])
def test_bad_samples_are_refused_by_name(x, y, message):
    with pytest.raises(ValueError, match=message):
        frechet(x, y)


def test_bad_statistics_are_refused_by_name():
    cov = np.eye(2)
    with pytest.raises(ValueError, match="`cov_x` should be symmetric"):
        frechet_gaussians(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), cov)
    with pytest.raises(ValueError, match="`cov_y` should be positive semi-definite"):
        frechet_gaussians(np.zeros(2), cov, np.zeros(2), np.diag([1.0, -0.5]))
    with pytest.raises(ValueError, match=r"`cov_y` should be a \(\.\.\., 2, 2\)"):
        frechet_gaussians(np.zeros(2), cov, np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="`mean_y` should be a non-empty"):
        frechet_gaussians(np.zeros(2), cov, np.zeros(3), cov)
    with pytest.raises(TypeError, match="`mean_x`"):
        frechet_gaussians("a", cov, np.zeros(2), cov)

