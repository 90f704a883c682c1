"""discriminator_vs_critic: the WGAN paper's Figure 2, against what the math says."""

import io
import math

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from divergences.probes.critic import DiscriminatorVsCritic, discriminator_vs_critic

matplotlib.use("Agg")

N = 512


@pytest.fixture(scope="module")
def probe():
    return discriminator_vs_critic(real_mean=-5.0, fake_mean=5.0, n_samples=N, seed=0)


def test_grid_and_curves_have_the_documented_shape(probe):
    assert isinstance(probe, DiscriminatorVsCritic)
    assert probe.x.shape == (401,) and probe.x[0] == -10 and probe.x[-1] == 10
    for name in ("real_density", "fake_density", "discriminator", "critic_clip", "critic_gp"):
        assert getattr(probe, name).shape == (401,) and getattr(probe, name).dtype == np.float64


def test_w1_between_separated_samples_is_the_distance_between_means_up_to_sampling_error(probe):
    # Every real sample lies left of every fake one, so W1 = mean(fake) - mean(real),
    # whose standard deviation is sqrt(2 / n) around 10.
    assert abs(probe.w1_emd - 10) < 4 * math.sqrt(2 / N)


def test_discriminator_is_near_optimal(probe):
    # The optimal D between separated supports is 1 on the real side and 0 on the fake side.
    assert probe.discriminator_real > 0.99
    assert probe.discriminator_fake < 0.01
    assert probe.discriminator[probe.x <= -3].min() > 0.99 and probe.discriminator[probe.x >= 3].max() < 0.01


def test_js_bound_from_the_near_optimal_discriminator_is_log_2(probe):
    # log 2 + E log σ(D) / 2 + E log(1 - σ(D)) / 2 <= JS <= log 2, with equality for the
    # optimal D, and JS(N(-5, 1), N(5, 1)) = log 2 to within 1e-6.
    assert probe.js_bound <= math.log(2)
    assert abs(probe.js_bound - math.log(2)) < 0.05


def test_discriminator_probability_has_a_vanishing_gradient_at_the_fakes(probe):
    # dσ(D)/dx = σ(1 - σ) D', and σ(D) ~ 1e-4 at the fakes.
    assert probe.grad_discriminator < 1e-3


def test_gp_critic_slope_at_the_fakes_is_the_penalised_optimum(probe):
    # The penalty is soft: with interpolates uniform on the segment of length d = W1
    # (density 1/d), the slope s maximises s - λ (s - 1)² / d, so s = 1 + d / (2λ) = 1.5.
    # Near 1 (the 1-Lipschitz target), far from 0.
    assert probe.gp_slope_theory == pytest.approx(1 + probe.w1_emd / 20)
    assert probe.grad_critic_gp == pytest.approx(probe.gp_slope_theory, rel=0.15)


def test_gradient_ratio_is_large(probe):
    # The GP critic's slope is about 1.5 and σ(D)'s below 1e-3: a ratio above 1500; we ask
    # for 1000, well below the measured ~8000 (the discriminator's logits keep growing).
    assert probe.gradient_ratio == pytest.approx(probe.grad_critic_gp / probe.grad_discriminator)
    assert probe.gradient_ratio > 1000


def test_gp_critic_estimate_is_w1_times_the_penalised_slope(probe):
    # E[C(real)] - E[C(fake)] = ∫ slope = W1 (1 + W1 / (2λ)) = 15 for W1 = 10, λ = 10;
    # dividing out the slope recovers W1 to within 10%.
    assert probe.w1_gp == pytest.approx(probe.w1_emd * probe.gp_slope_theory, rel=0.1)
    assert probe.w1_gp / probe.gp_slope_theory == pytest.approx(probe.w1_emd, rel=0.1)


def test_clipped_critic_weights_are_within_the_clip(probe):
    assert probe.clip == 0.01
    assert probe.clip_parameters.size == 64 + 64 + 64 * 64 + 64 + 64 + 1
    assert np.all(np.abs(probe.clip_parameters) <= probe.clip)


def test_clipped_critic_is_k_lipschitz_with_k_at_most_c_cubed_64_squared(probe):
    # Entries at most c give operator norms at most c √64, 64 c and c √64 for the three
    # layers (ReLU is 1-Lipschitz), so K <= 4096 c³ = 0.004096; by Kantorovich duality on
    # the held-out samples, E[C(real)] - E[C(fake)] <= K W1.  It is positive: a small K W1.
    k_max = 64**2 * probe.clip**3
    assert 0 < probe.w1_clip <= k_max * probe.w1_emd
    assert 0 < probe.grad_critic_clip <= k_max


def test_clipped_critic_decreases_from_the_real_side_to_the_fake_side(probe):
    # Both critics are high where the real data are (C maximises E[C(real)] - E[C(fake)]),
    # so with real at -5 and fake at +5 they decrease in x.
    inside = (probe.x >= -8) & (probe.x <= 8)
    steps = np.diff(probe.critic_clip[inside])
    assert np.mean(steps < 0) >= 0.95
    assert probe.critic_clip[inside][0] > probe.critic_clip[inside][-1]
    assert probe.critic_gp[inside][0] > probe.critic_gp[inside][-1]


def test_table_has_the_gradients_estimates_and_log_2(probe):
    table = probe.table()
    assert len(table.splitlines()) == 2 + 12
    assert "| JS lower bound from D | 0.69" in table
    assert "gradient ratio" in table and "W1 estimate, GP critic" in table


def test_plot_draws_one_panel(probe):
    figure = probe.plot()
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 1
    figure.savefig(io.BytesIO(), format="png")


def test_global_torch_state_is_restored():
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    discriminator_vs_critic(n_samples=2, steps=1, discriminator_steps=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_samples": 1}, ValueError, "`n_samples` should be an integer >= 2"),
        ({"n_samples": 2.5}, TypeError, "`n_samples` should be a positive integer"),
        ({"real_mean": 1.0, "fake_mean": 1.0}, ValueError, "`fake_mean` should differ from `real_mean`"),
        ({"real_mean": math.nan}, ValueError, "`real_mean` should be finite"),
        ({"steps": 0}, ValueError, "`steps` should be a positive integer"),
        ({"discriminator_steps": 0}, ValueError, "`discriminator_steps` should be a positive integer"),
        ({"critic_lr": 0.0}, ValueError, "`critic_lr` should be > 0"),
        ({"gp_weight": -1.0}, ValueError, "`gp_weight` should be > 0"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        discriminator_vs_critic(**kwargs)
