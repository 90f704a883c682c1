"""sliced: closed forms, relations to emd, reproducibility, gradients."""

import math
import sys

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from memory import peak_and_value
from strategies import clouds, weights

from divergences import emd, sliced


def test_on_the_line_every_direction_is_plus_or_minus_one_so_it_equals_emd():
    rng = np.random.default_rng(0)
    x, y, a = rng.normal(size=20), rng.normal(size=15) + 1, rng.random(20)
    for p in (1, 2):
        assert float(sliced(x, y, a, p=p, n_projections=7, seed=1)) == pytest.approx(float(emd(x, y, a, p=p)), rel=1e-12)


def test_shift_in_d_dimensions_has_sw2_squared_of_norm_squared_over_d():
    # Projected on theta, a shift by c is a shift by <c, theta>; E[<c, theta>^2] = |c|^2 / d.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3))
    shift = np.array([1.0, -2.0, 2.0])
    value = float(sliced(x, x + shift, n_projections=20_000, seed=0))
    assert value**2 == pytest.approx(9.0 / 3, rel=0.03)


@given(clouds(d=2), st.data())
def test_never_exceeds_the_wasserstein_distance(x, data):
    # Projection onto a unit direction is 1-Lipschitz, so each W_p(theta#) <= W_p.
    y = data.draw(clouds(d=2))
    assert float(sliced(x, y, n_projections=32, seed=0)) <= float(emd(x, y, p=2)) * (1 + 1e-9) + 1e-12


@given(clouds(d=2), st.data())
def test_identity_symmetry_non_negativity(x, data):
    y = data.draw(clouds(d=2))
    assert float(sliced(x, x, seed=0)) == 0.0
    forward = float(sliced(x, y, seed=3))
    assert forward >= 0
    assert forward == pytest.approx(float(sliced(y, x, seed=3)), rel=1e-12, abs=1e-12)


def test_weighted_agrees_with_pot_in_expectation():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 4)), rng.normal(size=(30, 4)) + 0.5
    a, b = rng.random(40), rng.random(30)
    ours = float(sliced(x, y, a, b, p=2, n_projections=20_000, seed=0))
    theirs = ot.sliced_wasserstein_distance(x, y, a / a.sum(), b / b.sum(), n_projections=20_000, p=2, seed=0)
    assert ours == pytest.approx(theirs, rel=0.02)


def test_a_seed_fixes_the_value_and_the_global_generator_is_used_otherwise():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 5))
    assert float(sliced(x, y, seed=4)) == float(sliced(x, y, seed=4))
    assert float(sliced(x, y, seed=4)) != float(sliced(x, y, seed=5))
    torch.manual_seed(0)
    first = float(sliced(x, y))
    torch.manual_seed(0)
    assert float(sliced(x, y)) == first


def test_batch_equals_loop():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(3, 10, 2)), rng.normal(size=(3, 12, 2))
    batched = sliced(x, y, seed=0)
    assert batched.shape == (3,)
    for i in range(3):
        assert batched[i] == pytest.approx(float(sliced(x[i], y[i], seed=0)), rel=1e-12)


def test_torch_float32_keeps_dtype_and_agrees():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(10, 3)), rng.normal(size=(8, 3))
    value = sliced(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), seed=0)
    assert value.dtype == torch.float32
    assert float(value) == pytest.approx(float(sliced(x, y, seed=0)), rel=1e-5)


def test_gradcheck_float64():
    rng = np.random.default_rng(6)
    x = torch.tensor(rng.normal(size=(5, 3)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    a = torch.tensor(rng.random(5) + 0.1, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y, a: sliced(x, y, a, n_projections=16, seed=0), (x, y, a))


def test_gradient_of_a_shift_points_along_it():
    # d/dt SW_2(x + t c, x) at t = 1 for unit c: SW_2 = |c| sqrt(E[cos^2]) = t sqrt(mean_k <c, theta_k>^2).
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.normal(size=(30, 2)))
    t = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    direction = torch.tensor([0.6, 0.8], dtype=torch.float64)
    value = sliced(x + t * direction, x, seed=0)
    value.backward()
    assert float(t.grad) == pytest.approx(float(value.detach()), rel=1e-10)
    assert math.isfinite(float(t.grad))


# Directions in chunks: the same value and gradients, in bounded memory.

_SLICED_MODULE = sys.modules["divergences.sliced"]  # (the package's `sliced` is the function)


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1.0, 2.0, 3.5]), st.booleans(), st.integers(1, 40))
def test_directions_in_chunks_give_the_same_value_and_gradients(seed, p, weighted, chunk_entries):
    # SW_p^p is a sum over directions, so the p-th powers of the chunks' parts add up to it.
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal(size=(2, 6, 3)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(2, 5, 3)), requires_grad=True)
    a = torch.tensor(rng.random((2, 6)) + 0.1, requires_grad=True) if weighted else None
    inputs = [v for v in (x, y, a) if v is not None]
    whole = sliced(x, y, a, p=p, n_projections=13, seed=1)
    whole_grads = torch.autograd.grad(whole.sum(), inputs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_SLICED_MODULE, "_CHUNK_ENTRIES", 2 * 11 * chunk_entries // 4 + 1)  # 1 to 13 directions a chunk
        chunked = sliced(x, y, a, p=p, n_projections=13, seed=1)
        chunked_grads = torch.autograd.grad(chunked.sum(), inputs)
    np.testing.assert_allclose(chunked.detach(), whole.detach(), rtol=1e-13)
    for ours, reference in zip(chunked_grads, whole_grads):
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-14)


def test_gradcheck_float64_in_chunks():
    rng = np.random.default_rng(8)
    x = torch.tensor(rng.normal(size=(5, 3)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    b = torch.tensor(rng.random(4) + 0.1, requires_grad=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_SLICED_MODULE, "_CHUNK_ENTRIES", 9 * 3)  # 3 directions a chunk
        assert torch.autograd.gradcheck(lambda x, y, b: sliced(x, y, None, b, p=3, n_projections=16, seed=0), (x, y, b))


_SLICED = """
import sys
import torch
from divergences import sliced
sys.modules["divergences.sliced"]._CHUNK_ENTRIES = 1 << 20
x = torch.rand(250_000, 3, generator=torch.Generator().manual_seed(0))
y = torch.rand(250_000, 3, generator=torch.Generator().manual_seed(1))
value = sliced(x, y, n_projections={projections}, seed=0)
"""


def test_memory_is_bounded_whatever_the_number_of_directions():
    # Chunks of 2^20 projected points (a sixth of the default, so that the test takes seconds): 2.5 10^5 points
    # a side make 2 directions a chunk.  32 directions at once would take 64 MB for the projections alone and
    # 5 to 10 times that to sort and match them; in sixteen chunks they take the memory of one.
    peak = {}
    for projections in (2, 32):
        peak[projections], value = peak_and_value(_SLICED.format(projections=projections))
        assert 0.0 < value < 0.02  # two uniform samples of the unit cube, 2.5 10^5 points each
    assert peak[32] < peak[2] + 32 * 2**20


@pytest.mark.parametrize("p", [1075, 2000, 5000, 1e4, 1e6])
def test_large_p_tends_to_the_largest_gap_and_is_never_0(p):
    # W_p between point masses is their distance at every p; 1-D W_p rises with p toward the largest quantile
    # gap. The gaps were divided by a power of two above the largest, whose p-th power underflowed from
    # p = 1075: a distance of 3 came out as 0 at p = 5000 (emd in 1-D and sliced alike).
    assert float(emd([0.0], [3.0], p=p)) == pytest.approx(3.0, rel=1e-12)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.normal(size=35) + 1
    largest = max(abs(np.quantile(x, t, method="inverted_cdf") - np.quantile(y, t, method="inverted_cdf"))
                  for t in np.linspace(1e-9, 1, 2001))
    value = float(emd(x, y, p=p))
    assert float(emd(x, y, p=100)) < value <= largest * (1 + 1e-12)
    assert float(sliced(x[:, None], y[:, None], p=p, seed=0)) == pytest.approx(value, rel=1e-12)
    # in 2-D, the mean over directions of |<theta, (3, 4)>|^p, to the power 1/p: below 5, rising toward it
    assert 4.98 < float(sliced([[0.0, 0.0]], [[3.0, 4.0]], p=p, seed=0)) < 5


def test_directions_that_cannot_fit_in_memory_are_a_named_error():
    # 10^10 directions were torch's allocator error ("DefaultCPUAllocator: can't allocate ...")
    with pytest.raises(ValueError, match=r"`n_projections`=10,000,000,000 needs about .* GiB .* more than"):
        sliced(np.zeros((5, 3)), np.ones((5, 3)), n_projections=10**10, seed=0)
