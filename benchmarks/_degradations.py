"""Known degradations of images, each at five intensities, for validating the feature-space metrics.

Each function takes (N, H, W, 3) uint8 images, an intensity and a numpy Generator, and returns
degraded uint8 images of the same shape. `DEGRADATIONS` names them with their five intensities,
mildest first.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F


def gaussian_noise(images, sigma, rng):
    """Add N(0, sigma²) to every channel, sigma in units of the full range [0, 1]."""
    noisy = images / 255.0 + sigma * rng.standard_normal(images.shape)
    return _to_uint8(noisy)


def gaussian_blur(images, sigma, rng):
    """Blur with a Gaussian of standard deviation ``sigma`` pixels (reflected borders)."""
    radius = math.ceil(3 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-offsets**2 / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).float()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    return _to_uint8(x.permute(0, 2, 3, 1).numpy() / 255.0)


def black_rectangles(images, area, rng):
    """Paint one black rectangle per image, of ``area`` (a fraction of the image) at a random place and aspect."""
    out = images.copy()
    n, height, width = images.shape[:3]
    aspect = np.exp(rng.uniform(-0.5, 0.5, n))
    h = np.clip(np.round(np.sqrt(area * height * width * aspect)), 1, height).astype(int)
    w = np.clip(np.round(area * height * width / h), 1, width).astype(int)
    top = rng.integers(0, height - h + 1)
    left = rng.integers(0, width - w + 1)
    for i in range(n):
        out[i, top[i]:top[i] + h[i], left[i]:left[i] + w[i]] = 0
    return out


def salt_and_pepper(images, fraction, rng):
    """Set a ``fraction`` of the pixels to white or black (half each)."""
    out = images.copy()
    hit = rng.random(images.shape[:3]) < fraction
    white = rng.random(images.shape[:3]) < 0.5
    out[hit & white] = 255
    out[hit & ~white] = 0
    return out


def swirl(images, strength, rng):
    """Rotate each pixel about the centre by ``strength`` · exp(-r / R) radians, R a quarter of the side."""
    n, height, width = images.shape[:3]
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, height, dtype=torch.float64),
                            torch.linspace(-1, 1, width, dtype=torch.float64), indexing="ij")
    radius = torch.sqrt(xs**2 + ys**2)
    angle = strength * torch.exp(-radius / 0.5)  # 0.5 of the half-side is a quarter of the side
    grid = torch.stack([xs * torch.cos(angle) - ys * torch.sin(angle),
                        xs * torch.sin(angle) + ys * torch.cos(angle)], -1).float()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    warped = F.grid_sample(x, grid.expand(n, -1, -1, -1), mode="bilinear", padding_mode="border", align_corners=True)
    return _to_uint8(warped.permute(0, 2, 3, 1).numpy() / 255.0)


DEGRADATIONS = {
    "gaussian noise (sigma)": (gaussian_noise, (0.08, 0.12, 0.2, 0.3, 0.45)),
    "gaussian blur (sigma, px)": (gaussian_blur, (0.5, 0.75, 1.0, 1.5, 2.0)),
    "black rectangle (area)": (black_rectangles, (0.01, 0.03, 0.06, 0.12, 0.25)),
    "salt and pepper (fraction)": (salt_and_pepper, (0.01, 0.02, 0.03, 0.05, 0.1)),
    "swirl (radians)": (swirl, (0.25, 0.5, 0.75, 1.0, 1.5)),
}
"""Each degradation with its five intensities, mildest first."""


def _to_uint8(unit):
    """Floats in [0, 1] (clipped) to uint8."""
    return np.round(np.clip(unit, 0, 1) * 255).astype(np.uint8)
