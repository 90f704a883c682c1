"""Tests of examples/compare_gan_wgan.py: its own options, every (loss, seed) run, the report, --resume."""

import json

import pytest
from scripts import load_example

TINY = ["--image-size", "16", "--nz", "8", "--ngf", "8", "--ndf", "8", "--batch-size", "8",
        "--procedural-images", "200", "--holdout-images", "20", "--epoch-images", "80", "--epochs", "1",
        "--monitor", "false", "--progress", "false", "--device", "cpu", "--tensorboard", "false"]


@pytest.fixture(scope="module")
def compare():
    return load_example("compare_gan_wgan")


def config_of(run):
    return json.loads((run / "config.json").read_text())


def ends(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["kind"] == "end"]


def test_every_loss_and_seed_is_trained_into_its_folder(compare, tmp_path, capsys):
    compare.main(["--losses", "wgan-gp", "gan", "--seeds", "3", "5", "--out", str(tmp_path), *TINY])
    runs = {(config_of(path)["loss"], config_of(path)["seed"]): path.name
            for path in tmp_path.iterdir() if path.is_dir()}
    assert runs == {("wgan-gp", 3): "wgan-gp-seed3", ("wgan-gp", 5): "wgan-gp-seed5",
                    ("gan", 3): "gan-seed3", ("gan", 5): "gan-seed5"}
    assert config_of(tmp_path / "gan-seed3")["lr"] == 2e-4 and config_of(tmp_path / "wgan-gp-seed5")["lr"] == 1e-4
    report = (tmp_path / "report.html").read_text()
    assert all(name in report for name in runs.values())
    assert capsys.readouterr().out.rstrip().endswith(f"report: {tmp_path / 'report.html'}")


def test_one_seed_names_runs_by_loss(compare, tmp_path):
    compare.main(["--out", str(tmp_path), *TINY])
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_dir()) == ["gan", "wgan"]


@pytest.mark.parametrize("argv, message", [
    (["--loss", "wgan-gp"], "--loss is not a setting here; use --losses"),
    (["--loss=gan"], "--loss is not a setting here; use --losses"),
    (["--seed", "1"], "--seed is not a setting here; use --seeds"),
    (["--losses", "wgan", "wgan"], "should not repeat"),
    (["--losses", "lsgan"], "invalid choice: 'lsgan'"),
    (["--threads", "0"], "--threads: should be >= 1"),
    (["--resume", "a", "--out", "b"], "not both"),
])
def test_refused_options(compare, argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        compare.main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_setting_is_refused_before_any_run(compare, tmp_path):
    with pytest.raises(SystemExit, match="^error: `seed` should be at most"):
        compare.main(["--seeds", "0", str(2**40), "--out", str(tmp_path), *TINY])
    assert not any(tmp_path.iterdir())


def test_help_is_its_own(compare, capsys):
    with pytest.raises(SystemExit):
        compare.main(["--help"])
    text = capsys.readouterr().out
    assert "--losses" in text and "--seeds" in text and "examples/train_wgan.py --help" in text


def test_resume_starts_missing_runs_and_skips_finished_ones(compare, tmp_path, capsys):
    compare.main(["--losses", "gan", "wgan", "--out", str(tmp_path), *TINY])
    gan_before = (tmp_path / "gan" / "metrics.jsonl").read_text()
    wgan_config = tmp_path / "wgan" / "config.json"
    # as if stopped while training wgan: its directory holds only what a run writes first
    for path in sorted((tmp_path / "wgan").rglob("*"), reverse=True):
        if path != wgan_config:
            path.unlink() if path.is_file() else path.rmdir()
    wgan_config.unlink()
    (tmp_path / "report.html").unlink()
    compare.main(["--resume", str(tmp_path)])  # the losses and seeds come from the folder's plan
    out = capsys.readouterr().out
    assert "gan, seed 0: finished" in out and "training wgan, seed 0" in out
    assert (tmp_path / "gan" / "metrics.jsonl").read_text() == gan_before
    assert [end["reason"] for end in ends(tmp_path / "wgan")] == ["finished"]
    assert (tmp_path / "report.html").exists()


def test_resume_with_more_epochs_continues_every_run(compare, tmp_path, capsys):
    compare.main(["--seeds", "1", "--out", str(tmp_path), *TINY])
    compare.main(["--resume", str(tmp_path), "--epochs", "2"])
    assert "resuming gan, seed 1" in capsys.readouterr().out
    for loss in ("gan", "wgan"):
        assert [(end["reason"], end["epoch"]) for end in ends(tmp_path / loss)] == [("finished", 2)]
        assert (config_of(tmp_path / loss)["seed"], config_of(tmp_path / loss)["epochs"]) == (1, 2)


def test_a_second_comparison_into_the_same_folder_is_refused(compare, tmp_path):
    compare.main(["--losses", "wgan", "--out", str(tmp_path), *TINY])
    before = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")}
    with pytest.raises(SystemExit, match="holds a comparison already"):
        compare.main(["--losses", "gan", "--out", str(tmp_path), *TINY])
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")} == before


@pytest.mark.parametrize("content", [None, "not json", '{"losses": ["lsgan"], "seeds": [0], "settings": []}',
                                     '{"losses": ["gan"], "seeds": [0]}'])
def test_resume_without_a_readable_plan(compare, tmp_path, content):
    if content is not None:
        (tmp_path / "compare.json").write_text(content)
    with pytest.raises(SystemExit, match="--resume needs it"):
        compare.main(["--resume", str(tmp_path)])


def test_resume_refuses_a_setting_a_resumed_run_cannot_change(compare, tmp_path):
    compare.main(["--losses", "wgan", "--out", str(tmp_path), *TINY])
    with pytest.raises(SystemExit, match="cannot change image_size when resuming"):
        compare.main(["--resume", str(tmp_path), "--image-size", "32"])


def test_resume_of_a_missing_folder(compare, tmp_path):
    with pytest.raises(SystemExit, match="is not a folder of runs"):
        compare.main(["--resume", str(tmp_path / "nothing")])
