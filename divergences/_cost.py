"""The ground cost |x - y|^p and the p-th root that turns W_p^p into W_p."""

import torch

from divergences import _scaling

TOO_FAR_APART = "`x` and `y` are too far apart. Rescale them"
"""Why a distance between point clouds overflows (see ``_validation.check_fits``)."""


def ground_cost(x, y, p):
    """Cost matrix ``|x_i - y_j|^p`` of two batches of point clouds.

    Parameters
    ----------
    x : (..., n, d) tensor
    y : (..., m, d) tensor
    p : float >= 1

    Returns
    -------
    (..., n, m) tensor
        Computed from exact differences (not the |x|^2 + |y|^2 - 2<x, y>
        expansion), so coincident points cost exactly 0, with a zero gradient.
        The points are scaled by a power of two (exactly) so that the sum of
        squares inside the distance cannot overflow where the distance itself
        would not: a cost is infinite only if it exceeds the dtype's range.
    """
    scale = _scaling.scale_of(x, y)
    distance = torch.cdist(x / scale, y / scale, compute_mode="donot_use_mm_for_euclid_dist") * scale  # (..., n, m)
    return power(distance, p)


def root(value, p):
    """``value ** (1 / p)`` with a zero (not infinite) gradient at 0; NaN stays NaN (a failure is never a 0)."""
    if p == 1:
        return value
    positive = value > 0
    safe = torch.where(positive, value, torch.ones_like(value))
    return torch.where(positive, safe ** (1 / p), value * 0)


def power_mean(weights, gaps, p, dims):
    """``(sum(weights * |gaps|^p))^(1/p)`` over ``dims``, without overflow or underflow.

    The gaps are divided by their largest magnitude first (per batch entry), so
    the largest term is exactly 1 whatever p and the size of the gaps; terms
    that underflow then are below the round-off of the sum.  (A power of two
    near it is not enough: (1/2)^p underflows from p = 1075 on, and a largest
    gap of 3 came out as 0 at p = 5000.)  Zero gradient where the result is 0.
    When the plain sum is well inside the normal range, no term that matters
    can have overflowed or underflowed, and it is used as it is.
    """
    plain = (weights * power(gaps.abs(), p)).sum(dims)
    if _scaling.is_normal(plain.detach() * torch.finfo(plain.dtype).eps):  # >= tiny / eps, and finite
        return root(plain, p)
    scale = _scaling.largest_of(gaps, dims)
    return root((weights * power(gaps.abs() / scale, p)).sum(dims), p) * scale.squeeze(dims)


def power(values, p):
    """``values ** p``, skipping the power for p = 1."""
    return values if p == 1 else values**p
