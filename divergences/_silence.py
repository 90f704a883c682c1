"""Silencing one expected warning of a dependency without disturbing the caller's warnings.

``warnings.catch_warnings`` restores the filters on exit through a call that
invalidates every module's record of the warnings it has already shown, so
under Python's default filter a caller's own warning, meant to show once per
line, shows again after each of our calls (3 times in 3 calls of `emd`,
measured).  Adding one entry to ``warnings.filters`` and removing it again,
in place, leaves those records alone.
"""

import contextlib
import re
import warnings


@contextlib.contextmanager
def ignoring(message, category):
    """Inside the block, ignore warnings of ``category`` whose text starts with ``message`` (a regular expression)."""
    entry = ("ignore", re.compile(message, re.I), category, None, 0)
    warnings.filters.insert(0, entry)
    try:
        yield
    finally:
        warnings.filters.remove(entry)
