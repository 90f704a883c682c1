"""Multi-scale sliced Wasserstein distance between sets of images (Karras et al., 2018)."""

import torch
import torch.nn.functional as F

from divergences import _scaling, _validation
from divergences.sliced import sliced

__all__ = ["patch_sliced"]

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # 5-tap Gaussian of the Burt–Adelson pyramid, / 16


def patch_sliced(x, y, *, patch_size=7, patches_per_image=128, n_projections=512, min_resolution=16, seed=0):
    r"""Sliced Wasserstein distance between the local patches of two image sets, per scale.

    The metric of Karras et al. (2018, Progressive GAN, appendix D): each set
    is decomposed into a Laplacian pyramid, from full resolution down to
    ``min_resolution``; from every image and level, ``patches_per_image``
    random ``patch_size`` × ``patch_size`` neighbourhoods are taken as
    descriptors of dimension :math:`d = C \cdot T^2`; each channel is
    normalised to zero mean and unit variance over the descriptors of both
    sets at that level; and the two descriptor clouds of each level are
    compared with :func:`sliced` (p = 1):

    .. math::

        \mathrm{SWD}_\ell = SW_1\big(\{\hat d_{\ell}(x_i, k)\}_{i, k},\;
                                     \{\hat d_{\ell}(y_j, k)\}_{j, k}\big),
        \qquad \ell = 0 (\text{finest}), \dots, L - 1 (\text{coarsest}).

    Fine levels compare edges and texture, the coarsest level compares the
    blurred layout and colours.  No pretrained network is involved.

    Parameters
    ----------
    x : (N, C, S, S) array_like or torch.Tensor
        First image set (e.g. real images), channels first, any value range.
    y : (M, C, S, S) array_like or torch.Tensor
        Second image set (e.g. generated images), with the channels and side
        of ``x``; M may differ from N.
    patch_size : int, keyword-only
        Side T of the square patches.  Default 7, as in the paper.
    patches_per_image : int, keyword-only
        Patches drawn from each image at each level.  Default 128, as in the
        paper.
    n_projections : int, keyword-only
        Random directions of :func:`sliced`.  Default 512 (the paper's
        4 × 128).
    min_resolution : int >= 2, keyword-only
        Side of the coarsest level.  The image side S must be
        ``min_resolution * 2**k`` for some k >= 0, which gives L = k + 1
        levels.  Default 16.
    seed : int >= 0 or None, keyword-only
        Seed of the patch positions and of the projection directions, drawn
        on the CPU so that a seed gives the same value on every device.
        ``None`` draws them from torch's global generator.  Default 0.

    Returns
    -------
    distances : (L,) ndarray or torch.Tensor
        One SW1 distance per level, finest first, in the library, dtype and
        device of the inputs; differentiable for torch inputs.

    Raises
    ------
    ValueError
        Images that are not (N, C, S, S) with N >= 1, sets that differ in
        channels or side, a side that is not ``min_resolution`` times a power
        of two, ``patch_size > min_resolution``, ``min_resolution < 2``, NaN
        or infinite pixels, numpy and torch mixed, tensors on different
        devices, and the errors of :func:`sliced`.
    TypeError
        Non-numeric images, non-integer options.

    Notes
    -----
    The pyramid filters with the 5-tap binomial kernel (1, 4, 6, 4, 1) / 16
    in each direction, with mirrored borders; a level is the image minus the
    upsampled next coarser image, and the coarsest level is the low-pass image
    itself.  With one level (S = ``min_resolution``) the descriptors are raw
    patches.

    Patch positions are drawn from ``seed`` by image index, so image i of
    ``x`` and image i of ``y`` share positions (common random numbers): two
    identical sets give exactly 0, and swapping ``x`` and ``y`` gives the same
    value up to round-off.  The value is random for a fixed seed only through
    which patches and directions were drawn; its spread falls with more images
    and patches.

    The reference implementation normalises each set by its own statistics;
    here both sets share the statistics of their union, so a global shift of
    brightness or colour between the sets is measured (mostly at the coarsest
    level) rather than normalised away.  Karras et al. report the values
    multiplied by 10³.

    The cost is dominated by sorting ``n_projections`` projections of
    ``(N + M) * patches_per_image`` descriptors per level.

    Examples
    --------
    A set against itself is at distance 0 at every level:

    >>> images = torch.rand(4, 3, 32, 32)
    >>> patch_sliced(images, images, patches_per_image=8, n_projections=16)
    tensor([0., 0.])
    """
    converter, (x, y) = _validation.convert(x=x, y=y)
    patch_size, min_resolution = _validation.check_patch_size(patch_size, min_resolution)
    patches_per_image = _validation.check_count("patches_per_image", patches_per_image)
    n_projections = _validation.check_count("n_projections", n_projections)
    seed = _validation.check_seed(seed)
    levels = _validation.check_image_sets(x, y, min_resolution)
    descriptors = (len(x) + len(y)) * patches_per_image  # per level, of T * T * C values, and their corners
    _validation.check_allocation("patches_per_image", patches_per_image,
                                 descriptors * (x.element_size() * patch_size**2 * x.shape[1] + 16), "the patches")
    # Each channel of the descriptors is normalised by its statistics, so the value does not change when a
    # channel of both sets is rescaled; rescaled by a power of two, its squares cannot overflow (or underflow).
    scale = torch.maximum(_scaling.scales_of(x, (0, 2, 3)), _scaling.scales_of(y, (0, 2, 3)))  # (1, C, 1, 1)
    x, y = x / scale, y / scale
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    distances = []
    for x_level, y_level in zip(_laplacian_pyramid(x, levels), _laplacian_pyramid(y, levels)):
        corners = torch.randint(  # (max(N, M), K, 2), shared by image index
            x_level.shape[-1] - patch_size + 1, (max(len(x), len(y)), patches_per_image, 2), generator=generator
        )
        x_patches = _patches(x_level, corners[: len(x)], patch_size)  # (N K, T, T, C)
        y_patches = _patches(y_level, corners[: len(y)], patch_size)  # (M K, T, T, C)
        x_patches, y_patches = _normalise_channels(x_patches, y_patches)
        distance = sliced(x_patches.flatten(1), y_patches.flatten(1), p=1, n_projections=n_projections, seed=seed)
        distances.append(distance)
    return converter.back(torch.stack(distances))


def _laplacian_pyramid(images, levels):
    """Laplacian pyramid of (N, C, S, S) images, finest first; the last level is the low-pass image."""
    gaussians = [images]
    for _ in range(levels - 1):
        gaussians.append(_downsample(gaussians[-1]))  # (N, C, S / 2, S / 2)
    pyramid = [fine - _upsample(_upsample(coarse, -1), -2) for fine, coarse in zip(gaussians, gaussians[1:])]
    return pyramid + gaussians[-1:]


def _downsample(images):
    """Binomial filter with mirrored borders, keeping every other pixel: (N, C, H, W) -> (N, C, H/2, W/2)."""
    height, width = images.shape[-2:]
    padded = F.pad(images, (2, 2, 2, 2), mode="reflect")  # (N, C, H + 4, W + 4)
    # Shifted slices instead of a depthwise convolution: several times faster on the CPU.
    rows = sum(tap * padded[..., i : i + height : 2, :] for i, tap in enumerate(_BINOMIAL))  # (N, C, H/2, W + 4)
    return sum(tap * rows[..., i : i + width : 2] for i, tap in enumerate(_BINOMIAL)) / 256


def _upsample(images, dim):
    """Double the negative axis ``dim``: zeros between samples, mirrored borders, binomial filter × 2.

    Written in its two phases: even outputs (a[i-1] + 6 a[i] + a[i+1]) / 8, odd
    outputs (a[i] + a[i+1]) / 2; mirroring the zero-filled signal makes a[-1] = a[1]
    and a[n] = a[n-1].
    """
    n = images.shape[dim]
    padded = torch.cat([images.narrow(dim, 1, 1), images, images.narrow(dim, n - 1, 1)], dim)  # n + 2
    before, centre, after = (padded.narrow(dim, i, n) for i in range(3))
    even = (before + 6 * centre + after) / 8
    odd = (centre + after) / 2
    return torch.stack([even, odd], dim).flatten(dim - 1, dim)  # even, odd, even, ... along dim


def _patches(images, corners, size):
    """Patches of (N, C, H, W) images at top-left ``corners`` (N, K, 2) (row, column) -> (N K, T, T, C)."""
    n, channels, height, width = images.shape
    offsets = torch.arange(size)
    rows = corners[..., 0, None, None] + offsets[:, None]  # (N, K, T, 1)
    cols = corners[..., 1, None, None] + offsets  # (N, K, 1, T)
    image = torch.arange(n)[:, None, None, None]  # (N, 1, 1, 1)
    pixel = ((image * height + rows) * width + cols).flatten()  # (N K T T,) into the (N H W) pixels
    channels_last = images.permute(0, 2, 3, 1).reshape(-1, channels)  # (N H W, C)
    return channels_last[pixel.to(images.device)].view(-1, size, size, channels)


def _normalise_channels(x_patches, y_patches):
    """Shift and scale each channel of both (B, T, T, C) descriptor sets by their union's mean and std."""
    count = (len(x_patches) + len(y_patches)) * x_patches[0, ..., 0].numel()
    dims = (0, 1, 2)
    mean = (x_patches.sum(dims, keepdim=True) + y_patches.sum(dims, keepdim=True)) / count  # (1, 1, 1, C)
    x_centred, y_centred = x_patches - mean, y_patches - mean
    variance = (x_centred.square().sum(dims, keepdim=True) + y_centred.square().sum(dims, keepdim=True)) / count
    std = torch.sqrt(torch.where(variance > 0, variance, 1.0))  # constant channels are left as 0
    return x_centred / std, y_centred / std
