"""Input checks shared by every public function.

Each helper raises ``TypeError`` for a wrong type and ``ValueError`` for a bad
value or shape, with a message that names the argument, says what was expected
and what was received.  Public functions call :func:`convert` first, then the
checks that apply to their arguments, and only then compute.
"""

import math
import numbers
import os
from typing import NamedTuple

import numpy as np
import torch

from divergences import _backend, _scaling

_ARRAY_TYPES = (np.ndarray, list, tuple, numbers.Real, np.generic)


def convert(optional=(), **named):
    """Check the array arguments together and convert them to tensors.

    Parameters
    ----------
    optional : tuple of str
        The names of the arguments that may be None (passed through as None).
    **named : array_like, torch.Tensor or None
        The array arguments of a public function, by name.

    Returns
    -------
    converter : _backend.Converter
        Converts results back to the caller's library, dtype and device.
    tensors : list of torch.Tensor or None
        The arguments, in order, as tensors of the computation dtype.
    """
    arrays = {}
    for name, value in named.items():
        if value is not None:
            arrays[name] = _as_array(name, value)
        elif name not in optional:
            raise TypeError(f"`{name}` should be an array_like of real numbers or a torch.Tensor. Instead, received None.")
    _check_same_library(arrays)
    _check_same_device(arrays)
    converter = _backend.Converter(list(arrays.values()))
    tensors = []
    for name, value in named.items():
        if value is None:
            tensors.append(None)
            continue
        tensor = converter.tensor(arrays[name])
        _check_finite(name, tensor)
        tensors.append(tensor)
    return converter, tensors


def _as_array(name, value):
    if not (_backend.is_tensor(value) or isinstance(value, _ARRAY_TYPES)) or isinstance(value, bool):
        raise TypeError(
            f"`{name}` should be an array_like of real numbers or a torch.Tensor. "
            f"Instead, received a {_backend.describe(value)}."
        )
    try:
        array = _backend.as_numeric_array(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` could not be read as a numeric array: {error}") from None
    except RuntimeError:  # torch refuses to turn a tensor that requires grad into numpy numbers
        raise TypeError(f"`{name}` is a {type(value).__name__} holding torch tensors that require grad; pass one "
                        f"tensor (torch.stack(...)) to keep the gradient, or detach them.") from None
    kind = _backend.dtype_kind(array)
    if kind == "c":
        raise TypeError(f"`{name}` should hold real numbers. Instead, received complex values.")
    if kind == "o":
        raise TypeError(
            f"`{name}` should hold real numbers. Instead, received a {_backend.describe(array)}."
        )
    return array


def _check_same_library(arrays):
    libraries = {name: _backend.library_name(a) for name, a in arrays.items()}
    if len(set(libraries.values())) > 1:
        torch_name = next(n for n, lib in libraries.items() if lib == "torch")
        numpy_name = next(n for n, lib in libraries.items() if lib == "numpy")
        raise ValueError(
            f"cannot mix numpy and torch inputs: `{torch_name}` is a torch.Tensor but "
            f"`{numpy_name}` is a numpy array or list. Convert one of them "
            "(torch.as_tensor(...) or tensor.numpy())."
        )


def _check_same_device(arrays):
    devices = [(name, a.device) for name, a in arrays.items() if _backend.is_tensor(a)]
    for name, device in devices[1:]:
        if device != devices[0][1]:
            raise ValueError(
                f"all tensors must be on the same device: `{devices[0][0]}` is on {devices[0][1]} "
                f"but `{name}` is on {device}. Move them with .to(device)."
            )
    if devices and devices[0][1].type == "meta":
        raise ValueError(
            f"`{devices[0][0]}` is on the meta device, which holds shapes but no values. Pass tensors with values."
        )


def _check_finite(name, tensor):
    # One reduction in the common case: a NaN or an infinity makes the sum non-finite.
    if tensor.numel() == 0 or bool(torch.isfinite(tensor.detach().sum())):
        return
    entries = tensor.detach()
    if not bool(torch.isfinite(entries).all()):
        bad = "NaN" if bool(torch.isnan(entries).any()) else "infinite"
        raise ValueError(f"`{name}` should be finite. Instead, it contains {bad} values.")


def check_fits(result, what, explanation):
    """``result``, or a ValueError if an entry is beyond the largest float of its dtype.

    The message reads "``what`` overflows DTYPE (...): ``explanation``", the
    explanation saying which inputs are too large and what to do; "use float64"
    is offered only to results of a smaller float type.
    """
    if not bool(torch.isfinite(result.detach()).all()):
        dtype = str(result.dtype).removeprefix("torch.")
        advice = " (or use float64)" if result.dtype != torch.float64 else ""
        raise ValueError(f"{what} overflows {dtype} (beyond {torch.finfo(result.dtype).max:.3g}): {explanation}{advice}.")
    return result


def check_nonempty(name, tensor, axis=-1):
    """``tensor`` has at least one entry along ``axis``."""
    if tensor.ndim == 0:
        raise ValueError(f"`{name}` should be an array with at least one axis. Instead, received a scalar.")
    if tensor.shape[axis] == 0 or tensor.numel() == 0:
        raise ValueError(f"`{name}` should not be empty. Instead, received an array of shape {tuple(tensor.shape)}.")


class Mass(NamedTuple):
    """A histogram's normalised entries and its total, ``scale * scaled_total`` (kept as an axis of length 1).

    The total is split so that it is exact even where it overflows: ``scale``
    is a power of two near the largest entry of each histogram and
    ``scaled_total`` the total of its entries divided by it (both keep the
    axis, with length 1).
    """

    normalised: torch.Tensor
    scale: torch.Tensor
    scaled_total: torch.Tensor


def check_mass(name, tensor, axis=-1):
    """``tensor`` is a non-empty histogram: entries >= 0, positive total along ``axis``.

    Returns its ``Mass``: the entries divided by their total (differentiable),
    exact whatever the size of the entries, subnormal or near the largest float.
    """
    check_nonempty(name, tensor, axis)
    entries = tensor.detach()
    smallest = float(entries.min())
    if smallest < 0:
        raise ValueError(f"`{name}` should be a non-negative mass. Instead, it has a negative entry ({smallest:g}).")
    normalised, scale, scaled_totals = _scaling.normalised(tensor, axis)  # per histogram of the batch
    if not bool((scaled_totals > 0).all()):
        raise ValueError(f"`{name}` should have a positive total mass along axis {axis}. Instead, it sums to zero.")
    return Mass(normalised, scale, scaled_totals)


def check_axis(axis, tensor):
    """``axis`` is an integer axis of ``tensor``; returns it as a negative index."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"`axis` should be an integer. Instead, received a {type(axis).__name__}.")
    ndim = tensor.ndim
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"`axis` should be in [{-ndim}, {ndim - 1}] for inputs with {ndim} dimension(s). "
            f"Instead, received {axis}."
        )
    return int(axis) - ndim if axis >= 0 else int(axis)


def check_same_length(name_a, a, name_b, b, axis=-1, what="length"):
    """``a`` and ``b`` have the same size along ``axis``."""
    if a.shape[axis] != b.shape[axis]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` should have the same {what} along axis {axis}. "
            f"Instead, received shapes {tuple(a.shape)} and {tuple(b.shape)}."
        )


def broadcast_batch(**shapes):
    """Broadcast the named batch shapes together, or explain why they do not."""
    try:
        return torch.broadcast_shapes(*shapes.values())
    except RuntimeError:
        listed = ", ".join(f"`{n}` {tuple(s)}" for n, s in shapes.items())
        raise ValueError(f"the leading (batch) axes should broadcast together. Instead, received {listed}.") from None


def check_positive(name, value):
    """``value`` is a finite real number > 0; returns it as a float."""
    value = check_real(name, value)
    if not value > 0:
        raise ValueError(f"`{name}` should be > 0. Instead, received {value!r}.")
    return value


def check_choice(name, value, choices):
    """``value`` is one of the strings ``choices``; returns it."""
    listed = " or ".join(repr(choice) for choice in choices)
    if not isinstance(value, str):
        raise TypeError(f"`{name}` should be {listed}. Instead, received a {type(value).__name__}.")
    if value not in choices:
        raise ValueError(f"`{name}` should be {listed}. Instead, received {value!r}.")
    return value


def check_size(name, value):
    """``value`` is a real number >= 0 (a number of bytes), ``math.inf`` allowed; returns it as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` should be a number of bytes. Instead, received a {type(value).__name__}.")
    try:
        value = float(value)
    except OverflowError:  # an integer beyond the float range: more bytes than any machine has
        value = math.inf
    if not value >= 0:
        raise ValueError(f"`{name}` should be a number of bytes >= 0 (or math.inf). Instead, received {value!r}.")
    return value


def check_real(name, value):
    """``value`` is a finite real number; returns it as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` should be a real number. Instead, received a {type(value).__name__}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` should be finite. Instead, received {value!r}.")
    return value


def check_exponent(p):
    """The Wasserstein exponent ``p`` is a real number >= 1; returns it as a float."""
    p = check_real("p", p)
    if p < 1:
        raise ValueError(f"`p` should be >= 1 (the ground cost |x - y|^p must be convex). Instead, received {p!r}.")
    return p


def check_base(base):
    """A logarithm base: None or a real number > 1; returns log(base) or 1.

    A base in (0, 1) would make every divergence negative.
    """
    if base is None:
        return 1.0
    base = check_real("base", base)
    if not base > 1:
        raise ValueError(
            f"`base` should be > 1 (2 for bits, e for nats; a base below 1 makes divergences negative). "
            f"Instead, received {base!r}."
        )
    return math.log(base)


_LARGEST_SEED = 2**64 - 1  # torch's generators take 64-bit seeds
_LARGEST_COUNT = 2**63 - 1  # sizes are int64


def check_seed(seed):
    """A random seed: None or an integer in [0, 2^64)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"`seed` should be None or a non-negative integer. Instead, received a {type(seed).__name__}.")
    if not 0 <= seed <= _LARGEST_SEED:
        raise ValueError(f"`seed` should be an integer in [0, 2**64). Instead, received {seed}.")
    return int(seed)


def check_count(name, value):
    """``value`` is a positive integer (below 2^63); returns it as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` should be a positive integer. Instead, received a {type(value).__name__}.")
    if not 1 <= value <= _LARGEST_COUNT:
        raise ValueError(f"`{name}` should be a positive integer below 2**63. Instead, received {value}.")
    return int(value)


def check_integer(name, value, minimum=0):
    """``value`` is an integer (Python's or numpy's) in [``minimum``, 2^63); returns it as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` should be an integer >= {minimum}. Instead, received a {type(value).__name__}.")
    if not minimum <= value <= _LARGEST_COUNT:
        raise ValueError(f"`{name}` should be an integer >= {minimum} (below 2**63). Instead, received {value}.")
    return int(value)


def check_nonnegative(name, value):
    """``value`` is a finite real number >= 0; returns it as a float."""
    value = check_real(name, value)
    if not value >= 0:
        raise ValueError(f"`{name}` should be >= 0. Instead, received {value!r}.")
    return value


def available_memory():
    """Bytes of memory available to a new allocation: Linux's MemAvailable, else the physical memory.

    Returns
    -------
    int or None
        None where neither can be read.

    Examples
    --------
    >>> from divergences.checks import available_memory
    >>> available_memory() is None or available_memory() > 0
    True
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_allocation(name, value, nbytes, what):
    """ValueError naming ``name`` (whose value is ``value``) if ``nbytes`` for ``what`` exceed the memory available."""
    available = available_memory()
    if available is not None and nbytes > available:
        raise ValueError(f"`{name}`={value:,} needs about {nbytes / 2**30:,.1f} GiB for {what}, more than the "
                         f"{available / 2**30:,.1f} GiB of memory available.")


def check_flag(name, value):
    """``value`` is a boolean (Python's or numpy's); returns it as a bool.

    Anything else is refused rather than read by its truth value, where the
    string "no" would mean True.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` should be True or False. Instead, received a {type(value).__name__}.")
    return bool(value)


def check_measures(x, y, a, b):
    """Validate two weighted point clouds and bring them to a common layout.

    Parameters
    ----------
    x : (n,) or (..., n, d) tensor
    y : (m,) or (..., m, d) tensor
    a : (..., n) tensor or None
    b : (..., m) tensor or None

    Returns
    -------
    x, y : (*batch, n, d) and (*batch, m, d) tensors
    a, b : (*batch, n) and (*batch, m) tensors summing to one, or None (uniform)
    batch : torch.Size
    """
    for name, points in (("x", x), ("y", y)):
        check_nonempty(name, points)
        if points.ndim > 1:
            check_nonempty(name, points, axis=-2)
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, None] if y.ndim == 1 else y
    check_same_length("x", x, "y", y, what="dimension (last axis)")
    shapes = {"x": x.shape[:-2], "y": y.shape[:-2]}
    normalised = {"a": None, "b": None}
    for name, weights, points in (("a", a, x), ("b", b, y)):
        if weights is None:
            continue
        if weights.ndim == 0 or weights.shape[-1] != points.shape[-2]:
            raise ValueError(
                f"`{name}` should hold one weight per point, shape (..., {points.shape[-2]}). "
                f"Instead, received an array of shape {tuple(weights.shape)}."
            )
        normalised[name] = check_mass(name, weights).normalised
        shapes[name] = weights.shape[:-1]
    batch = broadcast_batch(**shapes)
    x = x.expand(*batch, *x.shape[-2:])
    y = y.expand(*batch, *y.shape[-2:])
    a, b = normalised["a"], normalised["b"]
    a = None if a is None else a.expand(*batch, x.shape[-2])
    b = None if b is None else b.expand(*batch, y.shape[-2])
    return x, y, a, b, batch


def flat_batch(x, y, a, b):
    """Measures of the whole batch shape (as `check_measures` returns them), the batch flattened into one axis.

    Returns (B, n, d), (B, m, d), (B, n) and (B, m) tensors (copies where the inputs were broadcast).
    """
    return x.reshape(-1, *x.shape[-2:]), y.reshape(-1, *y.shape[-2:]), a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])


def uniform_if_none(weights, points):
    """``weights``, or uniform weights for ``points`` of shape (..., n, d)."""
    if weights is not None:
        return weights
    n = points.shape[-2]
    return torch.full(points.shape[:-1], 1 / n, dtype=points.dtype, device=points.device)


def check_some_entries(name, tensor):
    """``tensor`` (of any shape, 0-d included) holds at least one entry."""
    if tensor.numel() == 0:
        raise ValueError(
            f"`{name}` should hold at least one value. Instead, received an empty array of shape {tuple(tensor.shape)}."
        )


def check_image_sets(x, y, min_resolution):
    """Two image sets (N, C, S, S) and (M, C, S, S) with S = min_resolution * 2**k.

    Returns the number of pyramid levels, k + 1.
    """
    for name, images in (("x", x), ("y", y)):
        if images.ndim != 4 or images.shape[-1] != images.shape[-2] or images.numel() == 0:
            raise ValueError(
                f"`{name}` should be a non-empty batch of square images, shape (N, C, S, S) with N, C, S >= 1. "
                f"Instead, received an array of shape {tuple(images.shape)}."
            )
    check_same_length("x", x, "y", y, axis=1, what="number of channels")
    check_same_length("x", x, "y", y, axis=2, what="image size")
    size = x.shape[-1]
    ratio = size // min_resolution
    if ratio < 1 or size % min_resolution or ratio & (ratio - 1):
        raise ValueError(
            f"the image side should be `min_resolution` ({min_resolution}) times a power of two, "
            f"such as {min_resolution}, {2 * min_resolution}, {4 * min_resolution}. Instead, received "
            f"images of side {size}. Resize the images or change `min_resolution`."
        )
    return ratio.bit_length()


def check_patch_size(patch_size, min_resolution):
    """2 <= ``min_resolution`` and 1 <= ``patch_size`` <= ``min_resolution``; returns both as ints."""
    patch_size = check_count("patch_size", patch_size)
    min_resolution = check_count("min_resolution", min_resolution)
    if min_resolution < 2:
        raise ValueError(f"`min_resolution` should be >= 2. Instead, received {min_resolution}.")
    if patch_size > min_resolution:
        raise ValueError(
            f"`patch_size` should be <= `min_resolution` ({min_resolution}), so that a patch fits in the "
            f"coarsest level. Instead, received {patch_size}."
        )
    return patch_size, min_resolution


def check_samples(x, y, minimum, names=("x", "y"), why=""):
    """Two samples of feature vectors, (..., n, d) and (..., m, d), with at least ``minimum`` points each.

    A 1-D array of n values is n points on the line.  ``names`` are the arguments' names in the
    messages, and ``why`` (" (...)") says why ``minimum`` points are needed.  Returns both,
    broadcast to one batch shape.
    """
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, None] if y.ndim == 1 else y
    for name, points in zip(names, (x, y)):
        check_nonempty(name, points)
        if points.ndim < 2 or points.shape[-2] < minimum:
            raise ValueError(
                f"`{name}` should hold at least {minimum} points, shape (..., n, d) with n >= {minimum}{why}. "
                f"Instead, received an array of shape {tuple(points.shape)}."
            )
    check_same_length(names[0], x, names[1], y, what="dimension (last axis)")
    batch = broadcast_batch(**{names[0]: x.shape[:-2], names[1]: y.shape[:-2]})
    return x.expand(*batch, *x.shape[-2:]), y.expand(*batch, *y.shape[-2:])
