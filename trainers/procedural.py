"""Procedurally drawn anime-style faces with known discrete attributes.

The default data set of the trainers: ``make_faces`` draws ``n`` cartoon faces from a seed
in a few seconds, vectorised over images with numpy coordinate grids (every shape is an
ellipse, a band or a half-plane mask, painted back to front). Each face carries one value
per attribute of ``ATTRIBUTES``, drawn uniformly and independently, and returned as labels,
so a monitor can count which modes a generator covers. ``read_hair_colour`` and
``read_eye_colour`` read two of the attributes straight off the pixels.
"""

from types import MappingProxyType

import numpy as np

from divergences.checks import check_integer

_HAIR = {
    "black": (40, 38, 52),
    "brown": (122, 72, 40),
    "blonde": (245, 212, 100),
    "red": (205, 45, 40),
    "blue": (60, 110, 225),
    "pink": (250, 140, 190),
}
_EYES = {
    "blue": (35, 90, 230),
    "green": (35, 165, 70),
    "red": (205, 25, 40),
    "purple": (140, 55, 200),
    "amber": (230, 150, 20),
}
_BACKGROUND = {
    "sky": (165, 210, 245),
    "mint": (175, 232, 190),
    "lavender": (214, 196, 245),
    "grey": (205, 205, 212),
}

ATTRIBUTES = MappingProxyType({
    "hair_colour": tuple(_HAIR),
    "eye_colour": tuple(_EYES),
    "hairstyle": ("short", "long", "twin_tails"),
    "background": tuple(_BACKGROUND),
    "mouth": ("smile", "open"),
})
"""Attribute name -> value names; a label is the index of the value in its tuple."""

_SKIN = (255, 226, 204)
_SKIN_SHADE = (232, 180, 160)
_OUTLINE = (95, 55, 50)
_DARK = (30, 22, 34)
_WHITE = (255, 255, 255)
_BLUSH = (250, 172, 172)
_MOUTH = (160, 40, 55)
_SHIRT = (70, 72, 100)
_RIBBON = (235, 235, 245)

# Read-out regions in unit coordinates (x right, y down, both in [-1, 1]): a band of the
# hair cap above the forehead, and the lower iris of both eyes below the pupil.
_HAIR_BOX = ((-0.15, 0.15), (-0.6, -0.45))
_EYE_BOXES = (((-0.28, -0.2), (0.345, 0.395)), ((0.2, 0.28), (0.345, 0.395)))
_CHUNK = 500


def make_faces(n, *, size=64, seed=0):
    """Draw ``n`` anime-style faces with uniformly random attributes.

    Each face is a skin-coloured oval with a pointed chin on a plain background, a hair cap
    with bangs and side locks in the hair colour, a hairstyle (short bob, long hair behind
    the shoulders, or twin tails with ribbons), two large eyes (white sclera, iris in the
    eye colour with a darker top, dark pupil, white highlight, thick upper lid), blush, a
    nose hint and a smiling or open mouth. Position and scale jitter a little per face.

    Parameters
    ----------
    n : int, >= 1
        Number of faces.
    size : int, >= 16, keyword-only
        Height and width of each image in pixels.
    seed : int or None, keyword-only
        Seed of ``numpy.random.default_rng``; the same seed gives identical arrays.

    Returns
    -------
    images : (n, size, size, 3) ndarray of uint8
        RGB images.
    labels : (n, len(ATTRIBUTES)) ndarray of int64
        ``labels[i, j]`` is the index of face ``i``'s value of the ``j``-th attribute
        in ``ATTRIBUTES``, drawn uniformly and independently.

    Raises
    ------
    ValueError
        If ``n < 1`` or ``size < 16``.
    TypeError
        If ``n`` or ``size`` is not an integer.

    Examples
    --------
    >>> images, labels = make_faces(3, size=32, seed=1)
    >>> images.shape, images.dtype, labels.shape
    ((3, 32, 32, 3), dtype('uint8'), (3, 5))
    >>> bool((read_hair_colour(images) == labels[:, 0]).all())
    True
    """
    n = check_integer("n", n, 1)
    size = check_integer("size", size, 16)
    rng = np.random.default_rng(seed)
    labels = np.stack([rng.integers(0, len(v), n) for v in ATTRIBUTES.values()], axis=1)
    jitter = rng.uniform(-1.0, 1.0, (n, 3)) * (0.03, 0.025, 0.04)  # dx, dy, dscale
    images = np.empty((n, size, size, 3), np.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        images[start:stop] = _draw(labels[start:stop], jitter[start:stop], size)
    return images, labels.astype(np.int64)


def attribute_names(labels_row):
    """Name the attribute values of one face.

    Parameters
    ----------
    labels_row : (len(ATTRIBUTES),) array_like of int
        One row of the labels returned by ``make_faces``.

    Returns
    -------
    dict
        Attribute name -> value name.

    Examples
    --------
    >>> attribute_names([0, 1, 2, 3, 1])["hairstyle"]
    'twin_tails'
    """
    return {name: values[int(i)] for (name, values), i in zip(ATTRIBUTES.items(), labels_row)}


def read_hair_colour(images):
    """Read the hair colour label off faces drawn by ``make_faces``.

    The median pixel of a fixed band of the hair cap above the forehead is matched to the
    nearest hair colour of the palette (Euclidean distance in RGB).

    Parameters
    ----------
    images : (N, S, S, 3) array_like of uint8, S >= 16
        Faces, e.g. generator samples mapped back to ``[0, 255]``.

    Returns
    -------
    (N,) ndarray of int64
        Index into ``ATTRIBUTES["hair_colour"]``.
    """
    images = _check_images(images)
    return _nearest(_median_in(images, [_HAIR_BOX]), _HAIR)


def read_eye_colour(images):
    """Read the eye colour label off faces drawn by ``make_faces``.

    The median pixel of the lower iris of both eyes (below the pupil) is matched to the
    nearest eye colour of the palette. At ``size=16`` the iris is a few pixels wide and
    the odd face is misread.

    Parameters
    ----------
    images : (N, S, S, 3) array_like of uint8, S >= 16
        Faces, e.g. generator samples mapped back to ``[0, 255]``.

    Returns
    -------
    (N,) ndarray of int64
        Index into ``ATTRIBUTES["eye_colour"]``.
    """
    images = _check_images(images)
    return _nearest(_median_in(images, _EYE_BOXES), _EYES)


def _check_images(images):
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2] \
            or images.shape[1] < 16:
        raise ValueError("`images` should be of shape (N, S, S, 3) with S >= 16. "
                         f"Instead, received an array of shape {images.shape}.")
    return images


def _median_in(images, boxes):
    coords = (np.arange(images.shape[1]) + 0.5) / images.shape[1] * 2 - 1
    pixels = []
    for (x0, x1), (y0, y1) in boxes:
        rows = np.flatnonzero((coords >= y0) & (coords <= y1))
        cols = np.flatnonzero((coords >= x0) & (coords <= x1))
        if rows.size == 0:  # tiny images: take the nearest row/column to the box centre
            rows = [np.abs(coords - (y0 + y1) / 2).argmin()]
        if cols.size == 0:
            cols = [np.abs(coords - (x0 + x1) / 2).argmin()]
        pixels.append(images[:, rows][:, :, cols].reshape(len(images), -1, 3))
    return np.median(np.concatenate(pixels, axis=1), axis=1)  # (N, 3)


def _nearest(colours, palette):
    palette = np.array(list(palette.values()), float)  # (K, 3)
    return ((colours[:, None] - palette) ** 2).sum(-1).argmin(1).astype(np.int64)


def _draw(labels, jitter, size):
    """Paint one chunk of faces back to front; returns (m, size, size, 3) uint8."""
    m = len(labels)
    t = ((np.arange(size) + 0.5) / size * 2 - 1).astype(np.float32)
    x, y = t[None, None, :], t[None, :, None]  # (1, 1, S) and (1, S, 1)
    dx, dy, ds = (jitter[:, k, None, None].astype(np.float32) for k in range(3))
    s = 1 + ds
    cx, cy = dx, 0.12 + dy  # face centre, (m, 1, 1)
    hair = np.array(list(_HAIR.values()), np.uint8)[labels[:, 0]]
    eyes = np.array(list(_EYES.values()), np.uint8)[labels[:, 1]]
    style = labels[:, 2, None, None]
    mouth_open = labels[:, 4, None, None] == 1

    xm = np.abs(x - cx) + cx  # x mirrored onto the right half: paired shapes at once

    def ell(ex, ey, rx, ry, xx=x):
        return ((xx - ex) / (rx * s)) ** 2 + ((y - ey) / (ry * s)) ** 2  # <= 1 inside

    img = np.empty((m, size, size, 3), np.uint8)
    img[:] = np.array(list(_BACKGROUND.values()), np.uint8)[labels[:, 3], None, None]

    def paint(mask, colour):
        colour = np.asarray(colour, np.uint8)
        colour = colour[:, None, None] if colour.ndim == 2 else colour
        np.copyto(img, np.broadcast_to(colour, img.shape), where=mask[..., None])

    cap = ell(cx, cy - 0.12 * s, 0.72, 0.8) <= 1
    long_back = (ell(cx, cy - 0.05 * s, 0.8, 0.95) <= 1) | ((np.abs(x - cx) < 0.8 * s) & (y > cy - 0.05 * s))
    tails = ell(cx + 0.8 * s, cy + 0.3 * s, 0.2, 0.55, xm) <= 1
    paint(((style == 1) & long_back) | ((style == 2) & tails), hair)
    paint((style == 2) & (ell(cx + 0.62 * s, cy - 0.32 * s, 0.1, 0.1, xm) <= 1), _RIBBON)
    paint(cap, hair)
    paint((ell(cx, 1.3 + dy, 0.75, 0.5) <= 1), _SHIRT)
    paint((np.abs(x - cx) < 0.15 * s) & (y > cy + 0.5 * s) & (y < cy + 0.98 * s), _SKIN_SHADE)
    chin = cy + 0.76 * s
    for grow, colour in ((0.06, _OUTLINE), (0.0, _SKIN)):
        face = (ell(cx, cy + 0.08 * s, 0.56 + grow, 0.66 + grow) <= 1) & (y - chin - grow * s < -0.95 * np.abs(x - cx))
        paint(face, colour)
    tri = np.abs(((x - cx) / (0.2 * s)) % 2 - 1)  # triangle wave in [0, 1]
    bangs = cap & (y < cy - 0.3 * s + 0.22 * s * (1 - tri))
    side_len = np.where(style == 0, 0.25, 0.5)
    locks = (ell(cx, cy - 0.05 * s, 0.72, 0.95) <= 1) & (np.abs(x - cx) > 0.45 * s) & (y < cy + side_len * s)
    paint(bangs | locks, hair)
    ex, ey = cx + 0.24 * s, cy + 0.12 * s  # right eye; the left one is mirrored
    paint(ell(ex, ey - 0.03 * s, 0.17, 0.2, xm) <= 1, _DARK)  # upper lid and lashes
    sclera = ell(ex, ey, 0.15, 0.19, xm) <= 1
    paint(sclera, _WHITE)
    iris = sclera & (ell(ex, ey + 0.02 * s, 0.11, 0.17, xm) <= 1)
    paint(iris, eyes)
    paint(iris & (y < ey - 0.07 * s), (eyes * 0.55).astype(np.uint8))
    paint(ell(ex, ey - 0.01 * s, 0.05, 0.075, xm) <= 1, _DARK)
    paint(ell(ex - 0.045 * s, ey - 0.07 * s, 0.04, 0.04, xm) <= 1, _WHITE)
    paint(ell(cx + 0.36 * s, cy + 0.38 * s, 0.08, 0.04, xm) <= 1, _BLUSH)
    paint(ell(cx, cy + 0.33 * s, 0.025, 0.035) <= 1, _SKIN_SHADE)
    mouth = ell(cx, cy + 0.5 * s, 0.11, 0.07)
    smile = (mouth <= 1) & (mouth >= 0.4) & (y > cy + 0.5 * s)
    paint(np.where(mouth_open, mouth <= 1, smile), _MOUTH)
    return img
