r"""The optimal discriminator against the critic: Figure 2 of the WGAN paper (Arjovsky et al., 2017).

Real data P_r = N(μ_r, 1) and generated data P_g = N(μ_g, 1), far apart.  A GAN
discriminator D trained to optimality separates them perfectly, and its
probability σ(D(x)) is flat (1 on the real side, 0 on the fake side): the
generator's minimax loss log(1 - σ(D(G(z)))) has a vanishing gradient at the
fakes.  A WGAN critic C, which maximises

.. math::

    \mathbb{E}_{x \sim P_r} C(x) - \mathbb{E}_{x \sim P_g} C(x)

over (roughly) 1-Lipschitz functions, is close to linear between the two
distributions and its slope at the fakes does not vanish, however far apart
they are.  :func:`discriminator_vs_critic` trains both kinds of network, plus a
WGAN-GP critic, and measures these gradients.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from divergences import emd
from divergences._validation import check_count, check_positive, check_real, check_seed
from divergences.probes._checks import check_count_at_least
from divergences.probes._report import new_axes

__all__ = ["DiscriminatorVsCritic", "discriminator_vs_critic"]

_CLIP = 0.01  # weight clipping of the WGAN critic, as in the paper
_HIDDEN = 64  # width of the two hidden layers of every network
_GRID_POINTS = 401
_MARGIN = 5.0  # the grid reaches this far beyond the two means


@dataclass(frozen=True, eq=False)
class DiscriminatorVsCritic:
    """Trained discriminator and critics of the discriminator-vs-critic probe.

    The curves are float64 arrays of the shape of ``x``; the other fields are
    floats, except ``clip_parameters``.  See :func:`discriminator_vs_critic`.
    """

    x: np.ndarray
    real_density: np.ndarray
    fake_density: np.ndarray
    discriminator: np.ndarray
    critic_clip: np.ndarray
    critic_gp: np.ndarray
    clip_parameters: np.ndarray
    clip: float
    gp_weight: float
    discriminator_real: float
    discriminator_fake: float
    grad_discriminator: float
    grad_critic_clip: float
    grad_critic_gp: float
    gradient_ratio: float
    w1_emd: float
    w1_clip: float
    w1_gp: float
    gp_slope_theory: float
    js_bound: float

    def table(self):
        """Markdown table of the gradients at the fakes, the W1 estimates and the JS bound."""
        rows = (
            ("mean σ(D) on real", self.discriminator_real),
            ("mean σ(D) on fake", self.discriminator_fake),
            ("mean abs dσ(D)/dx at fakes", self.grad_discriminator),
            ("mean abs dC/dx at fakes, clipped critic", self.grad_critic_clip),
            ("mean abs dC/dx at fakes, GP critic", self.grad_critic_gp),
            ("gradient ratio, GP critic / σ(D)", self.gradient_ratio),
            ("W1 (emd on the samples)", self.w1_emd),
            ("W1 estimate, clipped critic", self.w1_clip),
            ("W1 estimate, GP critic", self.w1_gp),
            ("GP optimum slope 1 + W1 / (2λ)", self.gp_slope_theory),
            ("JS lower bound from D", self.js_bound),
            ("log 2", math.log(2)),
        )
        lines = ["| quantity | value |", "|---|---|"]
        lines += [f"| {name} | {value + 0.0:.6g} |" for name, value in rows]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Draw the paper's Figure 2: the densities, σ(D(x)) and the two critics.

        The critics are shifted and scaled to [0, 1] on the grid for display
        only; the fields keep the raw outputs.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw.  Default: the single panel of a new
            :class:`matplotlib.figure.Figure`, which needs no display.

        Returns
        -------
        figure : matplotlib.figure.Figure
        """
        ax = new_axes(1, (7, 4)) if ax is None else ax
        ax.fill_between(self.x, self.real_density, alpha=0.3, color="tab:blue", label="real density")
        ax.fill_between(self.x, self.fake_density, alpha=0.3, color="tab:green", label="fake density")
        ax.plot(self.x, self.discriminator, color="tab:red", label="σ(D(x)), GAN discriminator")
        for values, style, label in ((self.critic_clip, "--", "clipped"), (self.critic_gp, "-.", "GP")):
            scaled = (values - values.min()) / (values.max() - values.min())
            ax.plot(self.x, scaled, style, label=f"WGAN critic, {label} (scaled to [0, 1])")
        ax.set_xlabel("x")
        ax.set_title("optimal discriminator vs WGAN critic")
        ax.legend(fontsize="small")
        return ax.figure


def discriminator_vs_critic(
    *,
    real_mean=-5.0,
    fake_mean=5.0,
    n_samples=512,
    steps=1200,
    discriminator_steps=500,
    critic_lr=5e-5,
    gp_weight=10.0,
    seed=0,
):
    r"""Train a GAN discriminator and two WGAN critics between two separated Gaussians.

    Real data follow P_r = N(μ_r, 1), fake data P_g = N(μ_g, 1).  Three MLPs
    1 → 64 → 64 → 1 with ReLU are trained on fresh batches of ``n_samples`` real and fake points:

    1. the GAN discriminator D (logits), with ``BCEWithLogitsLoss`` and Adam
       (lr 1e-3), which maximises
       :math:`\mathbb{E}_{P_r} \log \sigma(D) + \mathbb{E}_{P_g} \log(1 - \sigma(D))`;
    2. the WGAN critic with weight clipping, RMSProp (lr ``critic_lr``), every
       parameter clipped to [-c, c], c = 0.01, after each step;
    3. the WGAN-GP critic, Adam (lr 1e-4, betas (0, 0.9)), with penalty
       :math:`\lambda \, \mathbb{E}_{\hat x} (|C'(\hat x)| - 1)^2` on
       :math:`\hat x = \epsilon x_r + (1 - \epsilon) x_g`, ε ~ U[0, 1].

    Both critics maximise :math:`\mathbb{E}_{P_r} C - \mathbb{E}_{P_g} C`, so
    they are *high on the real side*: decreasing in x when μ_r < μ_g.

    Parameters
    ----------
    real_mean, fake_mean : float, optional
        Means μ_r ≠ μ_g of the real and fake Gaussians (unit variance).
    n_samples : int >= 2, optional
        Batch size of each distribution, and size of the held-out samples on
        which the gradients and estimates are measured.
    steps : int >= 1, optional
        Training steps of each critic.  With RMSProp at the paper's lr 5e-5
        each clipped weight moves by about 5e-5 a step, so it takes a few
        hundred steps for the weights to reach ±c and the clipped critic to
        become monotone; the GP critic reaches its optimum in 500 to 1200
        steps, depending on its initialisation.
    discriminator_steps : int >= 1, optional
        Training steps of the discriminator; its σ at the fakes keeps
        shrinking with more (the logits grow without bound).
    critic_lr : float > 0, optional
        RMSProp learning rate of the clipped critic; the paper's 5e-5 by default.
    gp_weight : float > 0, optional
        The gradient-penalty weight λ; the WGAN-GP paper's 10 by default.
    seed : int >= 0, optional
        Seed of the networks' initialisation and of all the samples.  The
        global torch generator and thread count are restored on return.

    Returns
    -------
    DiscriminatorVsCritic
        On the grid ``x`` (401 points from min(μ) - 5 to max(μ) + 5): the two
        densities ``real_density`` and ``fake_density``, ``discriminator`` =
        σ(D(x)), and the raw critic outputs ``critic_clip`` and ``critic_gp``.
        ``clip_parameters``, every parameter of the clipped critic flattened,
        and ``clip`` = c.  On held-out samples: ``discriminator_real`` and
        ``discriminator_fake``, the mean of σ(D); at the held-out fakes, the
        mean absolute x-derivatives ``grad_discriminator`` (of σ(D)),
        ``grad_critic_clip`` and ``grad_critic_gp``, and
        ``gradient_ratio`` = grad_critic_gp / grad_discriminator; ``w1_emd``
        = W1 between the held-out samples (:func:`divergences.emd`), the
        critics' estimates ``w1_clip`` and ``w1_gp`` of
        :math:`\mathbb{E}_{P_r} C - \mathbb{E}_{P_g} C`,
        ``gp_slope_theory`` = 1 + W1 / (2λ), and the JS lower bound
        ``js_bound``.

    Raises
    ------
    TypeError
        If a mean, ``critic_lr`` or ``gp_weight`` is not a real number, or
        ``n_samples``, ``steps``, ``discriminator_steps`` or ``seed`` is not
        an integer.
    ValueError
        If ``n_samples`` < 2, ``steps`` or ``discriminator_steps`` < 1, a
        mean is not finite, the means are equal, ``critic_lr`` or
        ``gp_weight`` is not > 0 and finite, or ``seed`` is negative.

    Notes
    -----
    For any discriminator,

    .. math::

        \log 2 + \tfrac12 \mathbb{E}_{P_r} \log \sigma(D)
        + \tfrac12 \mathbb{E}_{P_g} \log(1 - \sigma(D)) \le \mathrm{JS}(P_r, P_g) \le \log 2,

    with equality on the left for the optimal D; it is computed with
    ``logsigmoid`` from the logits (log(1 - σ(t)) = logsigmoid(-t)).  Between
    separated Gaussians JS ≈ log 2 and the optimal σ(D) is ≈ 1 or 0 where the
    samples are, with derivative σ(1 - σ) D' → 0 at the fakes.

    The clipped critic is K-Lipschitz for a small K set by c (each layer's
    weights are at most c), so ``w1_clip`` ≈ K W1 with K ≪ 1.

    The gradient penalty is soft, so the GP critic overshoots slope 1.  With
    the two distributions at distance d = W1 the interpolates are about
    uniform on the segment between them, with density 1/d, and the critic's
    slope s maximises :math:`s - \lambda (s - 1)^2 / d` pointwise:
    :math:`s = 1 + d / (2 \lambda)`, hence

    .. math::

        \mathbb{E}_{P_r} C - \mathbb{E}_{P_g} C \approx W_1 \Big(1 + \frac{W_1}{2 \lambda}\Big),

    15 instead of 10 for the defaults; a larger ``gp_weight`` brings it to W1.

    Examples
    --------
    >>> probe = discriminator_vs_critic()  # doctest: +SKIP
    >>> probe.gradient_ratio > 1000  # doctest: +SKIP
    True
    """
    real_mean, fake_mean = _check_means(real_mean, fake_mean)
    n_samples = check_count_at_least("n_samples", n_samples, 2)
    steps = check_count("steps", steps)
    discriminator_steps = check_count("discriminator_steps", discriminator_steps)
    critic_lr = check_positive("critic_lr", critic_lr)
    gp_weight = check_positive("gp_weight", gp_weight)
    seed = _check_torch_seed(seed)
    threads = torch.get_num_threads()
    try:
        # Small networks: one thread is faster than two, and fair on a shared CPU.
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            sample = _sampler(real_mean, fake_mean, n_samples)
            discriminator = _train_discriminator(sample, discriminator_steps)
            critic_clip = _train_critic_clip(sample, steps, critic_lr)
            critic_gp = _train_critic_gp(sample, steps, gp_weight)
            real, fake = sample()
        return _measure(real_mean, fake_mean, real, fake, discriminator, critic_clip, critic_gp, gp_weight)
    finally:
        torch.set_num_threads(threads)


def _mlp():
    """A fresh 1 → 64 → 64 → 1 ReLU network in float32."""
    return nn.Sequential(
        nn.Linear(1, _HIDDEN, dtype=torch.float32),
        nn.ReLU(),
        nn.Linear(_HIDDEN, _HIDDEN, dtype=torch.float32),
        nn.ReLU(),
        nn.Linear(_HIDDEN, 1, dtype=torch.float32),
    )


def _sampler(real_mean, fake_mean, n):
    """A function drawing fresh (n, 1) real and fake float32 batches from the global generator."""

    def sample():
        noise = torch.randn(2, n, 1, dtype=torch.float32)
        return noise[0] + real_mean, noise[1] + fake_mean

    return sample


def _train_discriminator(sample, steps):
    """GAN discriminator: logits, trained with BCE on real = 1, fake = 0."""
    network = _mlp()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(steps):
        real, fake = sample()
        logits = network(torch.cat([real, fake]))  # (2n, 1)
        labels = torch.cat([torch.ones_like(real), torch.zeros_like(fake)])
        loss = loss_fn(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return network


def _train_critic_clip(sample, steps, lr):
    """WGAN critic: RMSProp on E[C(fake)] - E[C(real)], parameters clipped to [-c, c] after each step."""
    network = _mlp()
    optimizer = torch.optim.RMSprop(network.parameters(), lr=lr)
    for _ in range(steps):
        real, fake = sample()
        loss = network(fake).mean() - network(real).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for parameter in network.parameters():
                parameter.clamp_(-_CLIP, _CLIP)
    return network


def _train_critic_gp(sample, steps, gp_weight):
    """WGAN-GP critic: Adam on E[C(fake)] - E[C(real)] + λ E[(|C'(x̂)| - 1)²] at random interpolates x̂."""
    network = _mlp()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4, betas=(0.0, 0.9))
    for _ in range(steps):
        real, fake = sample()
        epsilon = torch.rand_like(real)
        between = (epsilon * real + (1 - epsilon) * fake).requires_grad_(True)  # (n, 1)
        (slope,) = torch.autograd.grad(network(between).sum(), between, create_graph=True)
        penalty = ((slope.abs() - 1) ** 2).mean()
        loss = network(fake).mean() - network(real).mean() + gp_weight * penalty
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return network


def _mean_abs_derivative(function, x):
    """Mean of |f'(x_i)| over the (n, 1) points x, for f acting on each row alone."""
    x = x.clone().requires_grad_(True)
    (derivative,) = torch.autograd.grad(function(x).sum(), x)
    return derivative.abs().mean().item()


def _measure(real_mean, fake_mean, real, fake, discriminator, critic_clip, critic_gp, gp_weight):
    """The probe's result, from the trained networks and held-out (n, 1) samples."""
    lower, upper = min(real_mean, fake_mean) - _MARGIN, max(real_mean, fake_mean) + _MARGIN
    x = np.linspace(lower, upper, _GRID_POINTS)
    grad_discriminator = _mean_abs_derivative(lambda u: torch.sigmoid(discriminator(u)), fake)
    grad_critic_clip = _mean_abs_derivative(critic_clip, fake)
    grad_critic_gp = _mean_abs_derivative(critic_gp, fake)
    w1_emd = float(emd(real.double().numpy()[:, 0], fake.double().numpy()[:, 0], p=1))
    with torch.no_grad():
        grid = torch.from_numpy(x).float()[:, None]  # (G, 1)

        def curve(network):
            return network(grid)[:, 0].double().numpy()

        logits_real, logits_fake = discriminator(real), discriminator(fake)
        js_bound = math.log(2) + 0.5 * (F.logsigmoid(logits_real).mean() + F.logsigmoid(-logits_fake).mean()).item()
        return DiscriminatorVsCritic(
            x=x,
            real_density=_normal_pdf(x, real_mean),
            fake_density=_normal_pdf(x, fake_mean),
            discriminator=torch.sigmoid(torch.from_numpy(curve(discriminator))).numpy(),
            critic_clip=curve(critic_clip),
            critic_gp=curve(critic_gp),
            clip_parameters=torch.cat([p.flatten() for p in critic_clip.parameters()]).double().numpy(),
            clip=_CLIP,
            gp_weight=gp_weight,
            discriminator_real=torch.sigmoid(logits_real).mean().item(),
            discriminator_fake=torch.sigmoid(logits_fake).mean().item(),
            grad_discriminator=grad_discriminator,
            grad_critic_clip=grad_critic_clip,
            grad_critic_gp=grad_critic_gp,
            gradient_ratio=grad_critic_gp / grad_discriminator,
            w1_emd=w1_emd,
            w1_clip=(critic_clip(real).mean() - critic_clip(fake).mean()).item(),
            w1_gp=(critic_gp(real).mean() - critic_gp(fake).mean()).item(),
            gp_slope_theory=1 + w1_emd / (2 * gp_weight),
            js_bound=js_bound,
        )


def _normal_pdf(x, mean):
    """Density of N(mean, 1) at the points x."""
    return np.exp(-0.5 * (x - mean) ** 2) / math.sqrt(2 * math.pi)


def _check_means(real_mean, fake_mean):
    """Both means finite real numbers, and different; returns them as floats."""
    real_mean, fake_mean = check_real("real_mean", real_mean), check_real("fake_mean", fake_mean)
    if real_mean == fake_mean:
        raise ValueError(
            f"`fake_mean` should differ from `real_mean`, so that the distributions are apart. "
            f"Instead, received real_mean={real_mean!r} and fake_mean={fake_mean!r}."
        )
    return real_mean, fake_mean


def _check_torch_seed(seed):
    """``seed`` is an integer in [0, 2^64), the range of ``torch.manual_seed``; returns it as an int."""
    if seed is None:
        raise TypeError("`seed` should be a non-negative integer. Instead, received None.")
    return check_seed(seed)
