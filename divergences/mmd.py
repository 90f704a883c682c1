"""Unbiased maximum mean discrepancy (MMD²) with GeomLoss's kernels, and KID: MMD² with a cubic kernel, over subsets."""

import math
from typing import NamedTuple

import torch
from torch.utils.checkpoint import checkpoint

from divergences import _scaling, _validation

__all__ = ["mmd", "kid", "KID", "KERNELS"]

KERNELS = {
    "polynomial": "(x·y / d + 1)³: KID's kernel (degree 3, gamma 1/d, coef 1)",
    "gaussian": "exp(-|x - y|² / (2 blur²))",
    "laplacian": "exp(-|x - y| / blur)",
    "energy": "-|x - y|: MMD² is then the energy distance",
}
"""The kernels of :func:`mmd` by name, with their formulas (GeomLoss's names, and its meaning of ``blur``)."""

_BLOCK_ENTRIES = 1 << 22  # kernel entries computed at once: memory stays bounded whatever n and m
# squared distances below eps ** this of |u|² + |v|² come from the differences (1e-4 in float64, 0.02 in float32)
_EXPANSION_EXACT_ABOVE = 0.25


class KID(NamedTuple):
    """KID: the mean of the subsets' MMD², and their standard deviation (ddof 0, as torch-fidelity)."""

    value: object
    std: object


def mmd(x, y, *, kernel="polynomial", blur=None):
    r"""Unbiased estimate of the squared maximum mean discrepancy between two samples.

    .. math::

        \widehat{MMD}^2 = \frac{1}{n(n-1)} \sum_{i \ne j} k(x_i, x_j)
        + \frac{1}{m(m-1)} \sum_{i \ne j} k(y_i, y_j)
        - \frac{2}{nm} \sum_{i, j} k(x_i, y_j)

    Parameters
    ----------
    x : (n,) or (..., n, d) array_like or torch.Tensor
        The first sample, n >= 2 points of dimension d.  Leading axes are batch axes.
    y : (m,) or (..., m, d) array_like or torch.Tensor
        The second sample, m >= 2 points of the same dimension.
    kernel : {"polynomial", "gaussian", "laplacian", "energy"}, optional
        See `KERNELS`.  Default ``"polynomial"``, KID's kernel (x·y/d + 1)³.
    blur : float > 0
        The scale σ of the ``"gaussian"`` and ``"laplacian"`` kernels, in
        the units of the points (required for them, refused by the others).
        The median distance between points is a common choice.

    Returns
    -------
    mmd2 : (...) ndarray or torch.Tensor
        The unbiased MMD², in the library, dtype and device of the inputs;
        differentiable for torch inputs.  Being unbiased, it can be slightly
        negative when the two samples come from one distribution.

    Raises
    ------
    ValueError
        Fewer than 2 points, different dimensions, NaN or infinite entries,
        an unknown kernel, a ``blur`` missing, given in vain, or not > 0.
    TypeError
        Non-numeric inputs, a ``kernel`` that is not a string.

    See Also
    --------
    kid : this estimate with KID's kernel, averaged over random subsets.

    Notes
    -----
    GeomLoss's kernel losses (``SamplesLoss("gaussian", blur=σ)``) compute
    half of the biased (V-statistic) estimate, with the diagonal terms k(x_i, x_i);
    this is the unbiased U-statistic.  With ``"energy"`` it is the energy
    distance 2 E|X - Y| - E|X - X'| - E|Y - Y'|.  Kernel values are computed
    in blocks of 2^22 entries in the inputs' dtype and summed in float64.
    Distances are taken between points divided by a power of two (exactly),
    so that their squares neither overflow nor underflow, from
    |u|² + |v|² - 2 u·v after centring, and from the differences themselves
    for the pairs where that expansion cancels (coincident points above all).

    Examples
    --------
    On the line with the energy kernel: 2·2 - 0 - 0 = 4 (one point twice a side).

    >>> float(mmd([0.0, 0.0], [2.0, 2.0], kernel="energy"))
    4.0
    """
    converter, (x, y) = _validation.convert(x=x, y=y)
    kernel = _validation.check_choice("kernel", kernel, tuple(KERNELS))
    blur = _check_blur(kernel, blur)
    x, y = _validation.check_samples(x, y, minimum=2)
    if kernel == "polynomial":
        value = _mmd2(x, y, _kernel(kernel, blur, x.shape[-1]))
    else:
        # distances are homogeneous: computed on points divided by a power of two (exactly), their squares
        # neither overflow nor underflow, and the energy kernel's value is scaled back
        scale = torch.maximum(_scaling.scales_of(x, (-2, -1)), _scaling.scales_of(y, (-2, -1)))
        blur = None if blur is None else torch.as_tensor(blur, dtype=scale.dtype, device=scale.device) / scale
        value = _mmd2(x / scale, y / scale, _kernel(kernel, blur, x.shape[-1]))
        if kernel == "energy":
            value = value * scale[..., 0, 0].to(value.dtype)
    return converter.back(_validation.check_fits(value.to(converter.dtype), "the MMD",
                                                 "`x` and `y` are too large for the kernel: its values overflow; rescale them"))


def kid(x, y, *, subsets=100, subset_size=1000, seed=None):
    r"""Kernel Inception Distance: unbiased MMD² with KID's cubic kernel, averaged over random subsets.

    Each of ``subsets`` times, ``s = min(subset_size, n, m)`` points are drawn
    without replacement from each sample, and :func:`mmd` with the kernel
    (x·y/d + 1)³ is computed on them (Bińkowski et al. 2018, as torch-fidelity
    and clean-fid compute it).

    Parameters
    ----------
    x : (..., n, d) array_like or torch.Tensor
        The first sample (features of real images, say), n >= 2.
    y : (..., m, d) array_like or torch.Tensor
        The second sample, m >= 2, of the same dimension.
    subsets : int >= 1, optional
        Number of subsets.  Default 100 (torch-fidelity's and clean-fid's).
    subset_size : int >= 2, optional
        Points drawn per subset and sample.  Default 1000.
    seed : int, optional
        Seed of the subsets; ``None`` draws from torch's global generator.
        The subsets are drawn on the CPU: a seed gives the same subsets on
        every device.

    Returns
    -------
    KID
        ``value``: the mean MMD² over the subsets, and ``std``: their
        standard deviation (0 for one subset), each (...) in the library,
        dtype and device of the inputs.

    Raises
    ------
    ValueError, TypeError
        As :func:`mmd`; ``subsets`` or ``subset_size`` not a positive integer,
        ``subset_size`` below 2.

    Examples
    --------
    One subset holding both whole samples is :func:`mmd`:

    >>> x, y = [[0.0], [1.0]], [[3.0], [5.0]]
    >>> float(kid(x, y, subsets=1, seed=0).value) == float(mmd(x, y))
    True
    """
    converter, (x, y) = _validation.convert(x=x, y=y)
    subsets = _validation.check_count("subsets", subsets)
    subset_size = _validation.check_count("subset_size", subset_size)
    if subset_size < 2:
        raise ValueError(f"`subset_size` should be >= 2 (an unbiased MMD needs two points). Instead, received {subset_size}.")
    seed = _validation.check_seed(seed)
    x, y = _validation.check_samples(x, y, minimum=2)
    (n, d), m = x.shape[-2:], y.shape[-2]
    _validation.check_allocation("subsets", subsets, 8 * subsets * math.prod(x.shape[:-2]), "the subsets' values")
    size = min(subset_size, n, m)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    kernel = _kernel("polynomial", None, d)
    values = torch.empty(subsets, *x.shape[:-2], dtype=torch.float64, device=x.device)  # (subsets, ...)
    for subset in range(subsets):
        rows_x = torch.randperm(n, generator=generator)[:size].to(x.device)
        rows_y = torch.randperm(m, generator=generator)[:size].to(y.device)
        values[subset] = _mmd2(x[..., rows_x, :], y[..., rows_y, :], kernel)
    mean, std = values.mean(0), values.std(0, correction=0)
    explanation = "`x` and `y` are too large for KID's cubic kernel: its values overflow; rescale them"
    return KID(*(converter.back(_validation.check_fits(value.to(converter.dtype), f"KID's {what}", explanation))
                 for what, value in (("mean", mean), ("standard deviation", std))))


def _check_blur(kernel, blur):
    if kernel in ("gaussian", "laplacian"):
        if blur is None:
            raise ValueError(f"the {kernel!r} kernel needs `blur`, its scale in the units of the points "
                             f"(the median distance between points is a common choice).")
        return _validation.check_positive("blur", blur)
    if blur is not None:
        raise ValueError(f"`blur` is the scale of the 'gaussian' and 'laplacian' kernels; the {kernel!r} kernel "
                         f"has none. Instead, received blur={blur!r}.")
    return None


def _kernel(name, blur, d):
    """The kernel block function: (..., r, d), (..., c, d) -> (..., r, c)."""
    if name == "polynomial":
        return lambda u, v: (u @ v.transpose(-1, -2) / d + 1) ** 3
    if name == "gaussian":
        return lambda u, v: torch.exp(-(_distances(u, v) / blur).square() / 2)  # blur² could under- or overflow
    if name == "laplacian":
        return lambda u, v: torch.exp(-_distances(u, v) / blur)
    return lambda u, v: -_distances(u, v)


def _squared_distances(u, v):
    """|u_i - v_j|², (..., r, c): the expansion |u|² + |v|² - 2 u·v, and the differences themselves where it cancels.

    Both sides are centred on v's mean first (distances do not change), so that the norms are of
    the points' spread, not of their offset. The expansion's round-off is about eps (|u|² + |v|²)
    (times a factor of the dimension); pairs closer than `_EXPANSION_EXACT_ABOVE` of that scale,
    coincident points above all, whose distance the square root would otherwise raise from
    round-off to its square root, take their value from their differences, summed in chunks of
    bounded memory. The gradient stays the expansion's, 2 (u - v) for u, exact in form.
    """
    centre = v.mean(-2, keepdim=True).detach()
    u, v = u - centre, v - centre
    norms_u, norms_v = u.square().sum(-1, keepdim=True), v.square().sum(-1).unsqueeze(-2)
    squared = (norms_u + norms_v - 2 * (u @ v.transpose(-1, -2))).clamp(min=0)
    close = squared.detach() <= torch.finfo(squared.dtype).eps ** _EXPANSION_EXACT_ABOVE * (norms_u + norms_v).detach()
    if not close.any():
        return squared
    batch = torch.broadcast_shapes(u.shape[:-2], v.shape[:-2])
    pairs = close.expand(*batch, *close.shape[-2:]).nonzero()  # (pairs, batch dims + 2): batch indices..., i, j
    u, v = u.detach().expand(*batch, *u.shape[-2:]), v.detach().expand(*batch, *v.shape[-2:])
    chunk = max(1, _BLOCK_ENTRIES // u.shape[-1])
    exact = torch.cat([(u[tuple(part[:, :-1].T)] - v[tuple(part[:, :-2].T) + (part[:, -1],)]).square().sum(-1)
                       for part in pairs.split(chunk)])
    squared = squared.expand(*batch, *squared.shape[-2:])
    at = tuple(pairs.T)
    return squared + torch.zeros_like(squared.detach()).index_put(at, exact - squared.detach()[at])


def _distances(u, v):
    """|u_i - v_j|, (..., r, c), with gradient 0 where a distance is 0 (where |·| has no derivative)."""
    squared = _squared_distances(u, v)
    positive = squared > 0
    return torch.where(positive, squared.where(positive, 1).sqrt(), 0)


def _mmd2(x, y, kernel):
    """The unbiased MMD², (...), float64."""
    n, m = x.shape[-2], y.shape[-2]
    return (_kernel_sum(x, x, kernel, diagonal=True) / (n * (n - 1))
            + _kernel_sum(y, y, kernel, diagonal=True) / (m * (m - 1))
            - 2 * _kernel_sum(x, y, kernel, diagonal=False) / (n * m))


def _kernel_sum(u, v, kernel, diagonal):
    """Σ_ij k(u_i, v_j) in float64, without the terms i = j if ``diagonal`` (u is v), in blocks of rows."""
    rows = max(1, _BLOCK_ENTRIES // max(1, math.prod(u.shape[:-2]) * v.shape[-2]))
    recomputed = torch.is_grad_enabled() and (u.requires_grad or v.requires_grad)
    total = 0
    for start in range(0, u.shape[-2], rows):
        block = (u[..., start:start + rows, :], v, kernel, start if diagonal else None)
        total = total + (checkpoint(_block_sum, *block, use_reentrant=False) if recomputed else _block_sum(*block))
    return total


def _block_sum(u, v, kernel, diagonal_start):
    """The sum of one block of rows, (...), float64; the entries (i, diagonal_start + i) left out if given."""
    values = kernel(u, v)  # (..., r, c)
    total = values.sum((-2, -1), dtype=torch.float64)
    if diagonal_start is not None:
        total = total - torch.diagonal(values[..., diagonal_start:diagonal_start + u.shape[-2]], 0, -2, -1).sum(
            -1, dtype=torch.float64)
    return total
