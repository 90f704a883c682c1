"""The peak memory of a snippet, measured in a fresh Python process."""

import os
import subprocess
import sys

_REPORT = """
with open("/proc/self/status") as status:  # VmHWM: the peak of this process since its exec
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(peak, float(value))
"""


def peak_and_value(code, fixed_threshold=True):
    """Run ``code``, which sets ``value``, in a fresh process; returns (its peak resident bytes, float(value)).

    VmHWM, not ``ru_maxrss``: Linux carries a parent's maxrss into its children across exec, so a child of a
    grown pytest would report the parent's peak.  One thread, and glibc's mmap threshold fixed
    unless ``fixed_threshold`` is False: by default it grows with each freed large block, and the peak then
    measures the fragmentation of the heap too (which is what users get).
    """
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("MALLOC_MMAP_THRESHOLD_", None)
    if fixed_threshold:
        environment["MALLOC_MMAP_THRESHOLD_"] = "65536"
    done = subprocess.run([sys.executable, "-c", code + _REPORT], capture_output=True, text=True, check=True,
                          env=environment)
    peak, value = done.stdout.split()[-2:]
    return float(peak), float(value)
