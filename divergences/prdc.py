"""Precision, recall, density and coverage of generated samples against real ones, from k-nearest-neighbour balls."""

from typing import NamedTuple

import torch

from divergences import _scaling, _validation

__all__ = ["prdc", "PRDC"]

_BLOCK_ENTRIES = 1 << 24  # pairwise distances held at once (128 MiB in float64), whatever the sample sizes


class PRDC(NamedTuple):
    """Precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020)."""

    precision: object
    recall: object
    density: object
    coverage: object


def prdc(real, fake, *, k=5):
    r"""Precision, recall, density and coverage of ``fake`` against ``real``.

    Each point is given the ball reaching to its k-th nearest neighbour in its
    own sample, of radius r_k; with B(x, r) the open ball and ``N`` and ``M``
    the sizes of ``real`` and ``fake``:

    .. math::

        \text{precision} &= \tfrac{1}{M} \textstyle\sum_j
            1[\exists i: Y_j \in B(X_i, r_k(X_i))] \\
        \text{recall} &= \tfrac{1}{N} \textstyle\sum_i
            1[\exists j: X_i \in B(Y_j, r_k(Y_j))] \\
        \text{density} &= \tfrac{1}{kM} \textstyle\sum_j \sum_i
            1[Y_j \in B(X_i, r_k(X_i))] \\
        \text{coverage} &= \tfrac{1}{N} \textstyle\sum_i
            1[\exists j: Y_j \in B(X_i, r_k(X_i))]

    Precision: how many generated points look real; recall: how much of the
    real distribution is generated; density counts how many real balls hold
    each generated point (1 on average for a sample of the real distribution,
    and robust to real outliers, unlike precision); coverage: how many real
    points have a generated one in their ball.

    Parameters
    ----------
    real : (N, d) or (..., N, d) array_like or torch.Tensor
        Features of real samples, N > k.  Leading axes are batch axes.
    fake : (M, d) or (..., M, d) array_like or torch.Tensor
        Features of generated samples, M > k, in the same dimension.
    k : int >= 1, optional
        The neighbour that sets each ball's radius (its own point not
        counted).  Default 5, the recommendation of Naeem et al.

    Returns
    -------
    PRDC
        ``precision``, ``recall``, ``density`` and ``coverage``, each (...) in
        the library, dtype and device of the inputs.  Precision, recall and
        coverage are in [0, 1]; density is in [0, N/k].

    Raises
    ------
    ValueError
        k + 1 or fewer points in a sample, different dimensions, NaN or
        infinite entries, a non-positive ``k``.
    TypeError
        Non-numeric inputs or a non-integer ``k``.

    Notes
    -----
    The same as the ``prdc`` package of Naeem et al. (``compute_prdc``), whose
    definitions torchmetrics and dgm-eval follow: the radius is the distance
    to the k-th nearest other point, and membership is strict (distance <
    radius).  The values depend only on the order of distances, so they are
    computed on the samples divided by a power of two: the same at any scale,
    ties included.  Distances are computed in float64 in blocks of 2^24 pairs, so
    memory stays bounded (5·10^4 against 5·10^4 points in 2048-D needs the
    two samples in float64, 1.6 GB, and 128 MiB of distances).  The counts
    are not differentiable; the results carry no gradient.

    Examples
    --------
    A sample against itself: every point is in its own ball.

    >>> points = [[0.0], [1.0], [3.0], [6.0]]
    >>> [float(v) for v in prdc(points, points, k=1)][::3]
    [1.0, 1.0]
    """
    converter, (real, fake) = _validation.convert(real=real, fake=fake)
    k = _validation.check_count("k", k)
    real, fake = _validation.check_samples(real, fake, k + 1, names=("real", "fake"),
                                           why=f" (k = {k}: each point needs k other points in its sample)")
    batch = real.shape[:-2]
    real, fake = _scale_free(real.detach().to(torch.float64), fake.detach().to(torch.float64))
    real, fake = real.reshape(-1, *real.shape[-2:]), fake.reshape(-1, *fake.shape[-2:])
    values = torch.tensor([_prdc(r, f, k) for r, f in zip(real, fake)], dtype=torch.float64, device=real.device)
    values = values.reshape(*batch, 4).to(converter.dtype)
    return PRDC(*(converter.back(values[..., i]) for i in range(4)))


def _scale_free(real, fake):
    """Both samples divided by a power of two above their largest coordinate: exactly, so ties stay ties.

    The four values depend only on which distances are smaller than which: on coordinates of order 1
    no square overflows or underflows (points at 1e155 or 1e-200 give what points at 1 give).
    """
    scale = torch.maximum(_scaling.scales_of(real, (-2, -1)), _scaling.scales_of(fake, (-2, -1)))
    return real / scale, fake / scale


def _prdc(real, fake, k):
    """The four values for one pair of samples (N, d) and (M, d), float64, as a list.

    Distances come from |u|² + |v|² - 2 u·v, which loses the digits of a spread small beside the offset
    from the origin (40 normal points moved by 1e8 gave all four values 0).  So each sample's radii are
    measured from its own smallest coordinates, and the distances between them from the real sample's:
    a corner that does not depend on the order of the points, and whose subtraction is exact for points
    near it (within a factor 2, and for integers), so ties stay ties.
    """
    fake_radii = _neighbour_radii(fake - fake.amin(0), k)  # (M,), squared
    corner = real.amin(0)
    real, fake = real - corner, fake - corner
    real_radii = _neighbour_radii(real, k)  # (N,), squared
    in_real_ball = torch.zeros(len(fake), dtype=torch.float64, device=fake.device)  # real balls holding each fake
    recalled = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for rows, squared in _distance_blocks(real, fake):  # (r, M)
        inside = squared < real_radii[rows].unsqueeze(-1)
        in_real_ball += inside.sum(0)
        covered[rows] = inside.any(-1)
        recalled[rows] = (squared < fake_radii).any(-1)
    return [float((in_real_ball > 0).double().mean()), float(recalled.double().mean()),
            float(in_real_ball.mean() / k), float(covered.double().mean())]


def _neighbour_radii(points, k):
    """Squared distance from each point (n, d) to its k-th nearest other point, (n,)."""
    radii = torch.empty(len(points), dtype=torch.float64, device=points.device)
    for rows, squared in _distance_blocks(points, points):
        squared[torch.arange(len(squared), device=squared.device), rows] = 0  # a point is at distance 0 from itself, exactly
        radii[rows] = torch.topk(squared, k + 1, dim=-1, largest=False).values[:, -1]
    return radii


def _distance_blocks(u, v):
    """The squared distances between u (n, d) and v (m, d) by blocks of rows: (row indices (r,), block (r, m))."""
    v_norms = v.square().sum(-1)
    size = max(1, _BLOCK_ENTRIES // len(v))
    for start in range(0, len(u), size):
        block = u[start:start + size]
        squared = block.square().sum(-1, keepdim=True) + v_norms - 2 * block @ v.T
        yield torch.arange(start, start + len(block), device=u.device), squared.clamp_(min=0)
