"""Checkpoints that any PyTorch user can open, that survive a crash mid-write and refuse a damaged file.

A checkpoint is the archive ``torch.save`` writes (a zip file), with the SHA-256 digest of every
byte before it as the zip's comment, the last 64 bytes of the file: ``torch.load(path,
weights_only=True)`` reads it as it reads any checkpoint, and `load_checkpoint` also checks the
digest. Files are written with `trainers.files.write_atomically`. Checkpoints of the earlier
format (a header line ``divergences-checkpoint v1 sha256=<digest>`` before ``torch.save``'s bytes)
are still read.
"""

import hashlib
import io
from pathlib import Path

import torch

from .files import write_atomically

DIGEST_BYTES = 64
"""The digest's length in hexadecimal digits: the zip comment that ends every checkpoint."""

END_OF_ARCHIVE = b"PK\x05\x06"
"""The signature of a zip file's end-of-central-directory record (22 bytes, its comment length last)."""

MAGIC = b"divergences-checkpoint v1 sha256="
HEADER_BYTES = len(MAGIC) + 64 + 1  # the digest in hex and a newline
"""The earlier format's header line, read but no longer written."""


def save_checkpoint(state, path):
    """Write ``state`` to ``path`` atomically, as ``torch.save``'s archive with its SHA-256 digest as the zip comment.

    The state is saved to a temporary file in the same folder, flushed to disk, and renamed
    over ``path``: a reader sees the previous checkpoint or the new one, never half of one.

    Parameters
    ----------
    state : dict
        Tensors, numbers, strings and nested dicts/lists of them (what ``weights_only``
        loading accepts).
    path : str or path-like
        Destination; its folder is created if missing.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    archive = buffer.getvalue()
    if archive[-22:-18] != END_OF_ARCHIVE or archive[-2:] != b"\0\0":  # torch.save writes no comment
        raise AssertionError("torch.save wrote an archive that does not end in a comment-free end-of-archive record")
    body = archive[:-2] + DIGEST_BYTES.to_bytes(2, "little")  # the comment's length, then the comment: the digest
    digest = hashlib.sha256(body).hexdigest().encode()
    write_atomically(path, lambda file: file.write(body + digest))


def load_checkpoint(path):
    """Read a checkpoint written by `save_checkpoint` (or by its earlier format), onto the CPU, with ``weights_only=True``.

    Raises
    ------
    FileNotFoundError
        If there is no checkpoint at ``path``.
    ValueError
        If the file cannot be read, is not a checkpoint of this trainer, fails its checksum
        (truncated, or any byte changed), or holds objects other than tensors and plain values.
        The message is one line and names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: nothing to resume.")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read: {error.strerror}.") from None
    payload = _verified(data, path)
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception:  # torch's message advises an unsafe load: not repeated here
        raise ValueError(f"checkpoint {str(path)!r} holds objects other than tensors and plain values; "
                         f"a weights-only load refused it.") from None


def _verified(data, path):
    """The bytes ``torch.load`` reads, once their digest is checked; ValueError naming ``path`` otherwise."""
    if data.startswith(MAGIC):  # the earlier format: a header line, then torch.save's bytes
        header, payload = data[:HEADER_BYTES], memoryview(data)[HEADER_BYTES:]
        if header.endswith(b"\n") and hashlib.sha256(payload).hexdigest().encode() == header[len(MAGIC):-1]:
            return payload
        raise ValueError(f"checkpoint {str(path)!r} is damaged: its contents do not match its checksum "
                         f"({len(data):,} bytes; truncated or changed since it was written).")
    body, digest = memoryview(data)[:-DIGEST_BYTES], data[-DIGEST_BYTES:]
    if len(data) < 22 + DIGEST_BYTES or data[-DIGEST_BYTES - 22:-DIGEST_BYTES - 18] != END_OF_ARCHIVE:
        raise ValueError(f"checkpoint {str(path)!r} is damaged or not a checkpoint of this trainer "
                         f"(no checksum at its end; {len(data):,} bytes).")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        raise ValueError(f"checkpoint {str(path)!r} is damaged: its contents do not match its checksum "
                         f"({len(data):,} bytes; truncated or changed since it was written).")
    return data
