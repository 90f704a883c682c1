"""sinkhorn: closed forms, POT as oracle, convergence at small eps, gradients."""

import functools
import math
import re
import sys
import warnings

import numpy as np
import ot
import pytest
import scipy.spatial.distance
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import as_float, as_library, clouds, float_dtypes, libraries, weights

from divergences import emd, sinkhorn

# Closed forms.


def test_single_points_cost_their_distance_to_the_p():
    # One point each: the only plan moves all the mass, whatever eps.
    assert float(sinkhorn([[0.0, 0.0]], [[3.0, 4.0]], eps=0.1, debias=False)) == pytest.approx(25.0, rel=1e-14)
    assert float(sinkhorn([[0.0, 0.0]], [[3.0, 4.0]], eps=0.1, p=1)) == pytest.approx(5.0, rel=1e-14)


def test_two_points_against_themselves_have_a_logistic_cost():
    # x = y = {0, 1}, cost |x - y|: by symmetry the entropic plan puts
    # (1/2) / (1 + exp(1/eps)) on each off-diagonal entry, so <T, C> = 1 / (1 + exp(1/eps)).
    eps = 0.5
    value = sinkhorn([0.0, 1.0], [0.0, 1.0], p=1, eps=eps, debias=False, tol=1e-14)
    assert float(value) == pytest.approx(1 / (1 + math.exp(1 / eps)), rel=1e-12)


def test_debiased_divergence_of_a_measure_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(30, 2))
    assert float(sinkhorn(x, x, eps=0.05)) == 0.0


@functools.cache
def _alternating_self_transport():
    """The transport cost of a cloud against its own points in reverse order, at eps = 1e-2, solved to tol (float64)."""
    cloud = torch.tensor(np.random.default_rng(0).normal(size=(200, 2)))
    return float(sinkhorn(cloud, cloud.flip(0), eps=0.01, debias=False, max_iter=200_000))


@pytest.mark.parametrize("backend", ["tensorized", "online", "multiscale"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_cloud_against_itself_converges_at_small_eps(backend, dtype):
    # The self terms' plans are nearly the identity at small eps, where alternating updates swing between two
    # states for thousands of iterations (this warned at eps = 1e-2 and ran out of max_iter); symmetric updates
    # converge in tens.  The value is that of the alternating solve given all the iterations it needs, within
    # the two solves' tolerances.
    cloud = torch.tensor(np.random.default_rng(0).normal(size=(200, 2)), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = sinkhorn(cloud, cloud, eps=0.01, debias=False, backend=backend)
    reference = _alternating_self_transport()
    tol = 1e-4 if dtype == torch.float32 else 1e-6  # the default, relative to eps for a value below eps
    assert abs(float(value) - reference) <= 2 * tol * 0.01


@pytest.mark.parametrize("backend", ["tensorized", "online", "multiscale"])
def test_a_cloud_against_its_own_points_in_another_order_is_exactly_zero(backend):
    # One measure listed in two orders is solved as a self term (it ran out of max_iter and warned at eps = 1e-2),
    # batched, with weights that follow their points.
    rng = np.random.default_rng(1)
    cloud, weights = rng.normal(size=(2, 150, 2)), rng.random((2, 150))
    order = np.stack([rng.permutation(150), np.arange(150)[::-1]])
    shuffled = np.take_along_axis(cloud, order[..., None], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = sinkhorn(cloud, shuffled, weights, np.take_along_axis(weights, order, axis=1), eps=0.01,
                         backend=backend)
    assert value.tolist() == [0.0, 0.0]


def test_the_same_points_with_other_weights_are_another_measure():
    # the reordering is used only for one measure: the same points with weights that do not follow them differ
    rng = np.random.default_rng(2)
    cloud, weights = rng.normal(size=(30, 2)), rng.random(30) + 0.5
    value = sinkhorn(cloud, cloud[::-1], weights, weights, eps=0.5)
    moved = sinkhorn(cloud, cloud[::-1] + 1e-12, weights, weights, eps=0.5)  # not matched either way
    assert value > 1e-3 and value == pytest.approx(moved, rel=1e-6)


@pytest.mark.parametrize("backend", ["tensorized", "online"])
def test_reordered_points_get_the_gradient_of_the_plain_solve(monkeypatch, backend):
    # the x-y term of one measure in two orders, solved symmetrically, has the value and gradients that
    # alternating updates give where they converge (eps = 0.5)
    rng = np.random.default_rng(3)
    cloud = torch.tensor(rng.normal(size=(40, 2)))
    reordered = cloud[torch.randperm(40, generator=torch.Generator().manual_seed(0))]

    def value_and_gradients():
        x, y = cloud.clone().requires_grad_(), reordered.clone().requires_grad_()
        value = sinkhorn(x, y, eps=0.5, debias=False, backend=backend, tol=1e-11)
        return (value, *torch.autograd.grad(value, (x, y)))

    matched = value_and_gradients()
    monkeypatch.setattr(sys.modules["divergences.sinkhorn"], "_matched_order", lambda *measures: None)
    plain = value_and_gradients()
    for ours, theirs in zip(matched, plain):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-9)


# Oracles.


@settings(max_examples=15)
@given(clouds(d=2, scale=2.0), clouds(d=2, scale=2.0), st.floats(0.05, 2.0), st.data())
def test_transport_cost_equals_pot_sinkhorn2(x, y, eps, data):
    a, b = data.draw(weights(len(x))), data.draw(weights(len(y)))
    a, b = a / a.sum(), b / b.sum()
    cost = scipy.spatial.distance.cdist(x, y, "sqeuclidean")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # POT warns when it stops at numItermax
        plan = ot.sinkhorn(a, b, cost, reg=eps, method="sinkhorn_log", stopThr=1e-13, numItermax=20_000)
    # POT is an oracle only where it converged: at small eps / cost ratios its plain Sinkhorn
    # can still be 1e-5 off the marginals after 10^5 iterations (ours has a Newton finish)
    assume(np.abs(plan.sum(0) - b).sum() + np.abs(plan.sum(1) - a).sum() < 1e-11)
    expected = (plan * cost).sum()
    value = sinkhorn(x, y, a, b, eps=eps, debias=False, tol=1e-11)
    assert float(value) == pytest.approx(float(expected), rel=1e-7, abs=1e-9)


def test_debiased_divergence_equals_pot():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(15, 2)), rng.normal(size=(12, 2)) + 0.5
    expected = ot.bregman.empirical_sinkhorn_divergence(x, y, 1.0, method="sinkhorn_log", stopThr=1e-12, numIterMax=20_000)
    assert float(sinkhorn(x, y, eps=1.0, tol=1e-12)) == pytest.approx(float(expected), rel=1e-9)


@pytest.mark.parametrize("p", [1, 2])
def test_tends_to_the_exact_cost_as_eps_vanishes(p):
    # <T_eps, C> - OT <= eps log(n m), so the gap shrinks linearly with eps.
    rng = np.random.default_rng(2)
    x, y = rng.random((40, 2)), rng.random((40, 2))
    exact = float(emd(x, y, p=p)) ** p
    largest = float(scipy.spatial.distance.cdist(x, y).max()) ** p
    for relative_eps in (1e-2, 1e-3, 1e-4):
        eps = relative_eps * largest
        gap = float(sinkhorn(x, y, p=p, eps=eps, debias=False)) - exact
        assert -1e-9 <= gap <= eps * math.log(40 * 40)


def test_converges_without_overflow_at_eps_1e4_of_the_largest_cost():
    # Unequal sizes make the optimal plan degenerate, where plain Sinkhorn crawls;
    # RuntimeWarnings are errors in this suite, so overflow or non-convergence fails here.
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(200, 2)), rng.normal(size=(180, 2)) + 1
    largest = float(scipy.spatial.distance.cdist(x, y, "sqeuclidean").max())
    value = float(sinkhorn(x, y, eps=1e-4 * largest, debias=False))
    exact = float(emd(x, y, p=2)) ** 2
    assert math.isfinite(value)
    assert 0 <= value - exact <= 1e-4 * largest * math.log(200 * 180)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("scaling", [0.5, 0.1])
def test_converges_on_degenerate_small_problems_with_random_weights(seed, scaling):
    # Random weights on a few points make the optimal plan a sparse tree: at eps = 1e-4
    # of the largest cost plain Sinkhorn crawls and the Newton system is nearly singular.
    rng = np.random.default_rng(seed)
    n, m = rng.integers(2, 12, size=2)
    x, y = rng.random((n, 2)), rng.random((m, 2)) + 0.3 * rng.random()
    a, b = rng.random(n), rng.random(m)
    a[0] = 0 if seed % 3 == 0 else a[0]
    largest = float(scipy.spatial.distance.cdist(x, y, "sqeuclidean").max())
    value = float(sinkhorn(x, y, a, b, eps=1e-4 * largest, debias=False, scaling=scaling))
    exact = float(emd(x, y, a, b, p=2)) ** 2
    # The plan meets its marginals to tol = 1e-6 (L1), which moves its cost by at most tol * largest.
    slack = 1e-6 * largest
    assert -slack <= value - exact <= 1e-4 * largest * math.log(n * m) + slack


def test_warns_naming_max_iter_when_not_converged():
    x = np.random.default_rng(4).random((30, 2))
    with pytest.warns(RuntimeWarning, match="max_iter"):
        sinkhorn(x, x[::-1] + 0.1, eps=1e-4, max_iter=5)


def test_a_warning_after_a_value_check_gives_the_value_error_that_tol_bounds():
    # tol bounds the value's error too: marginals within tol are not yet convergence, and the warning says why.
    # (A cloud against a copy of it moved by 1e-6, in another order: alternating updates, which a plan that is
    # nearly a permutation slows down; the same cloud, in any order, is solved by symmetric updates and converges.
    # It converges within the default max_iter since Newton's solves are preconditioned by the Schur complement's
    # own diagonal: 3000 units of work stop it between the marginals' convergence and the value's.)
    cloud = np.random.default_rng(0).normal(size=(200, 2))
    with pytest.warns(RuntimeWarning, match="ran out of max_iter") as record:
        sinkhorn(cloud, (cloud + 1e-6)[::-1], eps=0.01, max_iter=3000)
    message = str(record[0].message)
    marginal = float(re.search(r"marginal error about ([-+.e0-9]+),", message).group(1))
    value = float(re.search(r"estimated relative error about ([-+.e0-9]+) at the last check", message).group(1))
    assert marginal <= 1e-6 < value  # orders of magnitude: 1e-07 and 1e-05


def test_the_same_failure_warns_once_per_line_under_the_default_filter():
    """Twelve calls from one line that fail alike print one warning, not twelve (Python's "default" action)."""
    rng = np.random.default_rng(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(12):
            sinkhorn(rng.random((20, 2)), rng.random((20, 2)), eps=1e-3, max_iter=3)
    assert len([w for w in caught if "did not converge" in str(w.message)]) == 1


# Properties.


@settings(max_examples=15)
@given(clouds(d=2), st.data(), st.floats(0.01, 1.0))
def test_transport_cost_is_non_negative_and_symmetric(x, data, relative_eps):
    y = data.draw(clouds(d=2))
    eps = relative_eps * (1 + float(scipy.spatial.distance.cdist(x, y, "sqeuclidean").max()))
    forward = float(sinkhorn(x, y, eps=eps, debias=False, tol=1e-10))
    assert forward >= 0
    assert forward == pytest.approx(float(sinkhorn(y, x, eps=eps, debias=False, tol=1e-10)), rel=1e-6, abs=1e-9)


@settings(max_examples=10)
@given(clouds(d=2, n=5), clouds(d=2, n=4), libraries, float_dtypes)
def test_numpy_and_torch_agree_with_dtype_kept(x, y, library, dtype):
    eps = 0.1 * (1 + float(scipy.spatial.distance.cdist(x, y, "sqeuclidean").max()))
    value = sinkhorn(as_library(x, library, dtype), as_library(y, library, dtype), eps=eps)
    if library == "torch":
        assert isinstance(value, torch.Tensor) and value.dtype == getattr(torch, dtype)
    else:
        assert value.dtype == np.dtype(dtype)
    reference = float(sinkhorn(x, y, eps=eps))
    tolerance = 1e-3 if dtype == "float32" else 1e-6
    assert as_float(value) == pytest.approx(reference, rel=tolerance, abs=tolerance * eps)


@pytest.mark.parametrize("debias", [False, True])
def test_batch_equals_loop(debias):
    rng = np.random.default_rng(5)
    x, y, b = rng.random((4, 12, 2)), rng.random((4, 9, 2)), rng.random((4, 9))
    batched = sinkhorn(x, y, b=b, eps=0.01, debias=debias, tol=1e-10)
    assert batched.shape == (4,)
    for i in range(4):
        assert batched[i] == pytest.approx(float(sinkhorn(x[i], y[i], b=b[i], eps=0.01, debias=debias, tol=1e-10)), rel=1e-7)


def test_zero_weights_equal_dropping_the_points():
    rng = np.random.default_rng(6)
    x, y, a = rng.random((10, 2)), rng.random((8, 2)), rng.random(10)
    a[:3] = 0
    kept = sinkhorn(x[3:], y, a[3:], eps=0.01, tol=1e-10)
    assert float(sinkhorn(x, y, a, eps=0.01, tol=1e-10)) == pytest.approx(float(kept), rel=1e-8)


# Gradients.


@pytest.mark.parametrize("debias", [False, True])
@pytest.mark.parametrize("p", [1.5, 2])
def test_gradcheck_float64(debias, p):
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.random((6, 2)), requires_grad=True)
    y = torch.tensor(rng.random((5, 2)), requires_grad=True)
    a = torch.tensor(rng.random(6) + 0.1, requires_grad=True)
    b = torch.tensor(rng.random(5) + 0.1, requires_grad=True)

    def function(x, y, a, b):
        return sinkhorn(x, y, a, b, p=p, eps=0.05, debias=debias, tol=1e-13)

    assert torch.autograd.gradcheck(function, (x, y, a, b), atol=1e-7, rtol=1e-5)


def test_gradient_with_respect_to_a_zero_weight_matches_finite_differences():
    rng = np.random.default_rng(8)
    x, y = torch.tensor(rng.random((7, 2))), torch.tensor(rng.random((6, 2)))
    a = torch.tensor(rng.random(7) + 0.1)
    a[0] = 0
    a.requires_grad_(True)
    sinkhorn(x, y, a, eps=0.02, debias=False, tol=1e-13).backward()
    step = 1e-7
    moved = a.detach().clone()
    moved[0] += step
    slope = (float(sinkhorn(x, y, moved, eps=0.02, debias=False, tol=1e-13)) - float(sinkhorn(x, y, a.detach(), eps=0.02, debias=False, tol=1e-13))) / step
    assert torch.isfinite(a.grad).all()
    assert float(a.grad[0]) == pytest.approx(slope, rel=1e-4, abs=1e-6)


def test_gradient_is_finite_where_points_coincide():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    sinkhorn(x, y, p=1, eps=0.1).backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(9)
    x, y = torch.tensor(rng.random((2, 50, 3))), torch.tensor(rng.random((2, 40, 3)))
    on_gpu = sinkhorn(x.cuda(), y.cuda(), eps=0.01)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), sinkhorn(x, y, eps=0.01), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_overflowing_cost_offers_float64_only_below_float64(dtype):
    far = np.array([[0.0], [1e200 if dtype == np.float64 else 1e30]], dtype=dtype)
    with pytest.raises(ValueError, match="overflows") as error:
        sinkhorn(far, far[::-1] * 0.5, p=2, eps=0.1)
    assert ("use float64" in str(error.value)) == (dtype == np.float32)


def test_a_raised_eps_warns_once_per_line_whatever_the_data():
    # the warning named the eps solved at to 3 digits, which change with the data: one warning per call
    rng = np.random.default_rng(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for stretch in (1.0, 1.1, 1.2, 1.3, 1.4):
            x = rng.random((10, 1)) * stretch
            sinkhorn(x, x[::-1] + 0.3, eps=1e-20)
    assert len([w for w in caught if "below the resolution" in str(w.message)]) == 1
