"""The trainer's configuration: one dataclass of documented defaults, presets, ``--key=value`` overrides."""

import argparse
import dataclasses
import math
import numbers
import types
from dataclasses import dataclass, field

import torch

from .alarms import Thresholds
from .losses import LOSS_SPECS

_ALARM_DEFAULTS = Thresholds()

LOSSES = tuple(LOSS_SPECS)
"""``gan``: BCE with the non-saturating generator loss; ``gan-minimax``: the original, saturating
log(1 - D(G(z))) generator loss; ``wgan``: weight clipping and RMSProp (the WGAN paper's Algorithm 1);
``wgan-gp``: gradient penalty and Adam. What each one is: `trainers.losses.LOSS_SPECS`."""

MAX_SEED = 2**32 - 1
"""Largest ``seed``: the per-process seeds (``seed * 1000 + ...``) must fit torch's 64-bit generators."""

MAX_EVAL_IMAGES = 4096
"""Largest ``eval_images``: each evaluation holds that many generated images and their pairwise costs."""

FLOAT32_MAX = 3.4028234663852886e38
"""Learning rates are float32 numbers in the optimisers."""

DEVICE_TYPES = ("cpu", "cuda", "mps")
"""The devices the trainer runs on (``auto`` picks one of them)."""

RESUMABLE_FIELDS = ("epochs", "device", "log_every", "eval_every", "bf16", "compile", "progress", "tensorboard", "stop_on_alarm")
"""Fields a resumed run may change; every other field is taken from the run's ``config.json``."""


LATER_FIELDS = ("saturation_lines", "critic_growth", "critic_progress", "learning_budget_images", "learning_progress")
"""Fields added after runs were first written (thresholds of later alarms): a saved config or checkpoint
without them is read with their defaults, so older runs still resume and evaluate."""


def with_later_fields(saved):
    """A run's saved settings (a dict) with the `LATER_FIELDS` it lacks at their defaults: a run from before they were added."""
    return {**{name: getattr(_ALARM_DEFAULTS, name) for name in LATER_FIELDS}, **saved}


def _option(default, help):
    return field(default=default, metadata={"help": help})


def _per_loss(attribute):
    """``2e-4 (gan, gan-minimax), 5e-5 (wgan)...``: a `LossSpec` default per loss, for a help string."""
    losses = {}
    for name, spec in LOSS_SPECS.items():
        losses.setdefault(getattr(spec, attribute), []).append(name)
    return ", ".join(f"{value:g} ({', '.join(names)})" if isinstance(value, float) else f"{value} ({', '.join(names)})"
                     for value, names in losses.items())


@dataclass
class TrainConfig:
    """Every setting of a training run, with the WGAN paper's Algorithm 1 as the defaults."""

    # data
    data: str = _option("", "folder (searched recursively) or .zip of images; empty: the embedded procedural faces")
    procedural_images: int = _option(20000, "size of the embedded procedural face set (used when data is empty)")
    holdout_images: int = _option(1000, "real images kept out of training for the monitor (at most a tenth of the set)")
    data_memory_gb: float = _option(4.0, "decoded sets larger than this are streamed from disk instead of held in memory")
    image_size: int = _option(64, "side of the square images in pixels: a power of two >= 16 (32, 64, 128, ...)")
    # models
    loss: str = _option("wgan", "gan, gan-minimax, wgan or wgan-gp")
    nz: int = _option(100, "length of the generator's noise vector")
    ngf: int = _option(64, "generator width: channels of its last hidden layer")
    ndf: int = _option(64, "critic width: channels of its first layer")
    critic_norm: str | None = _option(None, f"batch, layer or none; None: {_per_loss('critic_norm')}")
    # optimisation
    batch_size: int = _option(64, "m: images per critic step and per generator step (per process)")
    lr: float | None = _option(None, f"learning rate of both networks; None: {_per_loss('lr')}")
    critic_lr_factor: float = _option(1.0, "the critic's learning rate is lr times this (10: a discriminator that wins, for demonstrations)")
    n_critic: int | None = _option(None, f"critic steps per generator step; None: {_per_loss('n_critic')}")
    clip: float = _option(0.01, "c: weight clipping bound of the WGAN critic")
    gp_weight: float = _option(10.0, "lambda: gradient-penalty weight of WGAN-GP")
    reference_schedule: bool = _option(False, "WGAN reference code: 100 critic steps for the first 25 generator steps and every 500th")
    epochs: int = _option(25, "number of epochs")
    epoch_images: int = _option(10000, "real images shown to the critic per epoch, whatever the set's size")
    seed: int = _option(0, "seed of the weights, the noise and the batches")
    # outputs
    out: str = _option("", "run directory; empty: runs/<loss>-<timestamp>")
    log_every: int = _option(10, "generator steps between lines of metrics.jsonl")
    tensorboard: bool = _option(True, "also write the metrics for TensorBoard, when the tensorboard package is installed")
    # monitor (docs/monitor.md)
    monitor: bool = _option(True, "measure the run with divergences and raise alarms")
    eval_every: int = _option(50, "generator steps between evaluations of the monitor")
    eval_images: int = _option(128, "generated and held-out real images compared at each evaluation")
    alarm_after_images: int = _option(_ALARM_DEFAULTS.alarm_after_images, "no alarm but 'diverged' on NaN before the critic has seen this many images")
    alarm_patience: int = _option(_ALARM_DEFAULTS.alarm_patience, "consecutive evaluations an alarm's condition must hold")
    saturation_margin: float = _option(_ALARM_DEFAULTS.saturation_margin, "vanishing_gradient: JS bound within this many nats of log 2 ...")
    gradient_collapse: float = _option(_ALARM_DEFAULTS.gradient_collapse, "... and a gradient norm below this fraction of its peak")
    saturation_lines: int = _option(_ALARM_DEFAULTS.saturation_lines, "vanishing_gradient, read off the train lines: the discriminator's training loss saturated (its JS bound within saturation_margin of log 2) at this many lines in a row")
    collapse_diversity: float = _option(_ALARM_DEFAULTS.collapse_diversity, "mode_collapse: diversity below this fraction of the real images' ...")
    collapse_modes: float = _option(_ALARM_DEFAULTS.collapse_modes, "... or modes covered below this fraction of the real images' (procedural set) ...")
    collapse_drop: float = _option(_ALARM_DEFAULTS.collapse_drop, "... and fallen to this fraction of the generator's best so far")
    divergence_rise: float = _option(_ALARM_DEFAULTS.divergence_rise, "diverged: sliced pixel distance rising to this fraction above its lowest value")
    critic_growth: float = _option(_ALARM_DEFAULTS.critic_growth, "critic_unbounded (WGANs): W estimate rising at 2 x alarm_patience evaluations to this fraction above its value before them, the sliced distance at no new low ...")
    critic_progress: float = _option(_ALARM_DEFAULTS.critic_progress, "... and less than this fraction of the way from its first value to the real-vs-real floor")
    learning_budget_images: int = _option(_ALARM_DEFAULTS.learning_budget_images, "not_learning: real images after which the sliced distance must have come ...")
    learning_progress: float = _option(_ALARM_DEFAULTS.learning_progress, "... at least this fraction of the way from its first value to the real-vs-real floor")
    progress: bool = _option(True, "show a progress bar when stderr is a terminal")
    stop_on_alarm: bool = _option(False, "stop the run (checkpoint kept) when the monitor raises an alarm")
    # devices
    device: str = _option("auto", "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    bf16: bool = _option(False, "bfloat16 autocast (for CUDA; also runs, slowly, on the CPU)")
    channels_last: bool = _option(True, "channels-last memory format on CUDA")
    compile: bool = _option(False, "torch.compile the generator (and the critic, except for wgan-gp)")
    # control
    resume: str = _option("", "run directory to resume; only the fields of RESUMABLE_FIELDS may change (see --help's epilog)")
    dry_run: bool = _option(False, "two generator steps on a tiny data set, every output written once: a smoke test")

    def resolved(self):
        """This config with every ``None`` replaced by its loss's default, validated.

        Raises
        ------
        ValueError
            If a field has a value outside its domain; the message names the field.
        """
        _check(self)
        spec = LOSS_SPECS[self.loss]
        return dataclasses.replace(
            self,
            lr=spec.lr if self.lr is None else self.lr,
            n_critic=spec.n_critic if self.n_critic is None else self.n_critic,
            critic_norm=spec.critic_norm if self.critic_norm is None else self.critic_norm,
        )


PRESETS = {
    "paper": {},
    "quick": {
        "image_size": 32, "ngf": 32, "ndf": 32, "procedural_images": 5000, "holdout_images": 500,
        "epoch_images": 3200, "epochs": 10, "eval_every": 20,
    },
}
"""``paper``: the anime-face experiment's set-up (64x64, 10,000 images per epoch, 25 epochs); ``quick``: small
nets at 32x32 so that a CPU shows learning in minutes."""


def parse_args(argv, *, loss=None):
    """Build a `TrainConfig` from command-line arguments.

    ``--preset NAME`` sets the defaults first; every other field is ``--field VALUE`` or
    ``--field=VALUE`` (``-`` or ``_`` between words); booleans also take no value (true).

    Parameters
    ----------
    argv : list of str
        The arguments, without the program name.
    loss : str, optional
        Default loss of the calling script (``--loss`` still overrides it).

    Returns
    -------
    TrainConfig
        Not yet resolved: fields left at ``None`` follow the loss.

    Raises
    ------
    SystemExit
        With argparse's message (status 2) on an unknown flag, a value of the wrong type or an
        unknown preset; after printing the help for ``--help``.
    """
    command_parser = _command_parser()
    known, _ = command_parser.parse_known_args(argv)
    defaults = dataclasses.asdict(TrainConfig())
    defaults.update(PRESETS[known.preset])
    if loss is not None:
        defaults["loss"] = loss
    parser = _parser(defaults, command_parser)
    arguments = vars(parser.parse_args(argv))
    for name in COMMAND_OPTIONS:
        del arguments[name]
    return TrainConfig(**arguments)


COMMAND_OPTIONS = ("preset", "threads")
"""Options of the command line that are not fields of `TrainConfig`."""


def command_options(argv):
    """The `COMMAND_OPTIONS` of a command line, as a namespace (``threads`` is None when not given).

    Raises
    ------
    SystemExit
        With argparse's message (status 2) for an unknown preset or a thread count below 1.
    """
    known, _ = _command_parser().parse_known_args(argv)
    return known


def _command_parser():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                        help="sets the defaults of the fields below: paper (64x64, 25 epochs of 10,000 images; hours "
                             "on a CPU) or quick (32x32, small nets: minutes on a CPU)")
    parser.add_argument("--threads", type=_positive_int, metavar="N",
                        help="CPU threads of torch (default: torch's choice, one per core); not saved with the run")
    return parser


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"should be >= 1, received {text!r}")
    return value


def config_from_saved(values):
    """The `TrainConfig` that ``values`` (the parsed ``config.json`` of a run) describe, validated.

    Parameters
    ----------
    values : object
        What ``json.loads`` returned: it should be a dict holding every field of `TrainConfig`
        with a value of its type (and optionally ``world_size``).

    Raises
    ------
    ValueError
        If ``values`` is not a dict, lacks a field, has an unknown one, a value of the wrong type
        or outside its domain; the message names the field.
    """
    if not isinstance(values, dict):
        raise ValueError(f"should hold a JSON object of settings. Instead, it holds a {type(values).__name__}.")
    values = {name: value for name, value in values.items() if name != "world_size"}
    specs = {spec.name: spec for spec in dataclasses.fields(TrainConfig)}
    values = with_later_fields(values)
    unknown, missing = sorted(set(values) - set(specs)), sorted(set(specs) - set(values))
    if unknown:
        raise ValueError(f"has unknown field(s): {', '.join(unknown)}.")
    if missing:
        raise ValueError(f"lacks field(s): {', '.join(missing)}.")
    for name, value in values.items():
        if not _has_type(value, specs[name].type):
            raise ValueError(f"`{name}` should be {_metavar(specs[name].type).lower()}. Instead, it is {value!r}.")
    config = TrainConfig(**values)
    config.resolved()
    return config


def _has_type(value, annotation):
    """Whether a JSON value fits a field's annotation (an int is a float; a bool is neither)."""
    if isinstance(annotation, types.UnionType):
        return any(_has_type(value, inner) for inner in annotation.__args__)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def explicit_fields(argv):
    """The names of the fields set on the command line (a resumed run may change only some)."""
    names = set()
    for argument in argv:
        if argument.startswith("--") and argument != "--":
            names.add(argument[2:].split("=", 1)[0].replace("-", "_"))
    return names & {f.name for f in dataclasses.fields(TrainConfig)}


def pick_device(name, local_rank=0):
    """The torch device for ``name``: ``auto`` is cuda (this process's GPU) > mps > cpu.

    Raises
    ------
    ValueError
        If the device is not a valid name, or not available on this machine.
    """
    _check_device(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` is {name!r}, but torch sees no CUDA GPU here; use --device auto or cpu.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"`device` is {name!r}, but MPS is not available here; use --device auto or cpu.")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda" and device.index >= torch.cuda.device_count():
        raise ValueError(f"`device` is {name!r}, but torch sees {torch.cuda.device_count()} CUDA GPU(s) here.")
    return device


def _check_device(name):
    """Raise ValueError unless ``name`` is auto, cpu, cuda, cuda:N or mps."""
    if name == "auto":
        return
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES or (device.type != "cuda" and device.index is not None):
        raise ValueError(f"`device` should be auto, cpu, cuda, cuda:N or mps. Instead, received {name!r}.")


def _parser(defaults, parent):
    parser = argparse.ArgumentParser(
        parents=[parent],
        description="Train a GAN, WGAN or WGAN-GP on anime faces. Every field below is "
        "--field VALUE or --field=VALUE; --preset sets the defaults first.",
        epilog=f"A resumed run (--resume DIR) may change only: {', '.join('--' + f.replace('_', '-') for f in RESUMABLE_FIELDS)}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    for spec in dataclasses.fields(TrainConfig):
        flags = sorted({"--" + spec.name.replace("_", "-"), "--" + spec.name})
        kwargs = {"default": defaults[spec.name], "help": spec.metadata["help"], "dest": spec.name}
        if spec.type is bool:
            kwargs.update(type=_boolean, nargs="?", const=True, metavar="BOOL")
        elif spec.name == "loss":
            kwargs.update(choices=LOSSES)
        else:
            kwargs.update(type=_value_type(spec.type), metavar=_metavar(spec.type))
        parser.add_argument(*flags, **kwargs)
    return parser


def _value_type(annotation):
    if isinstance(annotation, types.UnionType):  # X | None
        (inner,) = [t for t in annotation.__args__ if t is not type(None)]
        parse = _value_type(inner)

        def optional(text):
            return None if text.lower() == "none" else parse(text)
        optional.__name__ = parse.__name__  # argparse names the type in its message: "invalid int value"
        return optional
    if annotation is float:
        return _finite_float
    return annotation


def _metavar(annotation):
    if isinstance(annotation, types.UnionType):
        (inner,) = [t for t in annotation.__args__ if t is not type(None)]
        return inner.__name__.upper() + "|none"
    return annotation.__name__.upper()


def _finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"should be a number. Instead, received {text!r}.") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"should be a finite number. Instead, received {text!r}.")
    return value


def _boolean(text):
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, received {text!r}")


_POSITIVE = ("procedural_images", "image_size", "nz", "ngf", "ndf", "batch_size", "epochs", "epoch_images", "log_every",
             "eval_every", "eval_images")


def _check(config):
    """Raise ValueError naming the first field outside its domain."""
    if config.loss not in LOSSES:
        raise ValueError(f"`loss` should be one of {', '.join(LOSSES)}. Instead, received {config.loss!r}.")
    for name in (*_POSITIVE, "holdout_images", "seed"):  # counts, not fractions: a config built in Python too
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"`{name}` should be an integer. Instead, received a {type(value).__name__}.")
    for name in _POSITIVE:
        if getattr(config, name) < 1:
            raise ValueError(f"`{name}` should be >= 1. Instead, received {getattr(config, name)}.")
    size = config.image_size
    if size < 16 or size & (size - 1):
        raise ValueError(f"`image_size` should be a power of two >= 16 (16, 32, 64, ...). Instead, received {size}.")
    for name in ("holdout_images", "seed"):
        if getattr(config, name) < 0:
            raise ValueError(f"`{name}` should be >= 0. Instead, received {getattr(config, name)}.")
    if config.seed > MAX_SEED:
        raise ValueError(f"`seed` should be at most {MAX_SEED} (2**32 - 1). Instead, received {config.seed}.")
    if config.eval_images > MAX_EVAL_IMAGES:
        raise ValueError(f"`eval_images` should be at most {MAX_EVAL_IMAGES}. Instead, received {config.eval_images}.")
    Thresholds.of(config)  # the alarms' thresholds check themselves
    for name in ("data_memory_gb", "clip", "gp_weight", "critic_lr_factor") + (("lr",) if config.lr is not None else ()):
        if getattr(config, name) <= 0:
            raise ValueError(f"`{name}` should be > 0. Instead, received {getattr(config, name)}.")
    lr = LOSS_SPECS[config.loss].lr if config.lr is None else config.lr
    if lr > FLOAT32_MAX:
        raise ValueError(f"`lr` should be at most {FLOAT32_MAX:.4g} (float32). Instead, received {lr}.")
    if lr * config.critic_lr_factor > FLOAT32_MAX:
        raise ValueError(f"`critic_lr_factor` times `lr` should be at most {FLOAT32_MAX:.4g} (float32). "
                         f"Instead, it is {lr * config.critic_lr_factor:.4g}.")
    if config.n_critic is not None and config.n_critic < 1:
        raise ValueError(f"`n_critic` should be >= 1. Instead, received {config.n_critic}.")
    if config.critic_norm not in (None, "batch", "layer", "none"):
        raise ValueError(f"`critic_norm` should be batch, layer or none. Instead, received {config.critic_norm!r}.")
    if LOSS_SPECS[config.loss].gradient_penalty and config.critic_norm == "batch":
        raise ValueError(f"`critic_norm` should be layer or none for {config.loss}: the gradient penalty is per sample, batch norm mixes samples.")
    _check_device(config.device)
