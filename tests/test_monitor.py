"""Tests of trainers.monitor: signals with known values, and each alarm forced on purpose."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from divergences import frechet, js_from_discriminator, mmd, prdc
from trainers.bookkeeping import EvalContext
from trainers.config import TrainConfig
from trainers.data import load_real_images
from trainers.features import RandomFeatures
from trainers.images import to_float
from trainers import monitor as monitor_module
from trainers.monitor import Monitor
from trainers.checkpoint import Counters


def config(**overrides):
    settings = dict(image_size=16, nz=4, batch_size=16, procedural_images=400, holdout_images=40, eval_images=40,
                    alarm_after_images=0, device="cpu", loss="gan-minimax", learning_budget_images=10**9)
    settings.update(overrides)
    return TrainConfig(**settings).resolved()


@pytest.fixture(scope="module")
def data():
    return load_real_images(config(), torch.device("cpu"))


class Replay(nn.Module):
    """A 'generator' that returns given images, whatever the noise (plus a learnable offset)."""

    def __init__(self, images):
        super().__init__()
        self.images = images
        self.offset = nn.Parameter(torch.zeros(()))

    def forward(self, noise):
        return self.images[torch.arange(len(noise)) % len(self.images)] + self.offset


class Brightness(nn.Module):
    """A 'critic' whose logit is scale * (mean pixel - threshold)."""

    def __init__(self, scale, threshold=0.0):
        super().__init__()
        self.scale, self.threshold = scale, threshold
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, images):
        return self.scale * self.weight * (images.mean((1, 2, 3)) - self.threshold)


def evaluate(monitor, generator, critic, data, step=1, images_seen=10**6, device="cpu"):
    counters = Counters(step=step, images_seen=images_seen)
    return monitor(EvalContext(monitor.config, counters, generator, critic, data, torch.device(device)))


def test_a_generator_that_replays_the_holdout_is_at_distance_zero(data):
    # generated = real: every distance 0, diversity equal, all modes covered, KL 0
    signals = evaluate(Monitor(config()), Replay(to_float(data.holdout)), Brightness(0.0), data)
    assert signals["sliced_pixels"] == 0 and signals["sliced_patches"] == 0
    assert abs(signals["sinkhorn_pixels"]) < 1e-9
    assert signals["diversity_fake"] == signals["diversity_real"] > 0
    assert signals["modes_covered"] == signals["modes_real"] and signals["kl_attributes"] == 0
    assert signals["js_bound"] == pytest.approx(0, abs=1e-7)  # D = 1/2 everywhere, the optimal discriminator for P = Q: JS bound 0
    assert signals["alarms"] == []


def test_replaying_the_holdout_is_perfect_in_the_feature_metrics(data):
    # generated = real: FD 0 (the same Gaussian fit), every real image covered by itself; KID is the unbiased
    # MMD² of a sample against itself, mean over i != j of k(x_i, x_j) twice minus the mean over all pairs twice.
    signals = evaluate(Monitor(config()), Replay(to_float(data.holdout)), Brightness(0.0), data)
    assert signals["fd_features"] < 1e-9 and signals["coverage_features"] == 1.0
    features = RandomFeatures()(data.holdout.permute(0, 3, 1, 2)).double()
    assert signals["kid_features"] == pytest.approx(float(mmd(features, features)), rel=1e-9, abs=1e-12)


def test_feature_metrics_are_the_librarys_on_rounded_images(data):
    # Generated images are rounded to uint8, as saved images are, then compared like `python -m trainers.evaluate`.
    fake = to_float(data.holdout).flip(-1) * 0.8
    signals = evaluate(Monitor(config()), Replay(fake), Brightness(0.0), data)
    network = RandomFeatures()
    real_features = network(data.holdout.permute(0, 3, 1, 2)).double()
    fake_features = network(((fake.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)).double()
    assert signals["fd_features"] == pytest.approx(float(frechet(real_features, fake_features)), rel=1e-9)
    assert signals["coverage_features"] == float(prdc(real_features, fake_features, k=5).coverage)
    assert signals["fd_features"] > 0 and signals["coverage_features"] < 1


def test_loss_specific_estimates(data):
    real = to_float(data.holdout)
    wgan = evaluate(Monitor(config(loss="wgan")), Replay(real - 0.5), Brightness(1.0), data)
    # critic = mean pixel: W estimate = mean pixel of real - mean pixel of fake = 0.5
    assert wgan["w_estimate"] == pytest.approx(0.5, abs=1e-6) and "js_bound" not in wgan
    assert wgan["grad_norm_x"] == pytest.approx(1 / math.sqrt(real[0].numel()), rel=1e-5)  # |grad of a mean| = 1/sqrt(n)
    # fakes 2 darker than reals: every real image's mean pixel is above -1, every fake's below
    assert real.mean((1, 2, 3)).min() > -0.9
    gan = evaluate(Monitor(config(loss="gan")), Replay(real - 2.0), Brightness(1000.0, threshold=-1.0), data)
    assert gan["js_bound"] == pytest.approx(math.log(2), abs=1e-3) and "w_estimate" not in gan


def test_pixel_points_stay_on_the_images_device_in_its_working_dtype():
    # float64 on the CPU (as the signals have always been); float32 on an accelerator, where the models
    # run and the distances' float32 results are within 1e-3 of float64 (the meta device stands in for one).
    images = torch.zeros(2, 3, 32, 32)
    assert monitor_module._pixels(images).dtype == torch.float64
    elsewhere = monitor_module._pixels(images.to("meta"))
    assert (elsewhere.device.type, elsewhere.dtype, elsewhere.shape) == ("meta", torch.float32, (2, 768))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_signals_match_the_cpu(data):
    # The same evaluation where the models run: the distances in float32 on the GPU, within 1e-3.
    real = to_float(data.holdout)
    on_cpu = evaluate(Monitor(config(loss="wgan")), Replay(real.flip(-1) - 0.3), Brightness(1.0), data)
    gpu_data = dataclasses.replace(data, holdout=data.holdout.cuda())
    on_gpu = evaluate(Monitor(config(loss="wgan")), Replay(real.flip(-1).cuda() - 0.3).cuda(),
                      Brightness(1.0).cuda(), gpu_data, device="cuda")
    for name in ("sliced_pixels", "sinkhorn_pixels", "sliced_patches", "diversity_fake", "w_estimate"):
        assert on_gpu[name] == pytest.approx(on_cpu[name], rel=1e-3), name


def test_generator_turned_constant_raises_mode_collapse_once(data):
    monitor = Monitor(config(alarm_patience=3))
    diverse, constant = Replay(to_float(data.holdout)), Replay(to_float(data.holdout[:1]))
    fired = [evaluate(monitor, generator, Brightness(1.0), data, step)["alarms"]
             for step, generator in enumerate([diverse, diverse, constant, constant, constant, constant, constant])]
    assert [len(a) for a in fired] == [0, 0, 0, 0, 1, 0, 0]
    alarm = fired[4][0]
    assert alarm["name"] == "mode_collapse" and alarm["diversity_fake"] == 0 and alarm["modes_covered"] == 1
    assert "1 of" in alarm["message"]


def test_constant_generator_from_the_start_raises_mode_collapse(data):
    monitor = Monitor(config(alarm_patience=2))
    constant = Replay(to_float(data.holdout[:1]))
    assert [len(evaluate(monitor, constant, Brightness(1.0), data, step)["alarms"]) for step in range(3)] == [0, 1, 0]


def test_slowly_improving_generator_raises_no_mode_collapse(data):
    # low diversity that keeps growing (a slow but healthy start) is not a collapse
    monitor = Monitor(config(alarm_patience=1))
    real = to_float(data.holdout)
    for step, weight in enumerate([0.02, 0.05, 0.1, 0.15, 0.2]):
        blurred = Replay(weight * real + (1 - weight) * real.mean(0, keepdim=True))
        assert evaluate(monitor, blurred, Brightness(1.0), data, step)["alarms"] == []


def test_no_alarm_before_warm_up(data):
    monitor = Monitor(config(alarm_after_images=10**7))
    constant = Replay(to_float(data.holdout[:1]))
    assert all(evaluate(monitor, constant, Brightness(1.0), data, step)["alarms"] == [] for step in range(1, 6))


def test_non_finite_images_raise_diverged_at_once(data):
    broken = Replay(torch.full((1, 3, 16, 16), float("nan")))
    signals = evaluate(Monitor(config()), broken, Brightness(1.0), data)
    assert signals["finite"] is False
    assert [a["name"] for a in signals["alarms"]] == ["diverged"]


def test_rising_distance_raises_diverged(data):
    # generated = real + growing noise: the sliced distance rises at every evaluation
    monitor = Monitor(config(alarm_patience=3, divergence_rise=0.5, collapse_diversity=0.0, collapse_modes=0.0))
    real = to_float(data.holdout)
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(0))
    names = []
    for step, amplitude in enumerate([0.3, 0.2, 0.4, 0.6, 0.8, 1.0], start=1):
        names.append([a["name"] for a in evaluate(monitor, Replay(real + amplitude * noise), Brightness(1.0), data, step)["alarms"]])
    assert names == [[], [], [], [], ["diverged"], []]  # rises from the low at step 2 on steps 3, 4, 5


def test_saturated_discriminator_raises_vanishing_gradient(data):
    # a discriminator that separates real from fake with huge logits: JS bound = log 2, dD/dx = 0
    monitor = Monitor(config(alarm_patience=2, collapse_modes=0))
    real = to_float(data.holdout)
    fake, middle = Replay(real - 2.0), -1.0
    assert evaluate(monitor, fake, Brightness(1.0, threshold=middle), data, 0)["alarms"] == []  # untrained: no peak
    assert evaluate(monitor, fake, Brightness(1.0, threshold=middle), data, 1)["alarms"] == []  # healthy: sets the peak
    assert evaluate(monitor, fake, Brightness(500.0, threshold=middle), data, 2)["alarms"] == []
    alarms = evaluate(monitor, fake, Brightness(500.0, threshold=middle), data, 3)["alarms"]
    assert [a["name"] for a in alarms] == ["vanishing_gradient"]
    assert alarms[0]["js_bound"] > math.log(2) - 0.02 and alarms[0]["grad_norm_x"] < 1e-6


def test_wgan_has_no_vanishing_gradient_rule(data):
    monitor = Monitor(config(loss="wgan", alarm_patience=1, collapse_modes=0))
    real = to_float(data.holdout)
    fake, middle = Replay(real - 2.0), -1.0
    for step in range(1, 4):
        assert evaluate(monitor, fake, Brightness(500.0, threshold=middle), data, step)["alarms"] == []


def test_a_resumed_monitor_does_not_raise_an_alarm_again(data):
    first = Monitor(config(alarm_patience=1))
    constant = Replay(to_float(data.holdout[:1]))
    signals = evaluate(first, constant, Brightness(1.0), data, 1)
    assert [a["name"] for a in signals["alarms"]] == ["mode_collapse"]
    resumed = Monitor(config(alarm_patience=1))
    resumed.restore([signals], signals["alarms"])
    assert evaluate(resumed, constant, Brightness(1.0), data, 2)["alarms"] == []
    assert resumed.history["diversity_fake"] == [0.0, 0.0]


def _training_loss_d(real_logits, fake_logits):
    return float(monitor_module.LOSS_SPECS["gan"].critic_loss(real_logits, fake_logits))


def test_a_train_line_bound_equals_the_js_bound_of_its_logits():
    generator = torch.Generator().manual_seed(3)
    real, fake = torch.randn(64, generator=generator) + 4, torch.randn(64, generator=generator) - 4
    monitor = Monitor(config(saturation_lines=1, saturation_margin=1.0))
    (alarm,) = monitor.observe_training({"loss_d": _training_loss_d(real, fake)}, images_seen=0)
    assert alarm["name"] == "vanishing_gradient"
    assert alarm["js_bound_train"] == pytest.approx(float(js_from_discriminator(real, fake)), rel=1e-6)


def test_saturated_train_lines_fire_after_patience_in_a_row_and_only_once():
    monitor = Monitor(config(saturation_lines=3, saturation_margin=0.02))  # saturated: loss_d <= 0.04
    losses = [0.03, 0.03, 0.5, 0.03, 0.03, 0.039, 0.01, 0.01, 0.01]
    fired = [[a["name"] for a in monitor.observe_training({"loss_d": loss}, images_seen=10**6)] for loss in losses]
    assert fired == [[], [], [], [], [], ["vanishing_gradient"], [], [], []]


def test_train_lines_wait_for_the_warm_up_and_ignore_wgan_losses():
    waiting = Monitor(config(saturation_lines=1, alarm_after_images=1000))
    assert waiting.observe_training({"loss_d": 0.0}, images_seen=999) == []
    assert [a["name"] for a in waiting.observe_training({"loss_d": 0.0}, images_seen=1000)] == ["vanishing_gradient"]
    wgan = Monitor(config(loss="wgan", alarm_patience=1))
    assert wgan.observe_training({"loss_d": -5.0}, images_seen=10**6) == []


def test_an_alarm_raised_at_evaluations_is_not_raised_again_by_train_lines():
    monitor = Monitor(config(saturation_lines=1))
    monitor.fired.add("vanishing_gradient")
    assert monitor.observe_training({"loss_d": 0.0}, images_seen=10**6) == []


@pytest.mark.parametrize("means", [{"loss_d": math.nan}, {"loss_d": math.inf}, {"loss_d": -math.inf}, {"loss_g": 0.0}])
def test_a_train_line_without_a_finite_discriminator_loss_raises_nothing_and_breaks_the_streak(means):
    monitor = Monitor(config(saturation_lines=2))
    assert monitor.observe_training({"loss_d": 0.0}, images_seen=10**6) == []
    assert monitor.observe_training(means, images_seen=10**6) == []
    assert monitor.observe_training({"loss_d": 0.0}, images_seen=10**6) == []  # the streak starts again


def test_restore_reads_iterators_once():
    # the argument check turned an iterator into a list and then passed the exhausted iterator on: nothing restored
    monitor = Monitor(config())
    monitor.restore(iter([{"diversity_fake": 0.5, "sliced_pixels": 0.1}]), iter([{"name": "mode_collapse", "step": 3}]))
    assert monitor.history["diversity_fake"] == [0.5] and monitor.fired == {"mode_collapse"}
