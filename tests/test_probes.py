"""parallel_lines: the WGAN paper's Example 1, against its closed forms."""

import io
import math

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from divergences import sinkhorn, sliced
from divergences.probes import ParallelLines, parallel_lines

matplotlib.use("Agg")

BINS, EPS, N = 32, 1e-3, 256


@pytest.fixture(scope="module")
def probe():
    return parallel_lines(bins=BINS, eps=EPS, n_samples=N, seed=0)


def test_default_thetas_are_41_points_of_minus_one_to_one_with_zero_exactly(probe):
    assert isinstance(probe, ParallelLines)
    assert probe.theta.shape == (41,)
    assert probe.theta[0] == -1 and probe.theta[-1] == 1 and probe.theta[20] == 0
    assert all(getattr(probe, name).shape == (41,) for name in ("js_hist", "sinkhorn", "grad_sliced"))


def test_w1_between_shared_z_samples_is_the_distance_between_the_lines(probe):
    # The identity matching moves every point by exactly |θ|, and no pair is closer.
    np.testing.assert_array_equal(probe.w1_exact, np.abs(probe.theta))
    np.testing.assert_allclose(probe.w1_emd, np.abs(probe.theta), rtol=0, atol=1e-9)


def test_w1_gradient_is_the_sign_of_theta(probe):
    # d|θ|/dθ = ±1: the gradient points back towards θ = 0 from any distance.
    apart = probe.theta != 0
    np.testing.assert_allclose(probe.grad_w1[apart], np.sign(probe.theta[apart]), rtol=0, atol=1e-9)


def test_js_of_histograms_in_disjoint_cells_is_exactly_log_2_and_0_at_0(probe):
    # Cells are 2 / bins wide; beyond that the two samples share no cell.
    apart = np.abs(probe.theta) > 2 / BINS
    assert np.all(probe.js_hist[apart] == math.log(2))
    assert probe.js_hist[probe.theta == 0] == 0
    np.testing.assert_array_equal(probe.js_exact, np.where(probe.theta != 0, math.log(2), 0.0))


def test_kl_of_histograms_in_disjoint_cells_is_infinite(probe):
    # Pθ puts mass in cells where P0 has none.
    apart = np.abs(probe.theta) > 2 / BINS
    assert np.all(np.isinf(probe.kl_hist[apart]))
    assert probe.kl_hist[probe.theta == 0] == 0
    np.testing.assert_array_equal(probe.kl_exact, np.where(probe.theta != 0, np.inf, 0.0))


def test_js_gradient_is_exactly_0_once_bilinear_histograms_are_disjoint(probe):
    # P0's mass sits on the cell centres ±w/2 (w = 2 / bins); a point at θ reaches the
    # centres within w of it, so the supports are disjoint for |θ| >= 3w/2 = 3 / bins.
    apart = np.abs(probe.theta) >= 3 / BINS
    assert np.all(probe.grad_js[apart] == 0)


def test_js_gradient_pushes_theta_away_from_0_while_histograms_overlap(probe):
    # For 0 < |θ| < w the histograms overlap, and JS grows with |θ|.
    near = (probe.theta != 0) & (np.abs(probe.theta) < 2 / BINS)
    assert near.any()
    np.testing.assert_array_equal(np.sign(probe.grad_js[near]), np.sign(probe.theta[near]))


def test_sinkhorn_is_within_eps_log_n_of_w1(probe):
    # <T_eps, C> lies between W1 and W1 + eps KL(identity plan || a ⊗ b) = W1 + eps log n,
    # and each self-transport term between 0 and eps log n; plus the solver's marginal error.
    bound = EPS * math.log(N) + 1e-5
    np.testing.assert_allclose(probe.sinkhorn, np.abs(probe.theta), rtol=0, atol=bound)


def test_sinkhorn_gradient_is_the_sign_of_theta_up_to_eps_over_theta(probe):
    # The entropic plan spreads each point over |Δz| ~ sqrt(eps |θ|), which bends the
    # slope θ / sqrt(θ² + Δz²) of the cost by a relative Δz² / θ² ~ eps / |θ|.
    far = np.abs(probe.theta) >= 0.2
    error = np.abs(probe.grad_sinkhorn[far] - np.sign(probe.theta[far]))
    assert np.all(error <= EPS / np.abs(probe.theta[far]))


def test_sinkhorn_is_the_debiased_divergence():
    # The probe computes the θ-independent self-transport term once; it must match debias=True.
    theta, n = 0.3, 32
    z = np.random.default_rng(0).random(n)
    x, y = np.stack([np.zeros(n), z], -1), np.stack([np.full(n, theta), z], -1)
    expected = float(sinkhorn(x, y, p=1, eps=EPS, debias=True))
    assert parallel_lines([theta], n_samples=n, eps=EPS).sinkhorn[0] == pytest.approx(expected, rel=1e-12)


def test_sliced_w1_of_a_shift_by_theta_e1_is_theta_times_mean_abs_cos(probe):
    # Along direction (cos φ, sin φ) the lines are 1-D translates by θ cos φ, so
    # SW1 = |θ| mean|cos φ_k|; the same seed gives the same directions as for δ0 vs δ_e1.
    mean_abs_cos = float(sliced([[0.0, 0.0]], [[1.0, 0.0]], p=1, seed=0))
    np.testing.assert_allclose(probe.sliced, np.abs(probe.theta) * mean_abs_cos, rtol=1e-12, atol=1e-15)
    apart = probe.theta != 0
    np.testing.assert_allclose(probe.grad_sliced[apart], np.sign(probe.theta[apart]) * mean_abs_cos, rtol=1e-12)


def test_mean_abs_cos_of_random_directions_is_2_over_pi_within_monte_carlo_error():
    # E|cos φ| = 2/π for φ ~ U[0, 2π), with variance 1/2 - 4/π²; 256 directions by default.
    mean_abs_cos = float(sliced([[0.0, 0.0]], [[1.0, 0.0]], p=1, seed=0))
    standard_error = math.sqrt(0.5 - 4 / math.pi**2) / math.sqrt(256)
    assert abs(mean_abs_cos - 2 / math.pi) < 4 * standard_error


def test_plot_draws_values_and_gradients_on_two_axes(probe):
    figure = probe.plot()
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 2
    figure.savefig(io.BytesIO(), format="png")


def test_table_has_the_seven_thetas_and_log_2(probe):
    table = probe.table()
    assert "0.693147" in table
    assert len(table.splitlines()) == 2 + 7
    assert table.splitlines()[0].startswith("| theta | w1_exact |")


def test_thetas_outside_the_grid_are_rejected():
    with pytest.raises(ValueError, match=r"`thetas` should be a one-dimensional array of finite values in \[-1, 1\]"):
        parallel_lines([0.0, 1.5])
    with pytest.raises(ValueError, match="one-dimensional"):
        parallel_lines(np.zeros((2, 2)))
