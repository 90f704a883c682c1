"""Divergence estimates read off a trained GAN discriminator or WGAN critic."""

import math

import torch.nn.functional as F

from divergences import _scaling, _validation

__all__ = ["js_from_discriminator", "critic_w1_estimate"]


def js_from_discriminator(real_logits, fake_logits):
    r"""Jensen–Shannon lower bound (nats) from a discriminator's logits.

    .. math::

        \widehat{\mathrm{JS}} = \log 2 + \tfrac12 \mathbb{E}_{x \sim P}[\log \sigma(l(x))]
                                + \tfrac12 \mathbb{E}_{x \sim Q}[\log(1 - \sigma(l(x)))]

    where :math:`l` is the discriminator's logit, :math:`D = \sigma(l)` its
    probability that a sample is real, P the real and Q the generated
    distribution, and each expectation is the mean over the given samples.

    Parameters
    ----------
    real_logits : array_like or torch.Tensor, any shape, at least one entry
        Raw (pre-sigmoid) discriminator outputs on real samples.  All entries
        are averaged, so ``(B,)`` and ``(B, 1)`` give the same value.
    fake_logits : array_like or torch.Tensor, any shape, at least one entry
        Raw discriminator outputs on generated samples; their number may
        differ from that of ``real_logits``.

    Returns
    -------
    estimate : float ndarray scalar or 0-d torch.Tensor
        The estimate in nats, in ``(-inf, log 2]``, in the library, dtype and
        device of the inputs; differentiable in both arguments for torch
        inputs.

    Raises
    ------
    ValueError
        An empty input, NaN or infinite logits, numpy and torch mixed, or
        tensors on different devices.
    TypeError
        Non-numeric inputs.

    Notes
    -----
    For the optimal discriminator :math:`D^* = p / (p + q)`, i.e.
    :math:`l = \log(p / q)`, the population value is exactly
    :math:`\mathrm{JS}(P, Q)`; any other discriminator gives less, so the
    estimate is a lower bound (Goodfellow et al., 2014, Theorem 1).  It can be
    negative for a discriminator worse than chance.  It equals
    :math:`\log 2 - L_D / 2` where :math:`L_D` is the discriminator's binary
    cross-entropy loss (real towards 1, fake towards 0), so it is always
    :math:`\le \log 2`, with equality for a perfect discriminator.

    Both logarithms are computed as log-sigmoids of the logits, never as the
    log of a probability, so logits of any finite size are exact: ±1e4 gives
    log 2, not NaN.

    Examples
    --------
    A discriminator that cannot tell the samples apart (logits 0) gives 0:

    >>> float(js_from_discriminator([0.0, 0.0], [0.0]))
    0.0

    A perfect discriminator gives log 2, the JS divergence of disjoint supports:

    >>> float(js_from_discriminator([1e4, 1e4], [-1e4])) == math.log(2)
    True
    """
    converter, (real, fake) = _validation.convert(real_logits=real_logits, fake_logits=fake_logits)
    _validation.check_some_entries("real_logits", real)
    _validation.check_some_entries("fake_logits", fake)
    real_term = _scaling.mean(F.logsigmoid(real))  # E_P log D
    fake_term = _scaling.mean(F.logsigmoid(-fake))  # E_Q log(1 - D)
    return converter.back(_validation.check_fits(math.log(2) + (0.5 * real_term + 0.5 * fake_term), "the estimate", _too_large("logits")))


def critic_w1_estimate(real_scores, fake_scores):
    r"""Kantorovich–Rubinstein estimate of W1 from a WGAN critic's scores.

    .. math::

        \widehat{W}_1 = \mathbb{E}_{x \sim P}[f(x)] - \mathbb{E}_{x \sim Q}[f(x)]

    where f is the critic, P the real and Q the generated distribution, and
    each expectation is the mean over the given samples.

    Parameters
    ----------
    real_scores : array_like or torch.Tensor, any shape, at least one entry
        Critic outputs on real samples.  All entries are averaged.
    fake_scores : array_like or torch.Tensor, any shape, at least one entry
        Critic outputs on generated samples; their number may differ from
        that of ``real_scores``.

    Returns
    -------
    estimate : float ndarray scalar or 0-d torch.Tensor
        The estimate, in the library, dtype and device of the inputs;
        differentiable in both arguments for torch inputs.  It is the
        negative of the WGAN critic loss.

    Raises
    ------
    ValueError
        An empty input, NaN or infinite scores, numpy and torch mixed, or
        tensors on different devices.
    TypeError
        Non-numeric inputs.

    Notes
    -----
    By Kantorovich–Rubinstein duality
    :math:`W_1(P, Q) = \sup_{\|f\|_L \le 1} \mathbb{E}_P f - \mathbb{E}_Q f`,
    so for a 1-Lipschitz critic the estimate is a lower bound on the W1
    distance between the two samples; for a K-Lipschitz critic divide by K.
    Weight clipping and the gradient penalty only keep the Lipschitz constant
    bounded, not equal to one, so read the value as a trend, not a distance.

    Examples
    --------
    >>> float(critic_w1_estimate([3.0, 1.0], [0.5, -0.5]))
    2.0

    The critic f(x) = x is 1-Lipschitz; on the line it attains W1 for a shift:

    >>> float(critic_w1_estimate([2.0, 3.0], [0.0, 1.0]))
    2.0
    """
    converter, (real, fake) = _validation.convert(real_scores=real_scores, fake_scores=fake_scores)
    _validation.check_some_entries("real_scores", real)
    _validation.check_some_entries("fake_scores", fake)
    return converter.back(_validation.check_fits(_scaling.mean(real) - _scaling.mean(fake), "the estimate", _too_large("scores")))


def _too_large(what):
    """Why an estimate from ``real_{what}`` and ``fake_{what}`` overflows."""
    return f"`real_{what}` and `fake_{what}` are too large. Rescale them"
