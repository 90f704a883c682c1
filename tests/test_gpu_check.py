"""benchmarks/gpu_check.py: the script a person with a GPU runs, exercised on the CPU at tiny sizes."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


def run(tmp_path, *arguments):
    environment = {**os.environ, "BENCHMARK_RESULTS": str(tmp_path), "OMP_NUM_THREADS": "1",
                   "CUDA_VISIBLE_DEVICES": ""}  # as on a machine without a GPU, even where there is one
    done = subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, env=environment,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, {row["part"]: row for row in json.loads((tmp_path / "gpu_check.json").read_text())["rows"]}


def test_without_cuda_every_gpu_part_is_skipped_and_says_so(tmp_path):
    output, rows = run(tmp_path)
    assert "No CUDA device: every GPU measurement was skipped" in output
    for part in ("cuda tests", "sinkhorn", "sliced and emd", "scale", "trainer"):
        assert rows[part]["result"] == "skipped: no CUDA device on this machine"


def test_on_the_cpu_every_part_measures_what_it_says(tmp_path):
    _, rows = run(tmp_path, "--device", "cpu", "--quick")
    assert rows["CUDA tests"]["result"] == "skipped: runs on CUDA only"
    sinkhorn = [row for part, row in rows.items() if part.startswith("sinkhorn n = m")]
    assert len(sinkhorn) == 2 and all(row["met"] and row["value rel. diff"] <= 1e-3 for row in sinkhorn)
    assert rows["emd, n = m = 200, 2-D, tensors on cpu (solved on the CPU)"]["met"]
    assert rows["sliced, 100,000 points a side, 3-D float32, 64 directions"]["met"]
    for loss in ("gan", "wgan"):
        assert rows[f"trainer {loss}, paper preset, plain"]["generator steps/s"] > 0
        assert rows[f"monitor, {loss}"]["s per evaluation"] > 0
    assert float(rows["online reduction K v, n = m = 2,000, 3-D float32"]["result"].split()[0]) > 0
    assert rows["online sinkhorn, n = m = 1,000, 3-D float32, eps = 1e-2 max C"]["met"]
    assert rows["multiscale sinkhorn, n = m = 1,000, 3-D float32, eps = 1e-2 max C"]["met"]
    assert rows["multiscale sinkhorn, n = m = 10^6"]["result"].startswith("not measured yet")
