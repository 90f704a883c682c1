"""Exact rescaling by powers of two, which keeps sums and powers inside the float range.

Dividing by a power of two changes only the exponent of a float, so it is
exact (short of the subnormal range); a value computed on rescaled inputs and
scaled back is the value itself, without the overflow or underflow of its
intermediate sums, squares or p-th powers.
"""

import math

import torch


def power_of_two_above(largest, dtype=torch.float64):
    """2^k >= ``largest`` (a float >= 0), less than twice it, or 1 when it is 0.

    At most the largest power of two of ``dtype``, so that it is a finite
    number of that dtype (then ``largest`` / 2^k <= 2).
    """
    if largest == 0:
        return 1.0
    mantissa, exponent = math.frexp(largest)
    exponent = exponent - 1 if mantissa == 0.5 else exponent
    return math.ldexp(1.0, min(exponent, _largest_exponent(dtype)))


def scale_of(*tensors):
    """The power of two above the largest magnitude over ``tensors`` (of one floating dtype)."""
    largest = max(float(t.detach().abs().max()) for t in tensors)
    return power_of_two_above(largest, tensors[0].dtype)


def scales_of(values, dims):
    """The power of two above the largest magnitude of ``values`` over ``dims``, per batch entry (keepdim)."""
    largest = values.detach().abs().amax(dims, keepdim=True)
    mantissa, exponent = torch.frexp(largest)
    exponent = (exponent - (mantissa == 0.5).to(exponent.dtype)).clamp(max=_largest_exponent(values.dtype))
    return torch.where(largest > 0, torch.ldexp(torch.ones_like(largest), exponent), 1.0)


def point_scales(x, y):
    """Per batch entry, the power of two above the largest coordinate of two point clouds, (..., 1, 1)."""
    return torch.maximum(scales_of(x, (-2, -1)), scales_of(y, (-2, -1)))


def mean(values):
    """The mean of all entries, exact where their sum would overflow."""
    scale = scale_of(values)
    return (values / scale).mean() * scale


def _largest_exponent(dtype):
    """k of the largest power of two 2^k of a floating ``dtype``."""
    return math.frexp(torch.finfo(dtype).max)[1] - 1
