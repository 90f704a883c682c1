"""benchmarks/bench_metrics.py at its --quick sizes: every part runs and writes its figures and results."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_metrics.py"


@pytest.mark.slow
def test_every_part_runs_at_quick_sizes(tmp_path):
    environment = {**os.environ, "BENCHMARK_RESULTS": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--figures", str(tmp_path / "figures")],
                          capture_output=True, text=True, env=environment, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {part: json.loads((tmp_path / f"metrics_{part}.json").read_text())["rows"]
            for part in ("degradations", "floor", "modes", "sizes", "speed", "monitor")}
    assert len(rows["degradations"]) == 5 and all(-1 <= row["spearman fd"] <= 1 for row in rows["degradations"])
    *separations, spread_check = rows["floor"]
    assert [row["n"] for row in rows["floor"]] == [200] * 6  # --quick: n = 200
    assert all(math.isfinite(row["separation (std devs)"]) and row["mildest / floor"] > 0 for row in separations)
    assert 0.3 < spread_check["scaled spread / independent spread"] < 3
    assert [row["modes dropped"] for row in rows["modes"][:-1]] == [0, 3, 6, 12, 18, 24]
    assert rows["speed"][0]["total s"] > 0 and 0 < rows["monitor"][0]["share"] < 1
    assert sorted(path.name for path in (tmp_path / "figures").iterdir()) == ["degradations_procedural.png",
                                                                              "modes_and_sizes.png"]
