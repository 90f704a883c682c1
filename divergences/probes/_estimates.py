"""Estimates shared by the sampled probes (parallel lines, shift sweep).

A probe moves a sample along a path t ↦ y(t) (a translate of a fixed sample)
and measures divergences between histograms of the samples, or between the
samples themselves, with their derivatives in t by autograd.  A grid is one
(lower, upper, bins) triple per axis of the points.
"""

import numpy as np
import torch


def values_and_derivatives(divergence, path, parameters):
    """``divergence(path(t))`` and its derivative in t, for each t of ``parameters``, (T,) and (T,).

    ``path`` maps a scalar float64 tensor t to the samples at t, differentiably.
    """
    values, derivatives = [], []
    for t in parameters:
        t = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        value = divergence(path(t))
        values.append(value.item())
        derivatives.append(torch.autograd.grad(value, t)[0].item())
    return np.array(values), np.array(derivatives)


def histogram(points, grid):
    """Counts of the (n, k) numpy points in the cells of ``grid``, clipped onto it, flattened (prod bins,)."""
    lower, upper, bins = (np.array(column) for column in zip(*grid))  # (k,) each
    clipped = np.clip(points, lower, upper)  # (n, k)
    counts, _ = np.histogramdd(clipped, bins=[int(b) for b in bins], range=list(zip(lower, upper)))
    return counts.ravel()


def soft_histogram(points, grid):
    """Linear (k = 1) or bilinear (k = 2) histogram of the (n, k) tensor points on ``grid``, differentiable.

    Along each axis a point at position u (in cell widths from the first cell
    centre, clamped to the grid) puts weight max(0, 1 - |u - c|) on centre c;
    the weights of each point sum to one.  Flattened, (prod bins,).
    """
    weights = [_tent_weights(points[:, axis], *cells) for axis, cells in enumerate(grid)]  # (n, bins) each
    if len(weights) == 1:
        return weights[0].sum(0)  # (bins,)
    return torch.einsum("ni,nj->ij", *weights).flatten()  # (bins_0 * bins_1,)


def _tent_weights(u, lower, upper, bins):
    """Weights (n, bins) of the (n,) coordinates u on the centres of ``bins`` cells of [lower, upper]."""
    position = ((u - lower) / ((upper - lower) / bins) - 0.5).clamp(0, bins - 1)  # (n,)
    return torch.relu(1 - (position[:, None] - torch.arange(bins).to(u)).abs())  # (n, bins)
