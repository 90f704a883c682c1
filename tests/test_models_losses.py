"""Tests for trainers.models and trainers.losses: shapes, ranges and closed forms."""

import math

import pytest
import torch
from torch import nn

from divergences import js_from_discriminator
from trainers.losses import (
    clip_weights_,
    gan_discriminator_loss,
    gan_generator_loss,
    gan_minimax_generator_loss,
    gradient_penalty,
    wgan_critic_loss,
    wgan_generator_loss,
)
from trainers.models import Critic, Generator, init_weights

LOG2 = math.log(2)


class Linear(nn.Module):
    """C(x) = <w, x> per sample."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)  # (B,)


class HalfSquare(nn.Module):
    """C(x) = 0.5 * ||x||^2 per sample."""

    def forward(self, x):
        return 0.5 * x.pow(2).flatten(1).sum(1)  # (B,)


# --- models ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_shapes(size):
    # G: (B, nz, 1, 1) -> (B, 3, S, S); critic: (B, 3, S, S) -> (B,)
    g = Generator(image_size=size, nz=8, ngf=4).apply(init_weights)
    d = Critic(image_size=size, ndf=4).apply(init_weights)
    x = g(torch.randn(4, 8, 1, 1))
    assert x.shape == (4, 3, size, size)
    assert d(x).shape == (4,)


def test_generator_output_in_tanh_range():
    # the Tanh output layer keeps every pixel in [-1, 1]
    g = Generator(image_size=16, nz=8, ngf=4)
    x = g(10 * torch.randn(4, 8, 1, 1))
    assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("norm", ["layer", "none"])
def test_per_sample_norms_build_and_run(norm):
    # WGAN-GP critics: no batch statistics, and the penalty backpropagates through them
    d = Critic(image_size=16, ndf=4, norm=norm)
    real, fake = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    assert d(real).shape == (4,)
    gradient_penalty(d, real, fake).backward()
    assert all(p.grad is not None for p in d.parameters())


def test_layer_norm_is_per_sample():
    # with norm="layer" a sample's score does not depend on the rest of the batch
    d = Critic(image_size=16, ndf=4, norm="layer")
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(d(x)[:1], d(x[:1]))


def test_init_weights_statistics():
    # DCGAN init: conv weights ~ N(0, 0.02), batch-norm weights ~ N(1, 0.02)
    torch.manual_seed(0)
    d = Critic(image_size=32, ndf=16).apply(init_weights)
    conv, bn = d.main[2].weight, d.main[3].weight
    assert abs(conv.std().item() - 0.02) < 0.002 and abs(conv.mean().item()) < 0.002
    assert abs(bn.mean().item() - 1) < 0.02 and d.main[3].bias.abs().max() == 0


@pytest.mark.parametrize("size", [8, 24, 0, 48.0, True])
def test_bad_image_size(size):
    with pytest.raises(ValueError, match="image_size"):
        Generator(image_size=size)
    with pytest.raises(ValueError, match="image_size"):
        Critic(image_size=size)


def test_bad_norm():
    with pytest.raises(ValueError, match="norm"):
        Critic(image_size=16, norm="instance")


# --- losses ---------------------------------------------------------------------------


def test_gan_losses_at_zero_logits():
    # sigma(0) = 1/2: each BCE term is log 2
    z = torch.zeros(4)
    torch.testing.assert_close(gan_generator_loss(z), torch.tensor(LOG2))
    torch.testing.assert_close(gan_discriminator_loss(z, z), torch.tensor(2 * LOG2))
    torch.testing.assert_close(gan_minimax_generator_loss(z), torch.tensor(-LOG2))


def test_gan_discriminator_loss_perfect():
    # a confident, correct discriminator has loss ~ 0
    assert gan_discriminator_loss(torch.full((4,), 40.0), torch.full((4,), -40.0)) < 1e-12


def test_js_is_log2_minus_half_discriminator_loss():
    # divergences.js_from_discriminator = log 2 - L_D / 2 for the trainer's L_D, for any logits
    real, fake = torch.randn(6), torch.randn(5)
    js = js_from_discriminator(real, fake)
    torch.testing.assert_close(js, LOG2 - 0.5 * gan_discriminator_loss(real, fake))
    assert js <= LOG2


def test_minimax_saturates_nonsaturating_does_not():
    # at logit -30 (D(G(z)) ~ 1e-13) d/dl log(1 - sigma(l)) = -sigma(l) ~ 0, d/dl softplus(-l) ~ -1
    l_mm = torch.full((4,), -30.0, requires_grad=True)
    gan_minimax_generator_loss(l_mm).backward()
    assert l_mm.grad.abs().max() < 1e-8
    l_ns = torch.full((4,), -30.0, requires_grad=True)
    gan_generator_loss(l_ns).backward()
    torch.testing.assert_close(l_ns.grad, torch.full((4,), -0.25))


def test_wgan_losses():
    # L_C = -(E real - E fake), L_G = -E fake
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([0.5, -1.5])
    assert wgan_critic_loss(real, fake).item() == -(2.0 - (-0.5))
    assert wgan_generator_loss(fake).item() == 0.5


def test_clip_weights():
    # every critic parameter ends inside [-c, c]
    d = Critic(image_size=16, ndf=4)
    clip_weights_(d, 0.01)
    assert all(p.abs().max() <= 0.01 for p in d.parameters())
    with pytest.raises(ValueError, match="`c`"):
        clip_weights_(d, 0.0)


def test_gradient_penalty_linear_critic():
    # grad_x <w, x> = w everywhere, so GP = (||w|| - 1)^2 whatever epsilon is
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4, dtype=torch.float64)
    real, fake = torch.randn(4, 3, 4, 4, dtype=torch.float64), torch.randn(4, 3, 4, 4, dtype=torch.float64)
    gp = gradient_penalty(Linear(w), real, fake)
    assert abs(gp.item() - (w.norm().item() - 1) ** 2) < 1e-6


def test_gradient_penalty_quadratic_critic():
    # grad_x 0.5 ||x||^2 = x, so GP = E (||x_hat|| - 1)^2 with the same epsilon
    real, fake = torch.randn(4, 3, 4, 4, dtype=torch.float64), torch.randn(4, 3, 4, 4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(123)
    replay = torch.Generator()
    replay.set_state(gen.get_state())  # a clone that re-draws the same epsilon
    gp = gradient_penalty(HalfSquare(), real, fake, generator=gen)
    eps = torch.rand(4, 1, 1, 1, generator=replay, dtype=torch.float64)
    x_hat = eps * real + (1 - eps) * fake
    expected = ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert abs(gp.item() - expected.item()) < 1e-6


def test_gradient_penalty_backpropagates_to_critic():
    # create_graph=True: dGP/dw = 2 (||w|| - 1) w / ||w|| for the linear critic
    w = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    critic = Linear(w.clone())
    real, fake = torch.randn(4, 1, 2, dtype=torch.float64), torch.randn(4, 1, 2, dtype=torch.float64)
    gradient_penalty(critic, real, fake).backward()
    torch.testing.assert_close(critic.w.grad, 2 * (5 - 1) * w / 5)


def test_gradient_penalty_bad_shapes():
    with pytest.raises(ValueError, match="`fake`"):
        gradient_penalty(HalfSquare(), torch.randn(4, 2), torch.randn(3, 2))
    with pytest.raises(ValueError, match="`critic`"):
        gradient_penalty(lambda x: x, torch.randn(4, 2), torch.randn(4, 2))
