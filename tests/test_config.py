"""Tests of trainers.config: defaults, presets, --key=value parsing, validation."""

import dataclasses

import pytest

from trainers.config import PRESETS, TrainConfig, explicit_fields, parse_args, pick_device
from trainers.losses import LOSS_SPECS


def test_defaults_are_the_essays_wgan():
    # RMSProp 5e-5, clip 0.01, m = 64, n_critic = 5, 64x64 images, 10,000 images per epoch
    config = TrainConfig().resolved()
    assert (config.loss, config.lr, config.clip, config.batch_size, config.n_critic) == ("wgan", 5e-5, 0.01, 64, 5)
    assert (config.image_size, config.epoch_images, config.nz, config.ngf, config.ndf) == (64, 10000, 100, 64, 64)
    assert LOSS_SPECS["wgan"].optimiser == "rmsprop"


@pytest.mark.parametrize("loss, lr, betas, n_critic, norm", [
    ("gan", 2e-4, (0.5, 0.999), 1, "batch"),
    ("gan-minimax", 2e-4, (0.5, 0.999), 1, "batch"),
    ("wgan-gp", 1e-4, (0.0, 0.9), 5, "layer"),
])
def test_loss_defaults(loss, lr, betas, n_critic, norm):
    config = TrainConfig(loss=loss).resolved()
    assert (config.lr, config.n_critic, config.critic_norm) == (lr, n_critic, norm)
    assert LOSS_SPECS[loss].betas == betas


def test_space_and_equals_forms_agree():
    assert parse_args(["--epochs", "3"]).epochs == 3
    assert parse_args(["--epochs=3"]).epochs == 3
    assert parse_args(["--epoch-images=500"]).epoch_images == 500
    assert parse_args(["--epoch_images", "500"]).epoch_images == 500


def test_booleans():
    assert parse_args(["--dry-run"]).dry_run is True
    assert parse_args(["--dry-run=false"]).dry_run is False
    assert parse_args(["--bf16", "yes"]).bf16 is True
    assert parse_args([]).dry_run is False


def test_optional_fields_take_none():
    assert parse_args(["--lr=none"]).lr is None
    assert parse_args(["--lr=1e-3"]).lr == 1e-3


def test_script_default_loss_and_override():
    assert parse_args([], loss="gan").loss == "gan"
    assert parse_args(["--loss", "wgan-gp"], loss="gan").loss == "wgan-gp"


def test_preset_sets_defaults_and_flags_override_it():
    quick = parse_args(["--preset", "quick"])
    for name, value in PRESETS["quick"].items():
        assert getattr(quick, name) == value
    assert parse_args(["--epochs=2", "--preset=quick"]).epochs == 2
    assert parse_args(["--preset", "paper"]) == TrainConfig()


@pytest.mark.parametrize("argv, message", [
    (["--epoch"], "unrecognized arguments"),  # no abbreviations
    (["--learning-rate", "1"], "unrecognized arguments"),
    (["--epochs", "three"], "invalid int value"),
    (["--lr", "nan"], "argument --lr: should be a finite number. Instead, received 'nan'."),
    (["--lr", "fast"], "argument --lr: should be a number. Instead, received 'fast'."),
    (["--n-critic", "2.5"], "argument --n-critic/--n_critic: invalid int value: '2.5'"),  # not "<lambda>"
    (["--loss", "vae"], "invalid choice"),
    (["--preset", "fast"], "invalid choice"),
    (["--dry-run=maybe"], "expected true or false"),
])
def test_bad_flags_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_help_lists_every_field_with_its_default(capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(["--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for spec in dataclasses.fields(TrainConfig):
        assert "--" + spec.name.replace("_", "-") in text
        assert f"(default: {spec.default})" in text or (spec.default == "" and "(default: )" in text)
    assert "--preset" in text


def test_explicit_fields():
    assert explicit_fields(["--epochs", "3", "--device=cpu", "--dry-run", "--preset", "quick"]) == {"epochs", "device", "dry_run"}


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "`epochs` should be >= 1"),
    ("batch_size", -1, "`batch_size` should be >= 1"),
    ("image_size", 48, "`image_size` should be a power of two >= 16"),
    ("image_size", 8, "`image_size` should be a power of two >= 16"),
    ("lr", 0.0, "`lr` should be > 0"),
    ("clip", -0.01, "`clip` should be > 0"),
    ("n_critic", 0, "`n_critic` should be >= 1"),
    ("holdout_images", -1, "`holdout_images` should be >= 0"),
    ("critic_norm", "instance", "`critic_norm` should be batch, layer or none"),
    ("loss", "vae", "`loss` should be one of"),
])
def test_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value}).resolved()


def test_gradient_penalty_refuses_batch_norm():
    with pytest.raises(ValueError, match="`critic_norm` should be layer or none for wgan-gp"):
        TrainConfig(loss="wgan-gp", critic_norm="batch").resolved()


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="`device` should be auto, cpu"):
        pick_device("tpu")
