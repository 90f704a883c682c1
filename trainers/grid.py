"""Sample grids: many small images tiled into one PNG."""

import math

import numpy as np
import torch

from divergences.extras import require

from .files import write_atomically
from .images import to_uint8

Image = require("PIL.Image", "train")


def save_grid(images, path, *, padding=2):
    """Tile images into a square grid and write it as a PNG.

    Parameters
    ----------
    images : (N, 3, S, S) torch.Tensor
        Images in [-1, 1] (values outside are clipped), on any device.
    path : str or path-like
        Destination ``.png``; its folder is created if missing. Written atomically (a temporary
        file renamed over it), so a full disk or a crash never leaves a partial image.
    padding : int, optional
        White pixels between and around the images.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "grid.png")
    >>> save_grid(-torch.ones(100, 3, 8, 8), path)
    >>> Image.open(path).size  # 10 x 10 images of 8 pixels and 11 gaps of 2
    (102, 102)
    """
    pixels = to_uint8(images.detach().float()).cpu()
    count, _, size, _ = pixels.shape
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    step = size + padding
    canvas = np.full((rows * step + padding, columns * step + padding, 3), 255, np.uint8)
    for index, image in enumerate(pixels.permute(0, 2, 3, 1).numpy()):
        top, left = padding + (index // columns) * step, padding + (index % columns) * step
        canvas[top:top + size, left:left + size] = image
    image = Image.fromarray(canvas)
    write_atomically(path, lambda file: image.save(file, format="PNG"))
