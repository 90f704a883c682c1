"""A generated matrix of hostile inputs for every public function of ``divergences``.

Each case takes a valid call (``Spec``), replaces one array argument by a
variant of it (``Variant``: NaN, infinities, wrong shapes, exotic dtypes,
views, other libraries and devices, extremes, non-arrays) and says what must
happen (``expect``):

- ``ERROR``: a ``ValueError`` or ``TypeError`` whose message names an argument
  in backticks (the varied one, or for a mixed library or device, any);
- otherwise the variant holds the same numbers as a plain float64 numpy array
  (``canonical``), and the call must do what the call on that array does:
  the same value (to the precision of the dtype), or the same named error.

Never another exception, a NaN, a warning from inside torch, numpy or POT, or
more than ``TIME_LIMIT_S`` seconds.  ``python tests/hostile.py`` prints the
counts of each outcome.
"""

import collections
import inspect
import math
import re
import signal
import time
import warnings
from typing import Callable, NamedTuple

import numpy as np
import torch

import divergences

torch.set_warn_always(True)  # torch warns once per process otherwise, and a case would hide the next one's
TIME_LIMIT_S = 5
ERROR = "error"
OUTCOMES = ("named error", "correct", "wrong error", "unnamed error", "crash", "silent answer", "wrong value", "nan",
            "foreign warning", "slow")
GOOD = ("named error", "correct")


class Spec(NamedTuple):
    """A valid call: ``function(**args, **options)``; ``roles`` says what each array argument is."""

    name: str
    function: Callable
    args: dict  # float64 numpy arrays, in the order of the signature
    roles: dict  # "weights" (optional, normalised), "masses", "points", "cost", "scores" or "images"
    options: dict
    float32_rtol: float = 1e-5  # agreement of a float32 computation with float64


def _images(seed):
    return np.random.default_rng(seed).integers(0, 4, size=(2, 1, 16, 16)).astype(np.float64)


_FEATURES_X = np.array([[0.0, 1.0], [2.0, -1.0], [3.0, 3.0], [1.0, 0.5]])
_FEATURES_Y = np.array([[1.0, 1.0], [-2.0, 0.0], [0.5, 2.0]])

SPECS = [
    Spec("kl", divergences.kl, {"p": np.array([1.0, 2.0, 3.0, 4.0]), "q": np.array([4.0, 3.0, 2.0, 1.0])},
         {"p": "weights", "q": "weights"}, {}),
    Spec("js", divergences.js, {"p": np.array([1.0, 2.0, 3.0, 0.0]), "q": np.array([4.0, 3.0, 2.0, 1.0])},
         {"p": "weights", "q": "weights"}, {}),
    Spec("js_distance", divergences.js_distance,
         {"p": np.array([1.0, 2.0, 3.0, 4.0]), "q": np.array([4.0, 0.0, 2.0, 1.0])},
         {"p": "weights", "q": "weights"}, {"base": 2}),
    Spec("emd 1-D", divergences.emd,
         {"x": np.array([0.0, 1.0, 3.0, -2.0]), "y": np.array([2.0, 5.0, -1.0]),
          "a": np.array([1.0, 2.0, 1.0, 0.0]), "b": np.array([3.0, 1.0, 1.0])},
         {"x": "points", "y": "points", "a": "weights", "b": "weights"}, {"p": 2}),
    Spec("emd 2-D", divergences.emd,
         {"x": np.array([[0.0, 1.0], [2.0, -1.0], [3.0, 3.0]]), "y": np.array([[1.0, 1.0], [-2.0, 0.0]]),
          "a": np.array([1.0, 2.0, 0.0]), "b": np.array([1.0, 1.0])},
         {"x": "points", "y": "points", "a": "weights", "b": "weights"}, {"p": 1}),
    Spec("emd_cost", divergences.emd_cost,
         {"a": np.array([1.0, 2.0, 1.0]), "b": np.array([2.0, 2.0]),
          "cost": np.array([[0.0, 3.0], [1.0, -2.0], [4.0, 1.0]])},
         {"a": "masses", "b": "masses", "cost": "cost"}, {}),
    Spec("sinkhorn", divergences.sinkhorn,
         {"x": np.array([[0.0, 1.0], [2.0, -1.0], [3.0, 3.0]]), "y": np.array([[1.0, 1.0], [-2.0, 0.0]]),
          "a": np.array([1.0, 2.0, 1.0]), "b": np.array([1.0, 1.0])},
         {"x": "points", "y": "points", "a": "weights", "b": "weights"}, {"eps": 1.0}, float32_rtol=1e-3),
    Spec("sliced", divergences.sliced,
         {"x": np.array([[0.0, 1.0], [2.0, -1.0], [3.0, 3.0]]), "y": np.array([[1.0, 1.0], [-2.0, 0.0]]),
          "a": np.array([1.0, 2.0, 1.0]), "b": np.array([1.0, 1.0])},
         {"x": "points", "y": "points", "a": "weights", "b": "weights"}, {"n_projections": 16, "seed": 3}),
    Spec("patch_sliced", divergences.patch_sliced, {"x": _images(0), "y": _images(1)},
         {"x": "images", "y": "images"},
         {"patch_size": 3, "patches_per_image": 4, "n_projections": 8, "min_resolution": 8, "seed": 1}),
    Spec("js_from_discriminator", divergences.js_from_discriminator,
         {"real_logits": np.array([2.0, -1.0, 3.0]), "fake_logits": np.array([-2.0, 0.0])},
         {"real_logits": "scores", "fake_logits": "scores"}, {}),
    Spec("critic_w1_estimate", divergences.critic_w1_estimate,
         {"real_scores": np.array([2.0, -1.0, 3.0]), "fake_scores": np.array([-2.0, 0.0])},
         {"real_scores": "scores", "fake_scores": "scores"}, {}),
    Spec("frechet", divergences.frechet, {"x": _FEATURES_X, "y": _FEATURES_Y}, {"x": "points", "y": "points"}, {}),
    Spec("frechet_gaussians", divergences.frechet_gaussians,
         {"mean_x": np.array([0.0, 1.0]), "cov_x": np.array([[2.0, 0.5], [0.5, 1.0]]),
          "mean_y": np.array([1.0, -1.0]), "cov_y": np.array([[1.0, -0.25], [-0.25, 3.0]])},
         {"mean_x": "points", "cov_x": "points", "mean_y": "points", "cov_y": "points"}, {}),
    Spec("gaussian_fit", divergences.gaussian_fit, {"x": _FEATURES_X}, {"x": "points"}, {}),
    Spec("mmd", divergences.mmd, {"x": _FEATURES_X, "y": _FEATURES_Y}, {"x": "points", "y": "points"}, {}),
    Spec("mmd gaussian", divergences.mmd, {"x": _FEATURES_X, "y": _FEATURES_Y}, {"x": "points", "y": "points"},
         {"kernel": "gaussian", "blur": 1.5}),
    Spec("kid", divergences.kid, {"x": _FEATURES_X, "y": _FEATURES_Y}, {"x": "points", "y": "points"},
         {"subsets": 3, "subset_size": 3, "seed": 0}),
    Spec("prdc", divergences.prdc, {"real": np.concatenate([_FEATURES_X, _FEATURES_Y]), "fake": _FEATURES_Y},
         {"real": "points", "fake": "points"}, {"k": 2}),
]


class Variant(NamedTuple):
    """``make(array, role)`` -> (value passed, expectation: ERROR or a float64 array), or None if it does not apply.

    ``library`` is "torch" when the other array arguments must be torch too
    (float64 tensors, or ``others_dtype``) for the case to mean what it says.
    """

    name: str
    make: Callable
    library: str = "numpy"
    others_dtype: torch.dtype = torch.float64


def _with_entry(value):
    def make(array, role):
        changed = array.copy()
        changed.flat[0] = value
        return changed, ERROR

    return make


def _negative(array, role):
    changed = array.copy()
    changed.flat[0] = -1.0
    return changed, ERROR if role in ("weights", "masses") else changed


def _zeros(array, role):
    return np.zeros_like(array), np.zeros_like(array)


def _empty(array, role):
    return np.zeros((0,) + array.shape[1:]), ERROR


def _scalar(kind):
    def make(array, role):
        value = {"numpy": np.float64(2.0), "python": 2.0, "torch": torch.tensor(2.0, dtype=torch.float64)}[kind]
        return value, np.array(2.0)

    return make


def _one_more(array, role):
    grown = np.concatenate([array, array[:1]])
    return grown, grown


def _as_dtype(dtype, exact_only=True):
    def make(array, role):
        if dtype == np.uint8 and array.min() < 0:
            return None
        converted = array.astype(dtype)
        if exact_only and not np.array_equal(converted.astype(np.float64), array):
            return None
        return converted, converted.astype(np.float64)

    return make


def _bool(array, role):
    return array != 0, (array != 0).astype(np.float64)


def _type_error(build):
    def make(array, role):
        return build(array), ERROR

    return make


def _ragged(array, role):
    if array.ndim < 2:
        return None
    rows = array.tolist()
    rows[0] = rows[0][:-1]
    return rows, ERROR


def _same(build):
    def make(array, role):
        return build(array), array

    return make


def _strided(array):
    doubled = np.repeat(array, 2, axis=0)
    return doubled[::2]


def _fortran(array):
    return None if array.ndim < 2 else np.asfortranarray(array)


def _read_only(array):
    frozen = array.copy()
    frozen.setflags(write=False)
    return frozen


def _big_endian(array):
    return array.astype(">f8")


def _scaled_weights(factor):
    def make(array, role):
        if role != "weights":
            return None
        return array * factor, array

    return make


def _overflowing_sum(array, role):
    if role != "weights" or array.max() == 0:
        return None
    scaled = array / array.max() * 1.7e308
    return scaled, array


def _torch(dtype, *, transform=None, requires_grad=False, device="cpu"):
    def make(array, role):
        tensor = torch.tensor(array, dtype=dtype if dtype.is_floating_point else torch.float64)
        tensor = tensor.to(dtype)
        if not torch.equal(tensor.double(), torch.tensor(array)):
            return None
        if transform is not None:
            tensor = transform(tensor)
            if tensor is None:
                return None
        tensor = tensor.to(device)
        if requires_grad:
            tensor.requires_grad_(True)
        return tensor, (ERROR if device == "meta" else array)

    return make


def _transposed_view(tensor):
    return None if tensor.ndim < 2 else tensor.mT.contiguous().mT


def _step_view(tensor):
    return torch.repeat_interleave(tensor, 2, dim=0)[::2]


VARIANTS = [
    Variant("NaN entry", _with_entry(math.nan)),
    Variant("+inf entry", _with_entry(math.inf)),
    Variant("-inf entry", _with_entry(-math.inf)),
    Variant("negative entry", _negative),
    Variant("all zeros", _zeros),
    Variant("empty", _empty),
    Variant("numpy 0-d", _scalar("numpy")),
    Variant("python float", _scalar("python")),
    Variant("one more entry", _one_more),
    Variant("int64", _as_dtype(np.int64)),
    Variant("int32", _as_dtype(np.int32)),
    Variant("uint8", _as_dtype(np.uint8)),
    Variant("bool", _bool),
    Variant("float16", _as_dtype(np.float16)),
    Variant("float32", _as_dtype(np.float32)),
    Variant("long double", _as_dtype(np.longdouble)),
    Variant("big-endian", _same(_big_endian)),
    Variant("list", _same(lambda array: array.tolist())),
    Variant("tuple", _same(lambda array: tuple(map(tuple, array)) if array.ndim == 2 else tuple(array.tolist()))),
    Variant("strided view", _same(_strided)),
    Variant("Fortran order", lambda array, role: None if array.ndim < 2 else (_fortran(array), array)),
    Variant("read-only", _same(_read_only)),
    Variant("complex", _type_error(lambda array: array.astype(np.complex128))),
    Variant("object array", _type_error(lambda array: array.astype(object))),
    Variant("string", _type_error(lambda array: "0 1 2")),
    Variant("None", _type_error(lambda array: None)),  # not for arguments whose default is None
    Variant("dict", _type_error(lambda array: {"values": array})),
    Variant("datetime64", _type_error(lambda array: array.astype("datetime64[s]"))),
    Variant("ragged lists", _ragged),
    Variant("weights x 1e300", _scaled_weights(1e300)),
    Variant("weights x 1e-300", _scaled_weights(1e-300)),
    Variant("subnormal weights", _scaled_weights(5e-324)),
    Variant("weights whose sum overflows", _overflowing_sum),
    Variant("torch among numpy", _type_error(lambda array: torch.tensor(array))),
    Variant("torch float64", _torch(torch.float64), library="torch"),
    Variant("torch float32", _torch(torch.float32), library="torch"),
    Variant("torch float16", _torch(torch.float16), library="torch", others_dtype=torch.float32),
    Variant("torch bfloat16", _torch(torch.bfloat16), library="torch", others_dtype=torch.float32),
    Variant("torch int64", _torch(torch.int64), library="torch"),
    Variant("torch 0-d", _scalar("torch"), library="torch"),
    Variant("torch requires_grad", _torch(torch.float64, requires_grad=True), library="torch"),
    Variant("torch transposed view", _torch(torch.float64, transform=_transposed_view), library="torch"),
    Variant("torch strided view", _torch(torch.float64, transform=_step_view), library="torch"),
    Variant("torch meta device", _torch(torch.float64, device="meta"), library="torch"),
]


def _option_value(value, canonical=None):
    """An option variant: ``value`` is passed, and behaves as ``canonical`` (itself if None) or is an ERROR."""

    def make(flag):
        if canonical is ERROR:
            return value, ERROR
        if canonical == "flag":  # a valid boolean flag, an error for any other option
            return value, bool(value) if flag else ERROR
        if flag:  # only True and False are flags
            return value, ERROR
        return value, value if canonical is None else canonical

    return make


OPTION_VARIANTS = [
    Variant("None", _option_value(None)),
    Variant("True", _option_value(True, "flag")),
    Variant("False", _option_value(False, "flag")),
    Variant("numpy bool", _option_value(np.bool_(True), "flag")),
    Variant("string", _option_value("2", ERROR)),
    Variant("list", _option_value([2], ERROR)),
    Variant("complex", _option_value(2 + 0j, ERROR)),
    Variant("torch 0-d", _option_value(torch.tensor(2.0), ERROR)),
    Variant("NaN", _option_value(math.nan)),
    Variant("+inf", _option_value(math.inf)),
    Variant("-inf", _option_value(-math.inf)),
    Variant("-1", _option_value(-1)),
    Variant("0", _option_value(0)),
    Variant("0.5", _option_value(0.5)),
    Variant("1", _option_value(1)),
    Variant("2", _option_value(2)),
    Variant("7", _option_value(7)),
    Variant("1e300", _option_value(1e300)),
    Variant("1e-300", _option_value(1e-300)),
    Variant("5e-324", _option_value(5e-324)),
    Variant("2**40", _option_value(2**40)),
    Variant("2**64", _option_value(2**64)),
    Variant("2**70", _option_value(2**70)),
    Variant("numpy float64", _option_value(np.float64(2.0), 2.0)),
    Variant("numpy int64", _option_value(np.int64(2), 2)),
]


class Case(NamedTuple):
    spec: Spec
    argument: str  # an array argument, or an option
    variant: Variant
    option: bool = False

    @property
    def id(self):
        return f"{self.spec.name}-{self.argument}-{self.variant.name}"


def cases():
    """Every (spec, array argument or option, variant) that applies."""
    found = []
    for spec in SPECS:
        parameters = inspect.signature(spec.function).parameters
        for argument, array in spec.args.items():
            optional = parameters[argument].default is None
            for variant in VARIANTS:
                if variant.name == "None" and optional:
                    continue
                if variant.name == "torch among numpy" and len(spec.args) == 1:  # no numpy argument to mix with
                    continue
                if variant.make(array, spec.roles[argument]) is not None:
                    found.append(Case(spec, argument, variant))
        for option, parameter in parameters.items():
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                found.extend(Case(spec, option, variant, option=True) for variant in OPTION_VARIANTS)
    return found


class Outcome(NamedTuple):
    kind: str
    detail: str


def run(case):
    """Call the case and classify what happened (one of OUTCOMES)."""
    if case.option:
        return _run_option(case)
    spec, argument, variant, _ = case
    value, expected = variant.make(spec.args[argument], spec.roles[argument])
    args = dict(spec.args)
    low_precision = False
    if variant.library == "torch":
        args = {name: torch.tensor(array, dtype=variant.others_dtype) for name, array in args.items()}
        low_precision = variant.others_dtype != torch.float64
    if variant.library == "torch" and isinstance(value, torch.Tensor):
        low_precision = low_precision or value.dtype in (torch.float32, torch.float16, torch.bfloat16)
    args[argument] = value
    reference = None
    if expected is not ERROR:
        canonical = dict(spec.args)
        canonical[argument] = expected
        reference = _call(spec, canonical, spec.options)
    result = _call(spec, args, spec.options)
    return _classify(case, result, reference, low_precision)


def _run_option(case):
    spec, option, variant, _ = case
    default = inspect.signature(spec.function).parameters[option].default
    value, expected = variant.make(isinstance(default, bool))
    reference = None
    if expected is not ERROR:
        reference = _call(spec, spec.args, {**spec.options, option: expected})
    result = _call(spec, spec.args, {**spec.options, option: value})
    return _classify(case, result, reference, low_precision=False)


class _Result(NamedTuple):
    value: object
    error: BaseException
    warnings: list
    seconds: float


class _TimeLimit(Exception):
    pass


def _on_alarm(signum, frame):
    raise _TimeLimit


def _call(spec, args, options):
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(TIME_LIMIT_S)
    torch.manual_seed(0)  # `seed=None` draws from the global generator
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value, error = spec.function(**args, **options), None
            except _TimeLimit as limit:
                value, error = None, limit
            except Exception as exception:  # noqa: BLE001 - classified below
                value, error = None, exception
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return _Result(value, error, list(caught), time.perf_counter() - start)


_FOREIGN = re.compile(r"[/\\](torch|numpy|ot|scipy)[/\\]")


def _classify(case, result, reference, low_precision):
    spec, argument, variant, _ = case
    foreign = [w for w in result.warnings if _FOREIGN.search(w.filename)]
    if isinstance(result.error, _TimeLimit):
        return Outcome("slow", f"over {TIME_LIMIT_S} s")
    if foreign:
        w = foreign[0]
        return Outcome("foreign warning", f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})")
    if reference is None or reference.error is not None:
        return _classify_expected_error(case, result, reference)
    if result.error is not None:
        return Outcome("wrong error", f"{type(result.error).__name__}: {result.error}")
    return _compare(spec, result.value, reference.value, low_precision)


def _classify_expected_error(case, result, reference):
    if result.error is None:
        values = _as_float_array(result.value)
        if np.isnan(values).any():
            return Outcome("nan", repr(result.value))
        return Outcome("silent answer", repr(result.value))
    error = result.error
    if not isinstance(error, (ValueError, TypeError)):
        return Outcome("crash", f"{type(error).__name__}: {error}")
    message = str(error)
    names = set(re.findall(r"`(\w+)`", message))
    mixed = not case.option and (case.variant.library != "numpy" or "torch" in case.variant.name)
    allowed = set(case.spec.args) if mixed else {case.argument}
    if reference is not None and reference.error is not None:
        allowed |= set(re.findall(r"`(\w+)`", str(reference.error)))
    if not names & allowed:
        return Outcome("unnamed error", f"{type(error).__name__}: {message}")
    return Outcome("named error", message)


def _as_float_array(value):
    if isinstance(value, tuple):
        value = value[0]
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)


def _compare(spec, value, reference, low_precision):
    got, want = _as_float_array(value), _as_float_array(reference)
    if np.isnan(got).any():
        return Outcome("nan", f"{got} (expected {want})")
    if got.shape != want.shape:
        return Outcome("wrong value", f"shape {got.shape} (expected {want.shape})")
    rtol = spec.float32_rtol if low_precision else 1e-12
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-300)
    if np.abs(got - want).max(initial=0.0) > rtol * scale + 1e-300:
        return Outcome("wrong value", f"{got} (expected {want})")
    return Outcome("correct", "")


def main():
    """Print the number of cases of each outcome, by function, and each bad case."""
    counts = collections.Counter()
    by_function = collections.defaultdict(collections.Counter)
    bad = []
    for case in cases():
        outcome = run(case)
        counts[outcome.kind] += 1
        by_function[case.spec.name][outcome.kind] += 1
        if outcome.kind not in GOOD:
            bad.append((case.id, outcome))
    for case_id, outcome in bad:
        print(f"{outcome.kind:16} {case_id}: {outcome.detail[:160]}")
    print()
    for name, function_counts in by_function.items():
        print(f"{name:24}", dict(function_counts))
    print("total", sum(counts.values()), dict(counts))


if __name__ == "__main__":
    main()
