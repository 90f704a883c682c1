"""Checkpoints that survive a crash mid-write: written to a temporary file, then renamed."""

import os
import pickle
import tempfile
from pathlib import Path

import torch


def save_checkpoint(state, path):
    """Write ``state`` to ``path`` atomically.

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
    write_atomically(path, lambda file: torch.save(state, file))


def write_atomically(path, write):
    """Call ``write(file)`` on a temporary binary file beside ``path``, flush it to disk, rename it to ``path``.

    The folder of ``path`` is created if missing; on any error the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path):
    """Read a checkpoint written by `save_checkpoint`, onto the CPU, with ``weights_only=True``.

    Raises
    ------
    FileNotFoundError
        If there is no checkpoint at ``path``.
    ValueError
        If the file is not a readable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: nothing to resume.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as error:
        raise ValueError(f"checkpoint {str(path)!r} is not readable ({error}).") from None
