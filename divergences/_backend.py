"""The one module that knows numpy and torch apart.

Every public function computes with torch tensors.  Numpy (or list) inputs are
viewed as CPU tensors without copying, and the result is handed back as numpy;
torch inputs keep their dtype, device and autograd graph.  The few operations
where numpy is much faster on the CPU (sorting) are routed here too, so the rest
of the package never asks which library it is holding.
"""

import numpy as np
import torch

from divergences.extras import ignoring

_REDUCED_PRECISION = (torch.float16, torch.bfloat16)


def is_tensor(value):
    """Whether ``value`` is a torch tensor (the only type check in the package)."""
    return isinstance(value, torch.Tensor)


def library_name(value):
    """Name of the array library ``value`` belongs to, for error messages."""
    return "torch" if is_tensor(value) else "numpy"


def describe(value):
    """Short description of a value's type, for error messages."""
    if is_tensor(value):
        return f"torch.Tensor of dtype {value.dtype} on {value.device}"
    if isinstance(value, np.ndarray):
        return f"numpy.ndarray of dtype {value.dtype}"
    return type(value).__name__


def as_numeric_array(value):
    """``value`` as a tensor or an ndarray, without converting the library.

    Arrays torch cannot view are converted here: non-native byte order to
    native, long double to float64 (the widest dtype torch computes in).
    """
    if is_tensor(value):
        return value
    array = np.asarray(value)
    if array.dtype.kind == "f" and array.dtype.itemsize > 8:
        return array.astype(np.float64)
    if not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))
    return array


def dtype_kind(array):
    """'f' (floating), 'i' (integer or bool), 'c' (complex) or 'o' (other)."""
    if is_tensor(array):
        if array.dtype.is_complex:
            return "c"
        return "f" if array.dtype.is_floating_point else "i"
    kind = array.dtype.kind
    return {"f": "f", "i": "i", "u": "i", "b": "i", "c": "c"}.get(kind, "o")


def compute_dtype(arrays):
    """Floating dtype the computation runs in, as a torch dtype.

    Numpy inputs give float64 unless every floating input is float32; torch
    inputs follow torch's promotion, with half precision computed in float32.
    """
    floating = [a for a in arrays if dtype_kind(a) == "f"]
    if not arrays or not is_tensor(arrays[0]):
        if floating and all(a.dtype == np.float32 for a in floating):
            return torch.float32
        return torch.float64
    if not floating:
        return torch.get_default_dtype()
    dtype = floating[0].dtype
    for a in floating[1:]:
        dtype = torch.promote_types(dtype, a.dtype)
    return torch.float32 if dtype in _REDUCED_PRECISION else dtype


def result_dtype(arrays):
    """The dtype results are returned in (half precision stays half)."""
    dtype = compute_dtype(arrays)
    if arrays and is_tensor(arrays[0]):
        floating = [a.dtype for a in arrays if dtype_kind(a) == "f"]
        if floating and all(d == floating[0] for d in floating) and floating[0] in _REDUCED_PRECISION:
            return floating[0]
    return dtype


def to_tensor(array, dtype):
    """View ``array`` as a torch tensor of ``dtype`` (no copy when possible).

    A 0-d array stays 0-d, and a read-only array is viewed too: the package
    never writes into its inputs, so torch's warning about it does not apply.
    """
    if is_tensor(array):
        return array.to(dtype)
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array).reshape(array.shape)  # ascontiguousarray makes a 0-d array 1-d
    if array.flags.writeable:  # no warning to silence
        return torch.from_numpy(array).to(dtype)
    with ignoring("The given NumPy array is not writable", UserWarning):
        return torch.from_numpy(array).to(dtype)


class Converter:
    """Hands results back in the library, dtype and device of the inputs."""

    def __init__(self, arrays):
        self.numpy = not (arrays and is_tensor(arrays[0]))
        self.dtype = compute_dtype(arrays)
        self.out_dtype = result_dtype(arrays)
        self.device = torch.device("cpu") if self.numpy else arrays[0].device

    def tensor(self, array):
        """``array`` as a tensor of the computation's dtype and device."""
        return to_tensor(array, self.dtype).to(self.device)

    def back(self, result):
        """Return ``result`` (a tensor) in the caller's library."""
        if not self.numpy:
            returned = result.to(self.out_dtype)
            if self.out_dtype != result.dtype and not bool(torch.isfinite(returned.detach()).all()):
                if bool(torch.isfinite(result.detach()).all()):
                    raise ValueError(
                        f"the result, {float(result.detach().abs().max()):.6g}, is beyond the range of {self.out_dtype} "
                        f"(the dtype of the inputs). Pass float32 inputs."
                    )
            return returned
        out = result.detach().numpy()
        return out[()] if out.ndim == 0 else out


def sort(values):
    """Sort along the last axis; differentiable, and fast on the CPU.

    On the CPU numpy's vectorised sort is several times faster than torch's,
    so the permutation comes from numpy and torch only gathers (which keeps
    the autograd graph).  Other devices use ``torch.sort``.
    """
    if values.device.type != "cpu":
        return torch.sort(values, dim=-1).values
    if not values.requires_grad:
        return torch.from_numpy(np.sort(values.numpy(), axis=-1))
    order = torch.from_numpy(np.argsort(values.detach().numpy(), axis=-1))
    return torch.gather(values, -1, order)


def argsort(values):
    """Indices that sort ``values`` along the last axis (see :func:`sort`)."""
    if values.device.type != "cpu":
        return torch.argsort(values, dim=-1)
    return torch.from_numpy(np.argsort(values.detach().numpy(), axis=-1))
