"""The Fréchet distance between Gaussian fits (the FID formula): W2² between two Gaussians, in closed form."""

from typing import NamedTuple

import torch

from divergences import _scaling, _validation

__all__ = ["frechet", "frechet_gaussians", "gaussian_fit", "GaussianFit"]


class GaussianFit(NamedTuple):
    """The mean (..., d) and covariance (..., d, d) of a sample, as stored for reference statistics."""

    mean: object
    cov: object


def frechet(x, y):
    r"""Squared Fréchet distance between the Gaussian fits of two samples (the FID formula).

    .. math::

        FD(x, y) = \lVert \mu_x - \mu_y \rVert^2
        + \operatorname{tr}\Big( \Sigma_x + \Sigma_y
        - 2 \big( \Sigma_x^{1/2} \Sigma_y \Sigma_x^{1/2} \big)^{1/2} \Big)

    with μ the sample means and Σ the unbiased sample covariances.  It is the
    squared 2-Wasserstein distance between N(μx, Σx) and N(μy, Σy): an
    Earth-Mover distance in closed form.  On Inception features it is the FID.

    Parameters
    ----------
    x : (n,) or (..., n, d) array_like or torch.Tensor
        The first sample: n feature vectors of dimension d, n >= 2.  Leading
        axes are batch axes.
    y : (m,) or (..., m, d) array_like or torch.Tensor
        The second sample, in the same dimension, m >= 2.

    Returns
    -------
    distance : (...) ndarray or torch.Tensor
        FD >= 0 (a squared distance), in the library, dtype and device of the
        inputs; differentiable with respect to ``x`` and ``y`` for torch inputs.

    Raises
    ------
    ValueError
        Fewer than 2 points in a sample, different dimensions, batch axes
        that do not broadcast, NaN or infinite entries, a result beyond the
        dtype's range.
    TypeError
        Non-numeric inputs.

    See Also
    --------
    frechet_gaussians : the same distance from stored means and covariances.
    gaussian_fit : the statistics of one sample.

    Notes
    -----
    The trace of the matrix square root is computed without a matrix square
    root and without complex numbers.  With factors Σx = AᵀA and Σy = BᵀB
    (the centred sample over sqrt(n - 1) where n - 1 <= d, else the scaled
    eigenvectors of Σ), the eigenvalues of Σx^½ Σy Σx^½ are the squared
    singular values of A Bᵀ, so the trace term is the nuclear norm of A Bᵀ.
    Everything runs in float64 whatever the input dtype; a sample with fewer
    points than dimensions (a singular covariance) is exact too, in the
    smaller (n x m) problem.  SciPy's ``sqrtm``, used by pytorch-fid and
    torch-fidelity, returns complex round-off for singular covariances and
    needs an ``eps`` added to the diagonal; no such offset is added here.

    Gradients are those of the factorisation: they are defined where the
    covariances with n - 1 > d have distinct, positive eigenvalues.

    Examples
    --------
    Two samples with the same covariance, one shifted by 3: FD = 3² = 9.

    >>> x = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]
    >>> y = [[3.0, 0.0], [4.0, 0.0], [3.0, 2.0]]
    >>> round(float(frechet(x, y)), 12)
    9.0
    """
    converter, (x, y) = _validation.convert(x=x, y=y)
    x, y = _validation.check_samples(x, y, minimum=2)
    x, y = x.to(torch.float64), y.to(torch.float64)
    # FD is homogeneous of degree 2: computed on points divided by a power of two (exactly), so that their
    # covariances neither overflow nor underflow, and scaled back (twice by the scale: 0 stays 0)
    scale = torch.maximum(_scaling.scales_of(x, (-2, -1)), _scaling.scales_of(y, (-2, -1)))
    mean_x, factor_x = _sample_factor(x / scale)
    mean_y, factor_y = _sample_factor(y / scale)
    distance = _distance(mean_x, factor_x, mean_y, factor_y) * scale[..., 0, 0] * scale[..., 0, 0]
    return converter.back(_validation.check_fits(distance.to(converter.dtype), "the Fréchet distance",
                                                 "`x` and `y` are too large: their squared distances overflow; rescale them"))


def frechet_gaussians(mean_x, cov_x, mean_y, cov_y):
    r"""Squared Fréchet distance between N(mean_x, cov_x) and N(mean_y, cov_y): their W2².

    The formula of :func:`frechet`, from statistics stored beforehand (the
    ``mu`` and ``sigma`` of a pytorch-fid or clean-fid ``.npz`` file, or
    :func:`gaussian_fit`).

    Parameters
    ----------
    mean_x, mean_y : (..., d) array_like or torch.Tensor
        The means.
    cov_x, cov_y : (..., d, d) array_like or torch.Tensor
        The covariances: symmetric (to within round-off, sqrt of the dtype's
        epsilon relative to the largest entry) and positive semi-definite:
        eigenvalues within 100·d·eps of the largest of 0, either side, are
        taken as 0 (their square roots would add errors of sqrt(eps)).

    Returns
    -------
    distance : (...) ndarray or torch.Tensor
        W2² >= 0, in the library, dtype and device of the inputs;
        differentiable for torch inputs where the covariances have distinct,
        positive eigenvalues.

    Raises
    ------
    ValueError
        Shapes that do not fit (d of the means and covariances, square
        covariances, broadcasting batch axes), an asymmetric covariance, one
        with a clearly negative eigenvalue, NaN or infinite entries.
    TypeError
        Non-numeric inputs.

    Examples
    --------
    Between N(0, 4) and N(1, 1) on the line: (0 - 1)² + (2 - 1)² = 2.

    >>> round(float(frechet_gaussians([0.0], [[4.0]], [1.0], [[1.0]])), 12)
    2.0
    """
    converter, (mean_x, cov_x, mean_y, cov_y) = _validation.convert(
        mean_x=mean_x, cov_x=cov_x, mean_y=mean_y, cov_y=cov_y)
    factors = []
    for mean_name, mean, cov_name, cov in (("mean_x", mean_x, "cov_x", cov_x), ("mean_y", mean_y, "cov_y", cov_y)):
        _check_gaussian(mean_name, mean, cov_name, cov, d=mean_x.shape[-1] if mean_x.ndim else None)
        factors.append(_covariance_factor(cov_name, cov.to(torch.float64)))
    _validation.broadcast_batch(mean_x=mean_x.shape[:-1], cov_x=cov_x.shape[:-2], mean_y=mean_y.shape[:-1],
                                cov_y=cov_y.shape[:-2])
    distance = _distance(mean_x.to(torch.float64), factors[0], mean_y.to(torch.float64), factors[1])
    return converter.back(_validation.check_fits(distance.to(converter.dtype), "the Fréchet distance",
                                                 "`mean_x`, `cov_x`, `mean_y` or `cov_y` is too large: squared distances overflow; rescale the features"))


def gaussian_fit(x):
    """The mean and unbiased covariance of a sample, for :func:`frechet_gaussians`.

    Parameters
    ----------
    x : (n,) or (..., n, d) array_like or torch.Tensor
        n >= 2 feature vectors of dimension d.

    Returns
    -------
    GaussianFit
        ``mean`` (..., d) and ``cov`` (..., d, d) (normalised by n - 1, as
        ``numpy.cov``), accumulated in float64 and returned in the library,
        dtype and device of ``x``.

    Examples
    --------
    >>> fit = gaussian_fit([[0.0], [2.0]])
    >>> fit.mean.tolist(), fit.cov.tolist()
    ([1.0], [[2.0]])
    """
    converter, (x,) = _validation.convert(x=x)
    x, _ = _validation.check_samples(x, x, minimum=2)
    x = x.to(torch.float64)
    scale = _scaling.scales_of(x, (-2, -1))  # the covariance on points divided by a power of two, scaled back
    mean = x.mean(-2)
    centred = x / scale - (mean / scale[..., 0]).unsqueeze(-2)
    cov = centred.transpose(-1, -2) @ centred / (x.shape[-2] - 1) * scale * scale
    cov = _validation.check_fits(cov.to(converter.dtype), "the covariance",
                                 "`x` is too large: its squares overflow; rescale it")
    return GaussianFit(converter.back(mean.to(converter.dtype)), converter.back(cov))


def _sample_factor(x):
    """The mean (..., d) of a sample (..., n, d) and a factor A, (..., k, d), of its covariance: Σ = AᵀA."""
    n, d = x.shape[-2:]
    mean = x.mean(-2)
    centred = (x - mean.unsqueeze(-2)) / (n - 1) ** 0.5
    if n - 1 <= d:  # the covariance has rank <= n - 1: the sample itself is the smaller factor
        return mean, centred
    return mean, _covariance_factor("x", centred.transpose(-1, -2) @ centred)


def _covariance_factor(name, cov):
    """A factor A = Λ^½ Uᵀ of a symmetric positive semi-definite Σ = U Λ Uᵀ, (..., d, d); eigenvalues within round-off of 0 -> 0."""
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    largest = eigenvalues.detach()[..., -1:].clamp(min=0)
    tolerance = 100 * cov.shape[-1] * torch.finfo(torch.float64).eps * largest
    smallest = eigenvalues.detach()[..., :1]
    if bool((smallest < -tolerance).any()):
        worst = float((smallest / largest.clamp(min=torch.finfo(torch.float64).tiny)).min())
        raise ValueError(f"`{name}` should be positive semi-definite. Instead, it has an eigenvalue of "
                         f"{worst:.3g} times its largest.")
    kept = eigenvalues > tolerance  # round-off, whose square root would add sqrt(eps) errors, counts as 0
    roots = torch.where(kept, eigenvalues, torch.ones_like(eigenvalues)).sqrt() * kept
    return roots.unsqueeze(-1) * eigenvectors.transpose(-1, -2)


def _distance(mean_x, factor_x, mean_y, factor_y):
    """‖μx − μy‖² + tr Σx + tr Σy − 2 ‖A Bᵀ‖_* (clamped at 0 against round-off), (...)."""
    traces = factor_x.square().sum((-2, -1)) + factor_y.square().sum((-2, -1))
    cross = torch.linalg.svdvals(factor_x @ factor_y.transpose(-1, -2)).sum(-1)
    return ((mean_x - mean_y).square().sum(-1) + traces - 2 * cross).clamp(min=0)


def _check_gaussian(mean_name, mean, cov_name, cov, d):
    """A mean (..., d) and a symmetric covariance (..., d, d) of the same d as ``mean_x``."""
    if mean.ndim == 0 or mean.shape[-1] == 0 or mean.shape[-1] != d:
        raise ValueError(f"`{mean_name}` should be a non-empty (..., d) array, with the d of `mean_x`. "
                         f"Instead, received an array of shape {tuple(mean.shape)}.")
    if cov.ndim < 2 or cov.shape[-2:] != (d, d):
        raise ValueError(f"`{cov_name}` should be a (..., {d}, {d}) covariance matrix. "
                         f"Instead, received an array of shape {tuple(cov.shape)}.")
    asymmetry = float((cov - cov.transpose(-1, -2)).detach().abs().max())
    scale = float(cov.detach().abs().max())
    if asymmetry > torch.finfo(cov.dtype).eps ** 0.5 * scale:
        raise ValueError(f"`{cov_name}` should be symmetric. Instead, entries differ from their transposes "
                         f"by up to {asymmetry:.3g} (its largest entry is {scale:.3g}).")
