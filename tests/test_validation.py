"""Every public function rejects bad input up front, with a message that names the argument."""

import math

import numpy as np
import pytest
import torch

from divergences import emd, emd_cost, js, js_distance, kl, sinkhorn, sliced

HISTOGRAM_FUNCTIONS = [kl, js, js_distance]
CLOUD_FUNCTIONS = [emd, sliced, lambda *args, **kwargs: sinkhorn(*args, eps=0.1, **kwargs)]
ALL = HISTOGRAM_FUNCTIONS + CLOUD_FUNCTIONS
GOOD_CLOUD = np.array([[0.0, 0.0], [1.0, 1.0]])


@pytest.mark.parametrize("function", HISTOGRAM_FUNCTIONS)
def test_negative_mass(function):
    with pytest.raises(ValueError, match=r"`p` should be a non-negative mass.*negative entry \(-1\)"):
        function([-1, 2], [1, 1])


@pytest.mark.parametrize("function", HISTOGRAM_FUNCTIONS)
def test_zero_total_mass(function):
    with pytest.raises(ValueError, match="`q` should have a positive total mass"):
        function([1, 2], [0, 0])


@pytest.mark.parametrize("function", ALL)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_or_infinite_values(function, bad):
    first = [1.0, bad] if function in HISTOGRAM_FUNCTIONS else [[0.0, 0.0], [bad, 1.0]]
    second = [1.0, 1.0] if function in HISTOGRAM_FUNCTIONS else GOOD_CLOUD
    with pytest.raises(ValueError, match=r"should be finite\. Instead, it contains (NaN|infinite) values"):
        function(first, second)


@pytest.mark.parametrize("function", HISTOGRAM_FUNCTIONS)
def test_different_numbers_of_bins(function):
    with pytest.raises(ValueError, match=r"`p` and `q` should have the same number of bins.*\(3,\) and \(2,\)"):
        function([1, 2, 3], [1, 2])


@pytest.mark.parametrize("function", ALL)
def test_empty_input(function):
    with pytest.raises(ValueError, match="should not be empty"):
        function([], [1.0])


@pytest.mark.parametrize("function", CLOUD_FUNCTIONS)
def test_points_of_different_dimension(function):
    with pytest.raises(ValueError, match=r"`x` and `y` should have the same dimension.*\(2, 2\) and \(2, 3\)"):
        function(GOOD_CLOUD, np.zeros((2, 3)))


@pytest.mark.parametrize("function", CLOUD_FUNCTIONS)
def test_weights_of_the_wrong_length(function):
    with pytest.raises(ValueError, match=r"`a` should hold one weight per point, shape \(\.\.\., 2\).*\(3,\)"):
        function(GOOD_CLOUD, GOOD_CLOUD, [1.0, 1.0, 1.0])


@pytest.mark.parametrize("function", CLOUD_FUNCTIONS)
def test_negative_weight(function):
    with pytest.raises(ValueError, match="`b` should be a non-negative mass"):
        function(GOOD_CLOUD, GOOD_CLOUD, None, [1.0, -0.5])


@pytest.mark.parametrize("function", CLOUD_FUNCTIONS)
def test_zero_total_weight(function):
    with pytest.raises(ValueError, match="`a` should have a positive total mass"):
        function(GOOD_CLOUD, GOOD_CLOUD, [0.0, 0.0])


@pytest.mark.parametrize("function", CLOUD_FUNCTIONS)
def test_batch_axes_that_do_not_broadcast(function):
    with pytest.raises(ValueError, match=r"leading \(batch\) axes should broadcast.*`x` \(3,\), `y` \(4,\)"):
        function(np.zeros((3, 2, 2)), np.zeros((4, 2, 2)))


@pytest.mark.parametrize("function", ALL)
def test_mixing_numpy_and_torch(function):
    first = torch.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="cannot mix numpy and torch inputs: `.` is a torch.Tensor but `.` is a numpy"):
        function(first, np.array([1.0, 2.0]))


@pytest.mark.parametrize("function", ALL)
def test_tensors_on_different_devices(function):
    with pytest.raises(ValueError, match="same device: `.` is on cpu but `.` is on meta"):
        function(torch.ones(2), torch.ones(2, device="meta"))


@pytest.mark.parametrize("function", ALL)
@pytest.mark.parametrize("bad", ["abc", {"a": 1}, None.__class__, True])
def test_wrong_types(function, bad):
    with pytest.raises(TypeError, match="`.` should be an array_like of real numbers or a torch.Tensor"):
        function(bad, [1.0, 2.0])


@pytest.mark.parametrize("function", ALL)
def test_complex_values(function):
    with pytest.raises(TypeError, match="should hold real numbers. Instead, received complex values"):
        function(np.array([1 + 1j, 2]), [1.0, 2.0])


@pytest.mark.parametrize("eps", [0, -1.0, math.nan])
def test_eps_must_be_positive_and_finite(eps):
    with pytest.raises(ValueError, match=r"`eps` should be (> 0|finite)"):
        sinkhorn(GOOD_CLOUD, GOOD_CLOUD, eps=eps)


def test_eps_must_be_a_number():
    with pytest.raises(TypeError, match="`eps` should be a real number"):
        sinkhorn(GOOD_CLOUD, GOOD_CLOUD, eps="0.1")


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("tol", 0.0, "`tol` should be > 0"),
        ("max_iter", 0, "`max_iter` should be a positive integer"),
        ("scaling", 1.0, r"`scaling` should be in \(0, 1\)"),
        ("overrelaxation", 2.0, r"`overrelaxation` should be in \[1, 2\)"),
    ],
)
def test_sinkhorn_options(option, value, message):
    with pytest.raises(ValueError, match=message):
        sinkhorn(GOOD_CLOUD, GOOD_CLOUD, eps=0.1, **{option: value})


@pytest.mark.parametrize("function", CLOUD_FUNCTIONS)
def test_exponent_below_one(function):
    with pytest.raises(ValueError, match=r"`p` should be >= 1.*received 0.5"):
        function(GOOD_CLOUD, GOOD_CLOUD, p=0.5)


@pytest.mark.parametrize("function", HISTOGRAM_FUNCTIONS)
@pytest.mark.parametrize("base", [1, 0, -2.0])
def test_invalid_log_base(function, base):
    with pytest.raises(ValueError, match="`base` should be"):
        function([1, 2], [2, 1], base=base)


@pytest.mark.parametrize("function", HISTOGRAM_FUNCTIONS)
def test_axis_out_of_range(function):
    with pytest.raises(ValueError, match=r"`axis` should be in \[-1, 0\].*received 1"):
        function([1, 2], [2, 1], axis=1)


@pytest.mark.parametrize("function", HISTOGRAM_FUNCTIONS)
def test_axis_must_be_an_integer(function):
    with pytest.raises(TypeError, match="`axis` should be an integer"):
        function([1, 2], [2, 1], axis=0.5)


@pytest.mark.parametrize("value, error", [(0, ValueError), (2.5, TypeError)])
def test_n_projections(value, error):
    with pytest.raises(error, match="`n_projections` should be a positive integer"):
        sliced(GOOD_CLOUD, GOOD_CLOUD, n_projections=value)


@pytest.mark.parametrize("value, error", [(-1, ValueError), ("x", TypeError)])
def test_seed(value, error):
    with pytest.raises(error, match="`seed` should be"):
        sliced(GOOD_CLOUD, GOOD_CLOUD, seed=value)


def test_emd_cost_with_unequal_masses():
    with pytest.raises(ValueError, match="`a` and `b` should have the same total mass"):
        emd_cost([1.0, 1.0], [1.0, 0.5], np.zeros((2, 2)))


def test_emd_cost_with_a_cost_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"`cost` should have shape \(\.\.\., 2, 3\).*\(3, 2\)"):
        emd_cost([1.0, 1.0], [1.0, 0.5, 0.5], np.zeros((3, 2)))


def test_emd_cost_with_a_nan_cost():
    with pytest.raises(ValueError, match="`cost` should be finite"):
        emd_cost([1.0], [1.0], [[math.nan]])
