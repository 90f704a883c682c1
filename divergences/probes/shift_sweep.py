r"""The shift-sweep probe: divergences between a distribution and its translate.

P is N(0, I) (family "gaussian") or the uniform law on the box [0, 1]^d
(family "box"), and P_Δ is P shifted by Δ e1.  As Δ grows the overlap
vanishes, and

.. math::

    W_1(P, P_\Delta) = \Delta, \qquad
    \mathrm{KL}(P_\Delta \,\|\, P) = \frac{\Delta^2}{2} \ \text{(Gaussian)}, \quad
    +\infty \ \text{(box, } \Delta > 0), \qquad
    \mathrm{JS}(P, P_\Delta) = \min(\Delta, 1) \log 2 \ \text{(box)}.

JS saturates at log 2 and its gradient in Δ dies with the overlap; W1 grows
linearly with gradient 1 at every distance.  :func:`shift_sweep` measures this
on samples, along a sweep of Δ.
"""

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from divergences import emd, js, kl, sinkhorn, sliced
from divergences._validation import check_choice, check_count, check_positive, check_seed
from divergences.probes._checks import check_grid
from divergences.probes._estimates import histogram, soft_histogram, values_and_derivatives
from divergences.probes._report import markdown_table, values_and_gradients

__all__ = ["ShiftSweep", "shift_sweep"]

_FAMILIES = {"gaussian": (-4.0, 4.0, 8.0), "box": (0.0, 1.0, 3.0)}  # first-axis range of P, default max Δ
_TABLE_ROWS = 5


@dataclass(frozen=True, eq=False)
class ShiftSweep:
    """Closed forms, estimates and Δ-derivative magnitudes of the shift-sweep probe.

    Every field but ``family`` is a float64 array of the shape of ``delta``;
    see :func:`shift_sweep` for how each is computed.
    """

    family: str
    delta: np.ndarray
    w1_exact: np.ndarray
    js_exact: np.ndarray
    kl_exact: np.ndarray
    js_hist: np.ndarray
    kl_hist: np.ndarray
    w1_emd: np.ndarray
    sinkhorn: np.ndarray
    sliced: np.ndarray
    grad_js: np.ndarray
    grad_kl: np.ndarray
    grad_w1: np.ndarray
    grad_sinkhorn: np.ndarray
    grad_sliced: np.ndarray

    def table(self):
        """Markdown table of every array field at five evenly spaced Δ of the sweep (all if fewer)."""
        rows = sorted(set(np.linspace(0, len(self.delta) - 1, _TABLE_ROWS).round().astype(int)))
        names = [field.name for field in fields(self) if field.name != "family"]
        return markdown_table(self, names, rows)

    def plot(self, ax=None):
        """Draw the divergences and the magnitudes of their derivatives in Δ.

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
        titles = (f"divergence between P and P_Δ ({self.family})", "|gradient| in Δ")
        return values_and_gradients(ax, self, self.delta, "Δ", titles)


def shift_sweep(deltas=None, *, dimension=1, family="gaussian", n_samples=256, bins=32, eps=1e-2, seed=0):
    r"""Run the shift-sweep probe: divergences between P and P shifted by Δ e1, and their gradients.

    The n samples x_i of P (standard normal, or uniform on [0, 1]^d) are drawn
    once; those of P_Δ are y_i = x_i + Δ e1, the same draws shifted.  The
    identity matching moves every point by Δ, and no matching does better
    (W1 is at least the distance between the means), so

    .. math::

        W_1(\hat P, \hat P_\Delta) = \frac1n \sum_i \|x_i - y_i\| = \Delta.

    Parameters
    ----------
    deltas : (T,) array_like, >= 0, optional
        Shifts Δ.  Default: 21 values evenly spaced on [0, 8] (Gaussian) or
        [0, 3] (box), so that the overlap vanishes.
    dimension : int >= 1, optional
        Dimension d of the samples.
    family : {"gaussian", "box"}, optional
        P = N(0, I) or P = U[0, 1]^d.
    n_samples : int >= 1, optional
        Number of samples n of each distribution.
    bins : int >= 1, optional
        Number of cells of the histogram grid along e1, over [-4, 4 + max Δ]
        (Gaussian; samples beyond it are clipped onto it) or [0, 1 + max Δ] (box).
    eps : float > 0, optional
        Entropic regularisation of the Sinkhorn divergence, in cost units.
    seed : int >= 0 or None, optional
        Seed of ``numpy.random.default_rng``, which draws the samples of P.
        Also the seed of the sliced distance's directions.

    Returns
    -------
    ShiftSweep
        ``family``, ``delta``; the closed forms ``w1_exact`` = Δ, ``kl_exact``
        (Δ²/2, or inf for the box once Δ > 0) and ``js_exact`` (min(Δ, 1) log 2
        for the box; by quadrature for the Gaussian, which has no closed form);
        ``js_hist`` and ``kl_hist`` = KL(P_Δ ‖ P) between histograms of the
        first coordinates; ``w1_emd``, ``sinkhorn`` (debiased) and ``sliced``,
        all with p = 1; and the magnitudes of the derivatives in Δ by autograd
        ``grad_js``, ``grad_kl`` (NaN where the KL is infinite), ``grad_w1``,
        ``grad_sinkhorn``, ``grad_sliced``.

    Raises
    ------
    TypeError
        If ``deltas`` does not hold real numbers, ``family`` is not a string,
        ``dimension``, ``n_samples``, ``bins`` or ``seed`` is not an integer,
        or ``eps`` not a real number.
    ValueError
        If ``family`` is not "gaussian" or "box", ``deltas`` is not a
        one-dimensional array of finite values >= 0, ``dimension``,
        ``n_samples`` or ``bins`` is < 1, ``eps`` is not > 0 and finite, or
        ``seed`` is negative.

    Notes
    -----
    Only the first coordinate differs between P and P_Δ, so JS and KL of the
    laws equal those of their first coordinates, which the histograms
    estimate.  A histogram is piecewise constant in Δ, so ``grad_js`` and
    ``grad_kl`` differentiate *linear* histograms instead: each sample splits
    its mass between the two nearest cell centres, in proportion to
    1 - distance / cell width.  For the box with cells of width w and the edge
    x = 1 on a cell edge (as on the default grid, w = 1/8), P's linear mass
    sits on centres up to 1 + w/2 and P_Δ's on centres beyond Δ - w: they are
    disjoint, JS is log 2 and ``grad_js`` exactly 0 once Δ - w >= 1 + w/2,
    i.e. Δ >= 1 + 3w/2 (the plain histograms are disjoint once Δ >= 1).  The sliced distance of a shift by Δ e1 is
    :math:`\Delta \, \mathbb{E} |\cos \varphi|` over the directions drawn,
    which is Δ itself in one dimension (every direction is ±1).

    Examples
    --------
    W1 is the shift, with gradient 1; the box's JS is log 2 with gradient 0
    once the boxes are apart:

    >>> probe = shift_sweep([0.0, 0.5, 2.0], family="box", n_samples=64)
    >>> probe.w1_emd
    array([0. , 0.5, 2. ])
    >>> probe.grad_w1[1:]
    array([1., 1.])
    >>> probe.js_exact
    array([0.        , 0.34657359, 0.69314718])
    >>> float(probe.js_hist[2]), float(probe.grad_js[2])
    (0.6931471805599453, 0.0)
    """
    lower, upper, default_max = _FAMILIES[check_choice("family", family, tuple(_FAMILIES))]
    delta = np.linspace(0.0, default_max, 21) if deltas is None else check_grid("deltas", deltas, lower=0)
    dimension = check_count("dimension", dimension)
    n_samples = check_count("n_samples", n_samples)
    bins = check_count("bins", bins)
    eps = check_positive("eps", eps)
    seed = check_seed(seed)
    grid = [(lower, upper + delta.max(initial=0.0), bins)]  # along e1
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((n_samples, dimension)) if family == "gaussian" else rng.random((n_samples, dimension))
    x = torch.from_numpy(draws)  # (n, d)
    e1 = torch.zeros(dimension, dtype=x.dtype)
    e1[0] = 1.0
    # P_Δ is a translate of P, so both self-transport terms of the debiased
    # divergence equal this one, for every Δ: compute it once.
    self_cost = sinkhorn(x, x, p=1, eps=eps, debias=False)

    def measure(divergence):
        values, derivatives = values_and_derivatives(divergence, lambda d: x + d * e1, delta)
        return values, np.abs(derivatives)

    w1_emd, grad_w1 = measure(lambda y: emd(x, y, p=1))
    cost, grad_sinkhorn = measure(lambda y: sinkhorn(x, y, p=1, eps=eps, debias=False) - self_cost)
    sliced_w1, grad_sliced = measure(lambda y: sliced(x, y, p=1, seed=seed))
    soft_p = soft_histogram(x[:, :1], grid)
    _, grad_js = measure(lambda y: js(soft_p, soft_histogram(y[:, :1], grid)))
    soft_kl, grad_kl = measure(lambda y: kl(soft_histogram(y[:, :1], grid), soft_p))
    hist_p = histogram(draws[:, :1], grid)
    hist_delta = [histogram(draws[:, :1] + d, grid) for d in delta]
    if family == "gaussian":
        js_exact, kl_exact = _gaussian_js(delta), delta**2 / 2
    else:
        js_exact, kl_exact = np.minimum(delta, 1.0) * math.log(2), np.where(delta > 0, math.inf, 0.0)
    return ShiftSweep(
        family=family,
        delta=delta,
        w1_exact=delta.copy(),
        js_exact=js_exact,
        kl_exact=kl_exact,
        js_hist=np.array([float(js(hist_p, hist)) for hist in hist_delta]),
        kl_hist=np.array([float(kl(hist, hist_p)) for hist in hist_delta]),
        w1_emd=w1_emd,
        sinkhorn=cost,
        sliced=sliced_w1,
        grad_js=grad_js,
        grad_kl=np.where(np.isinf(soft_kl), np.nan, grad_kl),
        grad_w1=grad_w1,
        grad_sinkhorn=grad_sinkhorn,
        grad_sliced=grad_sliced,
    )


def _gaussian_js(delta):
    r"""JS(N(0, 1), N(Δ, 1)) for each Δ, (T,), by quadrature.

    By symmetry JS = ∫ φ(t) log(2 φ(t) / (φ(t) + φ(t - Δ))) dt
    = log 2 - ∫ φ(t) log(1 + e^{Δ t - Δ²/2}) dt, a smooth integrand whose
    Riemann sum on a fine grid over [-12, 12] is exact to rounding (clipped
    onto [0, log 2], so that Δ = 0 gives 0 exactly).
    """
    t, step = np.linspace(-12.0, 12.0, 24001, retstep=True)
    density = np.exp(-(t**2) / 2) / math.sqrt(2 * math.pi)
    log_ratio = np.logaddexp(0.0, delta[:, None] * t - delta[:, None] ** 2 / 2)  # (T, 24001)
    return np.clip(math.log(2) - (density * log_ratio).sum(-1) * step, 0.0, math.log(2))
