"""benchmarks/bench_sinkhorn_online.py at its --quick sizes: every part runs, and what it checks holds.

(Its part (e) calls the multiscale backend's internals, which a refactoring once changed under it unnoticed.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_sinkhorn_online.py"


def test_every_part_runs_at_quick_sizes(tmp_path):
    environment = {**os.environ, "BENCHMARK_RESULTS": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--repeats", "1"], capture_output=True, text=True,
                          env=environment, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {row["case"][:3]: row for row in json.loads((tmp_path / "sinkhorn_online.json").read_text())["rows"]}
    assert sorted(rows) == ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)"]
    assert rows["(a)"]["value rel. diff"] <= 1e-6  # the time ratio is a figure for the full size, not asserted here
    assert rows["(b)"]["met"] and 0 < rows["(b)"]["peak GiB"] <= 1
    assert rows["(c)"]["online pairs/s"] > 0
    assert rows["(d)"]["met"] and rows["(d)"]["value rel. diff"] <= 1e-3
    assert rows["(e)"]["met"] and rows["(e)"]["value"] > 0 and rows["(e)"]["value and gradient s"] > 0
    assert rows["(f)"]["met"] and rows["(f)"]["value"] > 0
