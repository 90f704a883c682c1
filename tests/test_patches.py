"""patch_sliced: the pyramid, closed forms, symmetry, monotonicity, backends, errors."""

import numpy as np
import pytest
import scipy.ndimage
import torch

from divergences import patch_sliced, sliced
from divergences.patches import _laplacian_pyramid

FAST = dict(patches_per_image=16, n_projections=64)


def _faces(n, size=32, seed=0):
    """Smooth random colour images (N, 3, S, S) in [-1, 1]: blobs, so every level has structure."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n, 3, size, size))
    return np.tanh(scipy.ndimage.gaussian_filter(noise, sigma=(0, 0, 1.5, 1.5)) * 3)


def test_pyramid_is_the_burt_adelson_pyramid_of_the_reference():
    # Karras et al.: down = mirror-padded 5x5 binomial filter then every other pixel; up = zeros
    # between pixels then the same filter x 4; level = image - up(down(image)); last = low-pass.
    kernel = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])[None, None] / 256.0
    images = np.random.default_rng(0).random((2, 3, 32, 32))
    gaussians = [images]
    for _ in range(2):
        gaussians.append(scipy.ndimage.convolve(gaussians[-1], kernel, mode="mirror")[..., ::2, ::2])
    expected = []
    for fine, coarse in zip(gaussians, gaussians[1:]):
        spread = np.zeros_like(fine)
        spread[..., ::2, ::2] = coarse
        expected.append(fine - scipy.ndimage.convolve(spread, 4 * kernel, mode="mirror"))
    expected.append(gaussians[-1])
    for ours, theirs in zip(_laplacian_pyramid(torch.from_numpy(images), 3), expected, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=0, atol=1e-14)


def test_a_set_against_itself_is_at_distance_zero():
    # Same images, same patch positions, same directions: every projection matches exactly.
    x = _faces(6)
    np.testing.assert_array_equal(patch_sliced(x, x, **FAST), np.zeros(2))


def test_whole_image_patches_are_sliced_w1_of_the_channel_normalised_images():
    # patch_size = side = min_resolution: one level, one possible patch, the image itself; each
    # channel is standardised over the union of both sets, then compared with sliced W1.
    x, y = _faces(5, size=8, seed=1), _faces(3, size=8, seed=2) + 0.3
    union = np.concatenate([x, y])
    mean, std = union.mean(axis=(0, 2, 3), keepdims=True), union.std(axis=(0, 2, 3), keepdims=True)

    def descriptors(images):  # (N, 8 * 8 * 3), pixels channels last, as patch_sliced flattens them
        return ((images - mean) / std).transpose(0, 2, 3, 1).reshape(len(images), -1)

    value = patch_sliced(x, y, patch_size=8, patches_per_image=1, n_projections=50, min_resolution=8, seed=3)
    expected = sliced(descriptors(x), descriptors(y), p=1, n_projections=50, seed=3)
    assert value.shape == (1,)
    assert value[0] == pytest.approx(float(expected), rel=1e-12)


def test_a_constant_colour_shift_only_moves_the_coarsest_level():
    # The filters have unit gain at zero frequency, so x + c has the detail levels of x exactly
    # (up to round-off) and only its low-pass level moves.
    x = _faces(8)
    shifted = x + np.array([0.5, -0.3, 0.2])[:, None, None]
    fine, coarse = patch_sliced(x, shifted, **FAST)
    assert fine < 1e-6
    assert coarse > 0.1


def test_swapping_the_sets_gives_the_same_value():
    # Union statistics, shared patch positions and directions: SWD(x, y) = SWD(y, x).
    x, y = _faces(6, seed=1), _faces(4, seed=2)
    np.testing.assert_allclose(patch_sliced(x, y, **FAST), patch_sliced(y, x, **FAST), rtol=1e-12)


def test_grows_with_the_amplitude_of_added_noise():
    # y = x + sigma * noise: the finer levels see the noise first and every level grows with sigma.
    x = _faces(16)
    noise = np.random.default_rng(5).normal(size=x.shape)
    values = np.array([patch_sliced(x, x + sigma * noise, **FAST) for sigma in (0.02, 0.1, 0.5)])  # (3, L)
    assert (np.diff(values, axis=0) > 0).all()
    assert values[-1, 0] > values[-1, -1]


def test_numpy_and_torch_agree_and_keep_dtype_and_shape():
    x, y = _faces(4, seed=1), _faces(5, seed=2)
    reference = patch_sliced(x, y, **FAST)
    assert reference.shape == (2,) and reference.dtype == np.float64
    as_torch = patch_sliced(torch.from_numpy(x), torch.from_numpy(y), **FAST)
    assert as_torch.dtype == torch.float64 and as_torch.shape == (2,)
    np.testing.assert_allclose(as_torch.numpy(), reference, rtol=1e-12)
    single = patch_sliced(torch.from_numpy(x).float(), torch.from_numpy(y).float(), **FAST)
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single.numpy(), reference, rtol=1e-4)


def test_levels_run_from_full_resolution_down_to_min_resolution():
    # Side 64 with min_resolution 16: levels at 64, 32 and 16 pixels.
    x = np.random.default_rng(0).random((2, 1, 64, 64))
    assert patch_sliced(x, x[::-1], **FAST).shape == (3,)
    assert patch_sliced(x, x[::-1], min_resolution=8, **FAST).shape == (4,)
    assert patch_sliced(x, x[::-1], patch_size=3, min_resolution=64, **FAST).shape == (1,)


def test_gradients_match_finite_differences():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 4, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 1, 4, 4, generator=generator, dtype=torch.float64)

    def distance(images):
        return patch_sliced(images, y, patch_size=2, patches_per_image=3, n_projections=4, min_resolution=2)

    assert torch.autograd.gradcheck(distance, (x,))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_value_on_the_input_device():
    x, y = torch.from_numpy(_faces(4, seed=1)), torch.from_numpy(_faces(4, seed=2))
    on_gpu = patch_sliced(x.cuda(), y.cuda(), **FAST)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), patch_sliced(x, y, **FAST), rtol=1e-10, atol=0)


# --- validation ---------------------------------------------------------------------------

IMAGES = np.zeros((2, 3, 16, 16))


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.zeros((3, 16, 16)), IMAGES, r"`x` should be a non-empty batch of square images, shape \(N, C, S, S\)"),
        (IMAGES, np.zeros((2, 3, 16, 32)), r"`y` should be a non-empty batch of square images"),
        (np.zeros((0, 3, 16, 16)), IMAGES, r"`x` should be a non-empty batch"),
        (IMAGES, np.zeros((2, 1, 16, 16)), "should have the same number of channels"),
        (IMAGES, np.zeros((2, 3, 32, 32)), "should have the same image size"),
        (np.zeros((2, 3, 24, 24)), np.zeros((2, 3, 24, 24)), r"`min_resolution` \(16\) times a power of two.*side 24"),
        (np.zeros((2, 3, 8, 8)), np.zeros((2, 3, 8, 8)), r"times a power of two.*side 8"),
        (np.full((2, 3, 16, 16), np.nan), IMAGES, "`x` should be finite"),
        (IMAGES, torch.zeros(2, 3, 16, 16), "cannot mix numpy and torch"),
    ],
)
def test_bad_images_are_rejected(x, y, match):
    with pytest.raises(ValueError, match=match):
        patch_sliced(x, y, **FAST)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(patch_size=17), r"`patch_size` should be <= `min_resolution` \(16\)"),
        (dict(patch_size=0), "`patch_size` should be a positive integer"),
        (dict(min_resolution=1, patch_size=1), "`min_resolution` should be >= 2"),
        (dict(patches_per_image=0), "`patches_per_image` should be a positive integer"),
        (dict(n_projections=0), "`n_projections` should be a positive integer"),
        (dict(seed=-1), "`seed` should be an integer in \\[0, 2\\*\\*64\\)"),
    ],
)
def test_bad_options_are_rejected(options, match):
    with pytest.raises(ValueError, match=match):
        patch_sliced(IMAGES, IMAGES, **(FAST | options))


def test_non_integer_options_are_rejected():
    with pytest.raises(TypeError, match="`patches_per_image` should be a positive integer. Instead, received a float"):
        patch_sliced(IMAGES, IMAGES, patches_per_image=2.5)
