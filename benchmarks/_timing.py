"""Shared helpers for the benchmarks: timing, the command line, the results table.

Protocol (see README.md): every measurement is a wall-clock time from
``time.perf_counter``, taken as the median over ``repeats`` calls after one
untimed warm-up call; speed is reported as a ratio against the peer library
measured in the same run (``peer median / ours median``, so > 1 means ours is
faster).
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(os.environ.get("BENCHMARK_RESULTS", Path(__file__).resolve().parent / "results"))
"""Where the JSON results go: benchmarks/results, or $BENCHMARK_RESULTS (the test suite's smoke runs)."""


def parse_args(doc, *, repeats=3, extra=None):
    """The common command line: ``--quick`` (tiny sizes, a smoke test), ``--repeats``, ``--threads``.

    ``extra`` is an optional function adding benchmark-specific options to the parser.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: only checks that the script runs")
    parser.add_argument("--repeats", type=int, default=None, help=f"timed repeats (default {repeats}; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 1 if args.quick else repeats
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return args


def measure(fn, repeats, *, warmup=True):
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls, and its last result.

    One untimed call comes first unless ``warmup`` is False (for peers so slow
    that a single timed call is all one can afford).
    """
    if warmup:
        fn()
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure_alternately(functions, repeats):
    """[(median seconds, last result)] of each of ``functions``, timed in turns: one warm-up call each, then
    ``repeats`` rounds that call each once.

    On this project's shared two-core machines a function's time can triple for seconds at a stretch (a thread of
    its parallel operations waits for a core); in turns, such a stretch falls on every function alike, and the
    medians' ratio holds where medians taken one function after the other do not.
    """
    for fn in functions:
        fn()
    times, results = [[] for _ in functions], [None] * len(functions)
    for _ in range(max(1, repeats)):
        for index, fn in enumerate(functions):
            start = time.perf_counter()
            results[index] = fn()
            times[index].append(time.perf_counter() - start)
    return [(statistics.median(seconds), result) for seconds, result in zip(times, results)]


def compare(ours, peer, repeats):
    """Time ours and the peer alike, in turns: (our seconds, our result, peer seconds, peer result, peer / ours)."""
    (our_time, our_result), (peer_time, peer_result) = measure_alternately([ours, peer], repeats)
    return our_time, our_result, peer_time, peer_result, ratio(peer_time, our_time)


def ratio(peer_seconds, our_seconds):
    """Speed-up of ours over the peer (> 1: ours is faster)."""
    return peer_seconds / our_seconds if our_seconds > 0 else math.inf


def relative_difference(value, reference):
    """|value - reference| / |reference| (absolute difference if the reference is 0)."""
    value, reference = float(value), float(reference)
    return abs(value - reference) / abs(reference) if reference != 0 else abs(value - reference)


def _cell(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0 or math.isnan(value) or math.isinf(value):
            return str(value)
        if 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.3e}"
    return "" if value is None else str(value)


def markdown_table(rows):
    """A Markdown table of a list of dicts; the columns are the union of their keys, in order."""
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(key)) for key in columns) + " |")
    return "\n".join(lines)


def report(name, rows, args, notes=()):
    """Print the table (and notes), and write it as JSON to ``results/<name>.json``."""
    print(f"\n## {name}{' (quick)' if args.quick else ''} (torch threads: {torch.get_num_threads()})\n")
    print(markdown_table(rows))
    if notes:
        print()
    for note in notes:
        print(f"- {note}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "quick": args.quick,
        "repeats": args.repeats,
        "torch threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "machine": platform.platform(),
        "versions": _versions(),
        "rows": rows,
        "notes": list(notes),
    }
    path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    print(f"\nwritten to {path}")


def _json_default(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _versions():
    versions = {}
    for module in ("divergences", "torch", "numpy", "scipy", "ot", "geomloss"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - an absent peer is reported as absent
            versions[module] = None
    return versions
