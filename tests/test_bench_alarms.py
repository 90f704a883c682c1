"""benchmarks/bench_alarms.py at its --quick sizes: every run of the suite trains, and the tables are written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_alarms.py"


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
    assert len(failures) == 8
    by_cause = {row["cause"]: row for row in failures}
    # injected failures have a known onset, halfway: 2 epochs of 3,200 images at 5 x 64 per WGAN step are 20 steps
    assert by_cause["NaN in the generator halfway (wgan)"]["onset (ground truth)"] == 10
    assert by_cause["NaN in the generator halfway (wgan)"]["right alarm"] is True
