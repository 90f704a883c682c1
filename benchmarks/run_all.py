"""Run every benchmark in sequence; each prints its table and writes results/<name>.json.

The options ``--quick``, ``--repeats R`` and ``--threads T`` are passed on to
each script.  A failing script does not stop the others; the exit status is
non-zero if any failed.

Run:  .venv/bin/python benchmarks/run_all.py [--quick] [--repeats R] [--threads T]
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_entropy.py", "bench_emd_1d.py", "bench_emd_exact.py", "bench_emd_lazy.py", "bench_sinkhorn.py", "bench_sinkhorn_float32.py", "bench_sinkhorn_online.py", "bench_trainer.py", "bench_metrics.py", "bench_alarms.py"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: only checks that the scripts run")
    parser.add_argument("--repeats", type=int, help="timed repeats, passed on")
    parser.add_argument("--threads", type=int, help="torch intra-op threads, passed on")
    args = parser.parse_args()
    forwarded = ["--quick"] if args.quick else []
    for option in ("repeats", "threads"):
        if getattr(args, option) is not None:
            forwarded += [f"--{option}", str(getattr(args, option))]

    failed = []
    for script in SCRIPTS:
        print(f"\n# {script} {' '.join(forwarded)}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script), *forwarded])
        print(f"\n({script}: exit {code}, {time.perf_counter() - start:.1f} s)", flush=True)
        if code != 0:
            failed.append(script)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
