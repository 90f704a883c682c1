"""js_from_discriminator and critic_w1_estimate: closed forms, bounds, backends, gradients, errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import as_float, as_library, clouds, finite, float_dtypes, libraries

from divergences import critic_w1_estimate, emd, js, js_from_discriminator

LOG2 = math.log(2)
logit_arrays = hnp.arrays(np.float64, st.integers(1, 10), elements=st.floats(-1e4, 1e4, **finite))


# --- js_from_discriminator: closed forms ------------------------------------------------


def test_chance_level_discriminator_gives_zero():
    # D = sigma(0) = 1/2 everywhere: log 2 + (log 1/2 + log 1/2) / 2 = 0
    assert float(js_from_discriminator(np.zeros(5), np.zeros(3))) == 0.0


def test_perfect_discriminator_gives_log_2_even_for_huge_logits():
    # log sigma(1e4) = log(1 - sigma(-1e4)) = 0 to double precision, so the bound is log 2.
    for big in (50.0, 1e4):
        value = js_from_discriminator(np.full(4, big), np.full(3, -big))
        assert value == pytest.approx(LOG2, abs=1e-12)
        assert np.isfinite(value)


def test_confidently_wrong_discriminator_is_finite_and_very_negative():
    # log sigma(-1e4) = -1e4 exactly: the estimate is log 2 - 1e4, not -inf or NaN.
    value = float(js_from_discriminator([-1e4], [1e4]))
    assert value == pytest.approx(LOG2 - 1e4, rel=1e-15)


def test_equals_log_2_minus_half_the_bce_discriminator_loss():
    # L_D = BCE(l_real, 1) + BCE(l_fake, 0), and JS-hat = log 2 - L_D / 2 for any logits.
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(7, generator=generator, dtype=torch.float64)
    fake = torch.randn(5, generator=generator, dtype=torch.float64)
    loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
        fake, torch.zeros_like(fake)
    )
    torch.testing.assert_close(js_from_discriminator(real, fake), LOG2 - loss / 2, rtol=0, atol=1e-15)


def test_optimal_discriminator_recovers_the_js_divergence():
    # D*(x) = p(x) / (p(x) + q(x)), i.e. logit log(p / q); samples whose empirical laws are exactly
    # p = (1/4, 1/2, 1/4) and q = (1/2, 1/4, 1/4) make the sample means the expectations.
    p, q = np.array([0.25, 0.5, 0.25]), np.array([0.5, 0.25, 0.25])
    logit = np.log(p / q)
    real_bins, fake_bins = [0, 1, 1, 2], [0, 0, 1, 2]
    value = js_from_discriminator(logit[real_bins], logit[fake_bins])
    assert value == pytest.approx(float(js(p, q)), abs=1e-12)


def test_any_shape_is_averaged_over_all_entries():
    # (B,) and (B, 1) logits (a discriminator head) give the same value.
    real, fake = np.array([0.5, -1.0, 2.0]), np.array([1.0, -3.0])
    assert js_from_discriminator(real[:, None], fake[:, None]) == js_from_discriminator(real, fake)


@given(logit_arrays, logit_arrays)
def test_never_exceeds_log_2(real, fake):
    # Each log-sigmoid is <= 0, so the estimate is at most log 2.
    assert float(js_from_discriminator(real, fake)) <= LOG2


# --- critic_w1_estimate: closed forms -----------------------------------------------------


def test_critic_estimate_is_difference_of_means():
    # (3 + 1) / 2 - (0.5 - 0.5) / 2 = 2
    assert float(critic_w1_estimate([3.0, 1.0], [0.5, -0.5])) == 2.0


def test_critic_estimate_of_a_constant_shift_is_the_shift():
    # Adding c to every real score adds c to the estimate.
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=9), rng.normal(size=4)
    shifted = float(critic_w1_estimate(real + 2.5, fake))
    assert shifted == pytest.approx(float(critic_w1_estimate(real, fake)) + 2.5, rel=1e-12)


@given(clouds(d=1), st.data())
def test_a_1_lipschitz_critic_never_exceeds_w1(x, data):
    # Kantorovich-Rubinstein: E_P f - E_Q f <= W1(P, Q) for every 1-Lipschitz f, here f = |t - 1|.
    y = data.draw(clouds(d=1))
    estimate = float(critic_w1_estimate(np.abs(x - 1), np.abs(y - 1)))
    assert estimate <= float(emd(x[:, 0], y[:, 0], p=1)) + 1e-9


# --- both: libraries, dtypes, gradients ---------------------------------------------------


@pytest.mark.parametrize("estimate", [js_from_discriminator, critic_w1_estimate])
@given(library=libraries, dtype=float_dtypes)
def test_numpy_and_torch_agree_and_keep_dtype(estimate, library, dtype):
    real, fake = np.array([1.5, -0.5, 3.0]), np.array([0.25, -2.0])
    value = estimate(as_library(real, library, dtype), as_library(fake, library, dtype))
    reference = float(estimate(real, fake))
    assert as_float(value) == pytest.approx(reference, rel=1e-6 if dtype == "float32" else 1e-15)
    assert value.shape == ()
    assert str(value.dtype).endswith(dtype)
    assert isinstance(value, torch.Tensor) == (library == "torch")


@pytest.mark.parametrize("estimate", [js_from_discriminator, critic_w1_estimate])
def test_gradients_match_finite_differences(estimate):
    generator = torch.Generator().manual_seed(1)
    real = torch.randn(6, generator=generator, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(4, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(estimate, (real, fake))


def test_js_gradient_is_the_discriminator_loss_gradient():
    # d JS-hat / d l_real = (1 - sigma(l_real)) / (2 B): pushes real logits up, never NaN at 1e4.
    real = torch.tensor([0.0, 1e4, -1e4], dtype=torch.float64, requires_grad=True)
    js_from_discriminator(real, torch.zeros(1, dtype=torch.float64)).backward()
    torch.testing.assert_close(real.grad, (1 - torch.sigmoid(real.detach())) / 6)


# --- both: validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimate", "names"),
    [(js_from_discriminator, ("real_logits", "fake_logits")), (critic_w1_estimate, ("real_scores", "fake_scores"))],
)
def test_empty_inputs_are_rejected(estimate, names):
    with pytest.raises(ValueError, match=f"`{names[0]}` should hold at least one value"):
        estimate([], [1.0])
    with pytest.raises(ValueError, match=f"`{names[1]}` should hold at least one value"):
        estimate([1.0], np.zeros((3, 0)))


@pytest.mark.parametrize("estimate", [js_from_discriminator, critic_w1_estimate])
@pytest.mark.parametrize(("bad", "word"), [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_non_finite_inputs_are_rejected(estimate, bad, word):
    with pytest.raises(ValueError, match=f"should be finite. Instead, it contains {word} values"):
        estimate([0.0, bad], [0.0])


@pytest.mark.parametrize("estimate", [js_from_discriminator, critic_w1_estimate])
def test_non_numeric_inputs_are_rejected(estimate):
    with pytest.raises(TypeError, match="should be an array_like of real numbers"):
        estimate("logits", [0.0])


@pytest.mark.parametrize("estimate", [js_from_discriminator, critic_w1_estimate])
def test_mixing_numpy_and_torch_is_rejected(estimate):
    with pytest.raises(ValueError, match="cannot mix numpy and torch inputs"):
        estimate(torch.zeros(2), np.zeros(2))
