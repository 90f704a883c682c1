"""benchmarks/bench_alarms.py: its ground truth on made-up runs, and the suite at its --quick sizes."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import load_benchmark

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_alarms.py"
bench = load_benchmark("bench_alarms")


def evaluations(distances, modes, *, images_per_step, every=20):
    """The eval lines of a made-up procedural-faces run: one per ``every`` generator steps."""
    return [{"kind": "eval", "step": every * index, "images_seen": every * index * images_per_step,
             "sliced_pixels": distance, "modes_covered": covered, "diversity_fake": 0.3, "finite": True}
            for index, (distance, covered) in enumerate(zip(distances, modes))]


# the twin: a WGAN with n_critic 5 (320 images a generator step), falling steadily
TWIN = evaluations([0.017, 0.015, 0.013, 0.011, 0.010, 0.009], [2, 4, 6, 8, 9, 10], images_per_step=320)


def test_a_run_ahead_of_its_twin_per_image_has_not_failed_however_far_behind_per_generator_step():
    # the twin takes 320 images a generator step (n_critic 5), the run 64 (n_critic 1): at step s the run has
    # seen what the twin saw at step s / 5, and there it is 10% ahead of the twin
    steps = range(0, 400, 20)

    def twin_distance(step):
        return 0.017 * math.exp(-step / 200)

    twin = evaluations([twin_distance(step) for step in steps], [2 + step // 20 for step in steps], images_per_step=320)
    lines = evaluations([0.9 * twin_distance(step / 5) for step in steps], [2 + step // 100 for step in steps],
                        images_per_step=64)
    behind_per_step = [line["sliced_pixels"] > bench.ONSET_DISTANCE * other["sliced_pixels"]
                       for line, other in zip(lines, twin)]
    assert all(behind_per_step[5:])  # compared step by step, it would be failing from step 100 to the end
    assert bench.onset_of(lines, twin, None) is None
    assert bench.ground_truth(lines) == "healthy"


def test_the_onset_is_where_a_run_falls_from_its_best_for_good_and_a_passing_dip_is_none():
    # from step 80 on: level with the twin (8 modes against its 9 and 10) but under half its own best of 18
    lines = evaluations([0.017, 0.015, 0.013, 0.011, 0.010, 0.009], [2, 6, 12, 18, 8, 8], images_per_step=320)
    assert bench.onset_of(lines, TWIN, None) == 80
    assert bench.ground_truth(lines) == "collapsed: 8 modes at the end, 18 at most"
    dip = evaluations([0.017, 0.015, 0.013, 0.011, 0.010, 0.009], [2, 4, 6, 3, 9, 10], images_per_step=320)
    assert [step for step, worse in bench.failing(dip, TWIN) if worse] == [60]
    assert bench.onset_of(dip, TWIN, None) is None


def test_the_onset_is_where_a_run_stays_behind_its_twin_after_as_many_images():
    lines = evaluations([0.017, 0.015, 0.013, 0.0145, 0.0135, 0.0125], [2, 4, 6, 8, 9, 10], images_per_step=320)
    assert bench.onset_of(lines, TWIN, None) == 60
    assert bench.ground_truth(lines) == "healthy"  # it ends at its own lowest: only the twin shows it behind
    assert bench.onset_of(lines, TWIN, 40) == 40  # an injected failure's onset is its injection step


def test_a_run_whose_distance_climbs_from_its_lowest_is_diverged():
    lines = evaluations([0.017, 0.012, 0.011, 0.013, 0.0145, 0.016], [2, 4, 6, 8, 9, 10], images_per_step=320)
    assert bench.ground_truth(lines) == "diverged: sliced distance 0.016, 1.45x its lowest"


@pytest.mark.slow
def test_the_suite_runs_at_quick_sizes(tmp_path):
    environment = {**os.environ, "BENCHMARK_RESULTS": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, env=environment,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    healthy = json.loads((tmp_path / "alarms_healthy.json").read_text())["rows"]
    failures = json.loads((tmp_path / "alarms_failures.json").read_text())["rows"]
    assert [(row["loss"], row["seed"]) for row in healthy[:-1]] == [(loss, seed) for loss in ("gan", "wgan", "wgan-gp")
                                                                     for seed in (0, 1)]
    assert healthy[-1]["generator steps"] == sum(row["generator steps"] for row in healthy[:-1]
                                                 if row["ground truth"] == "healthy")
    assert [(row["cause"], row["seed"]) for row in failures[:-1]] == [(cause, seed) for cause in bench.FAILURES
                                                                       for seed in (0, 1)]
    by_cause = {row["cause"]: row for row in failures if row.get("seed") == 0}
    # injected failures have a known onset, halfway: 2 epochs of 3,200 images at 5 x 64 per WGAN step are 20 steps
    assert by_cause["NaN in the generator halfway (wgan)"]["onset (ground truth)"] == 10
    assert by_cause["NaN in the generator halfway (wgan)"]["right alarm"] is True
