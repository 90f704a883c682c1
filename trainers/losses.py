"""GAN, WGAN and WGAN-GP losses as pure functions of discriminator logits / critic scores.

Every loss is a quantity to *minimise*: the discriminator/critic minimises its loss, the
generator minimises its own. Logits are raw (pre-sigmoid) outputs; sigmoids are folded into
``softplus`` / ``logsigmoid`` so no loss overflows or takes ``log 0``.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def gan_discriminator_loss(real_logits, fake_logits):
    r"""Binary cross-entropy of the discriminator: real towards 1, fake towards 0.

    .. math::

        L_D = -\mathbb{E}[\log \sigma(l_{real})] - \mathbb{E}[\log(1 - \sigma(l_{fake}))]

    Parameters
    ----------
    real_logits : (B,) torch.Tensor
        Discriminator logits on real images.
    fake_logits : (B',) torch.Tensor
        Discriminator logits on generated images (detached for the discriminator step).

    Returns
    -------
    torch.Tensor
        Scalar loss, same dtype and device as the input.

    Examples
    --------
    >>> z = torch.zeros(4)
    >>> torch.isclose(gan_discriminator_loss(z, z), torch.tensor(2 * math.log(2))).item()
    True
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def gan_generator_loss(fake_logits):
    r"""Non-saturating generator loss: binary cross-entropy of fake logits towards 1.

    .. math::

        L_G = -\mathbb{E}[\log \sigma(l_{fake})] = \mathbb{E}[\operatorname{softplus}(-l_{fake})]

    Its gradient w.r.t. the logit is :math:`-(1 - \sigma(l))`, close to -1 when the
    discriminator confidently rejects the fakes, so the generator keeps learning early on.

    Parameters
    ----------
    fake_logits : (B,) torch.Tensor
        Discriminator logits on generated images.

    Returns
    -------
    torch.Tensor
        Scalar loss, same dtype and device as the input.

    Examples
    --------
    >>> torch.isclose(gan_generator_loss(torch.zeros(4)), torch.tensor(math.log(2))).item()
    True
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def gan_minimax_generator_loss(fake_logits):
    r"""Original (minimax) generator loss of Goodfellow et al., computed stably.

    .. math::

        L_G = \mathbb{E}[\log(1 - \sigma(l_{fake}))] = -\mathbb{E}[\operatorname{softplus}(l_{fake})]

    Parameters
    ----------
    fake_logits : (B,) torch.Tensor
        Discriminator logits on generated images.

    Returns
    -------
    torch.Tensor
        Scalar loss (always <= 0), same dtype and device as the input.

    Notes
    -----
    The loss *saturates*: its gradient w.r.t. a logit is :math:`-\sigma(l) / B`, which
    vanishes when the discriminator confidently rejects the fakes
    (:math:`D(G(z)) = \sigma(l) \to 0`), exactly when the generator most needs a signal.
    :func:`gan_generator_loss` is the usual remedy.

    Examples
    --------
    >>> torch.isclose(gan_minimax_generator_loss(torch.zeros(4)), torch.tensor(-math.log(2))).item()
    True
    """
    return -F.softplus(fake_logits).mean()


def wgan_critic_loss(real_scores, fake_scores):
    r"""WGAN critic loss, the negated Kantorovich-Rubinstein estimate.

    .. math::

        L_C = -(\mathbb{E}[C(x_{real})] - \mathbb{E}[C(x_{fake})])

    Parameters
    ----------
    real_scores : (B,) torch.Tensor
        Critic scores on real images.
    fake_scores : (B',) torch.Tensor
        Critic scores on generated images.

    Returns
    -------
    torch.Tensor
        Scalar loss; ``-wgan_critic_loss`` estimates the Wasserstein-1 distance (up to the
        critic's Lipschitz constant).

    Examples
    --------
    >>> wgan_critic_loss(torch.tensor([3.0, 1.0]), torch.tensor([0.5, -0.5])).item()
    -2.0
    """
    return -(real_scores.mean() - fake_scores.mean())


def wgan_generator_loss(fake_scores):
    r"""WGAN generator loss.

    .. math::

        L_G = -\mathbb{E}[C(G(z))]

    Parameters
    ----------
    fake_scores : (B,) torch.Tensor
        Critic scores on generated images.

    Returns
    -------
    torch.Tensor
        Scalar loss, same dtype and device as the input.

    Examples
    --------
    >>> wgan_generator_loss(torch.tensor([1.0, 3.0])).item()
    -2.0
    """
    return -fake_scores.mean()


def clip_weights_(module, c):
    """Clamp every parameter of ``module`` in place to ``[-c, c]`` (original WGAN).

    Parameters
    ----------
    module : torch.nn.Module
        The critic.
    c : float, > 0
        Clipping bound.

    Raises
    ------
    ValueError
        If ``c`` is not positive.

    Examples
    --------
    >>> lin = torch.nn.Linear(3, 1)
    >>> clip_weights_(lin, 1e-3)
    >>> bool(lin.weight.abs().max() <= 1e-3)
    True
    """
    if not c > 0:
        raise ValueError(f"`c` should be a positive clipping bound. Instead, received {c!r}.")
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-c, c)


def gradient_penalty(critic, real, fake, *, generator=None):
    r"""WGAN-GP gradient penalty on random interpolates of real and fake images.

    .. math::

        \hat x = \varepsilon x_{real} + (1 - \varepsilon) x_{fake},\quad
        \varepsilon \sim U[0, 1] \text{ per sample},\qquad
        GP = \mathbb{E}\big[(\lVert \nabla_{\hat x} C(\hat x) \rVert_2 - 1)^2\big]

    Parameters
    ----------
    critic : callable
        Maps ``(B, ...)`` inputs to ``(B,)`` scores; must treat samples independently
        (no batch norm), since the penalty is per sample.
    real, fake : (B, ...) torch.Tensor
        Real and generated batches of the same shape. Both are detached: the penalty
        trains the critic only.
    generator : torch.Generator, optional
        Source of ``\varepsilon``, on ``real``'s device.

    Returns
    -------
    torch.Tensor
        Scalar penalty, built with ``create_graph=True`` so it can be backpropagated into
        the critic's parameters. The weight :math:`\lambda` is applied by the caller.

    Raises
    ------
    ValueError
        If ``real`` and ``fake`` differ in shape or the critic does not return ``(B,)``.

    Examples
    --------
    A linear critic :math:`C(x) = \langle w, x \rangle` has gradient ``w`` everywhere:

    >>> w = torch.tensor([3.0, 4.0])
    >>> gradient_penalty(lambda x: x @ w, torch.randn(5, 2), torch.randn(5, 2)).item()
    16.0
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"`fake` should have the shape of `real`, {tuple(real.shape)}. Instead, received {tuple(fake.shape)}."
        )
    batch = real.shape[0]
    eps_shape = (batch,) + (1,) * (real.dim() - 1)  # (B, 1, ..., 1)
    eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)  # (B, ...)
    scores = critic(x_hat)
    if scores.shape != (batch,):
        raise ValueError(
            f"`critic` should return scores of shape ({batch},). Instead, it returned {tuple(scores.shape)}."
        )
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)  # (B, ...)
    norms = grad.flatten(1).norm(dim=1)  # (B,)
    return ((norms - 1) ** 2).mean()


@dataclass(frozen=True)
class LossSpec:
    """Everything the trainer and the monitor know about one loss.

    Attributes
    ----------
    critic_loss : callable
        ``critic_loss(real_out, fake_out)``, the scalar the discriminator/critic minimises.
    generator_loss : callable
        ``generator_loss(fake_out)``, the scalar the generator minimises.
    optimiser : {"adam", "rmsprop"}
        The optimiser of both networks.
    lr : float
        Default learning rate (``TrainConfig.lr = None``).
    betas : (float, float) or None
        Adam's ``(beta1, beta2)``; None for RMSProp.
    n_critic : int
        Default critic steps per generator step (``TrainConfig.n_critic = None``).
    critic_norm : {"batch", "layer"}
        Default normalisation of the critic (``TrainConfig.critic_norm = None``).
    probability : bool
        Whether the critic's output is the logit of a probability D(x) (GAN) rather than a
        score whose mean difference estimates the Wasserstein-1 distance (WGAN).
    clips_weights : bool
        Whether the critic's weights are clipped to ``[-clip, clip]`` after each critic step.
    gradient_penalty : bool
        Whether ``gp_weight`` times `gradient_penalty` is added to the critic loss; the critic
        then needs a per-sample normalisation (no batch norm).
    """

    critic_loss: Callable
    generator_loss: Callable
    optimiser: str
    lr: float
    betas: tuple | None
    n_critic: int
    critic_norm: str
    probability: bool
    clips_weights: bool = False
    gradient_penalty: bool = False

    def training_estimate(self, means):
        """The loss's own estimate of its distance from a ``train`` line's means, free of cost.

        GAN losses: ``js_bound_train``, the JS lower bound log 2 − L_D / 2 of the discriminator's
        training loss L_D = −E log D(x) − E log(1 − D(G(z))) (`divergences.js_from_discriminator`
        on the batches it trained on). WGAN losses: ``w_estimate``, E C(x) − E C(G(z)).

        Examples
        --------
        >>> LOSS_SPECS["gan"].training_estimate({"loss_d": 2 * math.log(2)})
        {'js_bound_train': 0.0}
        >>> LOSS_SPECS["wgan"].training_estimate({"d_real": 0.5, "d_fake": 0.25})
        {'w_estimate': 0.25}
        """
        if self.probability:
            return {"js_bound_train": math.log(2) - means["loss_d"] / 2}
        return {"w_estimate": means["d_real"] - means["d_fake"]}


_DCGAN = dict(optimiser="adam", lr=2e-4, betas=(0.5, 0.999), n_critic=1, critic_norm="batch", probability=True)

LOSS_SPECS = {
    # DCGAN's settings, with the non-saturating or the original (minimax) generator loss
    "gan": LossSpec(gan_discriminator_loss, gan_generator_loss, **_DCGAN),
    "gan-minimax": LossSpec(gan_discriminator_loss, gan_minimax_generator_loss, **_DCGAN),
    # the WGAN paper's Algorithm 1: RMSProp 5e-5, n_critic = 5, weights clipped
    "wgan": LossSpec(wgan_critic_loss, wgan_generator_loss, optimiser="rmsprop", lr=5e-5, betas=None, n_critic=5,
                     critic_norm="batch", probability=False, clips_weights=True),
    # WGAN-GP's Algorithm 1: Adam 1e-4, betas (0, 0.9), n_critic = 5, gradient penalty, no batch norm
    "wgan-gp": LossSpec(wgan_critic_loss, wgan_generator_loss, optimiser="adam", lr=1e-4, betas=(0.0, 0.9), n_critic=5,
                        critic_norm="layer", probability=False, gradient_penalty=True),
}
"""The `LossSpec` of each loss name; the trainer's ``--loss`` choices are its keys."""
