"""Checks of the probes' options, in the convention of :mod:`divergences._validation`.

Scalar options go through ``divergences._validation`` (``check_count``,
``check_real``, ``check_positive``, ``check_seed``), as in the library; this
module adds what only the probes take: a count with a lower bound and a
one-dimensional grid of values (θ, Δ, shifts, bin counts,
dimensions).  Every error is a ``TypeError`` for a wrong type or a
``ValueError`` for a bad value, and names the option the user passed.
"""

import numpy as np

from divergences._validation import check_count


def check_count_at_least(name, value, minimum):
    """``value`` is an integer >= ``minimum`` (>= 1); returns it as an int."""
    value = check_count(name, value)
    if value < minimum:
        raise ValueError(f"`{name}` should be an integer >= {minimum}. Instead, received {value}.")
    return value


def check_grid(name, values, *, lower, upper=None, integer=False, nonempty=False):
    """``values`` is a one-dimensional array of finite numbers in [lower, upper] (or >= lower).

    Returns it as a float64 array, or an int64 array when ``integer``, where
    any value that is not an integer type is refused.
    """
    kinds, what = ("iu", "integers") if integer else ("iuf", "finite values")
    bounds = f">= {lower}" if upper is None else f"in [{lower}, {upper}]"
    expected = f"{'a non-empty' if nonempty else 'a'} one-dimensional array of {what} {bounds}"
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):
        array = None
    if isinstance(values, (str, bytes)) or array is None or array.dtype.kind not in kinds:
        received = type(values).__name__ if array is None or array.ndim == 0 else f"array of {array.dtype}"
        raise TypeError(f"`{name}` should be {expected}. Instead, received a {received}.")
    array = array.astype(np.int64 if integer else np.float64)
    inside = np.isfinite(array) & (array >= lower) & (True if upper is None else array <= upper)
    if array.ndim != 1 or (nonempty and array.size == 0) or not np.all(inside):
        raise ValueError(f"`{name}` should be {expected}. Instead, received {values!r}.")
    return array
