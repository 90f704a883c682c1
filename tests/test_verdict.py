"""trainers.verdict: healthy is earned by progress towards the real-vs-real floor and by coverage, not by silence."""

import pytest

from trainers.report import Run
from trainers.verdict import HEALTHY_COVERAGE, HEALTHY_PROGRESS, LEARNING_PROGRESS, verdict


def run(distances, *, floor=0.1, modes=(25, 30), coverage=None, alarms=(), end="finished", planned=(10, 1000)):
    """A run whose evaluations have these sliced distances, the floor, and at the last one these modes or coverage."""
    lines = [{"kind": "eval", "step": 10 * index, "images_seen": 1000 * index, "sliced_pixels": distance}
             for index, distance in enumerate(distances)]
    for line in lines:
        if floor is not None:
            line["sliced_pixels_floor"] = floor
    if modes is not None:
        lines[-1].update(modes_covered=modes[0], modes_real=modes[1])
    if coverage is not None:
        lines[-1]["coverage_features"] = coverage
    if end:
        lines.append({"kind": "end", "step": lines[-1]["step"], "reason": end})
    return Run(path=None, config={"epochs": planned[0], "epoch_images": planned[1]}, lines=lines, alarms=list(alarms))


def test_healthy_needs_half_the_way_to_the_floor_and_half_the_modes():
    # from 1.1 to the floor 0.1: 0.6 is exactly half the way
    assert HEALTHY_PROGRESS == 0.5 and HEALTHY_COVERAGE == 0.5 and LEARNING_PROGRESS == 0.1
    found = verdict(run([1.1, 0.8, 0.6], modes=(15, 30)))
    assert found.healthy, found.reason
    assert "50% of the way to the real-vs-real floor 0.1" in found.reason and "15 of 30 real modes" in found.reason
    assert "after 2,000 real images (20% of the 10,000 planned)" in found.reason


def test_under_half_the_way_is_learning_and_says_so():
    found = verdict(run([1.1, 0.8, 0.6001]))
    assert found.state == "learning" and "not yet healthy: under 50% of the way" in found.reason


def test_too_few_modes_covered_is_learning_and_says_so():
    found = verdict(run([1.1, 0.5, 0.2], modes=(14, 30)))
    assert found.state == "learning" and "coverage under 50%" in found.reason


def test_coverage_of_the_real_samples_stands_in_for_modes():
    assert verdict(run([1.1, 0.2], modes=None, coverage=0.5)).healthy
    blob = verdict(run([1.1, 0.2], modes=None, coverage=0.12))  # the ring's blob on none of the modes
    assert blob.state == "learning" and "coverage 0.12" in blob.reason
    unmeasured = verdict(run([1.1, 0.2], modes=None))
    assert unmeasured.state == "learning" and "coverage not measured" in unmeasured.reason


def test_under_a_tenth_of_the_way_is_not_yet_learning():
    assert verdict(run([1.1, 1.0001])).state == "not yet learning"
    assert verdict(run([1.1, 1.0])).state == "learning"  # exactly a tenth
    assert verdict(run([1.1, 1.3])).state == "not yet learning"  # farther than at the start


def test_without_a_floor_healthy_cannot_be_earned():
    found = verdict(run([1.0, 0.1], floor=None))
    assert found.state == "learning" and "without a real-vs-real floor" in found.reason and "90% lower" in found.reason
    assert verdict(run([1.0, 0.95], floor=None)).state == "not yet learning"


def test_an_alarm_decides_before_the_evidence():
    found = verdict(run([1.1, 0.2], alarms=[{"name": "critic_unbounded", "step": 10, "message": "m."}]))
    assert found.state == "critic not Lipschitz" and "critic_unbounded alarm at step 10: m." in found.reason


def test_a_run_without_end_line_says_it_may_still_be_running():
    assert "still running, or killed" in verdict(run([1.1, 0.2], end=None)).reason
