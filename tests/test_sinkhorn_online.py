"""sinkhorn's online backend: the tensorized backend's values and gradients, without any n x m array."""

import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from memory import peak_and_value
from strategies import transport_problems

import divergences.sinkhorn  # noqa: F401 (the module, for the spy below)
from divergences import _log_kernel, sinkhorn

SINKHORN_MODULE = sys.modules["divergences.sinkhorn"]


def largest_cost(x, y):
    return float(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1).max())


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of rows of at most 64 entries, so that small problems are solved in many blocks."""
    monkeypatch.setattr(_log_kernel, "_BLOCK", 64)


def both_backends(*arrays, **options):
    """The tensorized and the online values, and whether either warned."""
    values = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for backend in ("tensorized", "online"):
            values[backend] = sinkhorn(*arrays, backend=backend, **options)
    return values["tensorized"], values["online"], any(issubclass(w.category, RuntimeWarning) for w in caught)


@settings(max_examples=25, deadline=None)
@given(transport_problems(max_points=20), st.sampled_from(["float32", "float64"]), st.booleans(),
       st.sampled_from([1e-1, 1e-2]))
def test_online_gives_the_tensorized_value(problem, dtype, debias, relative_eps):
    # The same steps on the same numbers, only the blocks differ: round-off apart, the same value.
    x, y, a, b = (np.asarray(v, dtype) for v in problem)
    eps = relative_eps * largest_cost(*problem[:2])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_log_kernel, "_BLOCK", 64)
        tensorized, online, warned = both_backends(x, y, a, b, eps=eps, debias=debias)
    assume(not warned)
    assert online.dtype == tensorized.dtype == np.dtype(dtype) and online.shape == ()
    scale = max(abs(float(tensorized)), eps)
    assert abs(float(online) - float(tensorized)) <= (2e-4 if dtype == "float32" else 1e-9) * scale


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_online_gradients_are_the_tensorized_ones(small_blocks, dtype):
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 3)), rng.random((2, 15, 3))  # broadcast against a batch of two
    a, b = rng.random(20), rng.random((2, 15))
    a[:3] = 0.0  # zero weights: c-transform potentials, and a one-sided gradient there
    tensors = [torch.tensor(v, dtype=dtype, requires_grad=True) for v in (x, y, a, b)]
    gradients = {}
    for backend in ("tensorized", "online"):
        value = sinkhorn(*tensors, eps=0.02, backend=backend)
        assert value.shape == (2,) and value.dtype == dtype
        gradients[backend] = torch.autograd.grad(value.sum(), tensors)
    # In float32 the promise is for the points (within 1e-3 of float64); the weights' gradients at zero weights of
    # the degenerate debiasing terms are ill-conditioned there (0.2% tensorized, 3% online against float64).
    compared = 4 if dtype == torch.float64 else 2
    for ours, reference in zip(gradients["online"][:compared], gradients["tensorized"][:compared]):
        assert ours.dtype == dtype and ours.shape == reference.shape
        tolerance = 1e-3 if dtype == torch.float32 else 1e-9
        assert float((ours - reference).abs().max()) <= tolerance * float(reference.abs().max())


def test_gradcheck_online(small_blocks):
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.random((6, 2)), requires_grad=True)
    y = torch.tensor(rng.random((5, 2)), requires_grad=True)
    a = torch.tensor(rng.random(6) + 0.1, requires_grad=True)
    b = torch.tensor(rng.random(5) + 0.1, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *v: sinkhorn(*v, eps=0.05, tol=1e-12, backend="online"), (x, y, a, b))


def test_auto_goes_online_above_the_memory_budget(monkeypatch):
    # 40 x 30 problems, debiased: the largest of xy, xx, yy is 40 x 40; three float64 arrays: 38,400 bytes.
    calls = []
    solve = SINKHORN_MODULE.OnlineEntropicCost.apply
    monkeypatch.setattr(SINKHORN_MODULE.OnlineEntropicCost, "apply", lambda *args: calls.append(1) or solve(*args))
    rng = np.random.default_rng(2)
    x, y = rng.random((40, 2)), rng.random((30, 2))
    within = sinkhorn(x, y, eps=0.05, memory_budget=38_400)
    assert calls == []
    above = sinkhorn(x, y, eps=0.05, memory_budget=38_399)
    assert len(calls) == 3  # the x-y term and the two debiasing terms
    assert float(above) == pytest.approx(float(within), rel=1e-12)


@pytest.mark.parametrize("backend, error", [("keops", ValueError), ("Online", ValueError), (None, TypeError),
                                            (1, TypeError)])
def test_a_bad_backend_is_named(backend, error):
    with pytest.raises(error, match="backend"):
        sinkhorn([[0.0]], [[1.0]], eps=0.1, backend=backend)


_SINKHORN = """
import torch
from divergences import sinkhorn
generator = torch.Generator().manual_seed(0)
x, y = torch.rand(6000, 8, generator=generator), torch.rand(6000, 8, generator=generator)
value = sinkhorn(x, y, eps=0.4, debias=False, backend="{backend}")
"""


def test_online_memory_does_not_grow_with_n_times_m():
    # 6000 x 6000 float32 costs are 144 MB, and the tensorized backend keeps the cost and two kernels.
    (online_peak, online), (tensorized_peak, tensorized) = (
        peak_and_value(_SINKHORN.format(backend=backend)) for backend in ("online", "tensorized"))
    assert online == pytest.approx(tensorized, rel=1e-5)
    assert online_peak < tensorized_peak - 200 * 2**20  # 286 MB less measured
