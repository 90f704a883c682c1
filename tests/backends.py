"""Checks shared by the tests of sinkhorn's lazy backends ("online", "multiscale") against the tensorized one."""

import numpy as np
import torch

from divergences import sinkhorn


def assert_gradients_match_tensorized(backend, dtype, float64_tolerance):
    """Gradients of a batch of two debiased problems, with zero weights, through ``backend`` and tensorized.

    In float32 the promise is for the points (within 1e-3 of float64); the weights' gradients at zero weights of the
    degenerate debiasing terms are ill-conditioned there (0.2% tensorized, 3% online against float64), and are
    compared in float64 only.
    """
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 3)), rng.random((2, 15, 3))  # broadcast against a batch of two
    a, b = rng.random(20), rng.random((2, 15))
    a[:3] = 0.0  # zero weights: c-transform potentials, and a one-sided gradient there
    tensors = [torch.tensor(v, dtype=dtype, requires_grad=True) for v in (x, y, a, b)]
    gradients = {}
    for name in ("tensorized", backend):
        value = sinkhorn(*tensors, eps=0.02, backend=name)
        assert value.shape == (2,) and value.dtype == dtype
        gradients[name] = torch.autograd.grad(value.sum(), tensors)
    compared = 4 if dtype == torch.float64 else 2
    tolerance = 1e-3 if dtype == torch.float32 else float64_tolerance
    for ours, reference in zip(gradients[backend][:compared], gradients["tensorized"][:compared]):
        assert ours.dtype == dtype and ours.shape == reference.shape
        assert float((ours - reference).abs().max()) <= tolerance * float(reference.abs().max())


def assert_gradcheck(backend, n, m):
    """torch's gradcheck of sinkhorn through ``backend`` in float64, on n and m random 2-D points of positive weight."""
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.random((n, 2)), requires_grad=True)
    y = torch.tensor(rng.random((m, 2)), requires_grad=True)
    a = torch.tensor(rng.random(n) + 0.1, requires_grad=True)
    b = torch.tensor(rng.random(m) + 0.1, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *v: sinkhorn(*v, eps=0.05, tol=1e-12, backend=backend), (x, y, a, b))
