"""shift_sweep: a distribution against its translate by Δ e1, against the closed forms."""

import io
import math

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from divergences import sliced
from divergences.probes.shift_sweep import ShiftSweep, shift_sweep

matplotlib.use("Agg")

BINS, EPS, N = 32, 1e-2, 64


@pytest.fixture(scope="module")
def gaussian():
    return shift_sweep(dimension=2, family="gaussian", n_samples=N, bins=BINS, eps=EPS, seed=0)


@pytest.fixture(scope="module")
def box():
    return shift_sweep(dimension=1, family="box", n_samples=N, bins=BINS, eps=EPS, seed=0)


def test_default_deltas_are_21_points_from_0_past_the_overlap(gaussian, box):
    assert isinstance(gaussian, ShiftSweep)
    np.testing.assert_array_equal(gaussian.delta, np.linspace(0, 8, 21))
    np.testing.assert_array_equal(box.delta, np.linspace(0, 3, 21))
    assert all(getattr(gaussian, name).shape == (21,) for name in ("js_hist", "sinkhorn", "grad_sliced"))


@pytest.mark.parametrize("family", ["gaussian", "box"])
def test_w1_between_shifted_draws_is_the_shift_with_gradient_1(family, gaussian, box):
    # The identity matching moves every point by Δ, and W1 >= |difference of means| = Δ.
    probe = {"gaussian": gaussian, "box": box}[family]
    np.testing.assert_array_equal(probe.w1_exact, probe.delta)
    np.testing.assert_allclose(probe.w1_emd, probe.delta, rtol=0, atol=1e-9)
    apart = probe.delta > 0
    np.testing.assert_allclose(probe.grad_w1[apart], 1.0, rtol=0, atol=1e-9)


def test_box_js_is_exactly_log_2_with_gradient_0_once_the_histograms_are_disjoint(box):
    # Grid [0, 1 + max Δ] = [0, 4] in cells of w = 1/8, so x = 1 is a cell edge: the plain
    # histograms are disjoint once Δ >= 1; the linear ones (mass on the centres within w of each
    # point: up to 1 + w/2 for P, beyond Δ - w for P_Δ) once Δ - w >= 1 + w/2, i.e. Δ >= 1 + 3w/2.
    width = (1 + box.delta.max()) / BINS
    assert width == 1 / 8
    assert np.all(box.js_hist[box.delta >= 1] == math.log(2))
    linear_apart = box.delta >= 1 + 1.5 * width
    assert linear_apart.sum() >= 10
    assert np.all(box.grad_js[linear_apart] == 0)


def test_box_closed_forms_are_min_delta_1_log_2_and_infinite_kl(box):
    # The boxes overlap on a fraction 1 - Δ; each loses log 2 of its mass elsewhere.
    np.testing.assert_allclose(box.js_exact, np.minimum(box.delta, 1) * math.log(2), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(box.kl_exact, np.where(box.delta > 0, np.inf, 0.0))


def test_gaussian_js_is_below_log_2_with_nonzero_gradient_while_the_overlap_is_large(gaussian):
    # Gaussians always overlap; at Δ <= 2 the histograms share most of their mass.
    near = (gaussian.delta > 0) & (gaussian.delta <= 2)
    assert near.sum() == 5
    assert np.all(gaussian.js_hist[near] < math.log(2))
    assert np.all(gaussian.grad_js[near] > 0.05)


def test_gaussian_closed_forms(gaussian):
    # KL(N(Δ e1, I) || N(0, I)) = Δ²/2; JS ~ Δ² I / 8 (Fisher information I = 1), relative error ~ Δ²/8.
    np.testing.assert_array_equal(gaussian.kl_exact, gaussian.delta**2 / 2)
    small = (gaussian.delta > 0) & (gaussian.delta <= 0.8)
    ratio = gaussian.js_exact[small] / (gaussian.delta[small] ** 2 / 8)
    assert np.all(np.abs(ratio - 1) <= gaussian.delta[small] ** 2 / 4)
    assert gaussian.js_exact[0] == 0
    assert np.all(np.diff(gaussian.js_exact) > 0) and np.all(gaussian.js_exact < math.log(2))


def test_sliced_in_one_dimension_equals_emd(box):
    # On the line every direction is ±1, so each slice is the whole 1-D W1 = Δ.
    np.testing.assert_allclose(box.sliced, box.w1_emd, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(box.grad_sliced[box.delta > 0], 1.0, rtol=1e-12)


def test_sliced_of_a_shift_by_delta_e1_is_delta_times_mean_abs_cos(gaussian):
    # Along direction θ a shift by Δ e1 is a 1-D shift by Δ cos φ: SW1 = Δ mean|cos φ_k|,
    # with the same directions (same seed, same dimension) as for δ0 vs δ_e1.
    mean_abs_cos = float(sliced([[0.0, 0.0]], [[1.0, 0.0]], p=1, seed=0))
    np.testing.assert_allclose(gaussian.sliced, gaussian.delta * mean_abs_cos, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gaussian.grad_sliced[gaussian.delta > 0], mean_abs_cos, rtol=1e-12)


@pytest.mark.parametrize("family", ["gaussian", "box"])
def test_sinkhorn_is_within_eps_log_n_of_w1(family, gaussian, box):
    # The cross term lies in [W1, W1 + eps log n] (the identity plan's entropy) and the
    # self term in [0, eps log n]; plus the solver's marginal error.
    probe = {"gaussian": gaussian, "box": box}[family]
    bound = EPS * math.log(N) + 1e-4
    np.testing.assert_allclose(probe.sinkhorn, probe.delta, rtol=0, atol=bound)


def test_plot_draws_values_and_gradients_on_two_axes(gaussian):
    figure = gaussian.plot()
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 2
    figure.savefig(io.BytesIO(), format="png")


def test_table_has_five_deltas_and_log_2(box):
    table = box.table()
    assert "0.693147" in table
    assert len(table.splitlines()) == 2 + 5
    assert table.splitlines()[0].startswith("| delta | w1_exact |")


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="`family` should be 'gaussian' or 'box'"):
        shift_sweep(family="cauchy")
    with pytest.raises(ValueError, match="`deltas` should be"):
        shift_sweep([-1.0, 0.0])
    with pytest.raises(ValueError, match="`dimension` should be"):
        shift_sweep(dimension=0)
