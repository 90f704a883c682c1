"""Dependencies: optional ones imported where used, with the extra that provides them named if missing, and a
dependency's expected warning silenced without disturbing the caller's warnings.

The distances need only numpy, torch and POT.  The probes' figures need
matplotlib (``pip install 'divergences[probes]'``); the trainers need
Pillow, tqdm and matplotlib (``pip install 'divergences[train]'``).

``warnings.catch_warnings`` restores the filters on exit through a call that
invalidates every module's record of the warnings it has already shown, so
under Python's default filter a caller's own warning, meant to show once per
line, shows again after each call that used it (3 times in 3 calls of `emd`,
measured).  `ignoring` adds one entry to ``warnings.filters`` and removes it
again, in place, which leaves those records alone.
"""

import contextlib
import importlib
import re
import warnings


def require(module, extra):
    """Import ``module`` (a dotted name), or raise an ImportError that says which extra installs it.

    Parameters
    ----------
    module : str
        For example ``"PIL.Image"`` or ``"matplotlib.figure"``.
    extra : str
        The optional-dependency group that provides it: ``"probes"`` or ``"train"``.

    Returns
    -------
    module
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        raise ImportError(
            f"{package} is needed here but is not installed; it comes with the `{extra}` extra: "
            f"pip install 'divergences[{extra}]'"
        ) from error


@contextlib.contextmanager
def ignoring(message, category):
    """Inside the block, ignore warnings of ``category`` whose text starts with ``message``.

    Parameters
    ----------
    message : str
        A regular expression matched, case-insensitively, at the start of the warning's text; ``""`` matches any.
    category : type
        A subclass of ``Warning``.
    """
    entry = ("ignore", re.compile(message, re.I), category, None, 0)
    warnings.filters.insert(0, entry)
    try:
        yield
    finally:
        warnings.filters.remove(entry)
