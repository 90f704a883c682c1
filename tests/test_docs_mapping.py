"""Every row of docs/api.md's "Mapping to scipy, POT and GeomLoss" holds as written, on 2-D input.

Histograms come as batches (3 rows of 5 bins), so a claim that is only true on 1-D input fails
here; points are 2-D clouds with non-uniform weights.
"""

import numpy as np
import ot
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon

from divergences import emd, emd_cost, js, js_distance, kl, sinkhorn, sliced
from divergences.sliced import _directions

RNG = np.random.default_rng(0)
P, Q = RNG.random((3, 5)) + 0.05, RNG.random((3, 5)) + 0.05  # unnormalised histograms, one a row
X, Y = RNG.random((6, 2)), RNG.random((4, 2)) + 0.3
A, B = RNG.random(6) + 0.1, RNG.random(4) + 0.1
A, B = A / A.sum(), B / B.sum()
M1 = ot.dist(X, Y, metric="euclidean")


@pytest.mark.parametrize("base", [None, 2.0])
def test_kl_is_scipy_entropy_along_the_last_axis(base):
    np.testing.assert_allclose(kl(P, Q, base=base), st.entropy(P, Q, base=base, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(kl(P, Q, base=base, axis=0), st.entropy(P, Q, base=base, axis=0), rtol=1e-12)


@pytest.mark.parametrize("base", [None, 2.0])
def test_js_distance_is_scipy_jensenshannon_along_the_last_axis(base):
    np.testing.assert_allclose(js_distance(P, Q, base=base), jensenshannon(P, Q, base=base, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(js(P, Q, base=base), jensenshannon(P, Q, base=base, axis=-1) ** 2, rtol=1e-12)


def test_the_default_axes_differ_as_the_docs_say():
    p, q = np.array([[.1, .9], [.5, .5], [.3, .7]]), np.array([[.2, .8], [.5, .5], [.9, .1]])
    assert jensenshannon(p, q).shape == (2,) and js_distance(p, q).shape == (3,)
    np.testing.assert_allclose(js_distance(p, q, axis=0), jensenshannon(p, q), rtol=1e-12)
    np.testing.assert_allclose(js_distance(p, q), jensenshannon(p, q, axis=-1), rtol=1e-12, atol=1e-12)


def test_emd_is_scipy_wasserstein_distance_in_1d_and_nd():
    u, v = X[:, 0], Y[:, 0]
    assert emd(u, v, A, B) == pytest.approx(st.wasserstein_distance(u, v, A, B), rel=1e-12)
    assert emd(X, Y, A, B) == pytest.approx(st.wasserstein_distance_nd(X, Y, A, B), rel=1e-9)


def test_emd_cost_is_pot_emd2_unnormalised():
    assert emd_cost(A, B, M1) == pytest.approx(ot.emd2(A, B, M1), rel=1e-12)
    assert emd_cost(2 * A, 2 * B, M1) == pytest.approx(ot.emd2(2 * A, 2 * B, M1), rel=1e-12)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_emd_to_the_p_is_pot_emd2_of_the_pth_power_of_euclidean(p):
    assert emd(X, Y, A, B, p=p) ** p == pytest.approx(ot.emd2(A, B, M1 ** p), rel=1e-9)


def test_pot_dist_defaults_to_squared_euclidean():
    assert emd(X, Y, A, B, p=2) ** 2 == pytest.approx(ot.emd2(A, B, ot.dist(X, Y)), rel=1e-9)


def test_pot_1d_functions():
    u, v = X[:, 0], Y[:, 0]
    assert emd(u, v, A, B, p=2) ** 2 == pytest.approx(ot.emd2_1d(u, v, A, B), rel=1e-9)
    assert emd(u, v, A, B, p=3) ** 3 == pytest.approx(ot.emd2_1d(u, v, A, B, metric="minkowski", p=3), rel=1e-9)
    assert emd(u, v, A, B, p=2) ** 2 == pytest.approx(ot.wasserstein_1d(u, v, A, B, p=2), rel=1e-9)


def test_sinkhorn_without_debiasing_is_pot_sinkhorn2():
    ours = sinkhorn(X, Y, A, B, eps=0.5, debias=False, tol=1e-10)
    theirs = ot.sinkhorn2(A, B, ot.dist(X, Y), 0.5, numItermax=100_000, stopThr=1e-13, method="sinkhorn_log")
    assert ours == pytest.approx(float(theirs), rel=1e-7)
    ours_1 = sinkhorn(X, Y, A, B, eps=0.5, p=1, debias=False, tol=1e-10)
    theirs_1 = ot.sinkhorn2(A, B, M1, 0.5, numItermax=100_000, stopThr=1e-13, method="sinkhorn_log")
    assert ours_1 == pytest.approx(float(theirs_1), rel=1e-7)


def test_sliced_is_pots_estimator_given_our_directions():
    projections = _directions(2, 64, 3).double().numpy()  # (d, P): the directions `sliced` draws for this seed
    ours = sliced(X, Y, A, B, p=2, n_projections=64, seed=3)
    theirs = ot.sliced_wasserstein_distance(X, Y, A, B, n_projections=64, p=2, projections=projections)
    assert ours == pytest.approx(float(theirs), rel=1e-9)
