"""Tests of the training loop on tiny configs (16x16 images, narrow nets): CPU, seconds each."""

import dataclasses
import hashlib
import io
import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from trainers import train as train_module
from trainers.checkpoint import MAGIC, load_checkpoint, save_checkpoint
from trainers.config import LATER_FIELDS, TrainConfig
from trainers.train import main, resumed_config, train

ROOT = Path(__file__).resolve().parents[1]


def tiny(out, **overrides):
    """16x16 faces, 8-channel nets, batches of 8: a WGAN epoch of 80 images is 2 generator steps."""
    settings = dict(image_size=16, nz=8, ngf=8, ndf=8, batch_size=8, procedural_images=200, holdout_images=20,
                    epoch_images=80, epochs=2, log_every=1, eval_every=1000, progress=False, device="cpu", out=str(out),
                    monitor=False)
    settings.update(overrides)
    return TrainConfig(**settings)


def lines(run, kind):
    return [record for record in map(json.loads, (Path(run) / "metrics.jsonl").read_text().splitlines()) if record["kind"] == kind]


def tensors(checkpoint):
    """Every tensor of a checkpoint, flattened into {dotted name: tensor}."""
    flat = {}

    def walk(prefix, value):
        if isinstance(value, torch.Tensor):
            flat[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(f"{prefix}.{index}", item)

    walk("", {key: checkpoint[key] for key in ("generator", "critic", "optimizer_g", "optimizer_d", "rng")})
    return flat


def test_wgan_critic_weights_inside_clip_after_training(tmp_path):
    # weight clipping: every critic parameter in [-c, c] after the critic steps
    train(tiny(tmp_path / "run", clip=0.003, epochs=1))
    critic = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["critic"]
    parameters = [value for name, value in critic.items() if "running" not in name and "num_batches" not in name]
    assert parameters and all(value.abs().max() <= 0.003 for value in parameters)


@pytest.mark.parametrize("loss, n_critic", [("wgan", 5), ("wgan-gp", 5), ("gan", 1), ("gan-minimax", 1)])
def test_critic_steps_per_generator_step(tmp_path, loss, n_critic):
    # n_critic critic steps per generator step, each on m fresh real images
    train(tiny(tmp_path / "run", loss=loss, epochs=1))
    for record in lines(tmp_path / "run", "train"):
        assert record["critic_steps"] == n_critic * record["step"]
        assert record["images_seen"] == 8 * record["critic_steps"]
    assert lines(tmp_path / "run", "end")[0]["images_seen"] >= 80


def test_reference_schedule_runs_100_critic_steps_first(tmp_path):
    train(tiny(tmp_path / "run", reference_schedule=True, epochs=1, epoch_images=1600))
    steps = [(r["step"], r["critic_steps"]) for r in lines(tmp_path / "run", "train")]
    assert steps == [(1, 100), (2, 200)]


def test_epoch_is_epoch_images_shown_to_the_critic(tmp_path):
    # 80 images per epoch at 40 per WGAN generator step: 2 generator steps per epoch
    summary = train(tiny(tmp_path / "run", epochs=3))
    assert (summary["epoch"], summary["step"], summary["images_seen"]) == (3, 6, 240)
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert grids == ["epoch_000.png", "epoch_001.png", "epoch_002.png", "epoch_003.png", "real.png"]
    assert Image.open(tmp_path / "run" / "samples" / "epoch_002.png").size == (10 * 18 + 2,) * 2  # 10x10 of 16 px


def test_metrics_lines(tmp_path):
    train(tiny(tmp_path / "run", loss="wgan-gp", epochs=1))
    first = lines(tmp_path / "run", "train")[0]
    assert set(first) >= {"epoch", "step", "critic_steps", "images_seen", "seconds", "loss_d", "loss_g",
                          "d_real", "d_fake", "w_estimate", "gp", "images_per_s"}
    assert math.isclose(first["w_estimate"], first["d_real"] - first["d_fake"], rel_tol=1e-9, abs_tol=1e-12)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["loss"], config["lr"], config["n_critic"], config["world_size"]) == ("wgan-gp", 1e-4, 5, 1)
    assert json.loads((tmp_path / "run" / "alarms.json").read_text()) == []


def test_seconds_never_go_back(tmp_path):
    # training time is paused during evaluations: an eval line reads the time its evaluation began, never later
    import time

    def slow_monitor(context):
        time.sleep(0.05)
        return {}

    train(tiny(tmp_path / "run", epochs=2, eval_every=1), monitor=slow_monitor)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    seconds = [record["seconds"] for record in records]
    assert [r["kind"] for r in records].count("eval") == 5
    assert seconds == sorted(seconds)


def test_gan_means_are_probabilities(tmp_path):
    train(tiny(tmp_path / "run", loss="gan", epochs=1))
    for record in lines(tmp_path / "run", "train"):
        assert 0 < record["d_real"] < 1 and 0 < record["d_fake"] < 1
        assert "w_estimate" not in record and "gp" not in record


@pytest.mark.parametrize("loss", ["wgan", "gan"])
def test_resume_between_epochs_equals_uninterrupted(tmp_path, loss):
    train(tiny(tmp_path / "whole", loss=loss, epochs=3))
    train(tiny(tmp_path / "split", loss=loss, epochs=1))
    train(resumed_config(tiny("", loss=loss, epochs=3, resume=str(tmp_path / "split")), {"epochs"}))
    whole = tensors(load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt"))
    split = tensors(load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt"))
    assert whole.keys() == split.keys()
    for name in whole:
        assert torch.equal(whole[name], split[name]), name
    steps = [r["step"] for r in lines(tmp_path / "whole", "train")]
    assert [r["step"] for r in lines(tmp_path / "split", "train")] == steps == list(range(1, steps[-1] + 1))


class InterruptAt:
    """A monitor that presses Ctrl-C at one generator step (and records the steps it saw)."""

    def __init__(self, step):
        self.step, self.seen = step, []

    def __call__(self, context):
        self.seen.append(context.counters.step)
        if context.counters.step == self.step:
            signal.raise_signal(signal.SIGINT)
        return {"probe": float(context.counters.step)}


@pytest.mark.parametrize("loss", ["wgan-gp", "gan"])
def test_ctrl_c_mid_epoch_checkpoints_and_resume_equals_uninterrupted(tmp_path, loss):
    handler = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN under a shell's background job
    train(tiny(tmp_path / "whole", loss=loss, epochs=2))
    stopped = train(tiny(tmp_path / "split", loss=loss, epochs=2, eval_every=1), monitor=InterruptAt(3))
    assert stopped["reason"] == "interrupted" and stopped["step"] == 3 and "--resume" in stopped["message"]
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["counters"]["step"] == 3
    train(resumed_config(tiny("", loss=loss, resume=str(tmp_path / "split")), set()))
    whole = tensors(load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt"))
    split = tensors(load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt"))
    for name in whole:
        assert torch.equal(whole[name], split[name]), name
    assert signal.getsignal(signal.SIGINT) is handler  # restored


def test_monitor_is_called_at_step_zero_and_every_eval_and_leaves_no_trace(tmp_path):
    monitor = InterruptAt(step=-1)
    train(tiny(tmp_path / "watched", epochs=2, eval_every=2), monitor=monitor)
    assert monitor.seen == [0, 2, 4]
    assert [r["probe"] for r in lines(tmp_path / "watched", "eval")] == [0.0, 2.0, 4.0]
    train(tiny(tmp_path / "plain", epochs=2, eval_every=2))
    watched = tensors(load_checkpoint(tmp_path / "watched" / "checkpoints" / "last.pt"))
    plain = tensors(load_checkpoint(tmp_path / "plain" / "checkpoints" / "last.pt"))
    assert all(torch.equal(watched[name], plain[name]) for name in plain)


def test_alarm_lines_and_stop_on_alarm(tmp_path):
    def alarming(context):
        return {"alarms": [{"name": "mode_collapse", "message": "all samples alike"}]} if context.counters.step == 2 else {}

    summary = train(tiny(tmp_path / "run", epochs=2, eval_every=1, stop_on_alarm=True), monitor=alarming)
    assert summary["reason"] == "alarm" and summary["step"] == 2
    alarms = json.loads((tmp_path / "run" / "alarms.json").read_text())
    assert [(a["name"], a["step"]) for a in alarms] == [("mode_collapse", 2)]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["counters"]["step"] == 2


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    spec = train_module.LOSS_SPECS["wgan"]
    calls = []

    def poisoned(fake_scores):
        calls.append(1)
        return spec.generator_loss(fake_scores) * (float("nan") if len(calls) >= 3 else 1.0)

    monkeypatch.setitem(train_module.LOSS_SPECS, "wgan", dataclasses.replace(spec, generator_loss=poisoned))
    summary = train(tiny(tmp_path / "run", epochs=3, log_every=5))
    assert summary["reason"] == "non_finite" and "loss_g" in summary["message"]
    assert "generator step 3" in summary["message"]
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert checkpoint["counters"]["step"] == 2  # the end of epoch 1
    assert all(torch.isfinite(value).all() for value in checkpoint["generator"].values())


def test_a_checkpoint_opens_with_plain_torch_load_and_ends_in_the_digest_of_the_rest(tmp_path):
    train(tiny(tmp_path / "run", epochs=1))
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)  # what every PyTorch user tries first
    assert state["config"]["loss"] == "wgan" and state["counters"]["epoch"] == 1
    data = path.read_bytes()
    assert data[-64:] == hashlib.sha256(data[:-64]).hexdigest().encode()  # the zip's comment
    assert not list((tmp_path / "run" / "checkpoints").glob("*.tmp"))


def test_a_checkpoint_of_the_earlier_format_still_loads_and_resumes(tmp_path):
    train(tiny(tmp_path / "run", epochs=1))
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    payload = io.BytesIO()
    torch.save(torch.load(path, weights_only=True), payload)
    path.write_bytes(MAGIC + hashlib.sha256(payload.getvalue()).hexdigest().encode() + b"\n" + payload.getvalue())
    assert load_checkpoint(path)["counters"]["epoch"] == 1
    summary = train(tiny("", epochs=2, resume=str(tmp_path / "run")))
    assert summary["epoch"] == 2 and summary["reason"] == "finished"


def test_a_run_from_before_the_later_fields_resumes_with_their_defaults(tmp_path):
    """A run written before the thresholds of LATER_FIELDS existed: neither its config.json nor its checkpoint has them."""
    train(tiny(tmp_path / "run", epochs=1))
    config_path, checkpoint_path = tmp_path / "run" / "config.json", tmp_path / "run" / "checkpoints" / "last.pt"
    saved = {k: v for k, v in json.loads(config_path.read_text()).items() if k not in LATER_FIELDS}
    config_path.write_text(json.dumps(saved))
    state = load_checkpoint(checkpoint_path)
    state["config"] = {k: v for k, v in state["config"].items() if k not in LATER_FIELDS}
    save_checkpoint(state, checkpoint_path)
    summary = train(tiny("", epochs=2, resume=str(tmp_path / "run")))
    assert summary["epoch"] == 2 and summary["reason"] == "finished"


def test_resume_refuses_changing_the_math(tmp_path):
    train(tiny(tmp_path / "run", epochs=1))
    with pytest.raises(ValueError, match="cannot change lr when resuming"):
        resumed_config(tiny("", lr=1.0, resume=str(tmp_path / "run")), {"lr"})
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        resumed_config(tiny("", resume=str(tmp_path / "nothing")), set())


def test_folder_data_and_streaming_give_batches(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for index in range(30):
        Image.new("RGB", (20, 24), (index * 8, 100, 200)).save(folder / f"{index:02d}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        in_memory = train(tiny(tmp_path / "memory", data=str(folder), epochs=1))
    with pytest.warns(UserWarning, match="skipping unreadable image file 'broken.jpg'"):
        streamed = train(tiny(tmp_path / "stream", data=str(folder), epochs=3, data_memory_gb=1e-6))
    assert in_memory["reason"] == streamed["reason"] == "finished"


def test_main_reports_a_bad_data_folder_clearly(tmp_path):
    with pytest.raises(SystemExit, match="error: image source .*nowhere.* does not exist"):
        main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "--device=cpu"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="error: no readable image found"):
        main(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run"), "--device=cpu"])
    assert not (tmp_path / "run").exists()  # nothing written before the data is known to be good


def test_dry_run_from_the_command_line(tmp_path):
    # the examples' smoke test: two generator steps, every output written once
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_gan.py"), "--dry-run", "--image-size=32", "--ngf=8",
         "--ndf=8", "--device=cpu", "--tensorboard=false", f"--out={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "trained 1 epoch(s)" in result.stdout
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"config.json", "metrics.jsonl", "alarms.json", "samples", "checkpoints"}
    assert [r["step"] for r in lines(tmp_path / "run", "train")] == [1, 2]


def test_two_processes_with_gloo(tmp_path):
    # DistributedDataParallel on 2 CPU processes: gradients averaged, one writer, per-process noise
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(ROOT / "examples" / "train_wgan.py"), "--loss=wgan-gp", "--image-size=16", "--ngf=8", "--ndf=8",
         "--nz=8", "--batch-size=8", "--procedural-images=200", "--epoch-images=160", "--epochs=2",
         "--log-every=1", "--device=cpu", f"--out={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["world_size"] == 2
    # 2 processes x 5 critic steps x 8 images = 80 images per generator step
    assert [(r["step"], r["images_seen"]) for r in lines(tmp_path / "run", "train")] == [(1, 80), (2, 160), (3, 240), (4, 320)]
    assert result.stdout.count("trained 2 epoch(s)") == 1  # rank 0 alone prints


def test_healthy_short_wgan_run_raises_no_alarm(tmp_path):
    summary = train(tiny(tmp_path / "run", epochs=6, eval_every=2, monitor=True, eval_images=64, alarm_after_images=0))
    assert summary["reason"] == "finished"
    evals = lines(tmp_path / "run", "eval")
    assert [r["step"] for r in evals] == list(range(0, 13, 2))
    assert all("w_estimate" in r and "js_bound" not in r and r["modes_total"] == 30 for r in evals)
    assert json.loads((tmp_path / "run" / "alarms.json").read_text()) == []


def test_discriminator_with_ten_times_the_learning_rate_raises_vanishing_gradient(tmp_path):
    # the saturating GAN loss against a discriminator that learns 10x faster: JS bound -> log 2, gradients vanish
    summary = train(tiny(tmp_path / "run", loss="gan-minimax", critic_lr_factor=10, epochs=8, eval_every=5,
                         monitor=True, eval_images=64, alarm_after_images=0, stop_on_alarm=True, collapse_modes=0))
    alarms = json.loads((tmp_path / "run" / "alarms.json").read_text())
    assert summary["reason"] == "alarm" and alarms[0]["name"] == "vanishing_gradient"
    assert alarms[0].get("js_bound", alarms[0].get("js_bound_train")) > math.log(2) - 0.02  # held out, or train lines


def test_tensorboard_scalars_when_installed(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny(tmp_path / "run", epochs=1, tensorboard=True))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    loss_g = events.Scalars("train/loss_g")
    assert [e.step for e in loss_g] == [r["images_seen"] for r in lines(tmp_path / "run", "train")]
    assert loss_g[0].value == pytest.approx(lines(tmp_path / "run", "train")[0]["loss_g"], rel=1e-6)


def test_no_tensorboard_folder_when_turned_off(tmp_path):
    train(tiny(tmp_path / "run", epochs=1, tensorboard=False))
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_the_monitor_does_not_change_training(tmp_path):
    # the monitor draws its own noise and the batch-norm buffers are restored after each evaluation
    train(tiny(tmp_path / "watched", epochs=2, eval_every=1, monitor=True, eval_images=32))
    train(tiny(tmp_path / "plain", epochs=2))
    watched = tensors(load_checkpoint(tmp_path / "watched" / "checkpoints" / "last.pt"))
    plain = tensors(load_checkpoint(tmp_path / "plain" / "checkpoints" / "last.pt"))
    assert all(torch.equal(watched[name], plain[name]) for name in plain)
    assert len(lines(tmp_path / "watched", "eval")) == 5


def test_command_line_exit_status_when_a_run_does_not_finish(tmp_path, monkeypatch):
    spec = train_module.LOSS_SPECS["wgan"]
    poisoned = dataclasses.replace(spec, generator_loss=lambda scores: spec.generator_loss(scores) * float("nan"))
    monkeypatch.setitem(train_module.LOSS_SPECS, "wgan", poisoned)
    argv = ["--image-size=16", "--ngf=8", "--ndf=8", "--nz=8", "--batch-size=8", "--procedural-images=200",
            "--epoch-images=80", "--device=cpu", "--monitor=false", f"--out={tmp_path / 'run'}"]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 1


TINY_ARGV = ["--image-size=16", "--ngf=8", "--ndf=8", "--nz=8", "--batch-size=8", "--procedural-images=200",
             "--epoch-images=80", "--device=cpu", "--progress=false", "--tensorboard=false"]


def test_command_line_reports_a_run_that_cannot_start_in_one_line(tmp_path):
    # a set-up error (here a config value) is one 'error:' line, and nothing is written
    with pytest.raises(SystemExit, match=r"^error: `epochs` should be >= 1\. Instead, received 0\.$"):
        main(TINY_ARGV + ["--epochs=0", f"--out={tmp_path / 'run'}"])
    assert not (tmp_path / "run").exists()


def test_command_line_lets_an_error_inside_training_raise_with_its_traceback(tmp_path):
    # a bug met during training (a shape error in the monitor at step 2) is not a set-up error
    def monitor(context):
        if context.counters.step == 2:
            raise ValueError("operands could not be broadcast together")
        return {}

    with pytest.raises(ValueError, match="operands could not be broadcast") as raised:
        main(TINY_ARGV + ["--eval-every=1", f"--out={tmp_path / 'run'}"], monitor=monitor)
    assert not isinstance(raised.value, train_module.SetupError)


def test_bfloat16_autocast_runs_on_the_cpu(tmp_path):
    summary = train(tiny(tmp_path / "run", epochs=1, bf16=True, loss="gan"))
    assert summary["reason"] == "finished"
    assert all(math.isfinite(r["loss_d"]) for r in lines(tmp_path / "run", "train"))


@pytest.mark.slow
def test_compiled_models_train_like_eager_ones(tmp_path):
    # torch.compile (inductor on the CPU) runs the same loop; values agree to float32 round-off
    train(tiny(tmp_path / "eager", epochs=1))
    train(tiny(tmp_path / "compiled", epochs=1, compile=True))
    eager, compiled = lines(tmp_path / "eager", "train"), lines(tmp_path / "compiled", "train")
    assert [r["step"] for r in eager] == [r["step"] for r in compiled]
    for a, b in zip(eager, compiled):
        assert a["loss_g"] == pytest.approx(b["loss_g"], rel=1e-3, abs=1e-5)


def test_report_of_a_monitored_run(tmp_path):
    from trainers.report import write_report

    train(tiny(tmp_path / "gan", loss="gan", epochs=1, eval_every=4, monitor=True, eval_images=32))
    train(tiny(tmp_path / "wgan", epochs=1, eval_every=1, monitor=True, eval_images=32))
    report = write_report([tmp_path / "gan", tmp_path / "wgan"], tmp_path / "report.html")
    html = report.read_text()
    assert html.count("data:image/png;base64,") >= 1 + 2 * 2  # curves and two grids per run
    assert (tmp_path / "curves.png").stat().st_size > 10_000


TINY_ARGV = ["--image-size", "16", "--nz", "8", "--ngf", "8", "--ndf", "8", "--batch-size", "8",
             "--procedural-images", "200", "--holdout-images", "20", "--epoch-images", "80", "--epochs", "1",
             "--monitor", "false", "--progress", "false", "--device", "cpu", "--log-every", "1"]


def test_threads_option_sets_torch_threads(tmp_path):
    before = torch.get_num_threads()
    try:
        main(["--threads", "1", "--out", str(tmp_path / "run"), *TINY_ARGV])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert "threads" not in json.loads((tmp_path / "run" / "config.json").read_text())


def test_time_left_is_said_once(tmp_path, monkeypatch, capsys):
    from trainers import bookkeeping
    monkeypatch.setattr(bookkeeping, "ETA_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(bookkeeping, "QUICK_HINT_SECONDS", 0.0)  # any CPU run counts as long
    main(["--out", str(tmp_path / "run"), *TINY_ARGV])
    said = [line for line in capsys.readouterr().out.splitlines() if "images/s on cpu" in line]
    assert len(said) == 1
    assert "the remaining 1 epoch(s) take about" in said[0] and said[0].endswith("--preset quick shows learning in minutes.")


@pytest.mark.parametrize("seconds, text", [(40.4, "40 s"), (89, "89 s"), (90, "2 min"), (421, "7 min"),
                                           (3600, "1 h 00 min"), (7530, "2 h 05 min")])
def test_duration_words(seconds, text):
    from trainers.bookkeeping import _duration
    assert _duration(seconds) == text


def test_a_train_line_alarm_is_written_and_stops_the_run_at_the_next_step(tmp_path):
    class SaturatedAtStepTwo:
        lines = 0

        def __call__(self, context):
            return {}

        def observe_training(self, means, images_seen):
            assert set(means) >= {"loss_d", "loss_g"}
            self.lines += 1  # one train line per step (log_every 1)
            return [{"name": "vanishing_gradient", "message": "saturated"}] if self.lines == 2 else []

    summary = train(tiny(tmp_path / "run", epochs=3, log_every=1, stop_on_alarm=True), monitor=SaturatedAtStepTwo())
    assert summary["reason"] == "alarm" and "at generator step 2" in summary["message"]
    alarms = json.loads((tmp_path / "run" / "alarms.json").read_text())
    assert [(a["name"], a["step"]) for a in alarms] == [("vanishing_gradient", 2)]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["counters"]["step"] == 3
