"""Event-level scoring of alarms against the ground truth (`_ground_truth`), and the detectors scored.

The scoring, fixed with the ground truth before any run of the benchmarks:

- A detector's *alarms* are the firings of its rules, each rule at most once a run, with the
  generator step and the real images seen at which it fired.
- On a failed run (`_ground_truth.failure_of`), an alarm inside [onset − `TOLERANCE_IMAGES`, end of
  run] is a *detection*. The first such alarm is the run's detection; its *delay* is its images
  seen minus the onset's (so never below −`TOLERANCE_IMAGES`); its *name matches* when one of the
  failures it names (`NAMES`) is one the samples show (`Failure.states`).
- Every other alarm is a *false alarm*: one before that window, and every alarm on a run that did
  not fail.
- The *exposure* of a run is the generator steps of its non-failing stretch, from the end of the
  warm-up (``alarm_after_images``: no detector fires before it but on a NaN) to the window's start,
  or to the end of a run that did not fail. The false-alarm rate is false alarms per 1,000 steps of
  exposure.
- A failed run without a detection is a *miss*, an infinite delay. Medians are over failed runs,
  misses included, with a 90% bootstrap interval over runs (`BOOTSTRAP` resamples, seed 0).
"""

import math
import statistics
from dataclasses import asdict, dataclass, replace

import numpy as np

from _ground_truth import NAN, STATES
from trainers.alarms import Thresholds
from trainers.config import TrainConfig
from trainers.losses import LOSS_SPECS
from trainers.monitor import Monitor

TOLERANCE_IMAGES = 10_000
"""How many real images before the onset an alarm may come and still count: about three evaluations, one paper epoch."""

BOOTSTRAP = 2000
"""Resamples of the bootstrap intervals."""

NAMES = {
    # the monitor's alarms
    "mode_collapse": ("collapsed",),
    "diverged": ("degraded", NAN),
    "vanishing_gradient": ("not learning", "degraded"),
    "critic_unbounded": ("not learning", "degraded"),
    "not_learning": ("not learning",),
    # the baselines' rules
    "discriminator loss near 0": ("not learning", "degraded"),
    "gradient norm above 100": ("degraded", NAN),
    "negative critic loss": ("degraded",),
    "NaN": (NAN,),
    "diversity fell to half its best": ("collapsed",),
    "distance rose 3 evaluations in a row": ("degraded",),
    "every alarm at the end of the warm-up": STATES,
}
"""The failures (`_ground_truth.STATES`) a person would take each alarm to name."""

BASELINE_LOSS_D = 0.05
BASELINE_GRADIENT = 100.0
BASELINE_DIVERSITY_DROP = 0.5
BASELINE_RISES = 3


@dataclass(frozen=True)
class Alarm:
    name: str
    step: int
    images: int


@dataclass(frozen=True)
class Outcome:
    """How one detector did on one run.

    Attributes
    ----------
    failed : bool
        Whether the run failed (by the ground truth).
    detection : Alarm or None
        The first alarm inside the window of a failed run.
    named : bool
        Whether the detection names a failure the samples show.
    delay : float or None
        The detection's images seen minus the onset's; ``inf`` for a miss; None if the run did not fail.
    false_alarms : tuple of Alarm
    exposure_steps : float
        Generator steps of the run's non-failing stretch after the warm-up.
    """

    failed: bool
    detection: Alarm | None
    named: bool
    delay: float | None
    false_alarms: tuple
    exposure_steps: float


def outcome(alarms, failure, *, end_images, warm_images, images_per_step):
    """Score a detector's ``alarms`` on one run against its ``failure`` (a `_ground_truth.Failure` or None)."""
    if failure is None:
        window_start, inside = math.inf, []
    else:
        window_start = failure.images - TOLERANCE_IMAGES
        inside = [alarm for alarm in alarms if alarm.images >= window_start]
    false_alarms = tuple(alarm for alarm in alarms if alarm.images < window_start)
    exposure = max(0.0, min(window_start, end_images) - warm_images) / images_per_step
    if failure is None:
        return Outcome(False, None, False, None, false_alarms, exposure)
    if not inside:
        return Outcome(True, None, False, math.inf, false_alarms, exposure)
    detection = min(inside, key=lambda alarm: alarm.images)
    named = bool(set(NAMES[detection.name]) & set(failure.states))
    return Outcome(True, detection, named, float(detection.images - failure.images), false_alarms, exposure)


def summary(outcomes):
    """The numbers of a set of `Outcome`s (a cause, a split, a detector): a dict of plain values."""
    failed = [item for item in outcomes if item.failed]
    detected = [item for item in failed if item.detection is not None]
    delays = [item.delay for item in failed]
    false_alarms = sum(len(item.false_alarms) for item in outcomes)
    exposure = sum(item.exposure_steps for item in outcomes)
    low, high = bootstrap_median(delays)
    return {
        "runs": len(outcomes), "failed": len(failed), "detected": len(detected),
        "named": sum(item.named for item in detected),
        "median delay": statistics.median(delays) if delays else None, "delay 90% interval": [low, high],
        "delays": delays, "false alarms": false_alarms, "runs with a false alarm": sum(bool(item.false_alarms) for item in outcomes),
        "exposure steps": exposure, "false alarms per 1000 steps": 1000 * false_alarms / exposure if exposure else None,
    }


def bootstrap_median(values, resamples=BOOTSTRAP, seed=0):
    """The 5th and 95th percentiles of the median of ``values`` resampled with replacement (infinities kept)."""
    if not values:
        return None, None
    values = np.asarray(values, dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(values), (resamples, len(values)))
    medians = np.sort(np.median(values[picks], axis=1))  # an infinite median sorts last
    return float(medians[int(0.05 * (resamples - 1))]), float(medians[int(math.ceil(0.95 * (resamples - 1)))])


# --- the detectors: each reads a raw run record (`bench_alarms.record_of`) and returns its alarms


def monitor_alarms(record, thresholds=None):
    """The monitor's alarms, replayed over the run's ``train`` and ``eval`` lines in order (as the trainer feeds it).

    The rules are today's, with ``thresholds`` (default: `Thresholds`' defaults, not those the run
    was started with). A run the trainer stopped on non-finite values also counts as ``diverged``
    at its stop, when no evaluation saw the NaN first: the trainer names it in its ``end`` line.
    """
    limits = asdict(thresholds or Thresholds())
    monitor = Monitor(replace(config_of(record), **limits))
    alarms = []
    for line in record["lines"]:
        if line["kind"] == "eval":
            signals = {key: value for key, value in line.items() if not key.startswith("truth_")}
            fired = monitor.observe(signals, line["images_seen"])["alarms"]
        else:
            fired = monitor.observe_training(line, line["images_seen"])
        alarms += [Alarm(alarm["name"], line["step"], line["images_seen"]) for alarm in fired]
    end = record["end"]
    if end["reason"] == "non_finite" and not any(alarm.name == "diverged" for alarm in alarms):
        alarms.append(Alarm("diverged", end["step"], end["images_seen"]))
    return alarms


def config_of(record):
    """The run's resolved `TrainConfig`, from the record's saved fields."""
    return TrainConfig(**record["config"]).resolved()


def practitioners_alarms(record):
    """The practitioners' rules: discriminator loss below 0.05 (GAN losses), ‖∇θ L_G‖ above 100, a negative critic loss, a NaN."""
    config, fired = config_of(record), {}
    probability = LOSS_SPECS[config.loss].probability
    for line in record["lines"]:
        where = (line["step"], line["images_seen"])
        if any(isinstance(value, float) and not math.isfinite(value) for value in line.values()) or line.get("finite") is False:
            fired.setdefault("NaN", where)
        if line["images_seen"] < config.alarm_after_images:
            continue
        if line["kind"] == "train" and probability and line["loss_d"] < BASELINE_LOSS_D:
            fired.setdefault("discriminator loss near 0", where)
        if line["kind"] == "train" and not probability and line["loss_d"] < 0:
            fired.setdefault("negative critic loss", where)
        if line["kind"] == "eval" and line.get("grad_norm_g", 0) > BASELINE_GRADIENT:
            fired.setdefault("gradient norm above 100", where)
    if record["end"]["reason"] == "non_finite":
        fired.setdefault("NaN", (record["end"]["step"], record["end"]["images_seen"]))
    return [Alarm(name, step, images) for name, (step, images) in fired.items()]


def diversity_drop_alarms(record):
    """A simple diversity rule: the generated images' diversity at half its best so far, at one evaluation."""
    warm, best = config_of(record).alarm_after_images, 0.0
    for line in _finite_evaluations(record):
        best = max(best, line["diversity_fake"])
        if line["images_seen"] >= warm and line["diversity_fake"] <= BASELINE_DIVERSITY_DROP * best:
            return [Alarm("diversity fell to half its best", line["step"], line["images_seen"])]
    return []


def rising_distance_alarms(record):
    """The loss-independent distance (sliced pixels) rose at each of 3 evaluations in a row."""
    warm, previous, rises = config_of(record).alarm_after_images, None, 0
    for line in _finite_evaluations(record):
        distance = line["sliced_pixels"]
        rises = rises + 1 if previous is not None and distance > previous else 0
        previous = distance
        if line["images_seen"] >= warm and rises >= BASELINE_RISES:
            return [Alarm("distance rose 3 evaluations in a row", line["step"], line["images_seen"])]
    return []


def trivial_alarms(record):
    """A detector that knows nothing: it fires at the first evaluation after the warm-up, on every run."""
    warm = config_of(record).alarm_after_images
    for line in _finite_evaluations(record):
        if line["images_seen"] >= warm:
            return [Alarm("every alarm at the end of the warm-up", line["step"], line["images_seen"])]
    return []


def _finite_evaluations(record):
    return [line for line in record["lines"] if line["kind"] == "eval" and line.get("finite", True)]


DETECTORS = {
    "monitor": monitor_alarms,
    "practitioners' rules": practitioners_alarms,
    "diversity drop": diversity_drop_alarms,
    "rising distance": rising_distance_alarms,
    "trivial: every alarm at the warm-up's end": trivial_alarms,
}
"""The detectors scored, the monitor first; the last one is the sanity check no useful detector may lose to."""
