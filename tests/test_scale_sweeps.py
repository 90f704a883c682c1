"""The feature-space metrics at every scale: the right answer (scale-free quantities computed scale-free) or a named error.

Points scaled by 10^e for e from -300 to 300 (float64) and -30 to 30 (float32): never 0 for a
quantity that does not depend on scale, never NaN, never a traceback from torch's linear algebra.
"""

import math

import numpy as np
import pytest
import torch

from divergences import frechet, frechet_gaussians, gaussian_fit, kid, mmd, prdc

RNG = np.random.default_rng(11)
X = RNG.normal(size=(40, 3))
Y = RNG.normal(size=(30, 3)) + 0.7
SCALES = {"float64": [10.0**e for e in range(-300, 301, 50)] + [1e155, 1e-200], "float32": [10.0**e for e in range(-30, 31, 6)]}
CASES = [(dtype, scale) for dtype, scales in SCALES.items() for scale in scales]


def scaled(points, scale, dtype):
    return torch.tensor(points * scale, dtype=getattr(torch, dtype))


@pytest.mark.parametrize("dtype, scale", CASES)
def test_prdc_is_the_same_at_every_scale(dtype, scale):
    # precision, recall, density and coverage depend only on which distances are smaller: scale-free
    expected = [float(value) for value in prdc(scaled(X, 1.0, dtype), scaled(Y, 1.0, dtype), k=3)]
    found = [float(value) for value in prdc(scaled(X, scale, dtype), scaled(Y, scale, dtype), k=3)]
    assert found == expected and 0 < expected[0] < 1


@pytest.mark.parametrize("dtype, scale", CASES)
def test_frechet_scales_as_the_square_or_names_the_overflow(dtype, scale):
    finfo = torch.finfo(getattr(torch, dtype))
    exact = float(frechet(X, Y)) * scale * scale
    try:
        found = float(frechet(scaled(X, scale, dtype), scaled(Y, scale, dtype)))
    except ValueError as error:
        assert "the Fréchet distance overflows" in str(error) and exact > finfo.max / 4
        return
    assert math.isfinite(found)
    if exact > finfo.tiny * 1e3:
        assert found == pytest.approx(exact, rel=1e-4 if dtype == "float32" else 1e-9)
    else:
        assert found <= finfo.tiny * 1e4  # underflows to (about) 0 as the true value does


@pytest.mark.parametrize("dtype, scale", CASES)
def test_gaussian_fit_and_frechet_gaussians_scale_or_name_the_overflow(dtype, scale):
    finfo = torch.finfo(getattr(torch, dtype))
    try:
        fit_x, fit_y = gaussian_fit(scaled(X, scale, dtype)), gaussian_fit(scaled(Y, scale, dtype))
    except ValueError as error:
        assert "the covariance overflows" in str(error) and scale * scale > finfo.max / 100
        return
    assert torch.isfinite(fit_x.cov).all() and torch.isfinite(fit_y.cov).all()
    try:
        found = float(frechet_gaussians(*fit_x, *fit_y))
    except ValueError as error:
        assert "overflows" in str(error)
        return
    assert math.isfinite(found) and found >= 0


@pytest.mark.parametrize("dtype, scale", CASES)
def test_kid_and_mmd_are_finite_or_name_the_overflow(dtype, scale):
    for function in (lambda x, y: kid(x, y, subsets=3, subset_size=20, seed=0).value, lambda x, y: mmd(x, y),
                     lambda x, y: mmd(x, y, kernel="energy")):
        try:
            value = float(function(scaled(X, scale, dtype), scaled(Y, scale, dtype)))
        except ValueError as error:
            assert "overflows" in str(error) and "rescale" in str(error)
            continue
        assert math.isfinite(value)


@pytest.mark.parametrize("dtype, scale", CASES)
def test_the_energy_distance_scales_as_the_scale(dtype, scale):
    # the energy kernel's MMD is homogeneous of degree 1: computed on rescaled points, scaled back
    finfo = torch.finfo(getattr(torch, dtype))
    exact = float(mmd(X, Y, kernel="energy")) * scale
    if not finfo.tiny * 1e3 < exact < finfo.max / 1e3:
        return
    found = float(mmd(scaled(X, scale, dtype), scaled(Y, scale, dtype), kernel="energy"))
    assert found == pytest.approx(exact, rel=1e-4 if dtype == "float32" else 1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_an_overflow_offers_float64_only_below_float64(dtype):
    from divergences import emd
    x = torch.full((1, 1), torch.finfo(dtype).max, dtype=dtype)
    with pytest.raises(ValueError, match="overflows") as refused:  # W1 between them is twice the largest float
        emd(x, -x)
    assert ("use float64" in str(refused.value)) == (dtype != torch.float64)


@pytest.mark.parametrize("offset", [1e4, 1e6, 1e7, 3e7, 1e8])
def test_prdc_does_not_depend_on_where_the_points_are(offset):
    # |u|^2 + |v|^2 - 2 u.v lost the spread beside the offset: at 1e8 all four values were 0, at 1e6 density 0.99
    expected = [float(value) for value in prdc(X, Y, k=3)]
    found = [float(value) for value in prdc(X + offset, Y + offset, k=3)]
    assert found == expected
    # the fake sample far from the real one keeps its own radii: recall counts real points inside them
    assert [float(value) for value in prdc(X, Y * 1e-3 + offset, k=3)][1] == 0.0
