"""Exact optimal transport on the line, by matching quantile functions.

On the real line the monotone (sorted) coupling is optimal for every convex
cost |x - y|^p, so

.. math::

    W_p^p(\\mu, \\nu) = \\int_0^1 |F^{-1}(t) - G^{-1}(t)|^p \\, dt,

which needs only sorting: O((n + m) log(n + m)) for any weights.
"""

import torch

from divergences import _backend


def wasserstein_pp(x, y, a, b, p):
    """W_p^p between weighted samples on the line.

    Parameters
    ----------
    x : (..., n) tensor
    y : (..., m) tensor
        Samples; all four arguments share the same batch shape.
    a : (..., n) tensor or None
        Weights of ``x`` summing to one, or None for uniform weights.
    b : (..., m) tensor or None
        Weights of ``y`` summing to one, or None for uniform weights.
    p : float >= 1

    Returns
    -------
    (...) tensor
    """
    if a is None and b is None and x.shape[-1] == y.shape[-1]:
        # Equal uniform weights: the i-th smallest x is sent to the i-th smallest y.
        gap = _backend.sort(x) - _backend.sort(y)
        return _power(gap, p).mean(-1)
    x_sorted, x_cdf = _sorted_with_cdf(x, a)
    y_sorted, y_cdf = _sorted_with_cdf(y, b)
    levels = _backend.sort(torch.cat([x_cdf, y_cdf], -1))  # (..., n + m)
    widths = torch.diff(levels, dim=-1, prepend=torch.zeros_like(levels[..., :1]))  # (..., n + m)
    x_quantiles = _quantile(x_sorted, x_cdf, levels)
    y_quantiles = _quantile(y_sorted, y_cdf, levels)
    return (widths * _power(x_quantiles - y_quantiles, p)).sum(-1)


def _sorted_with_cdf(values, weights):
    """Sorted values and their cumulative weights, ending at exactly 1."""
    if weights is None:
        n = values.shape[-1]
        cdf = torch.arange(1, n + 1, dtype=values.dtype, device=values.device) / n
        return _backend.sort(values), cdf.expand(*values.shape[:-1], n)
    order = _backend.argsort(values)
    values = torch.gather(values, -1, order)
    cumulative = torch.cumsum(torch.gather(weights.expand_as(values), -1, order), -1)
    return values, cumulative / cumulative[..., -1:]  # (..., n)


def _quantile(sorted_values, cdf, levels):
    """F^{-1}(t) = min {x : F(x) >= t} at each level t."""
    index = torch.searchsorted(cdf.detach().contiguous(), levels.detach().contiguous())
    index = index.clamp(max=sorted_values.shape[-1] - 1)
    return torch.gather(sorted_values, -1, index)


def _power(gap, p):
    """|gap|^p with a zero gradient at gap = 0."""
    distance = gap.abs()
    return distance if p == 1 else distance**p
