"""Every option of every public probe is checked up front, in the library's convention.

A bad option raises TypeError (wrong type) or ValueError (bad value) before
any computation, with a message naming the option in backticks, and no
warning (such as numpy's divide-by-zero) comes before the error.
"""

import inspect
import math
import warnings

import pytest

from divergences import probes

# The kind of every option of every public probe function; a new option must be listed here.
OPTIONS = {
    probes.parallel_lines: {
        "thetas": "theta grid",
        "n_samples": "count",
        "bins": "count",
        "eps": "positive",
        "seed": "seed",
    },
    probes.shift_sweep: {
        "deltas": "shift grid",
        "dimension": "count",
        "family": "family",
        "n_samples": "count",
        "bins": "count",
        "eps": "positive",
        "seed": "seed",
    },
    probes.discriminator_vs_critic: {
        "real_mean": "real",
        "fake_mean": "real",
        "n_samples": "sample count",
        "steps": "count",
        "discriminator_steps": "count",
        "critic_lr": "positive",
        "gp_weight": "positive",
        "seed": "torch seed",
    },
    probes.few_samples: {"bins": "integer grid", "n_samples": "count", "trials": "count", "seed": "seed"},
    probes.high_dimension: {
        "dimensions": "dimension grid",
        "n_samples": "count",
        "shifts": "shift grid",
        "seed": "seed",
    },
}

_NUMBERS = (0, -1, 2.5, math.nan, math.inf)
_NOT_NUMBERS = ("x", None, True, "no", [1])
_SCALARS = (0, -1, 2.5, math.nan, math.inf, "x", "no", True)  # not one-dimensional arrays
# Invalid values of each kind of option (None is the default of the grids and numpy seeds).
INVALID = {
    "count": _NUMBERS + _NOT_NUMBERS,
    "sample count": _NUMBERS + _NOT_NUMBERS + (1,),
    "seed": (-1, 2.5, math.nan, math.inf, "x", True, "no", [1], 2**64),
    "torch seed": (-1, 2.5, math.nan, math.inf, "x", None, True, "no", [1], 2**64),
    "positive": (0, -1, 0.0, math.nan, math.inf, -math.inf, "x", None, True, "no", [1]),
    "real": (math.nan, math.inf, -math.inf, "x", None, True, "no", [1]),
    "family": _NUMBERS + ("x", None, True, "no", ["box"], "Gaussian"),
    "theta grid": _SCALARS + ([1.5], [-1.5], [math.nan], [math.inf], ["x"], [True], [[0.0]], [0.0, [1.0]]),
    "shift grid": _SCALARS + ([-1.0], [math.nan], [math.inf], ["x"], [True], [[0.0]], [0.0, [1.0]]),
    "integer grid": _SCALARS + ([0], [-1], [2.5], [math.nan], ["x"], [True], [[2]], [2, [4]]),
    "dimension grid": _SCALARS + ([1], [0], [2.5], [math.nan], ["x"], [True], [[2]], [2, [4]]),
}


def test_every_option_of_every_probe_is_listed():
    for function, options in OPTIONS.items():
        assert list(options) == list(inspect.signature(function).parameters), function.__name__
    assert {function.__name__ for function in OPTIONS} == {
        name for name in probes.__all__ if callable(getattr(probes, name)) and name[0].islower()
    }


CASES = [
    pytest.param(function, name, value, id=f"{function.__name__}-{name}-{value!r}")
    for function, options in OPTIONS.items()
    for name, kind in options.items()
    for value in INVALID[kind]
]


@pytest.mark.parametrize(("function", "name", "value"), CASES)
def test_a_bad_option_is_refused_naming_it_without_a_warning(function, name, value):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises((TypeError, ValueError), match=f"`{name}`"):
            function(**{name: value})
    assert caught == []


@pytest.mark.parametrize(
    ("call", "error"),
    [
        # A wrong type is a TypeError, a bad value of the right type a ValueError.
        (lambda: probes.parallel_lines(n_samples=2.5), TypeError),
        (lambda: probes.parallel_lines(n_samples=0), ValueError),
        (lambda: probes.shift_sweep(bins=0), ValueError),
        (lambda: probes.shift_sweep(family=None), TypeError),
        (lambda: probes.shift_sweep(family="cauchy"), ValueError),
        (lambda: probes.few_samples(["x"]), TypeError),
        (lambda: probes.few_samples([0]), ValueError),
        (lambda: probes.discriminator_vs_critic(gp_weight="no"), TypeError),
        (lambda: probes.discriminator_vs_critic(seed=None), TypeError),
    ],
)
def test_wrong_types_and_bad_values_raise_their_own_error(call, error):
    with pytest.raises(error):
        call()
