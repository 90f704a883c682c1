"""Tests of trainers.watch: the monitor in a training loop of one's own."""

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from trainers.bookkeeping import EvalContext
from trainers.alarms import _FRACTIONS, Thresholds
from trainers.config import TrainConfig
from trainers.data import load_real_images
from trainers.images import to_float
from trainers.models import Critic, Generator, init_weights
from trainers.monitor import Monitor
from trainers.report import load_run
from trainers.checkpoint import Counters
from trainers.watch import THRESHOLDS, Watch

NZ = 4


def points(n, seed):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) + torch.tensor([3.0, -1.0])


def models(seed=0):
    torch.manual_seed(seed)
    return (nn.Sequential(nn.Linear(NZ, 32), nn.ReLU(), nn.Linear(32, 2)),
            nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1)))


def records(directory, kind):
    return [r for r in map(json.loads, (directory / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


def train_loop(steps, watch=None, seed=0, loss="gan"):
    """A small GAN on 2-D points; returns the generator's parameters after ``steps`` steps."""
    generator, critic = models(seed)
    optimizer_g, optimizer_d = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (generator, critic))
    for step in range(1, steps + 1):
        real, fake = points(32, step), generator(torch.randn(32, NZ)).detach()
        loss_d = (nn.functional.softplus(-critic(real)) + nn.functional.softplus(critic(fake))).mean()
        optimizer_d.zero_grad()
        loss_d.backward()
        optimizer_d.step()
        loss_g = nn.functional.softplus(-critic(generator(torch.randn(32, NZ)))).mean()
        optimizer_g.zero_grad()
        loss_g.backward()
        optimizer_g.step()
        if watch is not None:
            watch.step(step, generator=generator, critic=critic, loss_d=loss_d, loss_g=loss_g)
    return torch.cat([p.detach().flatten() for p in generator.parameters()])


def test_a_loop_with_its_models_gets_every_signal_and_a_report(tmp_path):
    watch = Watch(points(200, 0), tmp_path / "run", loss="gan", batch_size=32, noise=lambda n: torch.randn(n, NZ),
                  eval_every=5, log_every=2, eval_samples=64)
    train_loop(10, watch)
    report = watch.close()
    assert report == tmp_path / "run" / "report.html" and report.exists()
    evals = records(tmp_path / "run", "eval")
    assert [r["step"] for r in evals] == [1, 5, 10]
    assert [r["images_seen"] for r in evals] == [32, 160, 320]
    for key in ("js_bound", "grad_norm_g", "grad_norm_x", "sliced_samples", "sinkhorn_samples", "fd_samples",
                "kid_samples", "coverage_samples", "diversity_fake", "diversity_real"):
        assert all(math.isfinite(r[key]) for r in evals), key
    assert all(0 <= r["js_bound"] <= math.log(2) for r in evals)
    trains = records(tmp_path / "run", "train")
    assert [r["step"] for r in trains] == [2, 4, 6, 8, 10]
    assert set(trains[0]) >= {"loss_d", "loss_g", "images_seen", "seconds"}
    assert [r["reason"] for r in records(tmp_path / "run", "end")] == ["finished"]
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [
        "step_0000001.png", "step_0000005.png", "step_0000010.png"]
    run = load_run(tmp_path / "run")
    assert sorted(run.samples) == [1, 5, 10] and run.config["loss"] == "gan"


def test_watching_does_not_change_training(tmp_path):
    torch.manual_seed(123)
    alone = train_loop(12)
    torch.manual_seed(123)
    watched = train_loop(12, Watch(points(100, 0), tmp_path / "run", loss="gan", batch_size=32,
                                   noise=lambda n: torch.randn(n, NZ), eval_every=3))
    assert torch.equal(alone, watched)


def test_the_distances_are_in_units_of_the_real_spread(tmp_path):
    # scaling real and generated points alike leaves every distance unchanged
    values = []
    for scale in (1.0, 1000.0):
        watch = Watch(points(100, 0) * scale, tmp_path / f"run{scale}", loss="wgan", batch_size=8)
        watch.step(1, fake=points(100, 1) * scale * 1.5, real_scores=torch.zeros(4), fake_scores=torch.zeros(4))
        watch.close(report=False)
        values.append(records(tmp_path / f"run{scale}", "eval")[0])
    for key in ("sliced_samples", "sinkhorn_samples", "fd_samples", "diversity_fake"):
        assert values[0][key] == pytest.approx(values[1][key], rel=1e-6), key


def test_batches_alone_give_the_estimate_without_gradients(tmp_path):
    watch = Watch(points(100, 0), tmp_path / "run", loss="wgan", batch_size=8)
    watch.step(1, fake=points(50, 1), real_scores=torch.full((10,), 2.0), fake_scores=np.full(7, -0.5))
    watch.close(report=False)
    (record,) = records(tmp_path / "run", "eval")
    assert record["w_estimate"] == pytest.approx(2.5)
    assert "grad_norm_g" not in record and "grad_norm_x" not in record
    assert record["sliced_samples"] > 0


def test_identical_samples_are_at_distance_zero(tmp_path):
    real = points(64, 0)
    watch = Watch(real, tmp_path / "run", loss="gan", batch_size=8, eval_samples=64)
    watch.step(1, fake=real.flip(0))  # the same points, in another order
    watch.close(report=False)
    (record,) = records(tmp_path / "run", "eval")
    assert record["sliced_samples"] == pytest.approx(0, abs=1e-12)
    assert record["fd_samples"] == pytest.approx(0, abs=1e-9)
    assert record["coverage_samples"] == 1.0
    assert record["diversity_fake"] == pytest.approx(record["diversity_real"])


def test_images_get_the_image_signals_and_grids(tmp_path):
    images = torch.rand(40, 3, 16, 16) * 2 - 1
    watch = Watch(images, tmp_path / "run", loss="gan", batch_size=8, eval_samples=40)
    watch.step(1, fake=images.flip(0) * 0.5)
    watch.close()
    (record,) = records(tmp_path / "run", "eval")
    for key in ("sliced_pixels", "sinkhorn_pixels", "sliced_patches", "fd_features", "kid_features", "coverage_features"):
        assert math.isfinite(record[key]), key
    assert (tmp_path / "run" / "samples" / "step_0000001.png").exists()


def test_watch_measures_what_the_trainers_monitor_measures(tmp_path):
    config = TrainConfig(image_size=16, nz=NZ, ngf=8, ndf=8, batch_size=8, procedural_images=400, holdout_images=40,
                         eval_images=40, alarm_after_images=0, device="cpu", loss="gan").resolved()
    data = load_real_images(config, torch.device("cpu"))
    torch.manual_seed(0)
    generator, critic = Generator(16, NZ, 8), Critic(16, 8)
    generator.apply(init_weights)
    critic.apply(init_weights)
    trainer = Monitor(config)(EvalContext(config, Counters(step=1, images_seen=8), generator, critic, data,
                                          torch.device("cpu")))
    watch = Watch(to_float(data.holdout), tmp_path / "run", loss="gan", batch_size=8, eval_samples=40,
                  noise=lambda n: torch.randn(n, NZ, 1, 1), labels=data.holdout_labels.numpy(), alarm_after_images=0)
    watch.step(1, generator=generator, critic=critic)
    watch.close(report=False)
    (watched,) = records(tmp_path / "run", "eval")
    # the same images and the same noise (seed + 1), the held-out images in another order: the critic's
    # batch norm sums them in another order, in float32
    for key in ("js_bound", "grad_norm_x"):
        assert watched[key] == pytest.approx(trainer[key], rel=1e-4, abs=1e-6), key
    for key in ("sliced_pixels", "sinkhorn_pixels", "fd_features", "kid_features", "coverage_features",
                "diversity_fake", "diversity_real", "modes_covered", "kl_attributes"):
        assert float(watched[key]) == pytest.approx(trainer[key], rel=1e-6, abs=1e-9), key  # "Infinity" in JSON


def test_nan_samples_raise_the_diverged_alarm_at_once(tmp_path):
    watch = Watch(points(50, 0), tmp_path / "run", loss="gan", batch_size=8, alarm_after_images=10**9)
    alarms = watch.step(1, fake=torch.full((20, 2), math.nan))
    assert [alarm["name"] for alarm in alarms] == ["diverged"]
    assert watch.step(2, fake=points(20, 3)) == []  # each alarm fires once per run
    watch.close(report=False)
    assert [a["name"] for a in json.loads((tmp_path / "run" / "alarms.json").read_text())] == ["diverged"]


def test_a_collapsed_generator_raises_mode_collapse(tmp_path):
    watch = Watch(points(200, 0), tmp_path / "run", loss="gan", batch_size=8, eval_every=1, alarm_after_images=0)
    fired = []
    for step in range(1, 8):
        fake = points(100, step) if step <= 2 else points(1, 99).repeat(100, 1) + 1e-3 * points(100, step)
        alarms = watch.step(step, fake=fake)
        fired += [(step, alarm["name"]) for alarm in alarms]
    watch.close(report=False)
    assert fired == [(5, "mode_collapse")]  # three collapsed evaluations in a row: steps 3, 4, 5
    assert "generated samples are" in json.loads((tmp_path / "run" / "alarms.json").read_text())[0]["message"]  # points, not images


def test_scores_alone_can_raise_the_vanishing_gradient_alarm(tmp_path):
    # a discriminator that tells every sample apart: JS bound at log 2, read without gradients
    watch = Watch(points(50, 0), tmp_path / "run", loss="gan", batch_size=8, alarm_after_images=0, alarm_patience=2,
                  eval_every=1)
    names = [[a["name"] for a in watch.step(step, fake=points(50, step), real_scores=torch.full((50,), 30.0),
                                            fake_scores=torch.full((50,), -30.0))] for step in (1, 2)]
    assert names == [[], ["vanishing_gradient"]]


def test_a_directory_holding_a_run_is_refused(tmp_path):
    watch = Watch(points(10, 0), tmp_path / "run", loss="gan", batch_size=8)
    watch.step(1, fake=points(10, 1))
    watch.close(report=False)
    before = (tmp_path / "run" / "metrics.jsonl").read_text()
    with pytest.raises(ValueError, match="holds"):
        Watch(points(10, 0), tmp_path / "run", loss="gan", batch_size=8)
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == before


def test_context_manager_records_an_error(tmp_path):
    with pytest.raises(RuntimeError):
        with Watch(points(10, 0), tmp_path / "run", loss="wgan", batch_size=8) as watch:
            watch.step(1, fake=points(10, 1))
            raise RuntimeError("boom")
    (end,) = records(tmp_path / "run", "end")
    assert end["reason"] == "error" and "RuntimeError: boom" in end["message"]
    with pytest.raises(ValueError, match="closed"):
        watch.step(2, fake=points(10, 1))


@pytest.mark.parametrize("real, error, message", [
    (torch.zeros(1, 2), ValueError, "at least 2 samples"),
    (torch.zeros(5, 2, 3), ValueError, r"\(N, D\) points or \(N, C, H, W\) images"),
    (torch.zeros(0, 2), ValueError, "N >= 1"),
    (torch.tensor([[0.0, math.nan], [1.0, 2.0]]), ValueError, "`real` should be finite"),
    (torch.zeros(5, 2, dtype=torch.int64), TypeError, "`real` should be a tensor or array of floats"),
    ([[0.0, 1.0], [1.0, 0.0]], TypeError, "received a list"),
    # float64 samples beyond float32, where the monitor measures: they became inf and every evaluation blamed
    # the generator's samples
    (torch.randn(16, 2, dtype=torch.float64) * 1e300, ValueError, "`real` should be finite in float32"),
])
def test_bad_real_samples(tmp_path, real, error, message):
    with pytest.raises(error, match=message):
        Watch(real, tmp_path / "run", loss="gan", batch_size=8)
    assert not (tmp_path / "run").exists()


def hostile_settings():
    """(argument, bad value, error type): every argument of Watch, with a value of the wrong type and one out of its domain."""
    cases = [("loss", 3, TypeError), ("loss", "lsgan", ValueError), ("noise", 3, TypeError),
             ("seed", "0", TypeError), ("seed", True, TypeError), ("seed", 1.5, TypeError), ("seed", -1, ValueError),
             ("seed", 2**32, ValueError), ("eval_samples", 5000, ValueError), ("labels", np.zeros((3, 5)), ValueError),
             ("labels", np.zeros((10, 2)), ValueError), ("labels", np.full((10, 5), np.nan), ValueError)]
    for name in ("batch_size", "eval_every", "log_every", "eval_samples"):
        cases += [(name, 2.5, TypeError), (name, True, TypeError), (name, "8", TypeError), (name, 0, ValueError)]
    for field in dataclasses.fields(Thresholds):
        cases += [(field.name, "1", TypeError), (field.name, -1, ValueError)]
        cases += [(field.name, 1.5, TypeError)] if field.type is int else [(field.name, math.nan, ValueError),
                                                                              (field.name, math.inf, ValueError)]
        if field.name in _FRACTIONS:  # a fraction of 1e300 was accepted
            cases += [(field.name, _FRACTIONS[field.name] * 1.01, ValueError), (field.name, 1e300, ValueError)]
    return cases


@pytest.mark.parametrize("name, value, error", hostile_settings(), ids=lambda value: repr(value)[:20])
def test_every_argument_gets_the_librarys_named_error(tmp_path, name, value, error):
    settings = {"loss": "gan", "batch_size": 8, name: value}
    with pytest.raises(error, match=f"`{name}` should"):
        Watch(torch.zeros(10, 2), tmp_path / "run", **settings)
    assert not (tmp_path / "run").exists()


def test_numpy_integers_are_integers(tmp_path):
    watch = Watch(torch.randn(10, 2), tmp_path / "run", loss="gan", batch_size=np.int64(8), seed=np.int32(3),
                  alarm_patience=np.int64(2))
    watch.step(np.int64(1), fake=torch.randn(4, 2))
    assert watch.images_seen == 8 and watch.close(report=False) is None


def test_unknown_keywords_are_named(tmp_path):
    with pytest.raises(TypeError, match="unknown keyword.*patience"):
        Watch(torch.zeros(10, 2), tmp_path / "run", loss="gan", batch_size=8, patience=3)


def test_a_file_as_the_run_directory_is_refused_in_python_words(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder; give another `out`"):
        Watch(torch.zeros(10, 2), tmp_path / "file", loss="gan", batch_size=8)
    watch = Watch(torch.zeros(10, 2), tmp_path / "run", loss="gan", batch_size=8)
    watch.step(1, fake=torch.ones(10, 2))
    watch.close(report=False)
    with pytest.raises(ValueError, match="already holds a run .*; give another `out`, or remove") as refused:
        Watch(torch.zeros(10, 2), tmp_path / "run", loss="gan", batch_size=8)
    assert "--" not in str(refused.value)  # no command-line flags for a Python user


def test_bad_steps_and_batches(tmp_path):
    generator, critic = models()
    watch = Watch(points(10, 0), tmp_path / "run", loss="gan", batch_size=8)
    with pytest.raises(ValueError, match="give `generator`"):
        watch.step(1)
    with pytest.raises(ValueError, match="a `generator` needs `noise`"):
        watch.evaluate(generator=generator)
    with pytest.raises(ValueError, match="one of them"):
        watch.evaluate(generator=generator, fake=points(5, 1))
    with pytest.raises(ValueError, match=r"shape of the real samples, \(N, 2\). Instead, received \(5, 3\)"):
        watch.evaluate(fake=torch.zeros(5, 3))
    with pytest.raises(ValueError, match="together"):
        watch.evaluate(fake=points(5, 1), real_scores=torch.zeros(3))
    with pytest.raises(TypeError, match="the loss `loss_d` should be a number"):
        watch.step(1, fake=points(5, 1), loss_d="high")
    assert watch.last_step is None  # the refused calls changed nothing
    watch.step(2, fake=points(5, 1))
    with pytest.raises(ValueError, match="`step` should increase"):
        watch.step(2, fake=points(5, 1))
    with pytest.raises(ValueError, match="`images_seen` should never decrease"):
        watch.step(3, images_seen=1)


def test_noise_that_is_not_n_rows_is_refused(tmp_path):
    generator, _ = models()
    watch = Watch(points(10, 0), tmp_path / "run", loss="gan", batch_size=8, noise=lambda n: torch.randn(3, NZ))
    with pytest.raises(ValueError, match="`noise\\(n\\)` should return a tensor of n rows"):
        watch.step(1, generator=generator)
    with pytest.raises(ValueError, match="`noise\\(n\\)` should return a tensor of n rows"):  # not kept after a refusal
        watch.step(1, generator=generator)


def test_thresholds_are_the_trainers():
    assert set(THRESHOLDS) <= {field for field in TrainConfig.__dataclass_fields__}


def test_thresholds_default_to_the_same_values_in_the_trainer():
    config, defaults = TrainConfig(), Thresholds()
    assert {name: getattr(config, name) for name in THRESHOLDS} == dataclasses.asdict(defaults)


def test_watch_imports_without_progress_bars_or_figures():
    """Only the core dependencies and Pillow (for sample grids): tqdm and matplotlib blocked, the import works."""
    code = ("import builtins\n"
            "real = builtins.__import__\n"
            "def guarded(name, *args, **kwargs):\n"
            "    if name.split('.')[0] in ('tqdm', 'matplotlib'):\n"
            "        raise ImportError(name)\n"
            "    return real(name, *args, **kwargs)\n"
            "builtins.__import__ = guarded\n"
            "from trainers.watch import Watch\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: Monitor({"loss": "gan"}), TypeError, "`config` should be a trainers.config.TrainConfig"),
    (lambda: Monitor(TrainConfig(device="cpu")).observe([0.1], 0), TypeError, "`signals` should be a dict"),
    (lambda: Monitor(TrainConfig(device="cpu")).observe({"finite": True}, "10"), TypeError, "`images_seen`"),
    (lambda: Monitor(TrainConfig(device="cpu")).observe({"finite": True}, -1), ValueError, "`images_seen`"),
    (lambda: Monitor(TrainConfig(device="cpu")).observe_training(0.5, 10), TypeError, "`means` should be a dict"),
    (lambda: Monitor(TrainConfig(device="cpu")).observe_training({"loss_d": 1.0}, 2.5), TypeError, "`images_seen`"),
    (lambda: Monitor(TrainConfig(device="cpu")).observe({"finite": True, "sliced_pixels": 1.0}, 10), ValueError,
     "`signals` should hold the signals the alarms read .* lacks diversity_fake, diversity_real"),
    (lambda: Monitor(TrainConfig(device="cpu")).observe_training({"loss_d": "x"}, 1), TypeError, "`means\\['loss_d'\\]`"),
    (lambda: Monitor(TrainConfig(device="cpu")).restore(5, 5), TypeError, "`evaluations` should be a list of dicts"),
    (lambda: Monitor(TrainConfig(device="cpu", eval_images=0)), ValueError, "`eval_images` should be >= 1"),
    (lambda: Monitor(TrainConfig(device="cpu", eval_images=1.5)), TypeError, "`eval_images` should be an integer"),
    (lambda: Monitor(TrainConfig(device="cpu", seed=2**40)), ValueError, "`seed` should be at most"),
])
def test_every_argument_of_the_monitor_gets_the_librarys_named_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_nan_critic_scores_on_finite_images_say_the_critic_diverged(tmp_path):
    real = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    watch = Watch(real, tmp_path / "run", loss="wgan", batch_size=32, alarm_after_images=0)
    [alarm] = watch.step(1, fake=real + 1, real_scores=torch.zeros(32), fake_scores=torch.full((32,), math.nan))
    watch.close(report=False)
    assert alarm["name"] == "diverged" and "critic's outputs are NaN" in alarm["message"]
    [evaluation] = [line for line in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
                    if line["kind"] == "eval"]
    assert evaluation["finite"] is True and evaluation["critic_finite"] is False and "sliced_samples" in evaluation


@pytest.mark.parametrize("out, error, message", [
    ("", ValueError, "`out` should name the run directory. Instead, received an empty path"),
    (None, TypeError, "`out` should be a path"), (3, TypeError, "`out` should be a path"),
    (b"/tmp/run", TypeError, "`out` should be a path"), ("run\0x", ValueError, "`out` should be a path without NUL"),
])
def test_a_bad_run_directory_is_named(tmp_path, monkeypatch, out, error, message):
    # an empty path wrote the run into the working directory; the others were pathlib's or the OS's messages
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message):
        Watch(torch.zeros(10, 2), out, loss="gan", batch_size=8)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_in_use_speaks_of_out_not_of_a_flag(tmp_path):
    first = Watch(torch.randn(10, 2), tmp_path / "run", loss="gan", batch_size=8)
    try:
        with pytest.raises(ValueError, match="in use by another run.*give another `out`") as refused:
            Watch(torch.randn(10, 2), tmp_path / "run", loss="gan", batch_size=8)
        assert "--out" not in str(refused.value)
    finally:
        first.close(report=False)


@pytest.mark.parametrize("models", [{"generator": "G"}, {"critic": "D"}, {"generator": lambda z: z}])
def test_models_that_are_not_modules_are_named(tmp_path, models):
    watch = Watch(torch.randn(10, 2), tmp_path / "run", loss="gan", batch_size=8, noise=lambda n: torch.randn(n, 2))
    name = next(iter(models))
    with pytest.raises(TypeError, match=f"`{name}` should be a torch.nn.Module"):
        watch.step(1, **{"generator": torch.nn.Linear(2, 2), "critic": torch.nn.Linear(2, 1), **models})
    watch.close(report=False)


@pytest.mark.parametrize("arguments, error, name", [
    ({"report": "no"}, TypeError, "report"), ({"reason": 3}, TypeError, "reason"), ({"reason": ""}, TypeError, "reason"),
    ({"message": 5}, TypeError, "message"),
])
def test_close_checks_its_arguments(tmp_path, arguments, error, name):
    watch = Watch(torch.randn(10, 2), tmp_path / "run", loss="gan", batch_size=8)
    with pytest.raises(error, match=f"`{name}` should"):
        watch.close(**arguments)
    assert watch.close(report=False) is None and records(tmp_path / "run", "end")[0]["reason"] == "finished"


@pytest.mark.parametrize("losses", [{"kind": 0.5}, {"seconds": 0.5}, {"": 0.5}, {" ": 0.5}])
def test_a_loss_cannot_take_a_line_fields_name(tmp_path, losses):
    # kind=0.5 overwrote the lines' kind (the report then skipped them as malformed); seconds=0.5 the timing
    watch = Watch(torch.randn(10, 2), tmp_path / "run", loss="gan", batch_size=8)
    with pytest.raises(ValueError, match="loss names should not be empty or one of the train line's own fields"):
        watch.step(1, fake=torch.randn(4, 2), **losses)
    watch.step(1, fake=torch.randn(4, 2), loss_d=0.5)  # the refused call left the Watch as it was
    watch.close(report=False)


class _Pair(torch.nn.Module):
    """A model that returns a tuple, as some do."""

    def forward(self, samples):
        return samples, samples


@pytest.mark.parametrize("models, name", [({"generator": _Pair()}, "generator"), ({"critic": _Pair()}, "critic"),
                                          ({"critic": torch.nn.Linear(2, 3)}, "critic")])
def test_models_whose_outputs_are_not_samples_or_scores_are_named(tmp_path, models, name):
    # a tuple was an AttributeError from deep inside; a critic of 3 scores a sample was accepted silently
    watch = Watch(torch.randn(10, 2), tmp_path / "run", loss="gan", batch_size=8, noise=lambda n: torch.randn(n, 2))
    with pytest.raises(TypeError, match=f"`{name}` should return"):
        watch.step(1, **{"generator": torch.nn.Linear(2, 2), "critic": torch.nn.Linear(2, 1), **models})
    watch.close(report=False)


@pytest.mark.parametrize("fake", [torch.randn(4, 2).to_sparse(), torch.empty(4, 2, device="meta")])
def test_fake_samples_without_values_are_named(tmp_path, fake):
    watch = Watch(torch.randn(10, 2), tmp_path / "run", loss="gan", batch_size=8)
    with pytest.raises(TypeError, match="`fake` should be a dense tensor with values"):
        watch.step(1, fake=fake)
    watch.close(report=False)
