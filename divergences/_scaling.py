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


def largest_of(values, dims):
    """The largest magnitude of ``values`` over ``dims``, per batch entry (keepdim); `scales_of` where it is 0 or
    not finite.  Divided by it, the largest value is exactly 1, whose p-th power neither underflows nor overflows
    at any p (a power of two above it leaves a ratio down to 1/2, whose p-th power underflows from p = 1075)."""
    largest = values.detach().abs().amax(dims, keepdim=True)
    return torch.where(torch.isfinite(largest) & (largest > 0), largest, scales_of(values, dims))


def rescaled_points(x, y):
    """Two batches of point clouds (..., n, d), rescaled by a power of two per batch entry where needed.

    Returns (x / scale, y / scale, scale) with scale of shape (..., 1, 1):
    the power of two above the largest coordinate where that is beyond
    2^+-500 (where differences, squares or projections could leave the float
    range), else 1, and then the points are returned as they are.
    """
    scale = torch.maximum(scales_of(x, (-2, -1)), scales_of(y, (-2, -1)))
    scale = torch.where((scale > 2.0**500) | (scale < 2.0**-500), scale, 1.0)
    if bool((scale == 1).all()):
        return x, y, scale
    return x / scale, y / scale, scale


def normalised(values, axis):
    """``values`` (>= 0) divided by their total along ``axis``, with the scale and the scaled total (keepdim).

    The total is ``scale * scaled_total``.  Where a plain sum would overflow
    or fall below the normal range, ``scale`` is the power of two above the
    largest entry along ``axis``, so neither the sum nor the quotient
    overflows or underflows; elsewhere it is 1.  The gradient,
    (g - <g, result>) / total, is formed as such too: 0 where it vanishes,
    even for a subnormal total.
    """
    total = values.detach().sum(axis, keepdim=True)
    if is_normal(total):
        scale = torch.ones_like(total)
        return _Normalised.apply(values, scale, total, axis), scale, total
    scale = scales_of(values, (axis,))
    scaled_total = (values.detach() / scale).sum(axis, keepdim=True)
    return _Normalised.apply(values, scale, scaled_total, axis), scale, scaled_total


def is_normal(values):
    """Whether every entry is a finite float at least the smallest normal one (so >= 0)."""
    finfo = torch.finfo(values.dtype)
    return bool(((values >= finfo.tiny) & (values <= finfo.max)).all())


def _divided(values, scale, scaled_total):
    """values / (scale * scaled_total), in one division where that product is a normal float."""
    total = scale * scaled_total
    return values / total if is_normal(total) else values / scale / scaled_total


class _Normalised(torch.autograd.Function):
    @staticmethod
    def forward(values, scale, scaled_total, axis):
        return _divided(values, scale, scaled_total)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, scale, scaled_total, axis = inputs
        ctx.save_for_backward(output, scale, scaled_total)
        ctx.axis = axis

    @staticmethod
    def backward(ctx, grad):
        output, scale, scaled_total = ctx.saved_tensors
        centred = grad - (grad * output).sum(ctx.axis, keepdim=True)
        return _divided(centred, scale, scaled_total), None, None, None


def mean(values):
    """The mean of all entries, exact where their sum would overflow."""
    scale = scale_of(values)
    return (values / scale).mean() * scale


def _largest_exponent(dtype):
    """k of the largest power of two 2^k of a floating ``dtype``."""
    return math.frexp(torch.finfo(dtype).max)[1] - 1


def magnitude(value):
    """``value``'s order of magnitude, ``1e-07``: a warning's text stays the same from one call to the next
    when the failure does, so Python's default filter shows it once per line of the caller."""
    if not math.isfinite(value) or value <= 0:
        return f"{value:g}"
    return f"{10.0 ** round(math.log10(value)):.0e}"
