"""The ground cost |x - y|^p and the p-th root that turns W_p^p into W_p."""

import math

import torch


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
    scale = _power_of_two_above(torch.maximum(x.detach().abs().max(), y.detach().abs().max()))
    distance = torch.cdist(x / scale, y / scale, compute_mode="donot_use_mm_for_euclid_dist") * scale  # (..., n, m)
    return distance if p == 1 else distance**p


def _power_of_two_above(largest):
    """2^k >= ``largest`` (a 0-d tensor), or 1 when it is 0."""
    exponent = math.ceil(math.log2(float(largest))) if float(largest) > 0 else 0
    return math.ldexp(1.0, exponent)


def root(value, p):
    """``value ** (1 / p)`` with a zero (not infinite) gradient at 0."""
    if p == 1:
        return value
    positive = value > 0
    safe = torch.where(positive, value, torch.ones_like(value))
    return torch.where(positive, safe ** (1 / p), torch.zeros_like(value))
