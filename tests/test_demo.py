"""examples/demo_gan_vs_wgan.py (`make demo`): two runs, one report, a verdict for each."""

import contextlib
import io

import pytest
from scripts import load_example

from trainers.report import load_run
from trainers.verdict import verdict


@pytest.fixture(scope="module")
def demo():
    return load_example("demo_gan_vs_wgan")


@pytest.fixture(scope="module")
def one_epoch(demo, tmp_path_factory):
    """The folder of a one-epoch demo, and what it printed (the runs take most of this file's time: made once)."""
    folder, printed = tmp_path_factory.mktemp("demo"), io.StringIO()
    with contextlib.redirect_stdout(printed):
        demo.main(["--out", str(folder), "--epochs", "1"])
    return folder, printed.getvalue()


def test_one_epoch_writes_both_runs_and_the_report(one_epoch):
    folder, printed = one_epoch
    out = printed.splitlines()
    assert out[-1] == f"report: {folder / 'report.html'}"
    assert out[-3].startswith("gan-discriminator-wins: ") and out[-2].startswith("wgan: ")
    gan, wgan = (load_run(folder / name) for name in ("gan-discriminator-wins", "wgan"))
    assert (gan.config["loss"], gan.config["critic_lr_factor"]) == ("gan-minimax", 10.0)
    assert (wgan.config["loss"], wgan.config["lr"], wgan.config["clip"], wgan.config["n_critic"]) == ("wgan", 5e-5, 0.01, 5)
    assert gan.of_kind("end")[-1]["images_seen"] == wgan.of_kind("end")[-1]["images_seen"]  # the same real images
    assert "docs/results.md" in (folder / "report.html").read_text()  # the report cites the measured answer


def test_a_folder_holding_the_runs_is_refused(demo, one_epoch):
    folder, _ = one_epoch
    with pytest.raises(SystemExit, match="^error: .*holds"):
        demo.main(["--out", str(folder), "--epochs", "1"])


@pytest.mark.slow
def test_the_gan_breaks_and_the_wgan_stays_healthy(demo, tmp_path):
    # the whole demo, as `make demo` runs it (about 3.5 minutes on 2 cores)
    demo.main(["--out", str(tmp_path)])
    gan, wgan = (verdict(load_run(tmp_path / name)) for name in ("gan-discriminator-wins", "wgan"))
    assert gan.state == "discriminator saturated" and "vanishing_gradient alarm" in gan.reason
    assert wgan.healthy and "fell" in wgan.reason
