"""Optional dependencies: imported where used, with the extra that provides them named if missing.

The distances need only numpy, torch and POT.  The probes' figures need
matplotlib (``pip install 'divergences[probes]'``); the trainers need
Pillow, tqdm and matplotlib (``pip install 'divergences[train]'``).
"""

import importlib


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
