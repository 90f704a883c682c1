r"""Why supports don't overlap: the two reasons of Arjovsky & Bottou (2017).

A GAN's JS loss saturates at log 2 once the supports of the data and of the
generator are disjoint, and they are disjoint far more often than one might
think, for two reasons:

1. **Few samples.**  Between finite samples, even of the *same* distribution,
   the plug-in (histogram) JS rises to log 2 as the bins get finer: once most
   occupied bins hold points of only one sample, the histograms barely overlap.
   :func:`few_samples` measures it.
2. **Low-dimensional supports.**  Distributions concentrated on low-dimensional
   sets of R^d, such as two lines, meet in a null set at most, so

   .. math::

       \mathrm{JS}(P, Q) = \log 2 \quad \text{however close they are,}

   while W1 still measures how far apart they are.  :func:`high_dimension`
   measures it.
"""

import math
from dataclasses import dataclass

import numpy as np

from divergences import emd, js, sliced
from divergences._validation import check_count, check_seed
from divergences.probes._checks import check_grid
from divergences.probes._report import new_axes

__all__ = ["FewSamples", "HighDimension", "few_samples", "high_dimension"]


@dataclass(frozen=True, eq=False)
class FewSamples:
    """Plug-in JS between two samples of U[0, 1], against the number of bins.

    ``bins`` is (B,); ``js_trials`` and ``shared_trials`` are (B, T), one
    column per independent pair of samples; ``js`` and ``shared`` are their
    means over the trials, (B,).  See :func:`few_samples`.
    """

    bins: np.ndarray
    js: np.ndarray
    shared: np.ndarray
    js_trials: np.ndarray
    shared_trials: np.ndarray

    def table(self):
        """Markdown table of the mean JS and mean shared fraction for each bin count."""
        lines = ["| bins | js | shared |", "|---|---|---|"]
        for bins, value, shared in zip(self.bins, self.js, self.shared):
            lines.append(f"| {bins} | {value:.6g} | {shared:.6g} |")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Draw the mean JS and the fraction of shared bins against the number of bins.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw.  Default: the axes of a new
            :class:`matplotlib.figure.Figure`, which needs no display.

        Returns
        -------
        figure : matplotlib.figure.Figure
        """
        if ax is None:
            ax = new_axes(1, (6, 4))
        ax.plot(self.bins, self.js, ".-", label="mean plug-in JS")
        ax.plot(self.bins, self.shared, ".--", label="shared fraction of occupied bins")
        ax.axhline(math.log(2), color="grey", linestyle="--", label="log 2")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bins")
        ax.set_title("two samples of U[0, 1]")
        ax.legend(fontsize="small")
        return ax.figure


@dataclass(frozen=True, eq=False)
class HighDimension:
    """JS, W1 and sliced W1 between two random segments of R^d.

    ``dimension`` is (D,) and ``shift`` (S,); every other field is (D, S).
    See :func:`high_dimension`.
    """

    dimension: np.ndarray
    shift: np.ndarray
    js_exact: np.ndarray
    js: np.ndarray
    w1: np.ndarray
    sliced: np.ndarray

    def table(self):
        """Markdown table with one row per dimension and shift."""
        lines = ["| dimension | shift | js_exact | js | w1 | sliced |", "|---|---|---|---|---|---|"]
        for i, dimension in enumerate(self.dimension):
            for j, shift in enumerate(self.shift):
                values = (self.js_exact[i, j], self.js[i, j], self.w1[i, j], self.sliced[i, j])
                lines.append(f"| {dimension} | {shift:.6g} | " + " | ".join(f"{v:.6g}" for v in values) + " |")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Draw W1 (solid), sliced W1 (dashed) and JS against the shift, one colour per dimension.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw.  Default: the axes of a new
            :class:`matplotlib.figure.Figure`, which needs no display.

        Returns
        -------
        figure : matplotlib.figure.Figure
        """
        if ax is None:
            ax = new_axes(1, (6, 4))
        for i, dimension in enumerate(self.dimension):
            (line,) = ax.plot(self.shift, self.w1[i], ".-", label=f"W1, d = {dimension}")
            ax.plot(self.shift, self.sliced[i], "--", color=line.get_color())
        ax.plot(self.shift, self.js[0], "k:", label="JS (every d)")
        ax.set_xlabel("shift s")
        ax.set_title("segments of R^d (dashed: sliced W1)")
        ax.legend(fontsize="small")
        return ax.figure


def few_samples(bins=None, *, n_samples=200, trials=50, seed=0):
    r"""Plug-in JS between two samples of the same distribution, U[0, 1], with finer and finer bins.

    For each trial two samples x, y of n points of U[0, 1] are drawn and, for
    each bin count B, binned into B equal cells of [0, 1]; with counts
    c_k(x), c_k(y),

    .. math::

        \widehat{\mathrm{JS}}_B = \mathrm{JS}\big(c(x)/n, \; c(y)/n\big)
        = \log 2 + \frac1{2n} \sum_k \big[ c_k(x) \log \tfrac{c_k(x)}{n} + c_k(y) \log \tfrac{c_k(y)}{n}
        - (c_k(x) + c_k(y)) \log \tfrac{c_k(x) + c_k(y)}{n} \big],

    where a bracket vanishes unless cell k holds points of both samples.  The
    true JS is 0, yet :math:`\widehat{\mathrm{JS}}_B` is exactly log 2 as soon
    as no cell is shared.

    Parameters
    ----------
    bins : (B,) array_like of int >= 1, optional
        Bin counts.  Default: 2, 4, ..., 2^20.
    n_samples : int >= 1, optional
        Points n in each sample.
    trials : int >= 1, optional
        Independent pairs of samples T.
    seed : int >= 0 or None, optional
        Seed of ``numpy.random.default_rng``, which draws the T pairs once;
        every bin count bins the same samples.

    Returns
    -------
    FewSamples
        ``bins``; ``js_trials`` and ``shared_trials``, (B, T): the plug-in JS
        and the fraction of occupied cells holding points of both samples;
        ``js`` and ``shared``, their means over the trials.

    Raises
    ------
    TypeError
        If ``bins`` does not hold integers, or ``n_samples``, ``trials`` or
        ``seed`` is not an integer.
    ValueError
        If ``bins`` is not a non-empty one-dimensional array of integers
        >= 1, ``n_samples`` or ``trials`` is < 1, or ``seed`` is negative.

    Notes
    -----
    * With B ≪ n, :math:`\widehat{\mathrm{JS}}_B \approx \chi^2 / 8` where the
      chi-square statistic of the two samples has mean 2 (B - 1) / n, so
      :math:`\mathbb{E}\, \widehat{\mathrm{JS}}_B \approx (B - 1) / (4n)`.
    * Each of the n² pairs (x_i, y_j) falls in one cell with probability 1/B,
      so the expected number of such pairs is n² / B, and by Markov's
      inequality no cell is shared, and :math:`\widehat{\mathrm{JS}}_B = \log 2`,
      with probability at least 1 - n² / B.
    * When B' is a multiple of B, the B cells are unions of the B' cells, a
      function of the finer histogram; by the data-processing inequality
      :math:`\widehat{\mathrm{JS}}_B \le \widehat{\mathrm{JS}}_{B'}` in every
      trial, and a cell shared at B' lies in one shared at B.  The default
      powers of 2 are nested this way (x · 2^k is exact in floating point).

    Examples
    --------
    With 2 cells the two samples share both and JS is a few 1/n; with 2^20
    cells they share none, and JS is log 2 exactly:

    >>> probe = few_samples([2, 2**20], n_samples=200, trials=4)
    >>> probe.shared
    array([1., 0.])
    >>> bool(np.all(probe.js_trials[0] < 4 / 200))
    True
    >>> probe.js_trials[1]
    array([0.69314718, 0.69314718, 0.69314718, 0.69314718])
    """
    bins = 2 ** np.arange(1, 21) if bins is None else check_grid("bins", bins, lower=1, integer=True, nonempty=True)
    n_samples = check_count("n_samples", n_samples)
    trials = check_count("trials", trials)
    seed = check_seed(seed)
    samples = np.random.default_rng(seed).random((trials, 2, n_samples))  # (T, 2, n)
    js_trials = np.empty((len(bins), trials))
    shared_trials = np.empty((len(bins), trials))
    for i, count in enumerate(bins):
        cells = np.floor(samples * count).astype(np.int64)  # (T, 2, n)
        histograms = np.array([_compact_histograms(*pair) for pair in cells])  # (T, 2, 2n)
        js_trials[i] = js(histograms[:, 0], histograms[:, 1])
        occupied = histograms > 0
        shared_trials[i] = (occupied[:, 0] & occupied[:, 1]).sum(-1) / (occupied[:, 0] | occupied[:, 1]).sum(-1)
    return FewSamples(
        bins=bins,
        js=js_trials.mean(-1),
        shared=shared_trials.mean(-1),
        js_trials=js_trials,
        shared_trials=shared_trials,
    )


def high_dimension(dimensions=None, *, n_samples=128, shifts=None, seed=0):
    r"""JS, W1 and sliced W1 between two random segments of R^d, one of them shifted.

    P is the law of t u and Q_s that of t' w + s v, with t, t' ~ U[-1, 1] and
    u, w random unit vectors: two segments of lines through the origin, the
    second shifted by s along a unit vector v.  For d >= 3, v is drawn
    orthogonal to u and w; in the plane it is a random unit vector.  The lines
    meet in one point at most, a null set for both laws, so

    .. math::

        \mathrm{JS}(P, Q_s) = \log 2 \quad \text{for every } s \ge 0,

    while W1 shrinks with s.  For d >= 3 every P point x and Q_s point
    y + s v are at distance :math:`\sqrt{\|x - y\|^2 + s^2}`, since x - y is
    orthogonal to v; hence, with W1(0) the distance between the unshifted
    samples,

    .. math::

        \sqrt{W_1(0)^2 + s^2} \le W_1(s) \le W_1(0) + s,

    the lower bound by Jensen's inequality under W1(s)'s optimal plan, the
    upper one from W1(0)'s.  The same argument between any two shifts makes
    W1 strictly increasing in s.

    Parameters
    ----------
    dimensions : (D,) array_like of int >= 2, optional
        Dimensions d.  Default: 2, 3, 8, 32, 128.
    n_samples : int >= 1, optional
        Points n drawn from each law; the same t and t' serve every shift.
    shifts : (S,) array_like of float >= 0, optional
        Shifts s.  Default: 1, 0.5, 0.25, 0.
    seed : int >= 0 or None, optional
        Seed of ``numpy.random.default_rng`` (t, t', then u, w, v for each d in
        turn) and of the sliced distance's directions.

    Returns
    -------
    HighDimension
        ``dimension``, ``shift``; (D, S) arrays ``js_exact`` (log 2),
        ``js``, the plug-in JS between the two samples as histograms over the
        union of their points, ``w1`` = :func:`divergences.emd` and ``sliced``
        = :func:`divergences.sliced`, both with p = 1.

    Raises
    ------
    TypeError
        If ``dimensions`` does not hold integers, ``shifts`` real numbers,
        or ``n_samples`` or ``seed`` is not an integer.
    ValueError
        If ``dimensions`` is not a non-empty one-dimensional array of
        integers >= 2, ``shifts`` not one of finite values >= 0,
        ``n_samples`` is < 1, or ``seed`` is negative.

    Notes
    -----
    The plug-in ``js`` is log 2 exactly as soon as no point of one sample
    coincides with a point of the other, which has probability 1 for any two
    continuous laws: it says more about the samples (reason 1, see
    :func:`few_samples`) than about P and Q.  Here it agrees with the true JS.
    W1 is 1-Lipschitz under translation, so :math:`|W_1(s) - W_1(0)| \le s`
    in every dimension, and projecting is 1-Lipschitz, so sliced W1 <= W1.

    Examples
    --------
    JS cannot tell a shift of 1 from no shift at all; W1 can:

    >>> probe = high_dimension([3], shifts=[1.0, 0.0], n_samples=32)
    >>> probe.js
    array([[0.69314718, 0.69314718]])
    >>> bool(probe.w1[0, 0] > probe.w1[0, 1])
    True
    """
    dimension = (
        np.array([2, 3, 8, 32, 128])
        if dimensions is None
        else check_grid("dimensions", dimensions, lower=2, integer=True, nonempty=True)
    )
    shift = np.array([1.0, 0.5, 0.25, 0.0]) if shifts is None else check_grid("shifts", shifts, lower=0, nonempty=True)
    n_samples = check_count("n_samples", n_samples)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    t, t_prime = rng.uniform(-1, 1, (2, n_samples, 1))  # (n, 1) each
    js_values, w1, sliced_w1 = (np.empty((len(dimension), len(shift))) for _ in range(3))
    for i, d in enumerate(dimension):
        u, w, v = _directions(rng, d)
        x, y = t * u, t_prime * w  # (n, d)
        for j, s in enumerate(shift):
            y_s = y + s * v
            js_values[i, j] = js(*_compact_histograms(x, y_s))
            w1[i, j] = emd(x, y_s, p=1)
            sliced_w1[i, j] = sliced(x, y_s, p=1, seed=seed)
    return HighDimension(
        dimension=dimension,
        shift=shift,
        js_exact=np.full(js_values.shape, math.log(2)),
        js=js_values,
        w1=w1,
        sliced=sliced_w1,
    )


def _compact_histograms(x, y):
    """Counts of the cells (rows of x and y, or scalars) over their union, (2, n + m), zero-padded."""
    cells = np.concatenate([x, y]).reshape(len(x) + len(y), -1)  # (n + m, k)
    _, index = np.unique(cells, axis=0, return_inverse=True)
    index = index.ravel()
    first, second = index[: len(x)], index[len(x) :]
    return np.stack([np.bincount(first, minlength=len(cells)), np.bincount(second, minlength=len(cells))])


def _directions(rng, d):
    """Unit vectors u, w, v of R^d, with v orthogonal to u and w when d >= 3, (d,) each."""
    u, w, v = rng.standard_normal((3, d))
    u, w = u / np.linalg.norm(u), w / np.linalg.norm(w)
    if d >= 3:
        basis, _ = np.linalg.qr(np.stack([u, w], -1))  # (d, 2)
        v = v - basis @ (basis.T @ v)
    return u, w, v / np.linalg.norm(v)
