"""mmd and kid: explicit double loops, closed forms, KID's subsets, properties, errors."""

import sys

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import as_library, float_dtypes, libraries, sample_pairs

from divergences import kid, mmd

MMD_MODULE = sys.modules["divergences.mmd"]  # `divergences.mmd` is the function

KERNEL_FUNCTIONS = {
    "polynomial": lambda u, v, blur: (u @ v / len(u) + 1) ** 3,
    "gaussian": lambda u, v, blur: np.exp(-np.sum((u - v) ** 2) / (2 * blur**2)),
    "laplacian": lambda u, v, blur: np.exp(-np.sqrt(np.sum((u - v) ** 2)) / blur),
    "energy": lambda u, v, blur: -np.sqrt(np.sum((u - v) ** 2)),
}
BLURS = {"polynomial": None, "gaussian": 0.8, "laplacian": 0.8, "energy": None}


def double_loop(x, y, kernel, blur):
    """The unbiased MMD² by its definition, one pair at a time."""
    k = KERNEL_FUNCTIONS[kernel]
    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j], blur) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j], blur) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j], blur) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("kernel", list(KERNEL_FUNCTIONS))
def test_matches_the_double_loop_of_its_definition(kernel):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(9, 3)) + 0.5
    expected = double_loop(x, y, kernel, BLURS[kernel])
    assert float(mmd(x, y, kernel=kernel, blur=BLURS[kernel])) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "energy"])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_coincident_points_and_points_far_from_the_origin_match_the_double_loop(kernel, offset):
    # |u|² + |v|² - 2 u·v leaves round-off of eps |u|² where u = v, which a square root raises to 1e-8 of |u|
    # (hypothesis found MMD(x, y) and MMD(y, x) 3e-8 apart); far from the origin it cancels for every pair
    rng = np.random.default_rng(3)
    x = np.vstack([[[1.5, 0.345, 2.0]], np.zeros((3, 3)), rng.normal(size=(4, 3))]) + offset
    y = np.vstack([x[:5], rng.normal(size=(3, 3)) + offset])
    expected = double_loop(x, y, kernel, BLURS[kernel])
    assert float(mmd(x, y, kernel=kernel, blur=BLURS[kernel])) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert float(mmd(y, x, kernel=kernel, blur=BLURS[kernel])) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "energy"])
@pytest.mark.parametrize("dtype, exponents", [(torch.float64, (-1000, -600, 600, 1000)),
                                              (torch.float32, (-100, -70, 70, 120))])
def test_distances_are_homogeneous_from_near_the_normal_range_s_floor_to_its_limit(kernel, dtype, exponents):
    # their squares would underflow to 0 or overflow to inf: a silent 0 before (points divided by 2^k now)
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.normal(size=(5, 3)), dtype=dtype)
    y = torch.tensor(rng.normal(size=(4, 3)) + 0.5, dtype=dtype)
    unit = float(mmd(x, y, kernel=kernel, blur=BLURS[kernel]))
    for exponent in exponents:
        scale = 2.0**exponent
        blur = None if BLURS[kernel] is None else BLURS[kernel] * scale
        value = float(mmd(x * scale, y * scale, kernel=kernel, blur=blur))
        expected = unit * scale if kernel == "energy" else unit
        assert value == pytest.approx(expected, rel=1e-5 if dtype == torch.float32 else 1e-12), exponent


def test_pairs_summed_from_their_differences_are_summed_in_chunks(monkeypatch):
    x = np.zeros((6, 3))  # the pairs within x coincide: all of them are summed from their differences
    y = np.vstack([np.zeros((2, 3)), np.ones((3, 3))])
    whole = float(mmd(x, y, kernel="energy"))
    monkeypatch.setattr(MMD_MODULE, "_BLOCK_ENTRIES", 7)  # blocks of one row of x; chunks of 2 pairs of 3 coordinates
    assert float(mmd(x, y, kernel="energy")) == pytest.approx(whole, rel=1e-14)
    assert whole == pytest.approx(double_loop(x, y, "energy", None), rel=1e-14)


@pytest.mark.parametrize("kernel", list(KERNEL_FUNCTIONS))
def test_blocks_of_rows_give_the_same_sums(kernel, monkeypatch):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 30, 4)), rng.normal(size=(2, 25, 4))
    whole = mmd(x, y, kernel=kernel, blur=BLURS[kernel])
    monkeypatch.setattr(MMD_MODULE, "_BLOCK_ENTRIES", 7)  # blocks of one row, and a last partial block
    np.testing.assert_allclose(mmd(x, y, kernel=kernel, blur=BLURS[kernel]), whole, rtol=1e-12, atol=1e-15)


def test_energy_kernel_gives_the_energy_distance_of_point_masses():
    # Two points at 0 against two at 2: 2 E|X - Y| - E|X - X'| - E|Y - Y'| = 2 * 2 - 0 - 0.
    assert float(mmd([0.0, 0.0], [2.0, 2.0], kernel="energy")) == 4.0


def test_gaussian_kernel_of_far_apart_samples_is_the_two_self_terms():
    # k(x, y) = 0 across: MMD² = mean over i != j of k within x, plus within y; here 1 + 1 (each sample is one point twice).
    assert float(mmd([[0.0], [0.0]], [[1e3], [1e3]], kernel="gaussian", blur=1.0)) == 2.0


def test_is_near_zero_in_expectation_for_one_distribution():
    # Unbiased: over many pairs of samples of one distribution the mean is 0 within its standard error.
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 20, 3)), rng.normal(size=(300, 20, 3))
    values = np.asarray(mmd(x, y))
    assert abs(values.mean()) < 3 * values.std() / np.sqrt(len(values))
    assert np.asarray(mmd(x, y + 1)).mean() > 10 * values.std() / np.sqrt(len(values))  # and it sees a shift


@given(sample_pairs(st.integers(2, 7), st.integers(1, 4), st.floats(-3, 3)), st.sampled_from(list(KERNEL_FUNCTIONS)))
def test_symmetric_and_invariant_to_permutations(pair, kernel):
    x, y = pair
    value = float(mmd(x, y, kernel=kernel, blur=BLURS[kernel]))
    assert float(mmd(y, x, kernel=kernel, blur=BLURS[kernel])) == pytest.approx(value, rel=1e-9, abs=1e-9)
    assert float(mmd(x[::-1], y[::-1], kernel=kernel, blur=BLURS[kernel])) == pytest.approx(value, rel=1e-9, abs=1e-9)


@given(libraries, float_dtypes)
def test_library_dtype_and_shape_follow_the_inputs(library, dtype):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(2, 20, 3)), rng.normal(size=(2, 15, 3)) + 0.3
    value = mmd(as_library(x, library, dtype), as_library(y, library, dtype), kernel="gaussian", blur=1.0)
    assert isinstance(value, torch.Tensor) == (library == "torch")
    assert value.shape == (2,) and str(value.dtype).endswith(dtype)
    exact = mmd(x.astype(dtype).astype(np.float64), y.astype(dtype).astype(np.float64), kernel="gaussian", blur=1.0)
    np.testing.assert_allclose(np.asarray(value, np.float64), exact, rtol=1e-4)


def test_gradients_pass_gradcheck_in_float64():
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.normal(size=(6, 2)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(5, 2)), requires_grad=True)
    for kernel in KERNEL_FUNCTIONS:
        assert torch.autograd.gradcheck(lambda u, v: mmd(u, v, kernel=kernel, blur=BLURS[kernel]), (x, y))


def test_kid_is_the_mean_and_std_of_mmd_over_subsets_drawn_as_documented():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 0.2
    result = kid(x, y, subsets=7, subset_size=10, seed=11)
    generator = torch.Generator().manual_seed(11)
    values = []
    for _ in range(7):
        rows_x, rows_y = torch.randperm(40, generator=generator)[:10], torch.randperm(30, generator=generator)[:10]
        values.append(double_loop(x[rows_x.numpy()], y[rows_y.numpy()], "polynomial", None))
    assert float(result.value) == pytest.approx(np.mean(values), rel=1e-12)
    assert float(result.std) == pytest.approx(np.std(values), rel=1e-10)  # ddof 0, as torch-fidelity


def test_kid_of_subsets_holding_the_whole_samples_is_mmd_with_no_spread():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(8, 2)), rng.normal(size=(6, 2))
    result = kid(x, y, subsets=3, subset_size=100, seed=0)  # s = min(100, 8, 6) = 6 points of x: subsets differ
    single = kid(x[:6], y, subsets=3, subset_size=100, seed=0)  # s = 6 = n = m: every subset is everything
    assert float(single.value) == pytest.approx(float(mmd(x[:6], y, kernel="polynomial")), rel=1e-12)
    assert float(single.std) < 1e-12 and float(result.std) > 0


def test_kid_with_a_seed_is_reproducible_and_without_follows_torch_manual_seed():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    assert float(kid(x, y, subsets=5, subset_size=10, seed=3).value) == float(kid(x, y, subsets=5, subset_size=10, seed=3).value)
    torch.manual_seed(0)
    first = float(kid(x, y, subsets=5, subset_size=10).value)
    torch.manual_seed(0)
    assert float(kid(x, y, subsets=5, subset_size=10).value) == first


@pytest.mark.parametrize("call, error, message", [
    (lambda: mmd(np.zeros((3, 2)), np.zeros((3, 2)), kernel="cosine"), ValueError, "`kernel` should be"),
    (lambda: mmd(np.zeros((3, 2)), np.zeros((3, 2)), kernel=3), TypeError, "`kernel` should be"),
    (lambda: mmd(np.zeros((3, 2)), np.zeros((3, 2)), kernel="gaussian"), ValueError, "needs `blur`"),
    (lambda: mmd(np.zeros((3, 2)), np.zeros((3, 2)), kernel="gaussian", blur=-1.0), ValueError, "`blur` should be > 0"),
    (lambda: mmd(np.zeros((3, 2)), np.zeros((3, 2)), blur=1.0), ValueError, "has none"),
    (lambda: mmd(np.zeros((1, 2)), np.zeros((3, 2))), ValueError, "`x` should hold at least 2 points"),
    (lambda: mmd(np.zeros((3, 2)), np.full((3, 2), np.inf)), ValueError, "`y` should be finite"),
    (lambda: kid(np.zeros((3, 2)), np.zeros((3, 2)), subset_size=1), ValueError, "`subset_size` should be >= 2"),
    (lambda: kid(np.zeros((3, 2)), np.zeros((3, 2)), subsets=0), ValueError, "`subsets` should be a positive"),
    (lambda: kid(np.zeros((3, 2)), np.zeros((3, 2)), seed=-1), ValueError, "`seed`"),
])
def test_bad_arguments_are_refused_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_subsets_that_cannot_fit_in_memory_are_a_named_error():
    # 10^12 subsets were torch's allocator error ("DefaultCPUAllocator: can't allocate ...")
    with pytest.raises(ValueError, match=r"`subsets`=1,000,000,000,000 needs about .* GiB .* more than"):
        kid(np.zeros((5, 3)), np.ones((5, 3)), subsets=10**12, seed=0)
