"""A run's verdict at a glance, and the evidence for it: healthy, learning, not yet learning, or the alarm that fired.

The report puts it in a banner above everything else; it reads the run's alarms (docs/monitor.md),
its ``end`` line, its evaluations and its config, nothing else. "Healthy" is earned, not the
absence of an alarm: the loss-independent distance to the real images must have come at least
`HEALTHY_PROGRESS` of the way from the first evaluation to the real-vs-real floor, and the
generated samples must cover at least `HEALTHY_COVERAGE` of what there is to cover (the modes of
the procedural faces, or the real samples' neighbourhoods); otherwise the run is ``learning``
(some progress) or ``not yet learning`` (none), and the verdict says which sign is missing.
"""

import math
from dataclasses import dataclass

STATES = {"vanishing_gradient": "discriminator saturated", "mode_collapse": "mode collapse", "diverged": "diverged",
          "critic_unbounded": "critic not Lipschitz", "not_learning": "not learning"}
"""The verdict each alarm gives."""

DISTANCES = ("sliced_pixels", "sliced_samples")
"""The loss-independent distance the verdict measures progress on: the first of these a run has,
with its ``_floor`` (the same distance between two sets of real samples)."""

HEALTHY_PROGRESS = 0.5
"""Healthy: the distance came at least this fraction of the way from its first value to the floor ..."""

HEALTHY_COVERAGE = 0.5
"""... and the samples cover at least this fraction of the real modes (or of the real samples, ``coverage_*``)."""

LEARNING_PROGRESS = 0.1
"""Learning: at least this fraction of the way; below it, not yet learning."""


@dataclass(frozen=True)
class Verdict:
    """What a run's banner says.

    Attributes
    ----------
    state : str
        ``healthy``, ``learning``, ``not yet learning``, one of the values of `STATES`, or
        ``not evaluated`` (no ``eval`` line yet).
    reason : str
        Why, in a sentence or two: the alarm, its step and its message; or the evidence.
    """

    state: str
    reason: str

    @property
    def healthy(self):
        return self.state == "healthy"


def verdict(run):
    """The `Verdict` of a run read by `trainers.report.load_run`.

    The first alarm decides (a run that stopped on NaN weights is ``diverged``); later alarms are
    named after it. Without an alarm, the evidence of the evaluations decides (module docstring).
    """
    end, evaluations = run.end, run.of_kind("eval")
    alarms = [alarm for alarm in run.alarms if isinstance(alarm.get("name"), str)]
    if alarms:
        first, later = alarms[0], alarms[1:]
        reason = f"{first['name']} alarm at step {first.get('step', '?')}: {first.get('message', '')}".rstrip()
        if later:
            reason += " Later: " + ", ".join(f"{a['name']} at step {a.get('step', '?')}" for a in later) + "."
        return Verdict(STATES.get(first["name"], first["name"].replace("_", " ")), reason)
    if end is not None and end.get("reason") == "non_finite":
        return Verdict("diverged", str(end.get("message", "NaN or infinite values.")))
    if not evaluations:
        return Verdict("not evaluated", "no evaluation of the monitor yet.")
    state, evidence = _evidence(evaluations)
    reason = f"no alarm in {len(evaluations)} evaluations, {_how_far(run, evaluations)}; {evidence}"
    if end is None:
        reason += " (no end line: still running, or killed)"
    return Verdict(state, reason + ".")


def _evidence(evaluations):
    """(state, sentence) from the distance's progress towards its floor and the coverage."""
    key, values = _distance(evaluations)
    if key is None:
        return "not yet learning", "no loss-independent distance was measured"
    what = "images" if key == "sliced_pixels" else "samples"
    first, last = values[0], values[-1]
    floors = [number for number in (finite_number(line.get(f"{key}_floor")) for line in evaluations) if number is not None]
    said = f"the sliced distance to the real {what} went from {first:.3g} to {last:.3g}"
    if not floors or first <= floors[-1]:
        # no floor to measure against: progress is the fall itself, and healthy cannot be earned
        progress = (first - last) / first if first > 0 else 0.0
        said += (f" ({progress:.0%} lower); without a real-vs-real floor (it needs twice the compared real "
                 f"samples) healthy cannot be told from learning")
        return ("learning" if progress >= LEARNING_PROGRESS else "not yet learning"), said
    floor = floors[-1]
    progress = (first - last) / (first - floor)
    said += f", {progress:.0%} of the way to the real-vs-real floor {floor:.3g}"
    coverage, covered = _coverage(evaluations[-1])
    if covered:
        said += f"; {covered}"
    if progress >= HEALTHY_PROGRESS and coverage is not None and coverage >= HEALTHY_COVERAGE:
        return "healthy", said
    if progress >= LEARNING_PROGRESS:
        missing = (f"under {HEALTHY_PROGRESS:.0%} of the way" if progress < HEALTHY_PROGRESS else
                   "coverage not measured" if coverage is None else f"coverage under {HEALTHY_COVERAGE:.0%}")
        return "learning", said + f"; not yet healthy: {missing}"
    return "not yet learning", said


def _distance(evaluations):
    """(key, finite values in order) of the first of `DISTANCES` with two or more values, else (None, [])."""
    for key in DISTANCES:
        values = [number for number in (finite_number(line.get(key)) for line in evaluations) if number is not None]
        if len(values) >= 2:
            return key, values
    return None, []


def _coverage(line):
    """(fraction, words) of what the samples cover at the last evaluation: modes if known, else coverage."""
    covered, real = finite_number(line.get("modes_covered")), finite_number(line.get("modes_real"))
    if covered is not None and real:
        return covered / real, f"{covered:g} of {real:g} real modes covered"
    for key in ("coverage_features", "coverage_samples"):
        value = finite_number(line.get(key))
        if value is not None:
            return value, f"coverage {value:.2f} of the real samples"
    return None, ""


def _how_far(run, evaluations):
    """'up to step S, after N real images (P% of the M planned)' (the plan from config.json, when it has one)."""
    last = evaluations[-1]
    words = f"up to step {last.get('step', '?')}"
    seen = finite_number(last.get("images_seen"))
    epochs, per_epoch = finite_number(run.config.get("epochs")), finite_number(run.config.get("epoch_images"))
    if seen is not None:
        words += f", after {seen:,.0f} real images"
        if epochs and per_epoch:
            words += f" ({seen / (epochs * per_epoch):.0%} of the {epochs * per_epoch:,.0f} planned)"
    return words


def finite_number(value):
    """``value`` as a finite float, or None if it is not a number (bool excluded), not finite, or too large for a float.

    Run files are JSON written by anyone: a signal may be a string, a bool, NaN or an int of
    400 digits, and the report and the verdict quote only what this returns.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
