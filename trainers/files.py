"""Files that are either wholly written or not at all: checkpoints, run files, sample grids, the data cache."""

import os
import secrets
from pathlib import Path


def write_atomically(path, write):
    """Call ``write(file)`` on a temporary binary file beside ``path``, flush it to disk, rename it to ``path``.

    The temporary file is ``<name>.<16 hex digits>.tmp`` (the name cut to 200 characters), created with the permissions the umask
    leaves (0644 under the usual 022), like any other file. The folder of ``path`` is created if
    missing; on any error (or interruption) the temporary file is removed and ``path`` is left as
    it was. A ``path`` that exists and is not a regular file (a folder, a device such as /dev/full,
    a pipe) is refused with an OSError naming it, never replaced.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise IsADirectoryError(21, "Is a directory", str(path)) if path.is_dir() else \
            OSError(f"{str(path)!r} is not a regular file: a file is written only to a new or regular file's path.")
    for folder in (path.parent, *path.parent.parents):  # a file where a folder should be: say which
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(20, "Not a directory", str(folder))
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name[:200]}.{secrets.token_hex(8)}.tmp")  # within 255 bytes for any name
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:  # named by the file asked for, not by the temporary one
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
