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
        series = (
            ("W1 (emd)", ".-", self.w1_emd, self.grad_w1),
            ("Sinkhorn", "--", self.sinkhorn, self.grad_sinkhorn),
            ("sliced W1", "-", self.sliced, self.grad_sliced),
            ("JS (histograms)", ".-", self.js_hist, self.grad_js),
        )
        titles = (f"divergence between P and P_Δ ({self.family})", "|gradient| in Δ")
        return values_and_gradients(ax, self.delta, series, "Δ", titles)


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
    n_samples : int, optional
        Number of samples n of each distribution.
    bins : int, optional
        Number of cells of the histogram grid along e1, over [-4, 4 + max Δ]
        (Gaussian; samples beyond it are clipped onto it) or [0, 1 + max Δ] (box).
    eps : float > 0, optional
        Entropic regularisation of the Sinkhorn divergence, in cost units.
    seed : int, optional
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
    ValueError
        If ``family`` is not "gaussian" or "box", ``dimension`` is not a
        positive integer, or ``deltas`` is not a one-dimensional array of
        finite values >= 0.

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
    lower, upper, default_max = _check_family(family)
    dimension = _check_dimension(dimension)
    delta = _check_deltas(deltas, default_max)
    grid = (lower, upper + delta.max(initial=0.0), bins)
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((n_samples, dimension)) if family == "gaussian" else rng.random((n_samples, dimension))
    x = torch.from_numpy(draws)  # (n, d)
    # P_Δ is a translate of P, so both self-transport terms of the debiased
    # divergence equal this one, for every Δ: compute it once.
    self_cost = sinkhorn(x, x, p=1, eps=eps, debias=False)
    w1_emd, grad_w1 = _value_and_grad(lambda y: emd(x, y, p=1), x, delta)
    cost, grad_sinkhorn = _value_and_grad(lambda y: sinkhorn(x, y, p=1, eps=eps, debias=False) - self_cost, x, delta)
    sliced_w1, grad_sliced = _value_and_grad(lambda y: sliced(x, y, p=1, seed=seed), x, delta)
    soft_p = _soft_histogram(x[:, 0], grid)
    _, grad_js = _value_and_grad(lambda y: js(soft_p, _soft_histogram(y[:, 0], grid)), x, delta)
    soft_kl, grad_kl = _value_and_grad(lambda y: kl(_soft_histogram(y[:, 0], grid), soft_p), x, delta)
    hist_p = _histogram(draws[:, 0], grid)
    hist_delta = [_histogram(draws[:, 0] + d, grid) for d in delta]
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


def _check_family(family):
    """The family's first-axis range and default largest Δ; ValueError for an unknown family."""
    if family not in _FAMILIES:
        raise ValueError(f"`family` should be 'gaussian' or 'box'. Instead, received {family!r}.")
    return _FAMILIES[family]


def _check_dimension(dimension):
    """``dimension`` as a positive int."""
    if isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)) or dimension < 1:
        raise ValueError(f"`dimension` should be a positive integer. Instead, received {dimension!r}.")
    return int(dimension)


def _check_deltas(deltas, default_max):
    """``deltas`` as a float64 array of finite values >= 0; 21 points on [0, default_max] if None."""
    if deltas is None:
        return np.linspace(0.0, default_max, 21)
    delta = np.asarray(deltas, dtype=np.float64)
    if delta.ndim != 1 or not np.all(np.isfinite(delta) & (delta >= 0)):
        raise ValueError(
            f"`deltas` should be a one-dimensional array of finite values >= 0. Instead, received {deltas!r}."
        )
    return delta


def _value_and_grad(divergence, x, delta):
    """``divergence(x + Δ e1)`` and the magnitude of its derivative in Δ, for each Δ, (T,) and (T,)."""
    e1 = torch.zeros(x.shape[-1], dtype=x.dtype)
    e1[0] = 1.0
    values, grads = [], []
    for d in delta:
        d = torch.tensor(d, dtype=torch.float64, requires_grad=True)
        value = divergence(x + d * e1)  # (n, d) samples of P_Δ
        values.append(value.item())
        grads.append(abs(torch.autograd.grad(value, d)[0].item()))
    return np.array(values), np.array(grads)


def _histogram(u, grid):
    """Counts of the (n,) numbers u in the cells of the grid (lower, upper, bins), clipped onto it, (bins,)."""
    lower, upper, bins = grid
    counts, _ = np.histogram(np.clip(u, lower, upper), bins=bins, range=(lower, upper))
    return counts.astype(np.float64)


def _soft_histogram(u, grid):
    """Linear histogram of the (n,) tensor u on the same grid, (bins,), differentiable.

    A point at position v (in cell widths from the first cell centre, clamped
    to the grid) puts weight max(0, 1 - |v - k|) on centre k; the weights of
    each point sum to one.
    """
    lower, upper, bins = grid
    position = ((u - lower) / ((upper - lower) / bins) - 0.5).clamp(0, bins - 1)  # (n,)
    return torch.relu(1 - (position[:, None] - torch.arange(bins).to(u)).abs()).sum(0)  # (bins,)


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
