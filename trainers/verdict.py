"""A run's verdict at a glance: healthy, discriminator saturated, mode collapse or diverged, and why.

The report puts it in a banner above everything else; it reads the run's alarms (docs/monitor.md),
its ``end`` line and its evaluations, nothing else.
"""

import math
from dataclasses import dataclass

STATES = {"vanishing_gradient": "discriminator saturated", "mode_collapse": "mode collapse", "diverged": "diverged"}
"""The verdict each alarm gives; a run without an alarm is ``healthy``."""

DISTANCES = ("sliced_pixels", "sliced_samples")
"""The loss-independent distance a healthy verdict quotes: the first of these a run has."""


@dataclass(frozen=True)
class Verdict:
    """What a run's banner says.

    Attributes
    ----------
    state : str
        ``healthy``, one of the values of `STATES`, or ``not evaluated`` (no ``eval`` line yet).
    reason : str
        Why, in a sentence or two: the alarm, its step and its message; or what stayed healthy.
    """

    state: str
    reason: str

    @property
    def healthy(self):
        return self.state == "healthy"


def verdict(run):
    """The `Verdict` of a run read by `trainers.report.load_run`.

    The first alarm decides (a run that stopped on NaN weights is ``diverged``); later alarms are
    named after it.
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
    reason = f"no alarm in {len(evaluations)} evaluations, up to step {evaluations[-1].get('step', '?')}"
    trend = _trend(evaluations)
    reason += f"; {trend}" if trend else ""
    if end is None:
        reason += " (no end line: still running, or killed)"
    return Verdict("healthy", reason + ".")


def _trend(evaluations):
    """'the sliced distance to the real images fell from A to B' (first and last evaluations), or ''."""
    for key in DISTANCES:
        values = [number for number in (finite_number(line.get(key)) for line in evaluations) if number is not None]
        if len(values) >= 2:
            direction = "fell" if values[-1] < values[0] else "rose"
            what = "images" if key == "sliced_pixels" else "samples"
            return f"the sliced distance to the real {what} {direction} from {values[0]:.3g} to {values[-1]:.3g}"
    return ""



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
