"""benchmarks/_timing.py: functions timed in turns, each after one warm-up, and their medians."""

import itertools

from scripts import load_benchmark

timing = load_benchmark("_timing")


def test_functions_are_timed_in_turns_after_one_warm_up_each(monkeypatch):
    calls = []
    clock = itertools.count()  # each reading of the clock is one second after the last
    monkeypatch.setattr(timing.time, "perf_counter", lambda: float(next(clock)))

    def function(name, seconds):
        def call():
            calls.append(name)
            for _ in range(seconds - 1):  # reading the clock inside the call makes it last longer
                next(clock)
            return f"{name} {len(calls)}"
        return call

    timed = timing.measure_alternately([function("a", 1), function("b", 3)], repeats=3)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert timed == [(1.0, "a 7"), (3.0, "b 8")]


def test_compare_gives_the_peer_over_ours(monkeypatch):
    clock = itertools.count()
    monkeypatch.setattr(timing.time, "perf_counter", lambda: float(next(clock)))

    def slow():
        next(clock)
        return "peer"

    our_time, our_result, peer_time, peer_result, speedup = timing.compare(lambda: "ours", slow, repeats=2)
    assert (our_time, our_result, peer_time, peer_result, speedup) == (1.0, "ours", 2.0, "peer", 2.0)
