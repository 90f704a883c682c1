"""sinkhorn's multiscale backend: the untruncated value and gradients within tol, on the cell pairs that matter."""

import sys
import warnings

import numpy as np
import pytest
import torch
from backends import assert_gradcheck, assert_gradients_match_tensorized
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import transport_problems

import divergences.sinkhorn  # noqa: F401 (the module, for the spies below)
from divergences import _multiscale, sinkhorn

SINKHORN_MODULE = sys.modules["divergences.sinkhorn"]


@pytest.fixture
def small_cells(monkeypatch):
    """About 2 points a cell and blocks of at most 8 rows, so that small problems have many of both."""
    monkeypatch.setattr(_multiscale, "_POINTS_PER_CELL", 2)
    monkeypatch.setattr(_multiscale, "_ROWS_PER_BLOCK", 8)


def kept_fraction(monkeypatch):
    """A list that receives, per solve, the fraction of the n x m entries the blocks keep."""
    fractions = []
    blocks = _multiscale._blocks

    def spy(problem, kept, rows_per_block):
        result = blocks(problem, kept, rows_per_block)
        entries = sum((rows.stop - rows.start) * len(columns) for rows, columns in result)
        fractions.append(entries / (len(problem.x) * len(problem.y)))
        return result
    monkeypatch.setattr(_multiscale, "_blocks", spy)
    return fractions


def tolerance(dtype):
    return 1e-6 if dtype == "float64" else 1e-4


@settings(max_examples=30, deadline=None)
@given(transport_problems(max_points=24), st.sampled_from(["float32", "float64"]), st.booleans(),
       st.sampled_from([1e-1, 1e-2, 1e-3]), st.sampled_from([1, 2, 3]))
def test_multiscale_gives_the_tensorized_value_within_tol(problem, dtype, debias, relative_eps, p):
    # The truncated problem's value is within tol eps of the whole one (docs/api.md); each solve is within
    # tol max(|value|, eps) of its own: three tolerances in all (and float32's round-off).
    x, y, a, b = (np.asarray(v, dtype) for v in problem)
    eps = relative_eps * float(((x[:, None] - y[None]) ** 2).sum(-1).max()) ** (p / 2)
    values = {}
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings(record=True) as caught:
        patch.setattr(_multiscale, "_POINTS_PER_CELL", 2)
        patch.setattr(_multiscale, "_ROWS_PER_BLOCK", 8)
        warnings.simplefilter("always")
        for backend in ("tensorized", "multiscale"):
            values[backend] = sinkhorn(x, y, a, b, p=p, eps=eps, debias=debias, backend=backend)
    assume(not any(issubclass(w.category, RuntimeWarning) for w in caught))
    tensorized, multiscale = values["tensorized"], values["multiscale"]
    assert multiscale.dtype == np.dtype(dtype) and multiscale.shape == ()
    scale = max(abs(float(tensorized)), eps)
    allowed = 3 * tolerance(dtype) + (2e-4 if dtype == "float32" else 0)
    assert abs(float(multiscale) - float(tensorized)) <= allowed * scale


def test_far_clusters_leave_their_cross_pairs_out(small_cells, monkeypatch):
    # Two clusters of x, each facing a cluster of y: at small eps no mass crosses, and those pairs are dropped.
    fractions = kept_fraction(monkeypatch)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.random((30, 2)), 10 + rng.random((30, 2))])
    y = np.concatenate([0.2 + rng.random((25, 2)), 10.2 + rng.random((25, 2))])
    tensorized = float(sinkhorn(x, y, eps=0.01, debias=False, backend="tensorized"))
    multiscale = float(sinkhorn(x, y, eps=0.01, debias=False, backend="multiscale"))
    assert max(fractions) <= 0.5  # the cross pairs, half of all, are left out
    assert multiscale == pytest.approx(tensorized, rel=3e-6)


def test_a_round_on_too_few_pairs_is_superseded_without_a_warning(monkeypatch):
    # A coarse solve cut after 5 units of work (as at 10^5 points and small eps its 500 are) picks too few pairs:
    # the first round stalls, a later one converges; only the solution returned may warn.
    monkeypatch.setattr(_multiscale, "_COARSE_WORK", 5)
    rounds = []
    solve = _multiscale.OnlineEntropicCost.apply
    monkeypatch.setattr(_multiscale.OnlineEntropicCost, "apply", lambda *args: rounds.append(1) or solve(*args))
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    x, y = (centres[torch.randint(0, 2, (500,), generator=generator)]
            + 0.05 * torch.randn(500, 2, generator=generator, dtype=torch.float64) for _ in range(2))
    eps = 1e-3 * float(torch.cdist(x, y).max()) ** 2
    tensorized = float(sinkhorn(x, y, eps=eps, debias=False, backend="tensorized"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        multiscale = float(sinkhorn(x, y, eps=eps, debias=False, backend="multiscale"))
    assert len(rounds) >= 2
    assert multiscale == pytest.approx(tensorized, rel=3e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_multiscale_gradients_are_the_tensorized_ones(small_cells, dtype):
    # the truncation moves the value by at most tol eps: the gradients agree to about tol
    assert_gradients_match_tensorized("multiscale", dtype, float64_tolerance=1e-5)


def test_gradcheck_multiscale(small_cells):
    assert_gradcheck("multiscale", 8, 7)


def test_a_batch_is_its_problems_one_by_one(small_cells):
    rng = np.random.default_rng(3)
    x, y = rng.random((3, 25, 3)), rng.random((3, 20, 3))
    batched = sinkhorn(x, y, eps=0.05, backend="multiscale")
    one_by_one = [float(sinkhorn(x[k], y[k], eps=0.05, backend="multiscale")) for k in range(3)]
    assert batched.shape == (3,)
    assert batched.tolist() == pytest.approx(one_by_one, rel=1e-12)


def test_multiscale_needs_at_most_three_dimensions():
    with pytest.raises(ValueError, match="backend='multiscale' needs points of at most 3 dimensions; these have 4"):
        sinkhorn(np.zeros((3, 4)), np.ones((2, 4)), eps=0.1, backend="multiscale")


@pytest.mark.parametrize("d, expected", [(2, "multiscale"), (3, "multiscale"), (4, "online")])
def test_auto_goes_multiscale_above_the_budget_in_low_dimension(monkeypatch, d, expected):
    chosen = []
    transport_cost = SINKHORN_MODULE._transport_cost
    monkeypatch.setattr(SINKHORN_MODULE, "_transport_cost",
                        lambda *args, **options: chosen.append(options["backend"]) or transport_cost(*args, **options))
    rng = np.random.default_rng(4)
    sinkhorn(rng.random((20, d)), rng.random((15, d)), eps=0.1, memory_budget=0)
    assert chosen == [expected] * 3


def test_a_pattern_that_misses_mass_warns_after_its_rounds(small_cells, monkeypatch):
    # Keeping only the upper half of the pairs' bounds, at a large eps, and no second round: the bound on the
    # mass left out exceeds what tol allows.
    def upper_half(bounds, target, symmetric):
        return bounds >= bounds.median()
    monkeypatch.setattr(_multiscale, "_kept_pairs", upper_half)
    monkeypatch.setattr(_multiscale, "_ROUNDS", 1)
    rng = np.random.default_rng(5)
    with pytest.warns(RuntimeWarning, match="mass of the cell pairs left out"):
        sinkhorn(rng.random((30, 2)), rng.random((30, 2)), eps=0.5, debias=False, backend="multiscale")


def test_cells_partition_the_points_and_bound_them():
    generator = torch.Generator().manual_seed(6)
    x, y = torch.rand(500, 3, generator=generator, dtype=torch.float64), torch.rand(300, 3, generator=generator,
                                                                                   dtype=torch.float64) * 2
    x_cells, y_cells = _multiscale.grid_cells(x, y)
    for points, cells in ((x, x_cells), (y, y_cells)):
        assert sorted(cells.order.tolist()) == list(range(len(points)))
        sorted_points, cell = points[cells.order], cells.of_points()
        assert bool((sorted_points >= cells.lower[cell]).all() and (sorted_points <= cells.upper[cell]).all())
    nearest, farthest = _multiscale.box_costs(x_cells, y_cells, 2.0)
    exact = ((x[x_cells.order][:, None] - y[y_cells.order][None]) ** 2).sum(-1)  # (500, 300), sorted by cell
    x_cell, y_cell = x_cells.of_points(), y_cells.of_points()
    assert bool((nearest[x_cell][:, y_cell] <= exact + 1e-12).all())
    assert bool((exact <= farthest[x_cell][:, y_cell] + 1e-12).all())
    assert float(nearest.min()) == 0.0 and len(x_cells.lower) == 8  # [0, 1]^3 in a grid of 3 cells a side over [0, 2]^3


@pytest.mark.parametrize("x, y", [
    (np.zeros((5, 2)), np.zeros((4, 2))),  # every cost 0, one cell
    (np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])),  # single points: the debiasing terms cost 0
    (np.arange(12.0)[:, None], np.arange(12.0)[::-1, None] + 0.5),  # 1-D
])
def test_degenerate_clouds_give_the_tensorized_value(small_cells, x, y):
    tensorized = float(sinkhorn(x, y, eps=0.05, backend="tensorized"))
    assert float(sinkhorn(x, y, eps=0.05, backend="multiscale")) == pytest.approx(tensorized, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("p, magnitude", [(1.0, 1e200), (1.5, 1e160)])
def test_huge_coordinates_with_p_below_2_do_not_overflow(p, magnitude):
    # the boxes' squared gaps would overflow float64 above 1.3e154, where |x - y|^p does not
    rng = np.random.default_rng(7)
    x, y = magnitude * rng.random((10, 2)), magnitude * rng.random((12, 2))
    eps = 0.01 * magnitude**p
    tensorized = float(sinkhorn(x, y, p=p, eps=eps, backend="tensorized"))
    assert float(sinkhorn(x, y, p=p, eps=eps, backend="multiscale")) == pytest.approx(tensorized, rel=1e-5)
