"""sinkhorn in float32 and at extreme inputs: float32 agrees with float64 or warns, overflow is an error, budgets bound."""

import math
import warnings

import numpy as np
import pytest
import scipy.spatial.distance
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import transport_problems

from divergences import _log_kernel, _online, _plan_system, _sinkhorn_solver, emd, sinkhorn
from divergences._dense import DenseCost


def largest_cost(x, y, p=2):
    return float(scipy.spatial.distance.cdist(x, y).max()) ** p


def float32_agrees_or_warns(x, y, a, b, eps, debias=False):
    """float64 converges silently (RuntimeWarnings are errors here); float32 is within 1e-3 or warns."""
    reference = sinkhorn(x, y, a, b, eps=eps, debias=debias)
    as32 = [np.asarray(v, np.float32) for v in (x, y, a, b)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = sinkhorn(*as32, eps=eps, debias=debias)
    assert value.dtype == np.float32
    warned = any(issubclass(w.category, RuntimeWarning) for w in caught)
    # Relative to the value, or to eps below it; the debiased value is a difference of three such terms.
    terms = [(x, y, a, b), (x, x, a, a), (y, y, b, b)] if debias else [(x, y, a, b)]
    scale = sum(max(abs(float(sinkhorn(*term, eps=eps, debias=False))), eps) for term in terms)
    assert warned or abs(float(value) - float(reference)) <= 1e-3 * scale


# The promise, as a property over hard families (uniform, degenerate grids, far clusters; zero weights).


@settings(max_examples=25, deadline=None)
@given(transport_problems(), st.sampled_from([1e-3, 1e-4]))
def test_float32_is_within_1e_3_of_float64_or_warns(problem, relative_eps):
    x, y, a, b = problem
    float32_agrees_or_warns(x, y, a, b, relative_eps * largest_cost(x, y))


@settings(max_examples=15, deadline=None)
@given(transport_problems(), st.sampled_from([1e-3, 1e-4]))
def test_float64_transport_cost_lies_between_ot_and_ot_plus_eps_log_nm(problem, relative_eps):
    # <T_eps, C> is the cost of a coupling, so at least the optimal cost OT, and T_eps minimises
    # <T, C> + eps KL(T | a b), whose KL term lies in [0, log(n m)]: so <T_eps, C> <= OT + eps log(n m).
    x, y, a, b = problem
    eps = relative_eps * largest_cost(x, y)
    exact = float(emd(x, y, a, b, p=2)) ** 2
    value = float(sinkhorn(x, y, a, b, eps=eps, debias=False))
    slack = 1e-6 * max(value, eps)  # the solver's tol, relative to max(value, eps)
    assert exact - slack <= value <= exact + eps * math.log(len(x) * len(y)) + slack


@settings(max_examples=8, deadline=None)
@given(transport_problems(max_points=20))
def test_debiased_float32_is_within_1e_3_of_its_terms_or_warns(problem):
    x, y, a, b = problem
    float32_agrees_or_warns(x, y, a, b, 1e-3 * largest_cost(x, y), debias=True)


@settings(max_examples=6, deadline=None)
@given(st.lists(transport_problems(max_points=12), min_size=2, max_size=3), st.sampled_from(["float32", "float64"]))
def test_a_batch_equals_its_problems_in_both_dtypes(problems, dtype):
    # Pad every problem to the same sizes with points of zero weight, which change nothing.
    n, m, d = max(len(p[0]) for p in problems), max(len(p[1]) for p in problems), max(p[0].shape[1] for p in problems)

    def padded(points, weights, size):
        out, mass = np.zeros((size, d)), np.zeros(size)
        out[: len(points), : points.shape[1]], mass[: len(weights)] = points, weights
        return out, mass

    xs, ys, as_, bs = [], [], [], []
    for x, y, a, b in problems:
        (px, pa), (py, pb) = padded(x, a, n), padded(y, b, m)
        xs.append(px), ys.append(py), as_.append(pa), bs.append(pb)
    stacked = [np.asarray(np.stack(v), dtype) for v in (xs, ys, as_, bs)]
    eps = 1e-3 * max(largest_cost(x, y) for x, y in zip(xs, ys))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float32 may warn; the batch and the loop alike
        batched = sinkhorn(*stacked, eps=eps, debias=False)
        singles = [float(sinkhorn(*[v[i] for v in stacked], eps=eps, debias=False)) for i in range(len(problems))]
    assert batched.shape == (len(problems),) and batched.dtype == np.dtype(dtype)
    np.testing.assert_allclose(batched, singles, rtol=1e-3 if dtype == "float32" else 1e-5)


def test_float32_grids_match_float64():
    # The 8x8 grid less its last 4 points against the 7x7 grid shifted by (0.5, 0.5), eps = 1e-4 of
    # the largest cost: every point moves by (0.5, 0.5), so the cost is 0.5 (float32 once said 1.10).
    grid8 = np.stack(np.meshgrid(np.arange(8.0), np.arange(8.0)), -1).reshape(-1, 2)[:-4]
    grid7 = np.stack(np.meshgrid(np.arange(7.0), np.arange(7.0)), -1).reshape(-1, 2) + 0.5
    eps = 1e-4 * largest_cost(grid8, grid7)
    value = sinkhorn(grid8.astype(np.float32), grid7.astype(np.float32), eps=eps, debias=False)
    assert float(value) == pytest.approx(float(sinkhorn(grid8, grid7, eps=eps, debias=False)), rel=1e-3)
    assert float(value) == pytest.approx(float(emd(grid8, grid7)) ** 2, rel=1e-3)


def test_float32_torch_gradients_are_float32_and_match_float64():
    rng = np.random.default_rng(0)
    x, y = rng.random((30, 2)), rng.random((25, 2))
    eps = 1e-3 * largest_cost(x, y)
    grads = {}
    for dtype in (torch.float32, torch.float64):
        xt = torch.tensor(x, dtype=dtype, requires_grad=True)
        sinkhorn(xt, torch.tensor(y, dtype=dtype), eps=eps).backward()
        assert xt.grad.dtype == dtype
        grads[dtype] = xt.grad.double()
    scale = float(grads[torch.float64].abs().max())
    assert float((grads[torch.float32] - grads[torch.float64]).abs().max()) <= 1e-3 * scale


def test_value_error_estimate_is_first_order_accurate():
    # A plan stopped short of converged is the exact plan of its own marginals, so its cost is off
    # by <dL/da, a' - a> + <dL/db, b' - b> up to second order: the estimate the solver stops on.
    rng = np.random.default_rng(1)
    x, y = torch.tensor(rng.random((40, 2))), torch.tensor(rng.random((30, 2)))
    cost = DenseCost(torch.cdist(x, y)[None] ** 2)
    a = torch.full((1, 40), 1 / 40, dtype=torch.float64)
    b = torch.tensor(rng.random(30))[None]
    b = b / b.sum()
    eps = 1e-3 * cost.largest()
    options = dict(max_iter=10_000, scaling=0.1, overrelaxation=1.0)
    reference = _sinkhorn_solver.solve(cost, a, b, eps, tol=1e-13, **options).value
    zeros = (torch.zeros_like(a), torch.zeros_like(b))
    stage = _sinkhorn_solver._scale(cost, *zeros, a, b, eps, 1e-4, 10_000, 1.0, False, None)
    value, relative, _, _ = _sinkhorn_solver._value_error(stage, cost, a, b, eps, tol=0.0, previous=None)
    actual = abs(float(value - reference)) / float(reference)
    assert actual > 1e-6  # far enough from converged for the check to mean something
    assert relative == pytest.approx(actual, rel=0.1)


@settings(deadline=None, max_examples=50)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30))
def test_the_error_bound_holds_for_every_error_of_its_norm_and_sum(seed, n):
    # |<g, e>| <= half the range of g times |e|_1 plus |mid-range of g| times |sum e|, g taken on the
    # points of positive weight (e vanishes elsewhere): what lets a later check skip its solve.
    rng = np.random.default_rng(seed)
    gradient = torch.tensor(rng.normal(size=(3, n)) * 10.0 ** rng.integers(-3, 4, size=(3, 1)))
    weights = torch.tensor(rng.random((3, n)) * (rng.random((3, n)) < 0.8))
    error = torch.tensor(rng.normal(size=(3, n))) * (weights > 0)
    bound = _sinkhorn_solver._error_bound(gradient, error, weights)
    assert torch.all((gradient * error).sum(-1).abs() <= bound * (1 + 1e-12))


def test_a_warm_started_adjoint_solve_reaches_the_cold_solution():
    rng = np.random.default_rng(2)
    cost = DenseCost(torch.cdist(torch.tensor(rng.random((30, 2))), torch.tensor(rng.random((20, 2))))[None] ** 2)
    a, b = torch.full((1, 30), 1 / 30, dtype=torch.float64), torch.full((1, 20), 1 / 20, dtype=torch.float64)
    eps = 1e-2 * cost.largest()
    options = dict(tol=1e-12, max_iter=10_000, scaling=0.5, overrelaxation=1.0)
    plan = _sinkhorn_solver.solve(cost, a, b, eps, **options).plan
    cold = _plan_system.cost_adjoint(plan, cost, eps, 1e-12)
    warm = _plan_system.cost_adjoint(plan, cost, eps, 1e-12, start=cold.lam + torch.tensor(rng.normal(size=(1, 30))))
    # The system leaves (lam + c, mu - c) free, which shifts grad_a by eps c and grad_b by -eps c:
    # the gradients agree up to that constant, invisible to perturbations of total mass zero.
    shift = (warm.grad_a - cold.grad_a).mean()
    assert torch.allclose(warm.grad_a - shift, cold.grad_a, atol=1e-9 * float(cold.grad_a.abs().max()))
    assert torch.allclose(warm.grad_b + shift, cold.grad_b, atol=1e-9 * float(cold.grad_b.abs().max()))
    exact = _plan_system.cost_adjoint(plan, cost, eps, 1e-12, start=cold.lam)
    assert exact.steps < cold.steps


def test_the_potentials_over_eps_solve_the_adjoint_system_up_to_its_entropy_terms():
    # C_ij = F_i + G_j - eps log P_ij for the plan's full potentials (F, G), so (F, G) / eps solves the
    # adjoint system's cost part exactly: a solve started there reaches the cold solution in fewer steps.
    rng = np.random.default_rng(3)
    cost = DenseCost(torch.cdist(torch.tensor(rng.random((200, 2))), torch.tensor(rng.random((150, 2))))[None] ** 2)
    a, b = torch.full((1, 200), 1 / 200, dtype=torch.float64), torch.full((1, 150), 1 / 150, dtype=torch.float64)
    eps = 1e-3 * cost.largest()
    zeros = (torch.zeros_like(a), torch.zeros_like(b))
    stage = _sinkhorn_solver._scale(cost, *zeros, a, b, eps, 1e-9, 10_000, 1.0, False, None)
    potential_rows, _ = _sinkhorn_solver._absorb(stage.f, stage.g, stage.plan, a, b, eps)
    cold = _plan_system.cost_adjoint(stage.plan, cost, eps, 1e-3)
    started = _plan_system.cost_adjoint(stage.plan, cost, eps, 1e-3, start=potential_rows / eps)
    assert started.steps < cold.steps / 2
    exact = _plan_system.cost_adjoint(stage.plan, cost, eps, 1e-12)
    for adjoint in (cold, started):  # both to the solve's tolerance (the gauge is fixed: lam has mean 0)
        assert torch.allclose(adjoint.grad_a, exact.grad_a, atol=1e-2 * float(exact.grad_a.abs().max()))


def test_a_start_the_degenerate_system_cannot_see_is_dropped():
    # Transport of a grid onto itself at a small eps: the plan is all but diagonal, the adjoint system all but 0
    # (its right-hand side ~1e-63), so the potentials' start, which only adds round-off there, must not be kept:
    # amplified by conjugate gradients it once gave an adjoint of 1e32 and a "stalled" warning in float64.
    grid = torch.cartesian_prod(*[torch.tensor([0.5, 1.5], dtype=torch.float64)] * 3)
    weights = torch.tensor([[0.0027, 0.158, 0.247, 0.260, 0.038, 0.087, 0.124, 0.084]], dtype=torch.float64)
    weights = weights / weights.sum()
    cost = DenseCost(torch.cdist(grid, grid)[None] ** 2 / 4)
    eps = 6.75e-3 / 4
    zeros = (torch.zeros_like(weights), torch.zeros_like(weights))
    stage = _sinkhorn_solver._scale(cost, *zeros, weights, weights, eps, 1e-9, 10_000, 1.8, False, None)
    potential_rows, _ = _sinkhorn_solver._absorb(stage.f, stage.g, stage.plan, weights, weights, eps)
    cold = _plan_system.cost_adjoint(stage.plan, cost, eps, 1e-3)
    started = _plan_system.cost_adjoint(stage.plan, cost, eps, 1e-3, start=potential_rows / eps)
    assert float(potential_rows.abs().max()) / eps > 1  # a start far from the cold solution
    torch.testing.assert_close(started.lam, cold.lam)
    torch.testing.assert_close(started.grad_a, cold.grad_a)


# Overflow, tiny eps, budgets: an error or a warning, never a hang or NaN.


@pytest.mark.parametrize(
    "x, y, p, dtype",
    [
        ([[0, 0], [1e20, 0]], [[0, 1]], 2, np.float32),  # |x - y|^2 = 1e40 > float32's max
        ([[0.0, 0.0], [10.0, 0.0]], [[0.0, 1.0]], 400, np.float64),  # 10^400
    ],
)
def test_a_cost_that_overflows_is_a_value_error(x, y, p, dtype):
    with pytest.raises(ValueError, match=rf"overflows {np.dtype(dtype).name}.*too far apart for p={p}"):
        sinkhorn(np.array(x, dtype), np.array(y, dtype), p=p, eps=1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_eps_below_the_cost_resolution_is_raised_with_a_warning(dtype):
    rng = np.random.default_rng(2)
    x, y = rng.random((15, 2)).astype(dtype), rng.random((12, 2)).astype(dtype)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = sinkhorn(x, y, eps=5e-324, max_iter=500)
    resolution = [w for w in caught if "below the resolution of the cost" in str(w.message)]
    assert len(resolution) == 1  # once, not once per term of the debiased value
    assert resolution[0].filename == __file__  # from the caller's line
    # At 1e-14 of the largest cost the solver may not converge in 500 iterations (it says so), but the value is finite.
    assert math.isfinite(float(value))


def test_an_annealing_ratio_near_1_is_coarsened_to_a_bounded_schedule():
    # scaling = 0.999999 from 2 down to 1e-4 would be 10 million stages.
    assert len(list(_sinkhorn_solver.eps_schedule(2.0, 1e-4, 0.999999))) <= _sinkhorn_solver._MAX_STAGES
    assert list(_sinkhorn_solver.eps_schedule(2.0, 1e-3, 0.1)) == pytest.approx([0.2, 0.02, 0.002])


@pytest.mark.parametrize("largest", [1.0, 2.0, 0.984, 3.0, 1e-7, 1e200])
def test_the_schedule_has_no_stage_at_the_target_eps_itself(largest):
    # 0.1 ** 3 is 1.0000000000000002e-3 in floating point: eps = 1e-3 max C must not get a last
    # intermediate stage at eps (times 1 + 2e-16), a kernel build and 10 iterations for nothing.
    assert len(list(_sinkhorn_solver.eps_schedule(largest, 1e-3 * largest, 0.1))) == 2
    assert len(list(_sinkhorn_solver.eps_schedule(largest, 0.999e-3 * largest, 0.1))) == 3


@pytest.mark.parametrize("max_iter", [1, 3, 40])
@pytest.mark.parametrize("scaling", [0.1, 0.999999])
def test_max_iter_bounds_the_whole_solve(max_iter, scaling):
    rng = np.random.default_rng(3)
    x, y = torch.tensor(rng.random((30, 2))), torch.tensor(rng.random((25, 2)))
    cost = DenseCost(torch.cdist(x, y)[None] ** 2)
    a, b = torch.full((1, 30), 1 / 30, dtype=torch.float64), torch.full((1, 25), 1 / 25, dtype=torch.float64)
    solution = _sinkhorn_solver.solve(cost, a, b, 1e-4, tol=1e-6, max_iter=max_iter, scaling=scaling, overrelaxation=1.8)
    # A kernel build counts as an iteration; the one that ends the budget may finish its own build.
    assert solution.iterations <= max_iter + 1
    assert solution.status == "max_iter"
    assert torch.isfinite(solution.value).all()


@pytest.mark.parametrize("max_iter", [200, 1000])
def test_max_iter_bounds_a_solve_that_ends_in_newton(max_iter, monkeypatch):
    # 200 uniform points in the unit square at eps = 1e-4 of the largest cost: Newton is at work when the budget
    # ends.  Its last conjugate-gradient solve and the kernel rebuilt after it once took the count to max_iter + 2.
    newton = _sinkhorn_solver._newton
    rounds = []
    monkeypatch.setattr(_sinkhorn_solver, "_newton", lambda *args: rounds.append(1) or newton(*args))
    rng = np.random.default_rng(0)
    x, y = torch.tensor(rng.random((200, 2))), torch.tensor(rng.random((200, 2)))
    cost = DenseCost(torch.cdist(x, y)[None] ** 2)
    a = torch.full((1, 200), 1 / 200, dtype=torch.float64)
    solution = _sinkhorn_solver.solve(cost, a, a, 1e-4 * cost.largest(), tol=1e-6, max_iter=max_iter,
                                      scaling=0.1, overrelaxation=1.8)
    assert rounds and solution.status == "max_iter"
    assert max_iter <= solution.iterations <= max_iter + 1


def test_a_tiny_budget_warns_and_returns_a_finite_value():
    rng = np.random.default_rng(4)
    with pytest.warns(RuntimeWarning, match="ran out of max_iter=2") as record:
        value = sinkhorn(rng.random((50, 2)), rng.random((40, 2)), eps=1e-4, max_iter=2)
    assert math.isfinite(float(value))
    assert len(record) == 1 and record[0].filename == __file__  # once (three solves), at the caller's line


def test_a_tol_below_round_off_stalls_with_a_warning_not_a_hang():
    with pytest.warns(RuntimeWarning, match="stops progress short of tol"):
        value = sinkhorn([0.0, 1.0], [1.0, 2.0], eps=0.1, tol=1e-300, debias=False)
    # Costs [[1, 4], [0, 1]]: the plan is [[q, r], [r, q]] with r / q = exp(-(4 + 0 - 1 - 1) / (2 eps)),
    # so the cost is 2q + 4r = 1 + r / (q + r) with q + r = 1/2.
    ratio = math.exp(-10.0)
    assert float(value) == pytest.approx(1 + ratio / (1 + ratio), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_distance_that_fits_the_dtype_is_not_an_overflow(dtype):
    # |x - y| = 5e29 fits float32 (max 3.4e38), though its square does not: with p = 1 the cost
    # between single points is that distance, whatever eps.
    x, y = np.array([[1e30, 0.0]], dtype), np.array([[5e29, 0.0]], dtype)
    value = sinkhorn(x, y, p=1, eps=1e20, debias=False)
    assert float(value) == pytest.approx(5e29, rel=1e-6)
    assert float(emd(x, y)) == pytest.approx(5e29, rel=1e-6)


def test_distances_between_tiny_points_do_not_underflow():
    # |x - y| = 2e-300 is a normal float64, though its square is not: W1 between point masses is their distance.
    assert float(emd([[1e-300, 0.0]], [[3e-300, 0.0]])) == pytest.approx(2e-300, rel=1e-12)


def test_newton_rounds_keep_within_what_sinkhorn_predicted(monkeypatch):
    # 2000 uniform points in the unit cube, float32, eps = 3e-5 of the largest cost: Newton, unlimited,
    # took 6432 units of work here (its conjugate-gradient solves run long at small eps); 1277 in all now.
    rounds = []
    newton = _sinkhorn_solver._newton

    def recorded(plan, a, b, tol, budget, *rest):
        result = newton(plan, a, b, tol, budget, *rest)
        rounds.append((budget, result[2]))
        return result

    monkeypatch.setattr(_sinkhorn_solver, "_newton", recorded)
    rng = np.random.default_rng(0)
    x, y = (torch.tensor(rng.random((1, 2000, 3)), dtype=torch.float32) for _ in range(2))
    cost = DenseCost(torch.cdist(x, y) ** 2)
    a = torch.full((1, 2000), 1 / 2000, dtype=torch.float64)
    eps = 3e-5 * cost.largest()
    solution = _sinkhorn_solver.solve(cost, a, a, eps, tol=1e-4, max_iter=10_000, scaling=0.1, overrelaxation=1.8)
    assert solution.status == "converged" and solution.error <= 1e-4 and solution.value_error <= 1e-4
    assert rounds and all(used <= math.ceil(budget) for budget, used in rounds)
    assert solution.iterations < 2_000


def test_the_symmetric_adjoint_solves_the_general_system_in_fewer_steps():
    # A cloud against itself at small eps: the plan is nearly diagonal, and the general system's Schur complement
    # nearly vanishes; (diag(P 1) + P) lam = r / eps gives the same solution (lam = mu) in a few steps (13 against
    # 285 here, 345 before the general solve was preconditioned by its own diagonal; at eps = 1e-4, 12 against 47,163
    # then, where the general solve had lost its digits).
    generator = torch.Generator().manual_seed(8)
    x = torch.rand(300, 2, generator=generator, dtype=torch.float64)
    cost = DenseCost((torch.cdist(x, x) ** 2)[None])
    a = torch.full((1, 300), 1 / 300, dtype=torch.float64)
    eps = 1e-3
    solution = _sinkhorn_solver.solve(cost, a, a, eps, tol=1e-9, max_iter=10_000, scaling=0.5, overrelaxation=1.5,
                                      symmetric=True)
    general = _plan_system.cost_adjoint(solution.plan, cost, eps, 1e-10)
    symmetric = _plan_system.cost_adjoint(solution.plan, cost, eps, 1e-10, symmetric=True)
    assert symmetric.steps < 50 < general.steps
    assert symmetric.grad_a[0].tolist() == pytest.approx(general.grad_a[0].tolist(), rel=1e-8, abs=1e-12)
    assert symmetric.grad_b[0].tolist() == pytest.approx(general.grad_b[0].tolist(), rel=1e-8, abs=1e-12)


# Newton's preconditioner: the diagonal of the Schur complement, formed from the squares of the plan's entries.


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("backend", ["dense", "online"])
def test_squared_products_square_the_kernel_in_float64(backend, dtype):
    # f = -0.5 puts every exponent at most -50 (entries below 2e-22, above float32's floor 1e-29 or at it):
    # their squares underflow in float32, not in float64
    generator = torch.Generator().manual_seed(3)
    x, y = torch.rand(1, 40, 2, generator=generator, dtype=dtype), torch.rand(1, 30, 2, generator=generator, dtype=dtype)
    f, g, eps = torch.full((1, 40), -0.5, dtype=torch.float64), torch.zeros(1, 30, dtype=torch.float64), 0.01
    costs = ((x.double()[:, :, None] - y.double()[:, None]) ** 2).sum(-1)
    cost = DenseCost(costs.to(dtype)) if backend == "dense" else _online.OnlineCost(x, y, 2.0)
    kernel = cost.kernel(f, g, eps, torch.ones(1, 40), torch.ones(1, 30))
    entries = ((f[:, :, None] + g[:, None] - costs) / eps).exp().clamp(min=_log_kernel.smallest_entry(dtype)).to(dtype)
    w = torch.rand(1, 30, generator=generator, dtype=torch.float64)
    expected = torch.bmm(entries.double().square(), w[..., None])[..., 0]
    in_dtype = torch.bmm(entries.square().double(), w[..., None])[..., 0]
    assert dtype == torch.float64 or float((in_dtype / expected).min()) < 0.5  # squared in float32: lost
    assert torch.allclose(kernel.squared_times(w), expected, rtol=1e-6 if dtype == torch.float32 else 1e-9, atol=0)


def test_the_preconditioner_is_the_schur_complements_diagonal_above_its_floor():
    rng = np.random.default_rng(5)
    cost = DenseCost(torch.cdist(torch.tensor(rng.random((20, 2))), torch.tensor(rng.random((20, 2))))[None] ** 2)
    a = b = torch.full((1, 20), 1 / 20, dtype=torch.float64)
    for eps, shift in ((1e-1, 0.1), (1e-1, 0.0), (1e-4, 0.0)):  # the last plan is nearly a matching: the floor bites
        plan = _sinkhorn_solver.solve(cost, a, b, eps, tol=1e-9, max_iter=10_000, scaling=0.5, overrelaxation=1.0).plan
        entries = plan.kernel.dense_plan(plan.u, plan.v)[0]
        row_mass, col_mass = (1 + shift) * entries.sum(1), (1 + shift) * entries.sum(0)
        schur = torch.diag(row_mass) - entries @ torch.diag(1 / col_mass) @ entries.T
        floor = max(1 - (1 + shift) ** -2, math.sqrt(torch.finfo(torch.float64).eps)) * row_mass
        diagonal = _plan_system.schur_diagonal(plan, row_mass[None], 1 / col_mass[None], shift)[0]
        assert torch.allclose(diagonal, torch.maximum(schur.diagonal(), floor), rtol=1e-9, atol=1e-15)
        assert eps > 1e-3 or bool((diagonal == floor).any())


def test_newton_converges_where_the_plan_is_nearly_a_matching():
    # 200 points in 3-D at eps = 1e-4: with diag(P 1) as the preconditioner Newton's solves took all of max_iter
    # (10,000 units of work) and warned; with the Schur complement's diagonal, 1,745
    generator = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 200, 3, generator=generator, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        value = float(sinkhorn(x, y, eps=1e-4, debias=False))
    exact = float(emd(x, y, p=2)) ** 2
    assert -1e-6 * 3 <= value - exact <= 1e-4 * math.log(200 * 200) + 1e-6 * 3
