"""Mode coverage of a generator on the procedural faces: which hair × eye colours it draws.

A *mode* is one combination of ``hair_colour`` and ``eye_colour`` of
``trainers.procedural.ATTRIBUTES``: 6 × 5 = 30 modes, equally likely in the real data. The
two attributes are read straight off the pixels (``read_hair_colour``, ``read_eye_colour``),
so no classifier has to be trained, as in the Stacked-MNIST protocol of the mode-collapse
literature (Metz et al., 2017; Lin et al., 2018).
"""

from typing import NamedTuple

import numpy as np
import torch

from divergences import kl
from trainers.images import to_uint8
from trainers.procedural import ATTRIBUTES, read_eye_colour, read_hair_colour

N_HAIR = len(ATTRIBUTES["hair_colour"])
N_EYES = len(ATTRIBUTES["eye_colour"])
MODES_TOTAL = N_HAIR * N_EYES
"""Number of modes: every hair colour with every eye colour (30)."""


class ModeCoverage(NamedTuple):
    """What :func:`mode_coverage` returns."""

    modes_covered: int
    """Modes with at least one generated image, in ``[0, modes_total]``."""
    modes_total: int
    """Number of modes, 30."""
    kl_attributes: float
    """KL(generated ‖ real) between the mode histograms, in nats."""
    generated_histogram: np.ndarray
    """(modes_total,) int64 counts of the generated images per mode."""
    real_histogram: np.ndarray
    """(modes_total,) int64 counts of the real labels per mode."""


def read_modes(images):
    """Read the mode (hair colour × eye colour) of each face off its pixels.

    Parameters
    ----------
    images : (N, 3, S, S) torch.Tensor or array_like of floats in [-1, 1], S >= 16
        Faces as a generator outputs them (channels first, pixel values mapped from
        ``{0, ..., 255}`` to ``[-1, 1]``), on any device; values outside ``[-1, 1]`` are
        clipped.

    Returns
    -------
    modes : (N,) ndarray of int64
        ``hair_colour * 5 + eye_colour``, an index in ``[0, 30)``, where the colours are
        indices into ``ATTRIBUTES["hair_colour"]`` and ``ATTRIBUTES["eye_colour"]``; the
        same as :func:`modes_of_labels` of the faces' labels when they are read correctly.

    Raises
    ------
    ValueError
        If ``images`` is not of shape (N, 3, S, S) with N >= 1 and S >= 16.

    Notes
    -----
    The read-out matches all of 2000 real faces at 32 × 32 and at 64 × 64 pixels
    (``tests/test_modes.py``); at 16 × 16 about one eye colour in 200 is misread.

    Examples
    --------
    >>> from trainers.procedural import make_faces
    >>> faces, labels = make_faces(4, size=32, seed=0)
    >>> generated = torch.from_numpy(faces).permute(0, 3, 1, 2) / 127.5 - 1  # (4, 3, 32, 32)
    >>> bool((read_modes(generated) == modes_of_labels(labels)).all())
    True
    """
    images = torch.as_tensor(images).detach()
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[0] == 0 or shape[1] != 3 or shape[2] != shape[3] or shape[2] < 16:
        raise ValueError(
            "`images` should be generator outputs of shape (N, 3, S, S) with N >= 1 and S >= 16. "
            f"Instead, received an array of shape {shape}."
        )
    pixels = to_uint8(images)  # (N, 3, S, S)
    pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()  # (N, S, S, 3)
    return read_hair_colour(pixels) * N_EYES + read_eye_colour(pixels)


def modes_of_labels(labels):
    """The mode index of each face from its labels.

    Parameters
    ----------
    labels : (N, len(ATTRIBUTES)) array_like of int
        Labels as returned by ``make_faces``.

    Returns
    -------
    modes : (N,) ndarray of int64
        ``hair_colour * 5 + eye_colour``.

    Raises
    ------
    ValueError
        If ``labels`` is not of shape (N, len(ATTRIBUTES)) with N >= 1.

    Examples
    --------
    >>> modes_of_labels([[0, 0, 2, 1, 0], [5, 4, 0, 0, 1]])
    array([ 0, 29])
    """
    return _modes_of(labels, "labels")


def _modes_of(labels, name):
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[0] == 0 or labels.shape[1] != len(ATTRIBUTES):
        raise ValueError(
            f"`{name}` should be face labels of shape (N, {len(ATTRIBUTES)}) with N >= 1, as make_faces returns them. "
            f"Instead, received an array of shape {labels.shape}."
        )
    return (labels[:, 0] * N_EYES + labels[:, 1]).astype(np.int64)


def mode_coverage(generated_images, real_labels):
    r"""How many modes a generator covers, and how far its mode histogram is from the data's.

    .. math::

        \mathrm{KL}(q \,\|\, p) = \sum_m q_m \log \frac{q_m}{p_m}

    where q is the histogram of the modes read off the generated images and p that of the
    real labels.

    Parameters
    ----------
    generated_images : (N, 3, S, S) torch.Tensor or array_like of floats in [-1, 1]
        Generator samples, as for :func:`read_modes`.
    real_labels : (M, len(ATTRIBUTES)) array_like of int
        Labels of real faces, as returned by ``make_faces``.

    Returns
    -------
    ModeCoverage
        ``modes_covered`` (modes with at least one generated image), ``modes_total`` (30),
        ``kl_attributes`` (KL(q ‖ p), nats) and both histograms as counts.

    Raises
    ------
    ValueError
        As :func:`read_modes` and :func:`modes_of_labels`.

    Notes
    -----
    A mode counts as covered as soon as one generated image falls in it, as in the
    Stacked-MNIST protocol; with a few thousand samples and 30 equally likely modes, a
    generator matching the data misses none (the chance that 2000 uniform draws miss a
    given mode is below 1e-29).

    KL(generated ‖ real) stays finite when the generator misses modes, the failure this
    measures: missing modes only shrink q. The other direction, KL(real ‖ generated),
    is infinite as soon as one mode is missed and so cannot rank collapsed generators.
    KL(q ‖ p) is infinite only when a generated image lands in a mode with no real label,
    which a real set of a few hundred faces or more makes vanishingly unlikely. A generator
    stuck on one of 30 equally likely modes scores log 30 ≈ 3.4 nats.

    Examples
    --------
    A "generator" that returns the real faces covers what they cover, at KL 0:

    >>> from trainers.procedural import make_faces
    >>> faces, labels = make_faces(300, size=32, seed=0)
    >>> coverage = mode_coverage(torch.from_numpy(faces).permute(0, 3, 1, 2) / 127.5 - 1, labels)
    >>> coverage.modes_covered, coverage.modes_total, float(coverage.kl_attributes)
    (30, 30, 0.0)
    """
    real = np.bincount(_modes_of(real_labels, "real_labels"), minlength=MODES_TOTAL)
    generated = np.bincount(read_modes(generated_images), minlength=MODES_TOTAL)
    return ModeCoverage(modes_covered=int((generated > 0).sum()), modes_total=MODES_TOTAL,
                        kl_attributes=float(kl(generated, real)), generated_histogram=generated, real_histogram=real)
