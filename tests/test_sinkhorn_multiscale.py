"""sinkhorn's multiscale backend: the untruncated value and gradients within tol, on the point pairs that carry mass."""

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
from divergences import _grid, _left_out, _multiscale, sinkhorn

SINKHORN_MODULE = sys.modules["divergences.sinkhorn"]


@pytest.fixture
def small_cells(monkeypatch):
    """Levels down to 4 points a side, so that small problems have several of them."""
    monkeypatch.setattr(_multiscale, "_BASE_POINTS", 4)


def final_pairs(monkeypatch):
    """A list that receives the pairs of each finest-level solution."""
    pairs = []
    apply = _multiscale.SparseEntropicCost.apply

    def spy(*args):
        value, cost, *rest = apply(*args)
        pairs.append(cost.pairs)
        return (value, cost, *rest)
    monkeypatch.setattr(_multiscale.SparseEntropicCost, "apply", spy)
    return pairs


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
        patch.setattr(_multiscale, "_BASE_POINTS", 4)
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
    pairs = final_pairs(monkeypatch)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.random((30, 2)), 10 + rng.random((30, 2))])
    y = np.concatenate([0.2 + rng.random((25, 2)), 10.2 + rng.random((25, 2))])
    tensorized = float(sinkhorn(x, y, eps=0.01, debias=False, backend="tensorized"))
    multiscale = float(sinkhorn(x, y, eps=0.01, debias=False, backend="multiscale"))
    (kept,) = pairs
    x_far, y_far = x[:, 0] > 5, y[:, 0] > 5  # the problem's points are sorted by cell: map the pairs back
    problem = _multiscale.problems(*(torch.tensor(v)[None] for v in (x, y, np.full(60, 1 / 60), np.full(50, 1 / 50))), 2)[0]
    x_far, y_far = problem.x[:, 0] > 5, problem.y[:, 0] > 5
    assert bool((x_far[kept.rows] == y_far[kept.columns]).all())  # no pair crosses
    assert len(kept) < 0.5 * 60 * 50
    assert multiscale == pytest.approx(tensorized, rel=3e-6)


def test_the_pairs_kept_shrink_with_eps(monkeypatch):
    # 3000 points in 2-D go through two levels; at eps = 1e-4 of the largest cost the finest keeps a few dozen pairs
    # a point, against hundreds at 1e-2
    pairs = final_pairs(monkeypatch)
    rng = np.random.default_rng(1)
    x, y = rng.random((3000, 2)), 0.8 * rng.random((3000, 2)) + 0.15
    for eps in (2e-2, 2e-4):
        sinkhorn(x, y, eps=eps, debias=False, backend="multiscale")
    wide, narrow = (len(kept) / 3000 for kept in pairs)
    assert narrow < 100 and wide > 10 * narrow, (narrow, wide)


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


def test_cells_partition_the_points():
    generator = torch.Generator().manual_seed(6)
    x, y = torch.rand(500, 3, generator=generator, dtype=torch.float64), torch.rand(300, 3, generator=generator,
                                                                                   dtype=torch.float64) * 2
    x_cells, y_cells, side = _grid.grid_cells(x, y, 8)
    both = torch.cat([x, y])
    origin, extent = both.amin(0), float((both.amax(0) - both.amin(0)).max())
    # 500 points at 8 a cell: 3 cells a side (the floor of 62.5^(1/3): at most 62.5 cells, so that a level of 2
    # points a cell has at most half the points of the finer one)
    assert side == pytest.approx(extent / 3)
    for points, cells in ((x, x_cells), (y, y_cells)):
        assert sorted(cells.order.tolist()) == list(range(len(points)))
        index = ((points[cells.order] - origin) / side).floor().clamp(max=2)
        cell = cells.of_points()
        assert bool((index[1:] != index[:-1]).any(1).eq(cell[1:] != cell[:-1]).all())  # a cell = one grid index


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


def test_pairs_the_carry_misses_are_found_and_added(small_cells, monkeypatch):
    # Carrying far too few pairs between levels (a margin of -8: pairs of more than e^-22 of their weight are
    # dropped on the way): the check of the mass left out finds the pairs missing, and a second solve adds them.
    monkeypatch.setattr(_multiscale, "_CARRY_MARGIN", -8.0)
    solves = []
    solve = _left_out._sinkhorn_solver.solve
    monkeypatch.setattr(_left_out._sinkhorn_solver, "solve", lambda *args, **kw: solves.append(1) or solve(*args, **kw))
    rng = np.random.default_rng(9)
    x, y = rng.random((40, 2)), 0.5 * rng.random((30, 2)) + 0.3
    tensorized = float(sinkhorn(x, y, eps=0.003, debias=False, backend="tensorized"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        multiscale = float(sinkhorn(x, y, eps=0.003, debias=False, backend="multiscale"))
    assert multiscale == pytest.approx(tensorized, rel=3e-6)
    assert len(solves) >= 2


def test_mass_still_left_out_after_the_rounds_warns(small_cells, monkeypatch):
    monkeypatch.setattr(_multiscale, "_CARRY_MARGIN", -10.0)
    monkeypatch.setattr(_left_out, "_ROUNDS", 1)
    rng = np.random.default_rng(5)
    with pytest.warns(RuntimeWarning, match="the mass of the pairs left out is bounded by"):
        sinkhorn(rng.random((30, 2)), rng.random((30, 2)), eps=0.005, debias=False, backend="multiscale")
