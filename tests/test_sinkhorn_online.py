"""sinkhorn's online backend: the tensorized backend's values and gradients, without any n x m array."""

import math
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from backends import assert_gradcheck, assert_gradients_match_tensorized
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from memory import peak_and_value
from strategies import transport_problems

import divergences.sinkhorn  # noqa: F401 (the module, for the spy below)
from divergences import _log_kernel, _online, sinkhorn

SINKHORN_MODULE = sys.modules["divergences.sinkhorn"]


def largest_cost(x, y):
    return float(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1).max())


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of rows of at most 64 entries (one row if longer), so that small problems are solved in many blocks."""
    monkeypatch.setattr(_log_kernel, "_BLOCK", 64)
    monkeypatch.setattr(_log_kernel, "_LARGEST_BLOCK", 64)


def both_backends(*arrays, **options):
    """The tensorized and the online values, and whether either warned."""
    values = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for backend in ("tensorized", "online"):
            values[backend] = sinkhorn(*arrays, backend=backend, **options)
    return values["tensorized"], values["online"], any(issubclass(w.category, RuntimeWarning) for w in caught)


@settings(max_examples=40, deadline=None)
@given(transport_problems(max_points=20), st.sampled_from(["float32", "float64"]), st.booleans(),
       st.sampled_from([1e-1, 1e-2]), st.sampled_from([1, 2, 3]))
def test_online_gives_the_tensorized_value(problem, dtype, debias, relative_eps, p):
    # The same steps on nearly the same numbers (p = 2 costs come from a matrix product online), only the
    # blocks differ: round-off apart, the same value.
    x, y, a, b = (np.asarray(v, dtype) for v in problem)
    eps = relative_eps * largest_cost(*problem[:2]) ** (p / 2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_log_kernel, "_BLOCK", 64)
        patch.setattr(_log_kernel, "_LARGEST_BLOCK", 64)
        tensorized, online, warned = both_backends(x, y, a, b, p=p, eps=eps, debias=debias)
    assume(not warned)
    assert online.dtype == tensorized.dtype == np.dtype(dtype) and online.shape == ()
    scale = max(abs(float(tensorized)), eps)
    assert abs(float(online) - float(tensorized)) <= (2e-4 if dtype == "float32" else 1e-9) * scale


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_online_squared_costs_are_exact_to_round_off_of_the_largest(offset, dtype):
    # |x|^2 + |y|^2 - 2 <x, y> on centred points: within 64 u max C of the exact differences, even for clouds
    # far from the origin (uncentred, the expansion would lose all digits at 1e6 in float32: |x|^2 = 1e12).
    generator = torch.Generator().manual_seed(3)
    x = offset + torch.rand(1, 300, 3, generator=generator, dtype=torch.float64)
    y = offset + 0.5 + torch.rand(1, 200, 3, generator=generator, dtype=torch.float64)
    x, y = x.to(dtype), y.to(dtype)
    exact = ((x.double()[:, :, None] - y.double()[:, None]) ** 2).sum(-1)
    cost = _online.OnlineCost(x, y, 2.0, scale=0.5)
    rows = slice(None)
    errors = {
        "costs": cost._augmented.costs(rows) - exact / 0.5,
        "exponents": cost.exponents(None, torch.zeros(1, 200, dtype=torch.float64), 0.01)(rows) + exact / 0.5 / 0.01,
    }
    largest = float(exact.max()) / 0.5
    assert float(errors["costs"].abs().max()) <= 64 * 1.2e-16 * largest
    assert float(errors["exponents"].abs().max()) <= 64 * 1.2e-16 * largest / 0.01


@pytest.mark.parametrize("offset", [1e6, -3e9])
def test_online_matches_tensorized_far_from_the_origin(offset):
    rng = np.random.default_rng(4)
    x, y = offset + rng.random((30, 2)), offset + rng.random((25, 2)) + 0.3
    tensorized, online, _ = both_backends(x, y, eps=0.01, debias=True)
    assert float(online) == pytest.approx(float(tensorized), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("dtype, magnitude", [("float64", 1e-150), ("float64", 1e150), ("float64", 1e155),
                                              ("float32", 1e-18), ("float32", 1e18), ("float32", 1e20)])
def test_online_and_tensorized_agree_at_extreme_scales(dtype, magnitude):
    # Either both backends refuse the problem with the same message, or both solve it to the same value.
    rng = np.random.default_rng(5)
    x, y = (magnitude * rng.random((12, 2))).astype(dtype), (magnitude * rng.random((9, 2))).astype(dtype)
    outcomes = {}
    for backend in ("tensorized", "online"):
        try:
            outcomes[backend] = float(sinkhorn(x, y, eps=min(0.05 * magnitude * magnitude, 1e300), backend=backend))
        except ValueError as error:
            outcomes[backend] = str(error)
    if isinstance(outcomes["tensorized"], str):
        assert outcomes["online"] == outcomes["tensorized"]
    else:
        assert outcomes["online"] == pytest.approx(outcomes["tensorized"], rel=1e-9 if dtype == "float64" else 1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_online_gradients_are_the_tensorized_ones(small_blocks, dtype):
    assert_gradients_match_tensorized("online", dtype, float64_tolerance=1e-9)


def test_gradcheck_online(small_blocks):
    assert_gradcheck("online", 6, 5)


def test_auto_goes_online_above_the_memory_budget(monkeypatch):
    # 40 x 30 problems, debiased: the largest of xy, xx, yy is 40 x 40; three float64 arrays: 38,400 bytes.
    calls = []
    solve = SINKHORN_MODULE.OnlineEntropicCost.apply
    monkeypatch.setattr(SINKHORN_MODULE.OnlineEntropicCost, "apply", lambda *args: calls.append(1) or solve(*args))
    rng = np.random.default_rng(2)
    x, y = rng.random((40, 4)), rng.random((30, 4))  # above 3 dimensions: online, not multiscale
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
x, y = torch.rand(4000, 8, generator=generator), torch.rand(4000, 8, generator=generator)
value = sinkhorn(x, y, eps=0.4, debias=False, backend="{backend}")
"""


def test_online_memory_does_not_grow_with_n_times_m():
    # 4000 x 4000 float32 costs are 64 MB, and the tensorized backend keeps the cost and two kernels.
    (online_peak, online), (tensorized_peak, tensorized) = (
        peak_and_value(_SINKHORN.format(backend=backend)) for backend in ("online", "tensorized"))
    assert online == pytest.approx(tensorized, rel=1e-5)
    assert online_peak < tensorized_peak - 64 * 2**20  # 112 MB less measured


def test_online_memory_stays_flat_under_the_default_allocator():
    # glibc's default mmap threshold grows with each large block freed, and blocks freed between small tensors
    # that live on can fragment the heap: every block is computed in reused memory, so 36 times the pairs take
    # the same memory (8 MB more measured; a stored 6000 x 6000 float32 kernel alone would be 144 MB).
    peaks = [peak_and_value(_FLAT.format(n=n), fixed_threshold=False)[0] for n in (1000, 6000)]
    assert peaks[1] < peaks[0] + 32 * 2**20


_FLAT = """
import torch
from divergences import sinkhorn
generator = torch.Generator().manual_seed(0)
x, y = torch.rand({n}, 16, generator=generator), torch.rand({n}, 16, generator=generator)
value = sinkhorn(x, y, eps=0.5, debias=False, backend="online")
"""


@pytest.mark.parametrize("entries", [_log_kernel._BLOCK, _online._BLOCK])
@pytest.mark.parametrize("shape", [(1, 100, 10), (1, 100, 50_000), (3, 7, 2_000_000), (2, 1000, 1 << 17), (1, 5, 1),
                                   (1, 1000, 1000)])
def test_row_slices_cover_every_row_once_in_bounded_blocks(shape, entries):
    batch, n, m = shape
    slices = _log_kernel.row_slices(torch.empty(shape, device="meta"), entries)
    covered = [row for rows in slices for row in range(n)[rows]]
    assert covered == list(range(n))
    for rows in slices:
        count = len(range(n)[rows])
        # a block holds at most `entries`, or up to 16 long rows within _LARGEST_BLOCK, or a single row
        assert count == 1 or batch * m * count <= max(entries, _log_kernel._LARGEST_BLOCK)
        assert count == 1 or batch * m * count <= entries or count <= _log_kernel._MIN_ROWS
    if batch * m * 2 <= entries:  # short rows fill a block (at least half of it)
        assert batch * m * len(range(n)[slices[0]]) >= min(n * batch * m, entries // 2)
    if batch * m * 16 <= _log_kernel._LARGEST_BLOCK:  # long rows come 16 at a time where that fits
        assert len(range(n)[slices[0]]) >= min(n, _log_kernel._MIN_ROWS)


def test_online_costs_run_on_blocks_of_their_own_size():
    x, y = torch.rand(2, 1, 1000, 2, dtype=torch.float64)
    cost = _online.OnlineCost(x, y, 2.0)
    assert [rows for rows, _ in cost.blocks] == _log_kernel.row_slices(torch.empty(1, 1000, 1000, device="meta"),
                                                                       _online._BLOCK)
    assert len(cost.blocks) < len(_log_kernel.row_slices(torch.empty(1, 1000, 1000, device="meta")))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_online_kernel_skips_the_floor_only_where_no_entry_reaches_it(dtype):
    generator = torch.Generator().manual_seed(6)
    x, y = torch.rand(1, 40, 2, generator=generator, dtype=dtype), torch.rand(1, 30, 2, generator=generator, dtype=dtype)
    f, g = torch.rand(1, 40, generator=generator, dtype=torch.float64), torch.rand(1, 30, generator=generator, dtype=torch.float64)
    exact = ((x.double()[:, :, None] - y.double()[:, None]) ** 2).sum(-1)
    floor = math.log(_log_kernel.smallest_entry(dtype))
    skipped = []
    for eps in (10.0, 1e-2, 1e-3, 1e-5):
        kernel = _online.OnlineCost(x, y, 2.0).kernel(f, g, eps, torch.ones(1, 40), torch.ones(1, 30))
        exponents = (f[:, :, None] + g[:, None] - exact) / eps
        if not kernel.floored:
            assert float(exponents.min()) > floor
        skipped.append(not kernel.floored)
        reference = exponents.clamp(min=floor).exp().to(dtype)  # correct to the last bit of dtype
        assert torch.allclose(kernel.block(slice(None)), reference, rtol=2 ** -23 if dtype == torch.float32 else 1e-9, atol=0)
    assert skipped[0] and not skipped[-1]


def test_row_slices_on_a_gpu_take_large_blocks():
    # one kernel launch per pass over a block: on CUDA blocks hold up to _CUDA_BLOCK entries (never built here)
    matrix = types.SimpleNamespace(shape=(2, 100_000, 100_000), device=torch.device("cuda"))
    slices = _log_kernel.row_slices(matrix)
    assert [row for rows in slices for row in range(100_000)[rows]] == list(range(100_000))
    assert len(range(100_000)[slices[0]]) == _log_kernel._CUDA_BLOCK // 200_000


@pytest.mark.parametrize("debias", [False, True])
def test_online_finds_each_terms_largest_cost_in_one_pass(monkeypatch, debias):
    # the scale is chosen from the largest cost, which the solver's annealing starts from too: one pass over
    # the n x m pairs per term, not two (each costs as much as a Sinkhorn iteration)
    passes = []
    largest = _online.OnlineCost.largest

    def counted(cost):
        passes.append(cost._largest is None)
        return largest(cost)

    monkeypatch.setattr(_online.OnlineCost, "largest", counted)
    x, y = torch.randn(2, 40, 3, dtype=torch.float64)
    value = sinkhorn(x, y, eps=0.1, debias=debias, backend="online")
    assert sum(passes) == (3 if debias else 1)
    assert float(value) == pytest.approx(float(sinkhorn(x, y, eps=0.1, debias=debias, backend="tensorized")), rel=1e-9)
