"""The cost and kernel on a set of point pairs (``_sparse``): each operation is the dense one with the other pairs left out."""

import math

import pytest
import torch

from divergences import _left_out, _sparse, _tree
from divergences._plan_system import Plan


def random_pairs(n, m, fraction, seed):
    """A random set of pairs, every row and column in at least one, and its (n, m) mask."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, m, generator=generator) < fraction
    mask[torch.arange(n), torch.randint(0, m, (n,), generator=generator)] = True
    mask[torch.randint(0, n, (m,), generator=generator), torch.arange(m)] = True
    rows, columns = mask.nonzero().unbind(1)
    order = torch.randperm(len(rows), generator=generator)  # any order in
    return _sparse.Pairs.of(rows[order], columns[order], n, m), mask


def problem(n=13, m=11, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n, 2, generator=generator, dtype=dtype), torch.rand(m, 2, generator=generator, dtype=dtype)
    f, g = 0.1 * torch.randn(1, n, generator=generator, dtype=torch.float64), 0.1 * torch.randn(1, m, generator=generator,
                                                                                                 dtype=torch.float64)
    a = torch.rand(1, n, generator=generator, dtype=torch.float64)
    b = torch.rand(1, m, generator=generator, dtype=torch.float64)
    return x, y, f, g, a / a.sum(), b / b.sum()


def test_pairs_are_row_major_with_their_column_major_order():
    pairs, mask = random_pairs(13, 11, 0.3, 1)
    keys = (pairs.rows * 11 + pairs.columns).tolist()
    assert keys == sorted(keys) and len(keys) == int(mask.sum())
    by_column = (pairs.columns[pairs.by_column] * 13 + pairs.rows[pairs.by_column]).tolist()
    assert by_column == sorted(by_column)
    assert pairs.row_starts.diff().tolist() == mask.sum(1).tolist()
    assert pairs.column_starts.diff().tolist() == mask.sum(0).tolist()


def test_a_subset_is_the_pairs_of_its_mask():
    pairs, _ = random_pairs(13, 11, 0.5, 2)
    keep = torch.rand(len(pairs), generator=torch.Generator().manual_seed(3)) < 0.5
    subset = pairs.subset(keep)
    rebuilt = _sparse.Pairs.of(pairs.rows[keep], pairs.columns[keep], 13, 11)
    for ours, expected in zip(subset, rebuilt):
        assert torch.equal(ours, expected)


@pytest.mark.parametrize("index", [torch.int32, torch.int64])
def test_merged_pairs_are_those_of_the_union_and_the_added_costs_are_computed(index, monkeypatch):
    monkeypatch.setattr(_sparse, "index_dtype", lambda size, device: index)  # (int64: the indices a GPU gets)
    pairs, mask = random_pairs(13, 11, 0.6, 8)
    original = [tensor.clone() for tensor in pairs]
    added = torch.rand(len(pairs), generator=torch.Generator().manual_seed(9)) < 0.3
    own = pairs.subset(~added)
    merged, positions = own.merged(pairs.rows[added].long(), pairs.columns[added].long())
    for ours, expected in zip(merged, pairs):
        assert torch.equal(ours, expected)
    assert torch.equal(positions.sort().values, added.nonzero().squeeze(1))
    assert all(torch.equal(before, after) for before, after in zip(original, pairs))  # the pairs merged into: unchanged
    x, y, *_ = problem()
    cost = _sparse.SparseCost(x, y, 3, 2.0, own, largest=8.0).with_pairs(pairs.rows[added], pairs.columns[added])
    assert torch.equal(cost.costs, _sparse.SparseCost(x, y, 3, 2.0, pairs, largest=8.0).costs)


def test_chunks_are_whole_segments_covering_every_entry_once():
    starts = torch.tensor([0, 3, 3, 10, 12, 13, 20], dtype=torch.int32)
    chunks = _sparse._chunks(starts, 4)
    # consecutive whole segments, and the entries between their starts; at most twice the size, or one segment
    assert [(segments.start, segments.stop) for segments, _ in chunks] == [(0, 2), (2, 4), (4, 5), (5, 6)]
    assert [(part.start, part.stop) for _, part in chunks] == [(0, 3), (3, 12), (12, 13), (13, 20)]


@pytest.fixture(params=[None, 7], ids=["whole", "chunks-of-7"])
def chunk(request, monkeypatch):
    """Whole operations, or operations by chunks of about 7 pairs (whole rows or columns)."""
    if request.param is not None:
        monkeypatch.setattr(_sparse, "_CHUNK", request.param)
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_products_are_those_of_the_masked_dense_kernel(dtype, chunk):
    x, y, f, g, a, b = problem(dtype=dtype)
    pairs, mask = random_pairs(13, 11, 0.3, 4)
    cost = _sparse.SparseCost(x, y, 2, 1.0, pairs, largest=8.0)
    dense = torch.cdist(x.double(), y.double()) ** 2
    kernel = cost.kernel(f, g, 0.05, a, b)
    expected = torch.where(mask, torch.exp((f[0][:, None] + g[0][None] - dense) / 0.05), 0.0)
    v, u = torch.rand(1, 11, dtype=torch.float64), torch.rand(1, 13, dtype=torch.float64)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-6
    assert kernel.times(v)[0] == pytest.approx((expected @ v[0]).tolist(), rel=tolerance)
    assert kernel.transposed_times(u)[0] == pytest.approx((u[0] @ expected).tolist(), rel=tolerance)
    assert kernel.squared_times(v)[0] == pytest.approx((expected.square() @ v[0]).tolist(), rel=2 * tolerance)
    rows, columns = kernel.weighted_products(cost, u, v)
    assert rows[0] == pytest.approx(((expected * dense) @ v[0]).tolist(), rel=tolerance)
    assert columns[0] == pytest.approx((u[0] @ (expected * dense)).tolist(), rel=tolerance)


def test_c_transforms_are_log_sum_exps_over_the_pairs(chunk):
    x, y, f, g, a, b = problem()
    pairs, mask = random_pairs(13, 11, 0.3, 5)
    cost = _sparse.SparseCost(x, y, 1.5, 2.0, pairs, largest=8.0)
    dense = torch.cdist(x, y) ** 1.5 / 2.0
    rows = 0.05 * (torch.log(a[0]) - torch.logsumexp(torch.where(mask, (g[0][None] - dense) / 0.05, -math.inf), 1))
    columns = 0.05 * (torch.log(b[0]) - torch.logsumexp(torch.where(mask, (f[0][:, None] - dense) / 0.05, -math.inf), 0))
    assert cost.c_transform_rows(g, a, b, 0.05)[0].tolist() == pytest.approx(rows.tolist(), rel=1e-12)
    assert cost.c_transform_columns(f, a, b, 0.05)[0].tolist() == pytest.approx(columns.tolist(), rel=1e-12)


def test_truncation_keeps_the_pairs_above_the_threshold_and_each_rows_and_columns_largest(chunk):
    x, y, f, g, a, b = problem(40, 30)
    pairs, _ = random_pairs(40, 30, 1.0, 6)  # every pair
    cost = _sparse.SparseCost(x, y, 2, 1.0, pairs, largest=8.0, threshold=5.0)
    eps = 0.01
    exponents = (f[0][:, None] + g[0][None] - torch.cdist(x, y) ** 2) / eps
    above = exponents >= torch.minimum(torch.log(a[0])[:, None], torch.log(b[0])[None]) - 5.0
    largest = (exponents == exponents.amax(1, keepdim=True)) | (exponents == exponents.amax(0, keepdim=True))
    kept = cost.truncated(f, g, eps, a, b).pairs
    mask = torch.zeros(40, 30, dtype=torch.bool)
    mask[kept.rows, kept.columns] = True
    assert torch.equal(mask, above | largest)
    assert 0 < int(mask.sum()) < 40 * 30


def test_points_gradient_is_autograds_of_the_plans_weighted_cost():
    # With lam = mu = 0 the gradient is that of sum_ij P_ij (1 - C_ij / eps) through C alone, P held fixed.
    x, y, f, g, a, b = problem()
    pairs, mask = random_pairs(13, 11, 0.4, 7)
    cost = _sparse.SparseCost(x, y, 3, 2.0, pairs, largest=8.0)
    plan = Plan(cost.kernel(f, g, 0.1, a, b), torch.rand(1, 13, dtype=torch.float64), torch.rand(1, 11, dtype=torch.float64))
    grad_x, grad_y = _sparse.points_gradient(plan, cost, torch.zeros(1, 13, dtype=torch.float64),
                                             torch.zeros(1, 11, dtype=torch.float64), 0.1)
    xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
    with torch.no_grad():
        weights = torch.where(mask, torch.exp((f[0][:, None] + g[0][None] - torch.cdist(x, y) ** 3 / 2.0) / 0.1), 0.0)
        weights = weights * plan.u[0][:, None] * plan.v[0][None]
        factor = 1 - torch.cdist(x, y) ** 3 / 2.0 / 0.1
    torch.autograd.backward((weights * factor * torch.cdist(xs, ys) ** 3 / 2.0).sum())
    assert grad_x[0].flatten().tolist() == pytest.approx(xs.grad.flatten().tolist(), rel=1e-10, abs=1e-12)
    assert grad_y[0].flatten().tolist() == pytest.approx(ys.grad.flatten().tolist(), rel=1e-10, abs=1e-12)



@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("chunk", [None, 7])
def test_the_bound_on_the_mass_left_out_holds_and_the_missing_pairs_are_those_that_carry_mass(p, seed, chunk, monkeypatch):
    # Potentials near a solution (c-transforms of noise), a random half of the pairs kept: the bound is at least
    # the mass of the pairs left out, and the pairs returned are the left-out ones above the threshold; also when
    # the search and the measurement go by groups of 7 pairs.
    if chunk is not None:
        monkeypatch.setattr(_left_out, "_CHUNK", chunk)
        monkeypatch.setattr(_sparse, "_CHUNK", chunk)
    generator = torch.Generator().manual_seed(seed)
    n, m, eps = 60, 50, 0.02
    x, y = torch.rand(n, 2, generator=generator, dtype=torch.float64), torch.rand(m, 2, generator=generator, dtype=torch.float64)
    a, b = torch.full((1, n), 1 / n, dtype=torch.float64), torch.full((1, m), 1 / m, dtype=torch.float64)
    everything, _ = random_pairs(n, m, 1.0, seed)
    whole = _sparse.SparseCost(x, y, p, 1.0, everything, largest=8.0)
    g = 0.01 * torch.randn(1, m, generator=generator, dtype=torch.float64)
    f = whole.c_transform_rows(g, a, b, eps)
    g = whole.c_transform_columns(f, a, b, eps)
    pairs, mask = random_pairs(n, m, 0.5, seed + 10)
    cost = _sparse.SparseCost(x, y, p, 1.0, pairs, largest=8.0, threshold=10.0)
    rows, columns, log_bound = _left_out.missing_pairs(cost, f, g, eps, a, b, allowance=1e-12)
    exponents = (f[0][:, None] + g[0][None] - torch.cdist(x, y) ** p) / eps
    left_out = torch.logsumexp(torch.where(mask, -math.inf, exponents).flatten(), 0)
    assert log_bound >= float(left_out) - 1e-6  # (cdist by matrix products rounds to ~1e-9)
    carries = ~mask & (exponents >= math.log(1 / n) - 10.0)
    found = torch.zeros(n, m, dtype=torch.bool)
    found[rows, columns] = True
    assert torch.equal(found, carries) and int(carries.sum()) > 0


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_each_cell_pairs_bound_is_at_least_its_mass(p):
    # The bound of every pair of cells, with the potentials' slopes taken out for p = 2, is at least the whole
    # kernel's mass on that cell pair, computed pair by pair.
    generator = torch.Generator().manual_seed(11)
    n, m, eps = 200, 150, 0.01
    x = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    y = 0.7 * torch.rand(m, 2, generator=generator, dtype=torch.float64) + 0.2
    a, b = torch.full((1, n), 1 / n, dtype=torch.float64), torch.full((1, m), 1 / m, dtype=torch.float64)
    everything, _ = random_pairs(n, m, 1.0, 12)
    cost = _sparse.SparseCost(x, y, p, 2.0, everything, largest=8.0)
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    for _ in range(30):  # near the solution: alternate c-transforms
        f = cost.c_transform_rows(g, a, b, eps)
        g = cost.c_transform_columns(f, a, b, eps)
    exponents = (f[0][:, None] + g[0][None] - torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist") ** p / 2.0) / eps
    targets = _left_out._barycentric_targets(cost, f, g, eps) if p == 2 else (None, None)
    x_tree, y_tree = _tree.trees(x, y)
    for level in range(len(x_tree.starts)):  # every cell pair of every level
        x_cells, y_cells = x_tree.cells(level), y_tree.cells(level)
        x_side = _left_out._CellSide(x, f[0] - eps * torch.log(a[0]), torch.log(a[0]), x_cells, 0.5, targets[0], 2.0)
        y_side = _left_out._CellSide(y, g[0] - eps * torch.log(b[0]), torch.log(b[0]), y_cells, 0.5, targets[1], 2.0)
        row_cells, column_cells = (c.flatten() for c in torch.meshgrid(
            torch.arange(len(x_cells.counts)), torch.arange(len(y_cells.counts)), indexing="ij"))
        bounds = (_left_out._exponent_bounds(x_side, y_side, row_cells, column_cells, p, 2.0, eps, 0.5)
                  + x_side.log_masses[row_cells] + y_side.log_masses[column_cells])
        x_cell = torch.empty(n, dtype=torch.long)
        x_cell[x_cells.order] = x_cells.of_points()
        y_cell = torch.empty(m, dtype=torch.long)
        y_cell[y_cells.order] = y_cells.of_points()
        cell_pair = (x_cell[:, None] * len(y_cells.counts) + y_cell[None]).flatten()
        exact = torch.full((len(bounds),), -math.inf, dtype=torch.float64)
        exact = exact.scatter_reduce(0, cell_pair, exponents.flatten(), "amax")  # the largest entry
        masses = torch.zeros_like(exact).index_add_(0, cell_pair, torch.exp(exponents.flatten() - exact[cell_pair]))
        exact = exact + torch.log(masses)  # log of each cell pair's mass
        assert bool((bounds >= exact - 1e-9).all())
        assert int((x_cells.counts[row_cells] * y_cells.counts[column_cells]).sum()) == n * m
        if len(bounds) > 1000:  # and not vacuous near the plan
            assert float((bounds - exact).median()) < (60 if p == 2 else 1e4)


def test_indices_are_int32_on_a_cpu_where_they_fit_and_int64_elsewhere():
    assert _sparse.index_dtype(2**31 - 1, "cpu") == torch.int32
    assert _sparse.index_dtype(2**31, "cpu") == torch.int64
    assert _sparse.index_dtype(10, "meta") == torch.int64
    pairs, _ = random_pairs(13, 11, 0.3, 13)
    assert {tensor.dtype for tensor in pairs} == {torch.int32}


def test_multiscale_gives_the_same_value_and_gradient_with_int64_indices(monkeypatch):
    # The indices a GPU gets, run here: every operation on pairs is the same with either dtype.
    from divergences import _multiscale, sinkhorn
    monkeypatch.setattr(_multiscale, "_BASE_POINTS", 8)
    generator = torch.Generator().manual_seed(14)
    x, y = torch.rand(200, 2, generator=generator, dtype=torch.float64), torch.rand(150, 2, generator=generator, dtype=torch.float64)
    results = []
    for dtype in (torch.int32, torch.int64):
        monkeypatch.setattr(_sparse, "index_dtype", lambda size, device, dtype=dtype: dtype)
        points = x.clone().requires_grad_()
        value = sinkhorn(points, y, eps=1e-3, backend="multiscale")
        value.backward()
        results.append((float(value.detach()), points.grad))
    (value_32, grad_32), (value_64, grad_64) = results
    assert value_64 == pytest.approx(value_32, rel=1e-12)
    assert torch.allclose(grad_64, grad_32, rtol=1e-10, atol=1e-14)
