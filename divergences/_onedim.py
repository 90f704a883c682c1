"""Exact optimal transport on the line, by matching quantile functions.

On the real line the monotone (sorted) coupling is optimal for every convex
cost |x - y|^p, so

.. math::

    W_p^p(\\mu, \\nu) = \\int_0^1 |F^{-1}(t) - G^{-1}(t)|^p \\, dt,

which needs only sorting: O((n + m) log(n + m)) for any weights.  The
p-th power mean of the gaps is taken by ``_cost.power_mean``.
"""

import torch

from divergences import _backend


def quantile_gaps(x, y, a, b):
    """The monotone coupling between weighted samples on the line, as (weights, gaps).

    Parameters
    ----------
    x : (..., n) tensor
    y : (..., m) tensor
        Samples; all four arguments share the same batch shape.
    a : (..., n) tensor or None
        Weights of ``x`` summing to one, or None for uniform weights.
    b : (..., m) tensor or None
        Weights of ``y`` summing to one, or None for uniform weights.

    Returns
    -------
    weights : (..., k) tensor, or a 0-d tensor 1 / k for equal uniform weights
        The mass each matched pair carries, summing to one.
    gaps : (..., k) tensor
        x-quantile minus y-quantile of each pair, so W_p^p = sum(weights |gaps|^p).
    """
    if a is None and b is None and x.shape[-1] == y.shape[-1]:
        # Equal uniform weights: the i-th smallest x is sent to the i-th smallest y.
        gaps = _backend.sort(x) - _backend.sort(y)
        return torch.tensor(1 / gaps.shape[-1], dtype=gaps.dtype, device=gaps.device), gaps
    x_sorted, x_cdf = _sorted_with_cdf(x, a)
    y_sorted, y_cdf = _sorted_with_cdf(y, b)
    levels = _backend.sort(torch.cat([x_cdf, y_cdf], -1))  # (..., n + m)
    widths = torch.diff(levels, dim=-1, prepend=torch.zeros_like(levels[..., :1]))  # (..., n + m)
    return widths, _quantile(x_sorted, x_cdf, levels) - _quantile(y_sorted, y_cdf, levels)


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
