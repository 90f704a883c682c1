"""benchmarks/bench_essay.py: its statistics against closed forms, its runs, and docs/results.md against its raw results."""

import json
import math

import pytest

from scripts import ROOT, load_benchmark

essay = load_benchmark("bench_essay")
campaign = load_benchmark("_campaign")


def test_clopper_pearson_has_the_closed_forms_at_zero_and_all_failures():
    # with 0 failures in n the upper end solves (1 - p)^n = 0.05; with n of n the lower end solves p^n = 0.05
    low, high = essay.clopper_pearson(0, 8)
    assert low == 0 and high == pytest.approx(1 - 0.05 ** (1 / 8), rel=1e-9)
    low, high = essay.clopper_pearson(8, 8)
    assert high == 1 and low == pytest.approx(0.05 ** (1 / 8), rel=1e-9)


def test_clopper_pearson_of_half_is_symmetric_and_covers_a_half():
    low, high = essay.clopper_pearson(4, 8)
    assert low == pytest.approx(1 - high, rel=1e-9) and low < 0.5 < high


def test_kaplan_meier_drops_by_the_share_at_risk_and_keeps_censored_runs_at_risk_until_they_end():
    # four runs: failures at 10 and 20, one censored at 15, one at 30: S(10) = 3/4, S(20) = 3/4 * (1 - 1/2)
    curve = essay.kaplan_meier([10, 15, 20, 30], [True, False, True, False])
    assert curve == [(0.0, 1.0), (10, 0.75), (20, 0.375)]


def test_every_run_evaluates_every_10240_images_at_10000_an_epoch():
    for name, (loss, seed, search) in essay.runs().items():
        config = essay.config_for(loss, seed, search, anime=ROOT / "no-anime.zip").resolved()
        assert config.epoch_images == 10_000 and config.epochs == essay.EPOCHS
        assert config.eval_every * config.batch_size * config.n_critic == essay.EVAL_INTERVAL, name


def test_the_main_part_has_8_seeds_of_gan_and_wgan_and_4_of_the_others_and_the_paper_scale_5_of_each():
    counts = {loss: sum(run[0] == loss for run in essay.runs().values()) for loss in essay.SEEDS}
    assert counts == {"gan": 8, "wgan": 8, "gan-minimax": 4, "wgan-gp": 4}
    paper = essay.runs(scale="paper")
    assert len(paper) == 20 and essay.config_for("wgan", 0, scale="paper", anime=ROOT / "none.zip").image_size == 64


def test_the_search_changes_the_gan_and_the_wgan_alike():
    searched = essay.runs("search")
    assert {loss for loss, _, _ in searched.values()} == set(essay.SEARCH_LOSSES)
    doubled = essay.config_for("wgan", 0, "critic-steps-x2", anime=ROOT / "none.zip").resolved()
    assert doubled.n_critic == 10 and essay.config_for("gan", 0, "critic-steps-x2", anime=ROOT / "none.zip").n_critic == 2


def test_the_docs_numbers_are_those_of_the_raw_results():
    """docs/results.md's generated block, recomputed from the committed raw results ("Not run yet." without them)."""
    report = load_benchmark("_essay_report")
    records = campaign.read_raw(essay.RAW) if essay.RAW.exists() else []
    expected = report.block(records, essay.RAW, ROOT) if records else "Not run yet."
    assert report.generated(ROOT) == expected


def test_the_search_table_counts_each_changes_runs_and_failures_per_loss():
    # The committed main-part runs, relabelled as runs of one change: its counts are those of the rate table.
    report = load_benchmark("_essay_report")
    records = [record for record in campaign.read_raw(essay.RAW) if record.get("search") is None
               and record["loss"] in essay.SEARCH_LOSSES]
    relabelled = [{**record, "search": "batch-32"} for record in records]
    (row,) = report.search_rows(relabelled)
    for main in report.rows(records):
        assert (row["losses"][main["loss"]]["runs"], row["losses"][main["loss"]]["failed"]) == (main["runs"], main["failed"])
    assert row["answers"] == report.answers(row["losses"]["gan"], row["losses"]["wgan"])
    assert "| batch size 32 (`batch-32`) |" in report.search_table([row])
    assert report.search_rows(records) == []  # no search runs, no table


@pytest.mark.parametrize("gan, wgan, expected", [
    ((2, 4), (1, 4), True),  # half the GAN's, fewer than half the WGAN's
    ((4, 4), (0, 4), True),
    ((1, 4), (0, 4), False),  # fewer than half the GAN's
    ((2, 4), (2, 4), False),  # half the WGAN's too
    ((3, 4), (0, 0), False),  # no WGAN runs yet
])
def test_a_change_answers_the_search_when_half_the_gans_fail_and_fewer_than_half_the_wgans(gan, wgan, expected):
    report = load_benchmark("_essay_report")
    counts = [{"failed": failed, "runs": runs} for failed, runs in (gan, wgan)]
    assert report.answers(*counts) is expected


def test_a_killed_runs_cpu_time_is_counted_from_its_last_evaluation(tmp_path):
    # a run killed at the end of a working session lost its process's CPU time (0.07 h recorded for 0.2 h runs)
    first = campaign.CpuClock(tmp_path / "run")
    sum(i * i for i in range(300_000))  # some CPU time
    first.tick()  # an evaluation; then the process is killed: no stop()
    reading = json.loads((tmp_path / "run" / "progress.json").read_text())["running"]
    assert reading > 0
    second = campaign.CpuClock(tmp_path / "run")  # the resumed run
    second.stop()
    progress = json.loads((tmp_path / "run" / "progress.json").read_text())
    assert progress["starts"] == 2 and progress["cpu_seconds"] >= reading and "running" not in progress
