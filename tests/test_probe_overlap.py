"""few_samples and high_dimension: the two reasons supports don't overlap, against the math."""

import io
import math

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from divergences.probes.overlap import FewSamples, HighDimension, few_samples, high_dimension

matplotlib.use("Agg")

N, TRIALS = 200, 50


@pytest.fixture(scope="module")
def samples():
    return few_samples(n_samples=N, trials=TRIALS, seed=0)


@pytest.fixture(scope="module")
def segments():
    return high_dimension(seed=0)


def test_default_bins_are_the_powers_of_2_up_to_2_to_the_20(samples):
    assert isinstance(samples, FewSamples)
    np.testing.assert_array_equal(samples.bins, 2 ** np.arange(1, 21))
    assert samples.js_trials.shape == samples.shared_trials.shape == (20, TRIALS)
    np.testing.assert_array_equal(samples.js, samples.js_trials.mean(-1))


def test_js_is_exactly_log_2_in_the_trials_where_no_bin_is_shared(samples):
    # Every bracket of the plug-in JS vanishes unless the bin holds points of both samples.
    apart = samples.shared_trials == 0
    assert apart.any()
    assert np.all(samples.js_trials[apart] == math.log(2))
    assert np.all(samples.js_trials[~apart] < math.log(2))


def test_finer_nested_bins_never_decrease_js_nor_increase_sharing(samples):
    # Coarse dyadic cells are unions of fine ones: data processing gives JS_B <= JS_2B in every
    # trial, and a shared fine cell lies in a shared coarse cell (more occupied cells, fewer shared).
    assert np.all(np.diff(samples.js_trials, axis=0) >= 0)
    assert np.all(np.diff(samples.shared_trials, axis=0) <= 0)


def test_with_bins_far_above_n_squared_most_trials_share_no_bin(samples):
    # The n² pairs each share a cell with probability 1 / B: by Markov, P(a shared cell) <= n² / B
    # (0.038 at B = 2^20); 80% leaves room for the binomial spread of 50 trials.
    assert N**2 / samples.bins[-1] < 0.05
    assert np.mean(samples.js_trials[-1] == math.log(2)) >= 0.8
    assert samples.js[-1] > 0.99 * math.log(2)


def test_with_few_bins_js_is_about_bins_minus_1_over_4n(samples):
    # For B << n, JS ≈ chi² / 8 with E chi² = 2 (B - 1) / n; allow 4 standard errors of the mean.
    few = samples.bins <= 8
    expected = (samples.bins[few] - 1) / (4 * N)
    standard_error = samples.js_trials[few].std(-1) / math.sqrt(TRIALS)
    assert np.all(np.abs(samples.js[few] - expected) < 4 * standard_error)
    # With 2 bins JS ≈ chi²_1 / (4n): above 4 / n only if chi²_1 > 16 (probability 6e-5).
    assert np.all(samples.js_trials[0] <= 4 / N)


def test_shared_fraction_is_1_with_few_bins_and_0_beyond_n_squared(samples):
    # 200 uniform points per sample fill 2 cells each with probability 1 - 2^-199.
    assert np.all(samples.shared_trials[0] == 1)
    assert samples.shared[-1] < 0.01


def test_default_dimensions_and_shifts(segments):
    assert isinstance(segments, HighDimension)
    np.testing.assert_array_equal(segments.dimension, [2, 3, 8, 32, 128])
    np.testing.assert_array_equal(segments.shift, [1.0, 0.5, 0.25, 0.0])
    assert all(getattr(segments, name).shape == (5, 4) for name in ("js_exact", "js", "w1", "sliced"))


def test_js_between_segments_on_different_lines_is_exactly_log_2(segments):
    # Points of two continuous samples on different lines coincide with probability 0.
    assert np.all(segments.js == math.log(2))
    assert np.all(segments.js_exact == math.log(2))


def test_w1_strictly_decreases_as_the_shift_goes_to_0_when_d_is_at_least_3(segments):
    # For d >= 3, v is orthogonal to both lines: every distance is sqrt(|x - y|² + s²), increasing in s.
    high = segments.dimension >= 3
    assert np.all(np.diff(segments.w1[high], axis=-1) < 0)  # shifts are decreasing


def test_w1_lies_between_the_orthogonal_shift_bounds_when_d_is_at_least_3(segments):
    # sqrt(W1(0)² + s²) <= W1(s) <= W1(0) + s: Jensen under W1(s)'s plan, and W1(0)'s plan.
    high = segments.dimension >= 3
    w1, w1_at_0, s = segments.w1[high], segments.w1[high][:, -1:], segments.shift
    assert np.all(np.sqrt(w1_at_0**2 + s**2) <= w1 + 1e-9)
    assert np.all(w1 <= w1_at_0 + s + 1e-9)


def test_w1_moves_by_at_most_the_shift_in_every_dimension(segments):
    # Translating Q by s v moves it by W1 = s, and W1 obeys the triangle inequality.
    change = np.abs(segments.w1 - segments.w1[:, -1:])
    assert np.all(change <= segments.shift + 1e-9)


def test_sliced_w1_is_at_most_w1(segments):
    # Projection onto a unit direction is 1-Lipschitz, so each sliced term is <= W1.
    assert np.all(segments.sliced <= segments.w1 + 1e-9)
    assert np.all(segments.sliced > 0)


def test_plots_return_figures(samples, segments):
    for probe in (samples, segments):
        figure = probe.plot()
        assert isinstance(figure, Figure)
        assert len(figure.axes) == 1
        figure.savefig(io.BytesIO(), format="png")


def test_tables_have_a_row_per_value_and_log_2(samples, segments):
    # The default's finest row averages over a few trials that share a cell; 4 trials share none.
    assert "| 1048576 | 0.693147 | 0 |" in few_samples([2, 2**20], trials=4).table()
    assert "0.693147" in segments.table()
    assert samples.table().splitlines()[0] == "| bins | js | shared |"
    assert len(samples.table().splitlines()) == 2 + 20
    assert len(segments.table().splitlines()) == 2 + 5 * 4


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: few_samples([0, 2]), ValueError, "bins"),
        (lambda: few_samples([[2]]), ValueError, "bins"),
        (lambda: few_samples([2.5]), TypeError, "bins"),
        (lambda: few_samples(n_samples=0), ValueError, "n_samples"),
        (lambda: few_samples(trials=1.5), TypeError, "trials"),
        (lambda: high_dimension([1, 3]), ValueError, "dimensions"),
        (lambda: high_dimension(shifts=[-0.1]), ValueError, "shifts"),
        (lambda: high_dimension(shifts=[np.nan]), ValueError, "shifts"),
        (lambda: high_dimension(n_samples=-3), ValueError, "n_samples"),
    ],
)
def test_bad_arguments_are_rejected_naming_the_argument(call, error, name):
    with pytest.raises(error, match=f"`{name}` should be"):
        call()
