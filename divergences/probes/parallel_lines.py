r"""The parallel-lines probe: Example 1 of the WGAN paper (Arjovsky et al., 2017).

P0 is the law of (0, Z) and Pθ that of (θ, Z), Z ~ U[0, 1]: two parallel
segments at distance |θ|, with disjoint supports for θ ≠ 0, where

.. math::

    W_1(P_0, P_\theta) = |\theta|, \qquad \mathrm{JS}(P_0, P_\theta) = \log 2, \qquad
    \mathrm{KL}(P_\theta \,\|\, P_0) = +\infty,

and all three vanish at θ = 0.  JS saturates: it is log 2 whether the
generator is off by 0.01 or by 1, so its gradient is 0 and says nothing about
which way to move.  W1 stays informative: it grows like the distance, with
gradient ±1 pointing back to θ = 0.  This is the case for training GANs on the
Earth-Mover distance; :func:`parallel_lines` measures it on samples.
"""

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from divergences import emd, js, kl, sinkhorn, sliced
from divergences._validation import check_count, check_positive, check_seed
from divergences.probes._checks import check_grid
from divergences.probes._estimates import histogram, soft_histogram, values_and_derivatives
from divergences.probes._report import markdown_table, values_and_gradients

__all__ = ["ParallelLines", "parallel_lines"]

_TABLE_THETAS = (-1.0, -0.5, -0.1, 0.0, 0.1, 0.5, 1.0)
_GRID = ((-1.0, 1.0), (0.0, 1.0))  # the histograms' range along each axis


@dataclass(frozen=True, eq=False)
class ParallelLines:
    """Closed forms, estimates and θ-derivatives of the parallel-lines probe.

    Every field is a float64 array of the shape of ``theta``; see
    :func:`parallel_lines` for how each is computed.
    """

    theta: np.ndarray
    w1_exact: np.ndarray
    js_exact: np.ndarray
    kl_exact: np.ndarray
    js_hist: np.ndarray
    kl_hist: np.ndarray
    w1_emd: np.ndarray
    sinkhorn: np.ndarray
    sliced: np.ndarray
    grad_js: np.ndarray
    grad_w1: np.ndarray
    grad_sinkhorn: np.ndarray
    grad_sliced: np.ndarray

    def table(self):
        """Markdown table of every field at the θ nearest -1, -0.5, -0.1, 0, 0.1, 0.5 and 1."""
        rows = sorted({int(np.argmin(np.abs(self.theta - t))) for t in _TABLE_THETAS})
        return markdown_table(self, [field.name for field in fields(self)], rows)

    def plot(self, ax=None):
        """Draw the paper's Figure 1: the divergences and their derivatives in θ.

        Parameters
        ----------
        ax : pair of matplotlib Axes, optional
            Where to draw the values and the gradients.  Default: the two
            panels of a new :class:`matplotlib.figure.Figure`, which needs no
            display (it renders with Agg when saved).

        Returns
        -------
        figure : matplotlib.figure.Figure
        """
        titles = ("divergence between P0 and Pθ", "gradient in θ")
        return values_and_gradients(ax, self, self.theta, "θ", titles)


def parallel_lines(thetas=None, *, n_samples=256, bins=32, eps=1e-3, seed=0):
    r"""Run the parallel-lines probe: divergences between P0 and Pθ, and their gradients.

    P0 is the law of (0, Z) and Pθ that of (θ, Z), Z ~ U[0, 1].  Both are
    sampled with the same Z, so the samples are x_i = (0, z_i) and
    y_i = (θ, z_i), and the identity matching is optimal:

    .. math::

        W_1(\hat P_0, \hat P_\theta) = \frac1n \sum_i \|x_i - y_i\| = |\theta|.

    Parameters
    ----------
    thetas : (T,) array_like in [-1, 1], optional
        Offsets θ.  Default: the 41 values -1, -0.95, ..., 1 (0 exactly).
    n_samples : int >= 1, optional
        Number of samples n of each distribution.
    bins : int >= 1, optional
        Cells per axis of the histogram grid over [-1, 1] x [0, 1].
    eps : float > 0, optional
        Entropic regularisation of the Sinkhorn divergence, in cost units.
    seed : int >= 0 or None, optional
        Seed of ``numpy.random.default_rng``; Z is its ``random(n_samples)``.
        Also the seed of the sliced distance's directions.

    Returns
    -------
    ParallelLines
        ``theta``; the closed forms ``w1_exact``, ``js_exact``, ``kl_exact``;
        ``js_hist`` and ``kl_hist`` = KL(Pθ ‖ P0) between bins x bins histograms;
        ``w1_emd``, ``sinkhorn`` (debiased) and ``sliced``, all with p = 1; and
        the derivatives in θ by autograd ``grad_js``, ``grad_w1``,
        ``grad_sinkhorn``, ``grad_sliced``.

    Raises
    ------
    TypeError
        If ``thetas`` does not hold real numbers, ``n_samples``, ``bins`` or
        ``seed`` is not an integer, or ``eps`` not a real number.
    ValueError
        If ``thetas`` is not one-dimensional or leaves [-1, 1], ``n_samples``
        or ``bins`` is < 1, ``eps`` is not > 0 and finite, or ``seed`` is
        negative.

    Notes
    -----
    A histogram is piecewise constant in θ, so ``grad_js`` differentiates JS
    between *bilinear* histograms instead: each sample splits its mass between
    the nearest cell centres, in proportion to 1 - distance / cell width.  With
    cells of width w = 2 / bins along the first axis, P0's mass sits on the two
    centres at ±w/2; the bilinear supports are disjoint, and ``grad_js`` is
    exactly 0, once |θ| >= 3w/2 (the plain histograms' once |θ| >= w).  The
    sliced distance of a shift by θ e1 is
    :math:`|\theta| \, \mathbb{E} |\cos \varphi|`, which tends to
    :math:`2 |\theta| / \pi` with many directions.

    Examples
    --------
    W1 is the distance between the lines, with gradient ±1; JS is log 2 with
    gradient 0 as soon as the lines are apart:

    >>> probe = parallel_lines([-0.5, 0.0, 0.5], n_samples=64)
    >>> probe.w1_emd
    array([0.5, 0. , 0.5])
    >>> probe.grad_w1
    array([-1.,  0.,  1.])
    >>> probe.js_hist
    array([0.69314718, 0.        , 0.69314718])
    >>> probe.grad_js
    array([0., 0., 0.])
    """
    theta = np.arange(-20, 21) / 20 if thetas is None else check_grid("thetas", thetas, lower=-1, upper=1)
    n_samples = check_count("n_samples", n_samples)
    bins = check_count("bins", bins)
    eps = check_positive("eps", eps)
    seed = check_seed(seed)
    grid = [(lower, upper, bins) for lower, upper in _GRID]
    z = torch.from_numpy(np.random.default_rng(seed).random(n_samples))
    x = _line(torch.tensor(0.0, dtype=torch.float64), z)  # (n, 2)
    # Pθ is a translate of P0, so both self-transport terms of the debiased
    # divergence equal this one, for every θ: compute it once.
    self_cost = sinkhorn(x, x, p=1, eps=eps, debias=False)

    def measure(divergence):
        return values_and_derivatives(divergence, lambda t: _line(t, z), theta)

    w1_emd, grad_w1 = measure(lambda y: emd(x, y, p=1))
    cost, grad_sinkhorn = measure(lambda y: sinkhorn(x, y, p=1, eps=eps, debias=False) - self_cost)
    sliced_w1, grad_sliced = measure(lambda y: sliced(x, y, p=1, seed=seed))
    _, grad_js = measure(lambda y: js(soft_histogram(x, grid), soft_histogram(y, grid)))
    hist_0 = histogram(x.numpy(), grid)
    hist_theta = [histogram(_line(torch.tensor(t), z).numpy(), grid) for t in theta]
    apart = theta != 0
    return ParallelLines(
        theta=theta,
        w1_exact=np.abs(theta),
        js_exact=np.where(apart, math.log(2), 0.0),
        kl_exact=np.where(apart, math.inf, 0.0),
        js_hist=np.array([js(hist_0, hist) for hist in hist_theta]),
        kl_hist=np.array([kl(hist, hist_0) for hist in hist_theta]),
        w1_emd=w1_emd,
        sinkhorn=cost,
        sliced=sliced_w1,
        grad_js=grad_js,
        grad_w1=grad_w1,
        grad_sinkhorn=grad_sinkhorn,
        grad_sliced=grad_sliced,
    )


def _line(theta, z):
    """The samples (θ, z_i) of Pθ, (n, 2), differentiable in the scalar tensor θ."""
    return torch.stack([theta.expand_as(z), z], dim=-1)
