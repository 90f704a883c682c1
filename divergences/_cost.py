"""The ground cost |x - y|^p and the p-th root that turns W_p^p into W_p."""

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
    """
    distance = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")  # (..., n, m)
    return distance if p == 1 else distance**p


def root(value, p):
    """``value ** (1 / p)`` with a zero (not infinite) gradient at 0."""
    if p == 1:
        return value
    positive = value > 0
    safe = torch.where(positive, value, torch.ones_like(value))
    return torch.where(positive, safe ** (1 / p), torch.zeros_like(value))
