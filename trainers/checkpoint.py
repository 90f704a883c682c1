"""Checkpoints that survive a crash mid-write and refuse a damaged file.

A checkpoint is one header line, ``divergences-checkpoint v1 sha256=<64 hex digits>``, followed
by the bytes of ``torch.save``; the digest is that of those bytes. Files are written with
`trainers.files.write_atomically`.
"""

import hashlib
import io
from pathlib import Path

import torch

from .files import write_atomically

MAGIC = b"divergences-checkpoint v1 sha256="
HEADER_BYTES = len(MAGIC) + 64 + 1  # the digest in hex and a newline


def save_checkpoint(state, path):
    """Write ``state`` to ``path`` atomically, with the SHA-256 digest of its payload in a header.

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
    payload = buffer.getbuffer()
    header = MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"

    def write(file):
        file.write(header)
        file.write(payload)

    write_atomically(path, write)


def load_checkpoint(path):
    """Read a checkpoint written by `save_checkpoint`, onto the CPU, with ``weights_only=True``.

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
    header, payload = data[:HEADER_BYTES], memoryview(data)[HEADER_BYTES:]
    if not header.startswith(MAGIC) or not header.endswith(b"\n"):
        raise ValueError(f"checkpoint {str(path)!r} is damaged or not a checkpoint of this trainer "
                         f"(no checksum header; {len(data):,} bytes).")
    if hashlib.sha256(payload).hexdigest().encode() != header[len(MAGIC):-1]:
        raise ValueError(f"checkpoint {str(path)!r} is damaged: its contents do not match its checksum "
                         f"({len(data):,} bytes; truncated or changed since it was written).")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception:  # torch's message advises an unsafe load: not repeated here
        raise ValueError(f"checkpoint {str(path)!r} holds objects other than tensors and plain values; "
                         f"a weights-only load refused it.") from None
