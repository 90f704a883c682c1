"""benchmarks/bench_alarms.py: its ground truth and its scoring on made-up runs, and the suite at its --quick sizes."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import load_benchmark
from trainers.alarms import Thresholds

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_alarms.py"
bench = load_benchmark("bench_alarms")
truth = load_benchmark("_ground_truth")
detection = load_benchmark("_detection")
campaign = load_benchmark("_campaign")

FLOOR = 0.2  # the floor's FD of the made-up runs
PLANNED = 32_000  # their planned images: "not learning" applies from 8,000 on


def evaluations(fds, spreads, every=3200):
    """The evaluations of a made-up run: one every ``every`` real images."""
    return [{"step": index * 10, "images_seen": index * every, "truth_finite": True, "truth_fd": fd,
             "truth_spread": spread} for index, (fd, spread) in enumerate(zip(fds, spreads))]


FINISHED = {"reason": "finished", "step": 100, "images_seen": 32_000}


def states(fds, spreads):
    return [sorted(state) for state in truth.states_of(evaluations(fds, spreads), FLOOR, PLANNED)]


def test_a_run_that_learns_steadily_is_in_no_state_and_did_not_fail():
    fds = [50, 30, 12, 6, 4, 3, 2.5, 2.2, 2.0, 1.9]
    spreads = [0, 0.02, 0.1, 0.3, 0.5, 0.6, 0.65, 0.7, 0.7, 0.72]
    assert all(not state for state in states(fds, spreads))
    assert truth.failure_of(evaluations(fds, spreads), FINISHED, FLOOR, PLANNED) is None


def test_spread_at_half_its_best_is_collapsed_only_once_the_best_reached_a_tenth():
    # the best spread 0.4 at the third evaluation; 0.2 is half of it: collapsed; 0.21 is not
    assert states([50, 10, 5, 5, 5], [0, 0.2, 0.4, 0.21, 0.2]) == [[], [], [], [], ["collapsed"]]
    # a best under 0.1 makes no collapse, however far the spread falls from it
    assert states([50, 10, 5, 5], [0, 0.09, 0.01, 0.0]) == [[], [], [], []]
    assert states([50, 10, 5, 5], [0, 0.1, 0.05, 0.0]) == [[], [], ["collapsed"], ["collapsed"]]


def test_fd_at_twice_its_lowest_is_degraded():
    assert states([50, 10, 5, 9.9, 10], [0, 0.3, 0.5, 0.5, 0.5]) == [[], [], [], [], ["degraded"]]


def test_less_than_a_quarter_of_the_way_to_the_floor_after_a_quarter_of_the_images_is_not_learning():
    # (50 - F) / (50 - 0.2) < 0.25  <=>  F > 50 - 0.25 * 49.8 = 37.55
    assert truth.progress(50, 37.55, FLOOR) == pytest.approx(0.25)
    assert truth.progress(50, 50, FLOOR) == 0 and truth.progress(50, FLOOR, FLOOR) == 1
    # the third evaluation is at 6,400 images, before a quarter of 32,000: no state yet
    found = states([50, 45, 38, 37.6, 37.5], [0, 0, 0, 0, 0])
    assert found == [[], [], [], ["not learning"], []]


def test_the_onset_is_the_start_of_the_last_stretch_of_two_or_more_evaluations_in_some_state():
    fds = [50, 10, 5, 5, 11, 12, 4, 4, 9, 10.5, 11]
    spreads = [0, 0.3, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    lines = evaluations(fds, spreads)
    found = truth.failure_of(lines, FINISHED, FLOOR, PLANNED)
    # degraded at 11 and 12 (>= 2 x 5), recovered at 4; degraded again from 9 (>= 2 x 4) to the end
    assert found == truth.Failure(step=80, images=8 * 3200, states=("degraded",))
    assert truth.passing_failures(lines, FINISHED, FLOOR, PLANNED) == [(4, 5)]


def test_one_last_evaluation_in_a_state_is_not_a_failure_but_a_non_finite_stop_is():
    lines = evaluations([50, 10, 5, 5, 11], [0, 0.3, 0.5, 0.5, 0.5])
    assert truth.failure_of(lines, FINISHED, FLOOR, PLANNED) is None
    stopped = {"reason": "non_finite", "step": 45, "images_seen": 14_400}
    assert truth.failure_of(lines[:4], stopped, FLOOR, PLANNED) == truth.Failure(45, 14_400, (truth.NAN,))
    nan_evaluation = [*lines[:4], {"step": 40, "images_seen": 12_800, "truth_finite": False}]
    assert truth.failure_of(nan_evaluation, stopped, FLOOR, PLANNED) == truth.Failure(40, 12_800, (truth.NAN,))


def test_once_non_finite_every_later_evaluation_is_non_finite():
    lines = evaluations([50, 10, 5, 5], [0, 0.3, 0.5, 0.5])
    lines[1] = {**lines[1], "truth_finite": False}  # a generator that produced NaN once is broken from then on
    assert states([50, 10, 5, 5], [0, 0.3, 0.5, 0.5])[1:] == [[], [], []]
    assert [sorted(state) for state in truth.states_of(lines, FLOOR, PLANNED)][1:] == [[truth.NAN]] * 3


def alarm(name, images):
    return detection.Alarm(name, images // 64, images)


FAILED = truth.Failure(step=500, images=32_000, states=("collapsed",))


def score(alarms, failure=FAILED, end=64_000):
    return detection.outcome(alarms, failure, end_images=end, warm_images=10_000, images_per_step=64)


def test_an_alarm_within_the_tolerance_before_the_onset_detects_and_one_earlier_is_false():
    early = score([alarm("mode_collapse", 32_000 - 10_001)])
    assert early.detection is None and early.delay == math.inf and len(early.false_alarms) == 1
    # exposure: from the warm-up's end (10,000) to the window's start (22,000), in generator steps of 64 images
    assert early.exposure_steps == pytest.approx(12_000 / 64)
    on_time = score([alarm("mode_collapse", 32_000 - 10_000)])
    assert on_time.detection is not None and on_time.delay == -10_000 and not on_time.false_alarms
    assert on_time.named  # mode_collapse names "collapsed"


def test_the_first_alarm_in_the_window_decides_the_name_and_the_delay():
    result = score([alarm("diverged", 35_000), alarm("mode_collapse", 40_000)])
    assert result.detection.name == "diverged" and not result.named and result.delay == 3_000


def test_every_alarm_on_a_run_that_did_not_fail_is_false_and_its_whole_stretch_is_exposure():
    result = score([alarm("diverged", 35_000)], failure=None)
    assert not result.failed and result.delay is None and len(result.false_alarms) == 1
    assert result.exposure_steps == pytest.approx(54_000 / 64)


def test_the_summary_counts_misses_as_infinite_delays_in_the_median():
    results = [score([alarm("mode_collapse", 33_000)]), score([]), score([])]
    numbers = detection.summary(results)
    assert (numbers["failed"], numbers["detected"], numbers["named"]) == (3, 1, 1)
    assert numbers["median delay"] == math.inf
    assert detection.bootstrap_median([2.0, 2.0, 2.0]) == (2.0, 2.0)


def test_the_trivial_detector_fires_once_at_the_first_evaluation_after_the_warm_up():
    record = {"config": {**_config(), "alarm_after_images": 6_000},
              "lines": [{"kind": "eval", "step": 10 * i, "images_seen": 3200 * i, "finite": True} for i in range(5)]}
    assert detection.trivial_alarms(record) == [detection.Alarm("every alarm at the end of the warm-up", 20, 6400)]


def _config():
    return json.loads(json.dumps(bench.dataclasses.asdict(bench.config_for(bench.HEALTHY["wgan"], 0))))


def test_the_raw_file_is_byte_stable_and_reads_back(tmp_path):
    records = [{"name": "b", "value": 1.5}, {"name": "a", "value": [1, 2]}]
    campaign.write_raw(tmp_path / "one.jsonl.gz", records)
    campaign.write_raw(tmp_path / "two.jsonl.gz", records[::-1])
    assert (tmp_path / "one.jsonl.gz").read_bytes() == (tmp_path / "two.jsonl.gz").read_bytes()
    assert campaign.read_raw(tmp_path / "one.jsonl.gz") == sorted(records, key=lambda record: record["name"])


def test_every_case_evaluates_every_3200_images_whatever_its_loss():
    for name, (case, seed) in bench.runs().items():
        if case.data == "anime":
            continue
        config = bench.config_for(case, seed).resolved()
        assert config.eval_every * config.batch_size * config.n_critic == bench.EVAL_INTERVAL, name


def test_the_held_out_causes_are_at_least_six_and_run_after_the_development_part():
    names = list(bench.runs())
    held_out = [name for name in names if "held-out" in bench.split_of(*bench.runs()[name])]
    assert len({bench.runs()[name][0].description for name in held_out
                if bench.runs()[name][0].split == "held-out"}) >= 6
    assert names[-len(held_out):] == held_out


@pytest.mark.slow
def test_the_suite_runs_at_quick_sizes_and_the_replayed_alarms_are_the_online_ones(tmp_path):
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--runs", str(tmp_path / "runs"),
                           "--raw", str(tmp_path / "raw.jsonl.gz"), "--anime", str(tmp_path / "no-anime.zip")],
                          capture_output=True, text=True, env=environment, timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    records = campaign.read_raw(tmp_path / "raw.jsonl.gz")
    assert sorted(record["name"] for record in records) == sorted(
        name for name, (case, seed) in bench.runs().items() if seed == 0 and case.data != "anime")
    for record in records:  # none was resumed: the alarms replayed from the lines are those the trainer wrote,
        # with the run's own thresholds (the quick sizes warm up after 1,280 images; the replay's default is 10,000)
        thresholds = Thresholds.of(detection.config_of(record))
        online = record["online_alarms"]
        stop = ["diverged", record["end"]["step"]]
        if record["end"]["reason"] == "non_finite" and not any(name == "diverged" for name, _ in online):
            online = [*online, stop]  # the trainer's non-finite stop counts as the diverged alarm
        assert [[alarm.name, alarm.step] for alarm in detection.monitor_alarms(record, thresholds)] == online, record["name"]
    nan_run = next(record for record in records if record["name"] == "nan-halfway-s0")
    assert bench.failure(nan_run).states[-1] == truth.NAN
    block, runs_doc = bench.report_blocks(records)
    assert "| held-out causes | monitor |" in block and "nan-halfway-s0" in runs_doc


@pytest.mark.skipif(not bench.RAW.exists(), reason="no committed raw results")
def test_the_docs_tables_are_those_of_the_committed_raw_results():
    """docs/monitor.md's generated block and docs/alarm_runs.md, recomputed from the raw file and the current rules."""
    block, runs_doc = bench.report_blocks(campaign.read_raw(bench.RAW))
    monitor_doc = bench.DOCS.read_text(encoding="utf-8")
    start, end = monitor_doc.index(bench.BEGIN) + len(bench.BEGIN), monitor_doc.index(bench.END)
    assert monitor_doc[start:end].strip() == block.strip()
    assert bench.RUNS_DOC.read_text(encoding="utf-8") == runs_doc


@pytest.mark.skipif(not bench.EYE_CHECK.exists(), reason="no eye check yet")
def test_the_eye_check_judges_sampled_runs_with_the_allowed_words():
    judgments = json.loads(bench.EYE_CHECK.read_text())
    names = {record["name"] for record in campaign.read_raw(bench.RAW)}
    assert set(judgments) <= names and len(judgments) >= 10
    for epochs in judgments.values():
        assert {int(epoch) for epoch in epochs} <= set(bench.EYE_EPOCHS)
        assert set(epochs.values()) <= set(bench.EYE_JUDGMENTS)


@pytest.mark.slow
@pytest.mark.skipif(not bench.RAW.exists(), reason="no committed raw results")
def test_the_sensitivity_table_is_that_of_the_committed_raw_results():
    assert bench.SENSITIVITY_DOC.read_text(encoding="utf-8") == bench.sensitivity_doc(campaign.read_raw(bench.RAW))


def test_the_eye_sample_leaves_out_the_runs_already_judged(monkeypatch):
    # round two's sheets are drawn from the runs round one's eye check did not see
    failed = {"run-0", "run-1", "run-2"}
    monkeypatch.setattr(bench, "failure", lambda record: object() if record["name"] in failed else None)
    sample = bench.eye_sample([{"name": f"run-{i}"} for i in range(6)], count=4, judged={"run-0": {}, "run-3": {}})
    assert len(sample) == 4 and not {"run-0", "run-3"} & set(sample)


def test_the_eye_agreement_scores_only_the_runs_it_is_given():
    # the --quick suite's report met judgments of runs it had not run: a KeyError
    assert bench.eye_agreement([], {"clip-1-s2": {"10": "fine"}}) == []
    assert load_benchmark("_alarm_report").eye_summary([]) == "no judged grid among these runs."
