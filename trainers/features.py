"""Feature networks that work offline, for the feature-space metrics (docs/evaluation.md).

Every network here takes a batch of images as uint8, channels first, (N, 3, H, W), and returns
(N, D) float32 features: the interface of the TorchScript Inception file of StyleGAN2-ADA and
clean-fid, so that file can be used as it is.

- ``"random"``: `RandomFeatures`, a fixed convolutional network whose weights are drawn from a
  fixed seed with numpy's legacy generator: the same numbers on every machine and device.
- ``"pixels"``: `PixelFeatures`, the 16 x 16 average-pooled pixels (768 numbers), the baseline.
- a path: a TorchScript feature extractor, see `ScriptedFeatures`.
"""

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from divergences.extras import ignoring, require

RANDOM_SEED = 2022
"""Seed of `RandomFeatures`' weights (the year of Lee, Kim and Lee's study of random networks)."""

RANDOM_SIDE = 64
"""`RandomFeatures` sees every image at 64 x 64 (resized with antialiasing if it is not)."""

RANDOM_WIDTHS = (32, 64, 128, 256, 512)
"""Output channels of `RandomFeatures`' five 3 x 3 stride-2 convolutions."""

PIXEL_SIDE = 16
"""`PixelFeatures` average-pools images to 16 x 16 (768 numbers)."""


class RandomFeatures(nn.Module):
    """A randomly initialised convolutional network, the same on every machine: uint8 images to 1,984 features.

    Five 3 x 3 convolutions of stride 2 (`RANDOM_WIDTHS` channels; 64 x 64 down to 2 x 2), each
    followed by a leaky ReLU (slope 0.2). The features are, for each layer, the mean and the
    standard deviation of every channel over the image, each layer's block scaled by
    sqrt(64 / its size) so that the five layers weigh alike in squared distances (the first
    layer's 64 numbers are kept as they are): 2 x (32 + 64 + 128 + 256 + 512) = 1,984 numbers. Weights are He-scaled Gaussians (std sqrt(2 / fan_in)) drawn in float64
    by ``numpy.random.RandomState(RANDOM_SEED)``, whose stream numpy keeps fixed across versions
    and platforms, then rounded to float32; biases are 0. `weights_digest` checks them.

    Why random weights measure something: a random convolution is a bank of random local
    filters; its pooled responses (means and spreads of edges, colours and textures at five
    scales) change with noise, blur, occlusion or lost colour modes even though nothing was
    learnt. Lee, Kim and Lee (2022) found FD and PRDC in randomly initialised networks track
    sample quality and diversity, and Naeem et al. (2020) use random embeddings for density and
    coverage; docs/evaluation.md measures how these features rank known degradations. The
    numbers are comparable across runs of this package, not with Inception FIDs in papers.
    """

    def __init__(self):
        super().__init__()
        generator = np.random.RandomState(RANDOM_SEED)
        layers, channels = [], 3
        for width in RANDOM_WIDTHS:
            conv = nn.Conv2d(channels, width, 3, stride=2, padding=1)
            fan_in = channels * 9
            weights = generator.standard_normal((width, channels, 3, 3)) * math.sqrt(2 / fan_in)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(weights))
                conv.bias.zero_()
            layers.append(conv)
            channels = width
        self.layers = nn.ModuleList(layers)
        self.requires_grad_(False)
        self.dim = 2 * sum(RANDOM_WIDTHS)

    def forward(self, images):
        """(N, 3, H, W) uint8 -> (N, 1984), in the dtype of the weights (float32 unless converted)."""
        x = _as_unit_range(images, self.layers[0].weight.dtype)
        if x.shape[-2:] != (RANDOM_SIDE, RANDOM_SIDE):
            x = F.interpolate(x, size=(RANDOM_SIDE, RANDOM_SIDE), mode="bilinear", antialias=True, align_corners=False)
        features = []
        for conv in self.layers:
            x = F.leaky_relu(conv(x), 0.2)
            flat = x.flatten(2)  # (N, C, H*W)
            block = torch.cat([flat.mean(-1), flat.std(-1, correction=0)], 1)
            features.append(block * math.sqrt(2 * RANDOM_WIDTHS[0] / block.shape[1]))
        return torch.cat(features, 1)


def weights_digest(network):
    """SHA-256 of a network's parameters (float32, in order): equal digests, identical weights."""
    digest = hashlib.sha256()
    for parameter in network.parameters():
        digest.update(parameter.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


class PixelFeatures(nn.Module):
    """The baseline: images average-pooled to 16 x 16, in [-1, 1], divided by sqrt(768), (N, 768) float32."""

    dim = 3 * PIXEL_SIDE**2

    def forward(self, images):
        return pooled_pixels(_as_unit_range(images)).float()


def pooled_pixels(images, dtype=None):
    """(N, 3, S, S) float images as (N, 768) points: 16 x 16 average-pooled, divided by sqrt(768) (RMS per pixel).

    ``dtype``: the points' dtype, converted to after pooling (default: the images').
    """
    pooled = F.adaptive_avg_pool2d(images, min(PIXEL_SIDE, images.shape[-1]))
    points = pooled.flatten(1).to(dtype or images.dtype)
    return points / math.sqrt(points.shape[1])


class ScriptedFeatures(nn.Module):
    """A TorchScript feature extractor from a file: uint8 (N, 3, H, W) in, (N, D) features out.

    The TorchScript Inception of StyleGAN2-ADA and clean-fid (``inception-2015-12-05.pt``) takes
    ``return_features=True`` to give its 2,048 pool features: the keyword is passed whenever the
    module's ``forward`` has it.
    """

    def __init__(self, path, device):
        super().__init__()
        expected = "expected 'random', 'pixels' or the path of a TorchScript feature extractor"
        if not str(path).strip():
            raise ValueError(f"--features should be given. Instead, received an empty path ({expected}).")
        path = Path(path)
        if path.exists() and not path.is_file():
            raise ValueError(f"--features {str(path)!r} is not a regular file ({expected}).")
        if not path.is_file():
            raise FileNotFoundError(f"--features {str(path)!r}: no such file ({expected}).")
        try:
            with ignoring("", DeprecationWarning):  # TorchScript is deprecated, but it is the Inception file's format
                self.module = torch.jit.load(str(path), map_location=device).eval()
        except (RuntimeError, ValueError) as error:
            reason = str(error).strip().split(". ")[0] or type(error).__name__
            raise ValueError(f"--features {str(path)!r} is not a TorchScript file torch can load ({reason}).") from None
        arguments = [argument.name for argument in self.module.forward.schema.arguments]
        self.keywords = {"return_features": True} if "return_features" in arguments else {}
        self.path = path
        self.dim = None

    def forward(self, images):
        try:
            features = self.module(images, **self.keywords)
        except (RuntimeError, torch.jit.Error) as error:  # torch.jit.Error: a failure inside the scripted code
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise ValueError(f"--features {str(self.path)!r} failed on a batch of {images.shape[0]} uint8 "
                             f"{tuple(images.shape[1:])} images: {lines[-1] if lines else type(error).__name__}") from None
        if not isinstance(features, torch.Tensor) or features.ndim != 2 or features.shape[0] != images.shape[0]:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f"the feature extractor should return (N, D) features for N images; "
                             f"it returned {shape} for {images.shape[0]} images.")
        features = features.float()
        if not torch.isfinite(features).all():  # float16 infinities too, once in float32
            raise ValueError(f"--features {str(self.path)!r} returned NaN or infinite features for a batch of "
                             f"{images.shape[0]} images.")
        return features


def feature_network(features, device):
    """``"random"``, ``"pixels"`` or the path of a TorchScript file, as a network on ``device``."""
    if features == "random":
        return RandomFeatures().to(device).eval()
    if features == "pixels":
        return PixelFeatures()
    return ScriptedFeatures(features, device)


def extract(network, images, device, *, batch_size=200, progress=False, what="images"):
    """Features of (N, H, W, 3) uint8 images (numpy or torch), computed on ``device`` in batches.

    Returns (N, D) float32 features on ``device``. ``progress`` shows a bar on stderr.
    """
    batches = range(0, len(images), batch_size)
    if progress:
        batches = require("tqdm", "train").tqdm(batches, desc=f"features of {what}", unit="batch", leave=False)
    parts = []
    with torch.no_grad():
        for start in batches:
            batch = torch.as_tensor(images[start:start + batch_size]).to(device)
            parts.append(network(batch.permute(0, 3, 1, 2).contiguous()))
    return torch.cat(parts)


def _as_unit_range(images, dtype=torch.float32):
    """uint8 images in {0, ..., 255} as floats in [-1, 1]."""
    if images.dtype != torch.uint8:
        raise ValueError(f"feature networks take uint8 images (N, 3, H, W). Instead, received {images.dtype}.")
    return images.to(dtype) / 127.5 - 1
