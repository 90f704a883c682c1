"""kl, js and js_distance: closed forms, properties, scipy as oracle, gradients."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from strategies import as_float, as_library, float_dtypes, histogram_pairs, histograms, libraries

from divergences import js, js_distance, kl

LOG2 = math.log(2)


# Closed forms, one fact per test.


def test_js_of_disjoint_supports_is_exactly_log_2():
    # No bin is shared, so the mixture m puts half of each mass in each bin: JS = log 2.
    assert float(js([0.2, 0.8, 0, 0], [0, 0, 0.3, 0.7])) == LOG2


def test_js_of_disjoint_supports_is_one_bit_in_base_2():
    assert float(js([1, 0], [0, 1], base=2)) == 1.0


def test_js_of_disjoint_supports_is_log_2_for_torch_float32():
    value = js(torch.tensor([0.0, 3.0, 1.0]), torch.tensor([5.0, 0.0, 0.0]))
    assert value.dtype == torch.float32
    assert float(value) == pytest.approx(LOG2, rel=1e-7)


def test_js_of_identical_histograms_is_zero():
    assert float(js([1, 2, 3], [1, 2, 3])) == pytest.approx(0, abs=1e-15)


def test_js_of_two_point_distributions():
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4),
    # JS = 1/2 log(4/3) + 1/2 (1/2 log(2/3) + 1/2 log 2).
    expected = 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2)
    assert float(js([1, 0], [1, 1])) == pytest.approx(expected, rel=1e-14)


def test_js_distance_is_the_square_root_of_js():
    p, q = [0.1, 0.4, 0.5], [0.3, 0.3, 0.4]
    assert float(js_distance(p, q)) == pytest.approx(math.sqrt(float(js(p, q))), rel=1e-15)


def test_kl_of_identical_histograms_is_exactly_zero():
    assert float(kl([0.1, 0.2, 0.7], [0.1, 0.2, 0.7])) == 0.0


def test_kl_against_a_uniform_histogram_is_log_n_minus_entropy():
    # KL(p || uniform) = log n - H(p).
    p = np.array([0.5, 0.25, 0.125, 0.125])
    entropy = -(p * np.log(p)).sum()
    assert float(kl(p, np.ones(4))) == pytest.approx(math.log(4) - entropy, rel=1e-14)


def test_kl_is_infinite_where_q_misses_mass_of_p():
    assert float(kl([1, 1], [1, 0])) == math.inf


def test_kl_ignores_bins_empty_in_p():
    # 0 log(0 / q) = 0, so a bin empty in p contributes nothing, even where q = 0 as well.
    assert float(kl([1, 0, 0], [1, 1, 0])) == pytest.approx(math.log(2), rel=1e-15)


def test_kl_in_bits_is_kl_in_nats_over_log_2():
    p, q = [0.2, 0.8], [0.6, 0.4]
    assert float(kl(p, q, base=2)) == pytest.approx(float(kl(p, q)) / LOG2, rel=1e-15)


def test_inputs_are_normalised_along_the_axis():
    assert float(kl([2, 6], [5, 5])) == pytest.approx(float(kl([0.25, 0.75], [0.5, 0.5])), rel=1e-15)


# Oracles.


@given(histogram_pairs())
def test_js_equals_scipy_jensenshannon_squared(pair):
    p, q = pair
    assert float(js(p, q)) == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-9, abs=1e-15)


@given(histogram_pairs(zeros=False))
def test_kl_equals_scipy_entropy(pair):
    p, q = pair
    assert float(kl(p, q)) == pytest.approx(scipy.stats.entropy(p, q), rel=1e-9, abs=1e-15)


def test_batched_along_axis_0_equals_scipy():
    rng = np.random.default_rng(0)
    p, q = rng.random((6, 4, 3)), rng.random((6, 4, 3))
    np.testing.assert_allclose(js(p, q, axis=0), jensenshannon(p, q, axis=0) ** 2, rtol=1e-12)
    np.testing.assert_allclose(kl(p, q, axis=0), scipy.stats.entropy(p, q, axis=0), rtol=1e-12)


# Properties.


@given(histogram_pairs())
def test_js_is_symmetric_and_between_0_and_log_2(pair):
    p, q = pair
    value = float(js(p, q))
    assert 0 <= value <= LOG2
    assert value == pytest.approx(float(js(q, p)), rel=1e-12, abs=1e-15)


@given(histogram_pairs())
def test_kl_is_non_negative(pair):
    assert float(kl(*pair)) >= 0


@given(histograms())
def test_identity(p):
    assert float(kl(p, p)) == 0.0
    assert float(js(p, p)) <= 1e-15


@given(histogram_pairs(), histograms(n=None))
def test_js_distance_satisfies_the_triangle_inequality(pair, r):
    p, q = pair
    r = np.resize(r, p.shape) + 1e-3
    # JS is exact to a few ulps (about 1e-16), so its root to about 1e-8: the slack.
    assert float(js_distance(p, q)) <= float(js_distance(p, r)) + float(js_distance(r, q)) + 1e-7


@given(histograms(n=5, batch=(3,)), histograms(n=5, batch=(3,)))
def test_batch_equals_loop(p, q):
    batched = js(p, q)
    assert batched.shape == (3,)
    for row in range(3):
        assert batched[row] == pytest.approx(float(js(p[row], q[row])), rel=1e-12, abs=1e-16)


@given(histogram_pairs(), libraries, float_dtypes)
def test_numpy_and_torch_agree_with_dtype_kept(pair, library, dtype):
    # Absolute accuracy: a few units of round-off of the dtype (JS is computed as
    # log 2 minus a sum, so it is exact on disjoint supports); js_distance is compared
    # through its square, since the root amplifies absolute errors near 0.
    p, q = (as_library(h, library, dtype) for h in pair)
    tolerance = 1e-6 if dtype == "float32" else 1e-12
    for function, square in ((js, False), (kl, False), (js_distance, True)):
        value = function(p, q)
        if library == "torch":
            assert isinstance(value, torch.Tensor) and value.dtype == getattr(torch, dtype)
        else:
            assert value.dtype == np.dtype(dtype)
        reference, computed = float(function(*pair)), as_float(value)
        if square:
            reference, computed = reference**2, computed**2
        if math.isfinite(reference):
            assert computed == pytest.approx(reference, rel=tolerance, abs=tolerance)
        else:
            assert computed == math.inf


def test_broadcasting_of_leading_axes():
    rng = np.random.default_rng(1)
    p, q = rng.random((4, 1, 5)), rng.random((3, 5))
    assert js(p, q).shape == (4, 3)
    assert js(p, q)[2, 1] == pytest.approx(float(js(p[2, 0], q[1])), rel=1e-12)


def test_lists_and_integers_give_float64_numpy():
    value = js([1, 0], [0, 1])
    assert isinstance(value, np.floating) and value.dtype == np.float64


# Gradients.


@pytest.mark.parametrize("function", [kl, js, js_distance])
def test_gradcheck_float64(function):
    rng = np.random.default_rng(2)
    p = torch.tensor(rng.random((2, 4)) + 0.1, requires_grad=True)
    q = torch.tensor(rng.random((2, 4)) + 0.1, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, q: function(p, q), (p, q))


@pytest.mark.parametrize("function", [kl, js, js_distance])
def test_gradients_are_finite_where_p_has_empty_bins(function):
    p = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64, requires_grad=True)
    function(p, q).backward()
    assert torch.isfinite(p.grad).all() and torch.isfinite(q.grad).all()


def test_js_gradient_vanishes_on_disjoint_supports():
    # The point of docs/theory.md: once the supports are disjoint, JS is flat at log 2.
    p = torch.tensor([0.0, 0.0, 0.6, 0.4], dtype=torch.float64)
    q = torch.tensor([0.3, 0.7, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    js(p, q).backward()
    assert torch.equal(q.grad, torch.zeros(4, dtype=torch.float64))


def test_js_distance_gradient_at_identity_is_zero_not_nan():
    p = torch.tensor([0.3, 0.7], dtype=torch.float64, requires_grad=True)
    js_distance(p, p.detach()).backward()
    assert torch.equal(p.grad, torch.zeros(2, dtype=torch.float64))


@given(st.floats(0.01, 0.99))
def test_kl_gradient_matches_closed_form(t):
    # d/dt KL((t, 1 - t) || (1/2, 1/2)) = log(t / (1 - t)).
    p = torch.tensor(t, dtype=torch.float64, requires_grad=True)
    kl(torch.stack([p, 1 - p]), torch.tensor([0.5, 0.5], dtype=torch.float64)).backward()
    assert float(p.grad) == pytest.approx(math.log(t / (1 - t)), rel=1e-9, abs=1e-12)


def test_axis_none_compares_two_multi_dimensional_histograms_as_wholes():
    # np.histogram2d's output is one histogram over a grid of bins: with axis=None it is one distribution
    rng = np.random.default_rng(4)
    h1 = np.histogram2d(rng.normal(size=50), rng.normal(size=50), bins=4)[0]
    h2 = np.histogram2d(rng.normal(size=50) + 1, rng.normal(size=50), bins=4)[0]
    assert js(h1, h2, axis=None) == pytest.approx(js(h1.ravel(), h2.ravel()), rel=1e-15)
    assert kl(h1 + 1, h2 + 1, axis=None) == pytest.approx(kl((h1 + 1).ravel(), (h2 + 1).ravel()), rel=1e-15)
    with pytest.raises(ValueError, match="with axis=None, `p` and `q` should be histograms of one shape"):
        js(h1, h2[:3], axis=None)


def test_an_empty_row_of_a_batch_says_how_to_compare_one_multi_dimensional_histogram():
    p = np.array([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="positive total mass.*2 histograms of a .*pass axis=None"):
        js(p, np.ones((2, 2)))


def test_a_list_holding_tensors_that_require_grad_is_a_named_type_error():
    t = torch.tensor(0.5, requires_grad=True)
    with pytest.raises(TypeError, match="`p` is a list holding torch tensors that require grad"):
        kl([t, 0.5], [0.5, 0.5])
