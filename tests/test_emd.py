"""emd and emd_cost: closed forms, scipy and POT as oracles, properties, gradients."""

import math
import warnings

import numpy as np
import ot
import pytest
import scipy.spatial.distance
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from memory import peak_and_value
from strategies import as_float, as_library, clouds, float_dtypes, libraries, weights

from divergences import _exact, emd, emd_cost
from divergences._cost import root

# Closed forms.


def test_point_masses_are_their_distance_apart():
    assert float(emd([1.5], [-2.0])) == 3.5


def test_point_masses_in_the_plane_are_their_euclidean_distance_apart():
    assert float(emd([[0.0, 0.0]], [[3.0, 4.0]])) == 5.0


def test_shift_by_c_costs_abs_c_for_every_p():
    # Shifting a measure by c gives W_p = |c| (the shift is an optimal map).
    x = np.array([0.0, 0.3, 2.0, 7.5])
    for p in (1, 1.5, 2, 3):
        assert float(emd(x, x - 1.25, p=p)) == pytest.approx(1.25, rel=1e-14)


def test_two_diracs_against_a_uniform_pair():
    # delta_0 against (delta_{-1} + delta_1) / 2: every unit of mass moves by 1.
    assert float(emd([0.0], [-1.0, 1.0])) == 1.0


def test_weights_are_normalised_like_scipy():
    assert float(emd([0.0, 1.0], [0.0, 1.0], [1, 3], [3, 1])) == pytest.approx(0.5, rel=1e-15)


def test_weighted_mass_split_in_the_plane():
    # 3/4 at the origin and 1/4 at (0, 2) against everything at (0, 1): W1 = 3/4 + 1/4.
    x = [[0.0, 0.0], [0.0, 2.0]]
    assert float(emd(x, [[0.0, 1.0]], [3, 1])) == pytest.approx(1.0, rel=1e-15)


def test_zero_weight_points_are_ignored():
    assert float(emd([0.0, 100.0], [1.0], [1.0, 0.0])) == 1.0


def test_emd_cost_moves_half_the_mass():
    assert float(emd_cost([1.0, 0.0], [0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]])) == 0.5


def test_emd_cost_keeps_unnormalised_mass_like_pot():
    # POT's emd2 convention: twice the mass, twice the cost.
    assert float(emd_cost([2.0, 0.0], [1.0, 1.0], [[0.0, 1.0], [1.0, 0.0]])) == 1.0


# Oracles.


@given(clouds(d=1), clouds(d=1), st.data())
def test_one_dimensional_equals_scipy(x, y, data):
    a, b = data.draw(weights(len(x))), data.draw(weights(len(y)))
    expected = scipy.stats.wasserstein_distance(x[:, 0], y[:, 0], a, b)
    assert float(emd(x[:, 0], y[:, 0], a, b)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@given(clouds(d=1), clouds(d=1), st.sampled_from([1.0, 2.0, 3.0]), st.data())
def test_one_dimensional_any_p_equals_pot(x, y, p, data):
    a, b = data.draw(weights(len(x))), data.draw(weights(len(y)))
    expected = ot.wasserstein_1d(x[:, 0], y[:, 0], a / a.sum(), b / b.sum(), p=p)  # W_p^p
    # Compared as W_p^p: the p-th root turns a round-off of 1e-16 in W_p^p into 1e-8 in W_p.
    assert float(emd(x[:, 0], y[:, 0], a, b, p=p)) ** p == pytest.approx(expected, rel=1e-9, abs=1e-12)


@given(clouds(d=3), clouds(d=3), st.sampled_from([1.0, 2.0]), st.data())
def test_multidimensional_equals_pot(x, y, p, data):
    a, b = data.draw(weights(len(x))), data.draw(weights(len(y)))
    cost = scipy.spatial.distance.cdist(x, y) ** p  # exact differences, like emd
    expected = ot.emd2(a / a.sum(), b / b.sum(), cost) ** (1 / p)
    assert float(emd(x, y, a, b, p=p)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_one_dimensional_path_agrees_with_the_linear_program():
    rng = np.random.default_rng(0)
    x, y, a, b = rng.normal(size=30), rng.normal(size=20) + 1, rng.random(30), rng.random(20)
    cost = np.abs(x[:, None] - y[None, :]) ** 2
    expected = math.sqrt(ot.emd2(a / a.sum(), b / b.sum(), cost))
    assert float(emd(x, y, a, b, p=2)) == pytest.approx(expected, rel=1e-12)


def test_emd_cost_equals_pot_emd2_and_returns_its_plan():
    rng = np.random.default_rng(1)
    a, b, cost = rng.random(6), rng.random(5), rng.normal(size=(6, 5))
    b *= a.sum() / b.sum()
    value, plan = emd_cost(a, b, cost, return_plan=True)
    assert float(value) == pytest.approx(ot.emd2(a, b, cost), rel=1e-12)
    np.testing.assert_allclose(plan.sum(1), a, atol=1e-12)
    np.testing.assert_allclose(plan.sum(0), b, atol=1e-12)
    assert float((plan * cost).sum()) == pytest.approx(float(value), rel=1e-12)


# Properties.


@given(clouds(), st.data())
def test_identity_symmetry_and_non_negativity(x, data):
    y = data.draw(clouds(d=x.shape[1]))
    assert float(emd(x, x)) == 0.0
    assert float(emd(x, y)) >= 0
    assert float(emd(x, y)) == pytest.approx(float(emd(y, x)), rel=1e-12, abs=1e-12)


@given(clouds(d=2), clouds(d=2), clouds(d=2))
def test_triangle_inequality_for_w1(x, y, z):
    assert float(emd(x, z)) <= float(emd(x, y)) + float(emd(y, z)) + 1e-9


@given(clouds(), st.data(), st.floats(-5, 5), st.sampled_from([1.0, 2.0]))
def test_translation_invariance(x, data, shift, p):
    y = data.draw(clouds(d=x.shape[1]))
    assert float(emd(x + shift, y + shift, p=p)) == pytest.approx(float(emd(x, y, p=p)), rel=1e-8, abs=1e-9)


@given(clouds(), st.data(), st.floats(0.1, 10), st.sampled_from([1.0, 2.0]))
def test_homogeneity(x, data, scale, p):
    # W(s x, s y) = s W(x, y).
    y = data.draw(clouds(d=x.shape[1]))
    assert float(emd(scale * x, scale * y, p=p)) == pytest.approx(scale * float(emd(x, y, p=p)), rel=1e-8, abs=1e-9)


@given(clouds(d=2, n=4), clouds(d=2, n=5), libraries, float_dtypes)
def test_numpy_and_torch_agree_with_dtype_kept(x, y, library, dtype):
    value = emd(as_library(x, library, dtype), as_library(y, library, dtype))
    if library == "torch":
        assert isinstance(value, torch.Tensor) and value.dtype == getattr(torch, dtype)
    else:
        assert value.dtype == np.dtype(dtype)
    assert as_float(value) == pytest.approx(float(emd(x, y)), rel=1e-5 if dtype == "float32" else 1e-12, abs=1e-5)


@pytest.mark.parametrize("d", [1, 2])
def test_batch_equals_loop_with_broadcasting(d):
    rng = np.random.default_rng(2)
    x, y, a = rng.normal(size=(3, 6, d)), rng.normal(size=(7, d)), rng.random((3, 6))
    batched = emd(x, y, a, p=2)
    assert batched.shape == (3,)
    for i in range(3):
        assert batched[i] == pytest.approx(float(emd(x[i], y, a[i], p=2)), rel=1e-12)


# Gradients.


def test_gradcheck_one_dimensional_weights_and_points():
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.normal(size=5), requires_grad=True)
    y = torch.tensor(rng.normal(size=4), requires_grad=True)
    a = torch.tensor(rng.random(5) + 0.1, requires_grad=True)
    b = torch.tensor(rng.random(4) + 0.1, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *args: emd(*args, p=2), (x, y, a, b))


@pytest.mark.parametrize("memory_budget", [math.inf, 0])  # with the cost matrix, and without it
def test_gradcheck_multidimensional_weights_and_points(memory_budget):
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.normal(size=(5, 2)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(4, 2)), requires_grad=True)
    a = torch.tensor(rng.random(5) + 0.1, requires_grad=True)
    b = torch.tensor(rng.random(4) + 0.1, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *args: emd(*args, p=2, memory_budget=memory_budget), (x, y, a, b))


def test_w1_gradient_of_a_shift_is_the_unit_direction():
    # W1(x + t e, x) = t, so d/dt = 1: the gradient with respect to x sums to the direction.
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    shifted = (x + torch.tensor([0.6, 0.8], dtype=torch.float64)).requires_grad_(True)
    emd(shifted, x).backward()
    torch.testing.assert_close(shifted.grad.sum(0), torch.tensor([0.6, 0.8], dtype=torch.float64))


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("d", [1, 2])
def test_gradient_is_finite_where_points_coincide(p, d):
    x = torch.tensor([[0.0] * d, [1.0] * d], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0.0] * d, [3.0] * d], dtype=torch.float64)
    emd(x if d > 1 else x[:, 0], y if d > 1 else y[:, 0], p=p).backward()
    assert torch.isfinite(x.grad).all()
    assert float(x.grad[0].abs().sum()) == 0.0  # the coincident pair contributes nothing


def test_gradient_at_identical_measures_is_zero_not_nan():
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0]], dtype=torch.float64, requires_grad=True)
    emd(x, x.detach(), p=2).backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_emd_cost_gradient_is_the_plan():
    rng = np.random.default_rng(5)
    cost = torch.tensor(rng.random((4, 3)), requires_grad=True)
    a, b = torch.full((4,), 0.25, dtype=torch.float64), torch.full((3,), 1 / 3, dtype=torch.float64)
    value, plan = emd_cost(a, b, cost, return_plan=True)
    value.backward()
    torch.testing.assert_close(cost.grad, plan)


# The iteration cap.


def _cap_the_solver(monkeypatch, first_cap, runs):
    """Make the exact solver start at ``first_cap`` pivots and try ``runs`` times."""
    monkeypatch.setattr(_exact, "_MIN_CAP", first_cap)
    monkeypatch.setattr(_exact, "_CAP_PER_ENTRY", 0)
    monkeypatch.setattr(_exact, "_RETRIES", runs)


def test_capped_solver_resumes_and_reaches_the_optimum(monkeypatch):
    rng = np.random.default_rng(6)
    x, y = rng.random((150, 5)), rng.random((150, 5))
    optimum = float(emd(x, y))
    _cap_the_solver(monkeypatch, first_cap=500, runs=5)
    assert float(emd(x, y)) == pytest.approx(optimum, rel=1e-12)


def test_a_callers_warning_still_shows_once_per_line(monkeypatch):
    # emd silences POT's "numItermax reached" (it resumes the solve) and torch's warning about read-only arrays.
    # Changing Python's filters for that (warnings.catch_warnings) reset its record of warnings already shown,
    # so a caller's own warning, from one line, showed after every call under the default filter.
    rng = np.random.default_rng(6)
    x = rng.random((150, 5))
    x.flags.writeable = False
    _cap_the_solver(monkeypatch, first_cap=500, runs=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            emd(x, rng.random((150, 5)))
            warnings.warn("the caller's own", UserWarning)
    assert [str(warning.message) for warning in caught] == ["the caller's own"]


def test_solver_stopped_early_warns_with_a_valid_bound(monkeypatch):
    rng = np.random.default_rng(7)
    x, y = rng.random((150, 5)), rng.random((150, 5))
    optimum = float(emd(x, y))
    _cap_the_solver(monkeypatch, first_cap=100, runs=1)
    with pytest.warns(RuntimeWarning, match=r"before optimality.*misses the marginals.*at least") as record:
        returned = float(emd(x, y))
    ratio = float(str(record[0].message).split("at least ")[1].split(" ")[0])  # optimum / returned >= ratio
    assert 0 < ratio * returned <= optimum * (1 + 1e-12)
    assert len(record) == 1 and record[0].filename == __file__  # once, at the caller's line


@pytest.mark.slow
def test_optimal_where_pot_default_cap_stops_short():
    # 4000 points in 64-D: POT's default cap (100000 pivots) stops before optimality
    # with a warning; ours grows with the problem and reaches the optimum silently.
    rng = np.random.default_rng(8)
    x, y = rng.random((4000, 64)), rng.random((4000, 64))
    uniform = np.full(4000, 1 / 4000)
    cost = scipy.spatial.distance.cdist(x, y)
    with pytest.warns(UserWarning, match="numItermax"):
        capped = ot.emd2(uniform, uniform, cost)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = float(emd(x, y))
    optimum = ot.emd2(uniform, uniform, cost, numItermax=10**9)
    assert value == pytest.approx(optimum, rel=1e-12)
    assert capped > value * (1 + 1e-3)


# Beyond the memory budget: POT's lazy network simplex, without the cost matrix.


@settings(deadline=None, max_examples=60)
@given(clouds(d=2), clouds(d=2), st.sampled_from([1.0, 2.0]), st.booleans(), float_dtypes, st.data())
def test_without_the_cost_matrix_the_same_value(x, y, p, some_zero, dtype, data):
    # Both solve the same linear program exactly, to the same optimum.
    a = data.draw(weights(len(x)))
    b = data.draw(weights(len(y)))
    if some_zero and len(x) > 1:
        a[0] = 0.0
    tensors = [torch.tensor(v, dtype=getattr(torch, dtype), requires_grad=True) for v in (x, y, a, b)]
    dense = emd(*tensors, p=p)
    lazy = emd(*tensors, p=p, memory_budget=0)
    assert lazy.dtype == dense.dtype and lazy.shape == dense.shape == ()
    rtol = 1e-5 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(float(lazy.detach()), float(dense.detach()), rtol=rtol, atol=1e-12)


def test_without_the_cost_matrix_gradients_match_the_dense_solver():
    rng = np.random.default_rng(9)
    x, y = rng.random((3, 30, 2)), rng.random((3, 25, 2))
    a, b = rng.random((3, 30)), rng.random((3, 25))
    a[:, :5], b[:, -3:] = 0.0, 0.0  # zero weights: their potentials are c-transforms in both
    for p in (1, 2):
        tensors = [torch.tensor(v, requires_grad=True) for v in (x, y, a, b)]
        dense = emd(*tensors, p=p)
        dense_grads = torch.autograd.grad(dense.sum(), tensors)
        lazy = emd(*tensors, p=p, memory_budget=0)
        lazy_grads = torch.autograd.grad(lazy.sum(), tensors)
        torch.testing.assert_close(lazy, dense, rtol=1e-12, atol=0)
        for ours, reference in zip(lazy_grads, dense_grads):
            torch.testing.assert_close(ours, reference, rtol=1e-9, atol=1e-12)


def test_point_masses_without_the_cost_matrix_are_their_distance_apart():
    assert float(emd([[0.0, 0.0]], [[3.0, 4.0]], memory_budget=0)) == 5.0
    assert float(emd([[0.0, 0.0], [1.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]], memory_budget=0)) == 0.0


def test_a_batch_is_solved_in_chunks_that_fit_the_budget():
    # The exact solver on one 30 x 25 cost matrix is budgeted at 8 float64 arrays, 48,000 bytes: a budget of
    # 48,000 solves a batch of 5 one problem at a time, the same as all at once; below it, p = 3 (which
    # only the cost matrix serves) is an error that names the budget.
    x, y = np.random.default_rng(11).random((5, 30, 2)), np.random.default_rng(12).random((25, 2))
    together = emd(x, y, p=3, memory_budget=math.inf)
    one_at_a_time = emd(x, y, p=3, memory_budget=48_000)
    assert one_at_a_time.shape == together.shape == (5,)
    np.testing.assert_array_equal(one_at_a_time, together)
    with pytest.raises(ValueError, match=r"`p`=3.0 needs the cost matrix, .* above `memory_budget`=4.8e\+04"):
        emd(x, y, p=3, memory_budget=47_999)


def test_a_budget_beyond_the_float_range_is_no_limit():
    x, y = np.random.default_rng(13).random((4, 2)), np.random.default_rng(14).random((3, 2))
    assert float(emd(x, y, memory_budget=10**400)) == float(emd(x, y, memory_budget=math.inf))


def test_far_points_of_zero_weight_are_refused_without_the_cost_matrix_as_with_it():
    # A zero-weight point 1e155 away: its potential, a c-transform, overflows (cost 1e310). Both paths
    # refuse to return a value whose gradient they cannot give (before: 0.0 and NaN gradients).
    rng = np.random.default_rng(15)
    x, y = rng.normal(size=(4, 2)), rng.normal(size=(3, 2))
    x[0] = 1e155
    a = torch.tensor([0.0, 1.0, 1.0, 1.0], dtype=torch.float64, requires_grad=True)
    for budget in (0, math.inf):
        with pytest.raises(ValueError, match="`p`=2 is too large for these points"):
            emd(torch.tensor(x), torch.tensor(y), a, p=2, memory_budget=budget)


@pytest.mark.parametrize("size", [1e-25, 1e19])
def test_tiny_and_huge_float32_distances_without_the_cost_matrix(size):
    # The distances are taken of differences divided by the unit (a power of two), so that their squares
    # neither underflow (1e-50) nor overflow (1e38) in float32.
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 3, generator=generator) * size, torch.randn(4, 3, generator=generator) * size
    lazy, dense = emd(x, y, memory_budget=0), emd(x, y, memory_budget=math.inf)
    assert float(lazy) == pytest.approx(float(dense), rel=1e-5) and float(dense) > 0


@pytest.mark.parametrize("budget, error", [(-1, ValueError), (math.nan, ValueError), ("1GB", TypeError),
                                           (True, TypeError), (None, TypeError)])
def test_a_bad_memory_budget_is_named(budget, error):
    with pytest.raises(error, match="memory_budget"):
        emd([[0.0, 0.0]], [[1.0, 1.0]], memory_budget=budget)


def test_capped_lazy_solver_resumes_and_reaches_the_optimum(monkeypatch):
    rng = np.random.default_rng(6)
    x, y = rng.random((150, 5)), rng.random((150, 5))
    optimum = float(emd(x, y))
    _cap_the_solver(monkeypatch, first_cap=500, runs=5)
    assert float(emd(x, y, memory_budget=0)) == pytest.approx(optimum, rel=1e-12)


def test_lazy_solver_stopped_early_warns_once_at_the_caller(monkeypatch):
    rng = np.random.default_rng(7)
    x, y = rng.random((150, 5)), rng.random((150, 5))
    _cap_the_solver(monkeypatch, first_cap=100, runs=1)
    with pytest.warns(RuntimeWarning, match=r"before optimality.*misses the marginals.*at least") as record:
        emd(x, y, memory_budget=0)
    assert len(record) == 1 and record[0].filename == __file__


_EMD = """
import math
import numpy as np
from divergences import emd
rng = np.random.default_rng(0)
x, y = rng.random((3000, 2)), rng.random((3000, 2))
value = emd(x, y, memory_budget={budget})
"""


def test_without_the_cost_matrix_memory_does_not_grow_with_n_times_m():
    # 3000 x 3000 float64 costs are 72 MB, and the dense solver holds several n x m arrays.
    (lazy_peak, lazy), (dense_peak, dense) = (peak_and_value(_EMD.format(budget=budget)) for budget in ("0", "math.inf"))
    assert lazy == pytest.approx(dense, rel=1e-12)
    assert lazy_peak < dense_peak - 200 * 2**20


@pytest.mark.parametrize("p", [1.5, 2, 3])
def test_the_pth_root_keeps_nan_and_has_a_zero_gradient_at_zero(p):
    value = torch.tensor([float("nan"), 0.0, 8.0, math.inf], dtype=torch.float64, requires_grad=True)
    result = root(value, p)
    assert math.isnan(float(result[0].detach()))  # a failed computation is never reported as a distance of 0
    finite = result.detach()
    assert float(finite[1]) == 0.0 and float(finite[2]) == pytest.approx(8.0 ** (1 / p)) and math.isinf(float(finite[3]))
    (gradient,) = torch.autograd.grad(result[1:3].sum(), value)
    assert float(gradient[1]) == 0.0 and float(gradient[2]) == pytest.approx(8.0 ** (1 / p - 1) / p)
