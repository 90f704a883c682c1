"""Image source of the trainers: decode a folder or a zip of images once, keep it in memory."""

import lzma
import sys
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from divergences.checks import check_count
from divergences.extras import ignoring, require

Image = require("PIL.Image", "train")
tqdm = require("tqdm", "train").tqdm


EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
"""File name endings (compared case-insensitively) that count as images; other files are ignored."""

FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
"""The decoders tried on a file, whatever its extension: Pillow's other decoders are never run on the data."""

MAX_PIXELS = 4096 * 4096
"""Images with more pixels than this (after JPEG's reduced-scale decoding) are skipped without being
decoded: 16.8 million pixels, 50 MB as RGB, far more than a training image of any size needs. It
bounds the memory of a decompression bomb under Pillow's own limit (89 million pixels): a 17 KB
PNG can declare 12000 x 12000 pixels."""

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
"""What Pillow raises on a truncated, corrupt or hostile file."""

_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError, RuntimeError)
"""What reading a damaged zip member raises: a bad CRC or header, a broken deflate or LZMA stream, a
stream cut short, an unsupported compression (deflate64, PPMd, ...), an encrypted member (RuntimeError)."""


class UnreadableImage(ValueError):
    """A file that cannot be decoded into an image; the message names it and says why."""


def load_images(source, *, size=64, limit=None):
    """Decode every image in a folder or a zip file into one uint8 array.

    Each image is converted to RGB (alpha is dropped, grayscale and palette images are expanded,
    16-bit samples are rounded to 8 bits), centre-cropped to the largest square and resized to
    ``size`` x ``size`` with bicubic filtering.

    Parameters
    ----------
    source : str or path-like
        A folder, searched recursively, or a ``.zip`` file. Files whose names end in
        ``.jpg``, ``.jpeg``, ``.png``, ``.webp`` or ``.bmp`` (any case) are read, in the order of
        their relative path (folder) or member name (zip); other files are ignored.
    size : int, >= 1, optional
        Side of the square output images, in pixels. Default 64.
    limit : int, >= 1, optional
        Keep at most this many images: the first readable ones in sorted order. Default: all.

    Returns
    -------
    images : (N, size, size, 3) numpy.ndarray of uint8
        The decoded images, channels last, in sorted order.

    Raises
    ------
    FileNotFoundError
        If ``source`` does not exist.
    ValueError
        If ``source`` is neither a folder nor a ``.zip`` file, is not a readable zip, or holds no
        readable image; or if ``size`` or ``limit`` is not a positive integer.
    TypeError
        If ``size`` or ``limit`` is not an integer.

    Warns
    -----
    UserWarning
        Once, if files with an image extension could not be decoded: they are skipped, and the
        warning gives their number and names up to three of them, each with the reason.

    Notes
    -----
    A file is skipped when it is not a JPEG, PNG, WebP or BMP (`FORMATS`) whatever its name, is
    truncated or corrupt, has more than `MAX_PIXELS` pixels (checked before decoding), or is a
    damaged zip member (bad CRC, broken compressed stream, encrypted, or an unsupported
    compression such as deflate64). 16-bit samples (mode ``I;16``; also 32-bit ``I`` and ``F``)
    are read on the 16-bit scale, 0 to 65535, and rounded to 8 bits (v / 257).

    Decoding runs in a thread pool (Pillow releases the GIL while decoding); JPEGs are decoded
    at a reduced scale (``Image.draft``) when they are at least twice ``size`` on each side. A
    progress bar is shown only when stderr is a terminal.
    """
    check_count("size", size)
    if limit is not None:
        check_count("limit", limit)
    with ImageFiles(source) as files:
        return decode_files(files, files.names, size=size, limit=limit)


def sample_batch(images, batch_size, generator):
    """Draw a random batch (with replacement) of images as floats in [-1, 1], channels first.

    Parameters
    ----------
    images : (N, H, W, 3) torch.Tensor of uint8
        Images as returned by `load_images`, on any device.
    batch_size : int, >= 1
        Number of images drawn.
    generator : torch.Generator
        Source of randomness, on the same device as ``images``.

    Returns
    -------
    batch : (batch_size, 3, H, W) torch.Tensor of float32
        The images mapped from {0, ..., 255} to [-1, 1], on the device of ``images``.

    Raises
    ------
    ValueError
        If ``images`` is not a (N, H, W, 3) uint8 tensor.

    Examples
    --------
    >>> images = torch.full((5, 4, 4, 3), 255, dtype=torch.uint8)
    >>> batch = sample_batch(images, 2, torch.Generator().manual_seed(0))
    >>> batch.shape, batch.dtype, bool((batch == 1).all())
    (torch.Size([2, 3, 4, 4]), torch.float32, True)
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"`images` should be a (N, H, W, 3) uint8 tensor. Instead, received a {tuple(images.shape)} {images.dtype} tensor."
        )
    index = torch.randint(len(images), (batch_size,), generator=generator, device=images.device)
    return to_float(images[index])


def to_float(images):
    """(N, H, W, 3) uint8 images as (N, 3, H, W) floats in [-1, 1] (a channels-last view, no copy)."""
    return images.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8(images):
    """Floats in [-1, 1] (clamped) as uint8 in {0, ..., 255}, rounded, in the same layout: what a saved image holds."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class ImageFiles:
    """The image files of a folder (searched recursively) or a zip, listed in sorted order.

    Parameters
    ----------
    source : str or path-like
        A folder or a ``.zip`` file.

    Attributes
    ----------
    names : list of str
        Relative paths (folder) or member names (zip) ending in one of `EXTENSIONS`, sorted.

    Raises
    ------
    FileNotFoundError
        If ``source`` does not exist.
    ValueError
        If ``source`` is neither a folder nor a readable ``.zip`` file.
    """

    def __init__(self, source):
        self.source = Path(source)
        self._archive = None
        if not self.source.exists():
            raise FileNotFoundError(f"image source {str(self.source)!r} does not exist.")
        if self.source.is_dir():
            self.names = sorted(p.relative_to(self.source).as_posix() for p in self.source.rglob("*") if _is_image_file(p))
            return
        if self.source.suffix.lower() != ".zip":
            raise ValueError(f"image source {str(self.source)!r} should be a folder or a .zip file; it is neither.")
        try:
            self._archive = zipfile.ZipFile(self.source)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
            raise ValueError(f"image source {str(self.source)!r} is not a readable zip file ({error}).") from None
        self.names = sorted(i.filename for i in self._archive.infolist() if not i.is_dir() and _has_image_extension(i.filename))

    def decode(self, name, size):
        """The (size, size, 3) uint8 centre square of one file.

        Raises
        ------
        UnreadableImage
            If the file cannot be decoded (see `load_images`), naming it and the reason.
        """
        try:
            with self._open(name) as file:
                image = _decode_square(file, size)
                if self._archive is not None:
                    _read_to_end(file)  # a zip member's CRC is checked when its end is read
                return image
        except UnreadableImage as error:
            raise UnreadableImage(f"{name!r} ({error})") from None
        except _DECODE_ERRORS + _ZIP_ERRORS as error:
            raise UnreadableImage(f"{name!r} ({type(error).__name__}: {error})") from None

    def close(self):
        if self._archive is not None:
            self._archive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _open(self, name):
        return self._archive.open(name) if self._archive is not None else open(self.source / name, "rb")


class StreamingImages:
    """Images decoded on demand, batch by batch, for sets too large to keep in memory.

    Parameters
    ----------
    files : ImageFiles
        The source; it stays open while this object is used.
    names : sequence of str
        The files to draw from (a subset of ``files.names``).
    size : int
        Side of the decoded images.

    Notes
    -----
    A file that cannot be decoded (see `load_images`) is replaced by another random draw, and is
    not decoded again when drawn again; one warning names the first such file. Which files are
    drawn does not depend on when an unreadable one was first met, so a resumed run draws what the
    uninterrupted run did. An image over Pillow's own limit (89 million pixels) also brings
    Pillow's ``DecompressionBombWarning``, once: silencing it would reset the warning filters at
    every batch of the training loop.
    """

    def __init__(self, files, names, size):
        self.files, self.names, self.size = files, list(names), size
        self._pool = ThreadPoolExecutor()
        self._unreadable = set()
        self._distinct = len(set(self.names))

    def __len__(self):
        return len(self.names)

    def sample(self, batch_size, generator, device):
        """A random batch (with replacement), as `sample_batch` returns it, on ``device``.

        ``generator`` is a CPU ``torch.Generator``; the indices are drawn from it.

        Raises
        ------
        ValueError
            If every file drawn from has proved unreadable.
        """
        images = []
        while len(images) < batch_size:
            index = torch.randint(len(self.names), (batch_size - len(images),), generator=generator)
            names = [self.names[i] for i in index.tolist()]
            futures = [None if name in self._unreadable else self._pool.submit(self.files.decode, name, self.size)
                       for name in names]
            images += [image for image in map(self._result, names, futures) if image is not None]
        return to_float(torch.from_numpy(np.stack(images)).to(device))

    def _result(self, name, future):
        """The decoded image, or None for an unreadable file (warned about once; an error once all are)."""
        if future is None:
            return None
        try:
            return future.result()
        except UnreadableImage as error:
            if not self._unreadable:
                warnings.warn(f"skipping unreadable image file {error} in {str(self.files.source)!r} "
                              "(and any others)", stacklevel=4)
            self._unreadable.add(name)
            if len(self._unreadable) == self._distinct:
                raise ValueError(f"every one of the {self._distinct} training image files in "
                                 f"{str(self.files.source)!r} is unreadable.") from None
            return None


def decode_files(files, names, *, size, limit=None):
    """Decode files of an `ImageFiles` in order into one uint8 array, skipping unreadable ones.

    Parameters
    ----------
    files : ImageFiles
        The open source.
    names : sequence of str
        The files to decode (a subset of ``files.names``), in the order wanted.
    size : int, >= 1
        Side of the square output images, in pixels.
    limit : int, >= 1, optional
        Stop after this many readable images. Default: all.

    Returns
    -------
    images : (N, size, size, 3) numpy.ndarray of uint8
        The readable images, in the order of ``names``.

    Raises
    ------
    ValueError
        If none of ``names`` is a readable image; the message names the source.

    Warns
    -----
    UserWarning
        Once, if files could not be decoded, with their number and up to three names and reasons.
    """
    capacity = len(names) if limit is None else min(len(names), limit)
    images = np.empty((capacity, size, size, 3), dtype=np.uint8)
    count, skipped = 0, []
    pool = ThreadPoolExecutor()
    try:
        # over MAX_PIXELS: the one warning of unreadable files, not Pillow's (a global filter: it covers the pool)
        with ignoring("", Image.DecompressionBombWarning), tqdm(total=capacity, desc="decoding images", unit="img",
                                                                  disable=not sys.stderr.isatty()) as bar:
            futures = [pool.submit(files.decode, name, size) for name in names]
            for future in futures:
                if count == capacity:
                    break
                try:
                    images[count] = future.result()
                except UnreadableImage as error:
                    skipped.append(str(error))
                    continue
                count += 1
                bar.update()
    finally:
        pool.shutdown(cancel_futures=True)
    source, shown = files.source, ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
    if count == 0:  # the reasons in the error, not in a warning before it
        raise ValueError(
            f"no readable image found in {str(source)!r}: searched {len(names)} file(s) ending in "
            f"{', '.join(EXTENSIONS)} (any case), {len(skipped)} of them skipped as unreadable"
            + (f": {shown}." if skipped else ".")
        )
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image file(s) in {str(source)!r}: {shown}", stacklevel=3)
    return images if count == capacity else images[:count].copy()


def _has_image_extension(name):
    return name.lower().endswith(EXTENSIONS)


def _is_image_file(path):
    return _has_image_extension(path.name) and path.is_file()


def _decode_square(file, size):
    """Decode an open image file into its (size, size, 3) uint8 centre square, refusing oversized images."""
    with Image.open(file, formats=FORMATS) as image:
        image.draft("RGB", (size, size))  # JPEG only: decode at a reduced scale, still >= size
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise UnreadableImage(f"{width}x{height} pixels, over MAX_PIXELS = {MAX_PIXELS:,}; not decoded")
        image = _to_rgb(image)
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))  # not resize(box=): it would blend in the sides
        image = image.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
        return np.asarray(image)


def _to_rgb(image):
    """An 8-bit RGB copy of ``image``; 16-bit and wider samples (modes I;16*, I, F) are scaled by 1/257."""
    if image.mode.startswith("I") or image.mode == "F":
        samples = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(samples / 257), 0, 255).astype(np.uint8))
    return image.convert("RGB")


def _read_to_end(file):
    while file.read(1 << 20):
        pass


