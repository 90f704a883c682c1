"""Where a run is written, and what a run directory must hold to be resumed.

`resumed_config` reads a run's ``config.json`` and applies the fields a resumed run may change;
`run_to_write` checks, before anything is loaded or written, that a new run's ``out`` can be
written, or that a resumed run's checkpoint and ``metrics.jsonl`` are whole, finite and of that
run. `Counters`, where a run is, is saved in every checkpoint.
"""

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch

from .checkpoint import load_checkpoint
from .config import RESUMABLE_FIELDS, config_from_saved
from .runlog import RunLog, check_new_run_directory, check_writable, read_metrics


@dataclass
class Counters:
    """Where the run is; saved in every checkpoint."""

    epoch: int = 0  # epochs completed
    step: int = 0  # generator steps
    critic_steps: int = 0
    images_seen: int = 0  # real images shown to the critic, all processes together
    seconds: float = 0.0  # training time, without evaluations


def resumed_config(config, changed):
    """The config saved in ``config.resume``/config.json, with the fields in ``changed`` taken from ``config``.

    Raises
    ------
    ValueError
        If a field that a resumed run cannot change was given.
    """
    path = Path(config.resume) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"cannot resume: {str(path)!r} does not exist.")
    refused = sorted(changed - set(RESUMABLE_FIELDS) - {"resume"})
    if refused:
        raise ValueError(f"cannot change {', '.join(refused)} when resuming; only {', '.join(RESUMABLE_FIELDS)} may change.")
    try:
        saved = config_from_saved(json.loads(path.read_text(encoding="utf-8")))
    except OSError as error:
        raise ValueError(f"cannot read {str(path)!r}: {error.strerror}.") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(path)!r} is not valid JSON ({error}).") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{str(path)!r}: {error}") from None
    updates = {name: getattr(config, name) for name in changed | {"resume"}}
    return dataclasses.replace(saved, **updates)


def run_to_write(config, cluster):
    """The run directory, and for a resumed run its checkpoint and metrics lines, all checked.

    Parameters
    ----------
    config : TrainConfig
        The resolved config of the run.
    cluster : trainers.distributed.Cluster
        The processes; only the main one checks and reads the run directory's files.

    Returns
    -------
    directory : Path
        ``out`` (or ``runs/<loss>-<timestamp>``) for a new run, ``resume`` for a resumed one.
    state : dict or None
        The resumed run's checkpoint, checked; None for a new run.
    records : list of dict
        The resumed run's ``metrics.jsonl`` lines on the main process; empty otherwise.

    Raises
    ------
    ValueError, FileNotFoundError
        Before anything is loaded or written: an ``out`` that holds a run or cannot be written,
        a missing or damaged checkpoint or ``metrics.jsonl``, a checkpoint of another run, or
        fewer ``epochs`` than the run has done.
    """
    if not config.resume:
        directory = Path(config.out) if config.out else _default_out(config)
        if cluster.main and config.out:
            check_new_run_directory(directory)
        elif cluster.main:
            check_writable(directory.parent)
        return directory, None, []
    directory = Path(config.resume)
    path = RunLog.checkpoint_in(directory)
    state = load_checkpoint(path)
    _check_state(state, config, path)
    done = state["counters"]["epoch"]
    if config.epochs < done:
        raise ValueError(f"'epochs' is {config.epochs}, but the run in {str(directory)!r} has already trained {done} "
                         f"epoch(s); give --epochs {done} or more.")
    if cluster.main:
        check_writable(directory)
    return directory, state, read_metrics(directory) if cluster.main else []


STATE_KEYS = ("config", "counters", "generator", "critic", "optimizer_g", "optimizer_d", "rng")
"""What a checkpoint holds."""


def _check_state(state, config, path):
    """Raise ValueError naming ``path`` unless ``state`` is a finite checkpoint of the run ``config`` describes."""
    def refuse(problem):
        raise ValueError(f"checkpoint {str(path)!r} {problem}; it cannot be resumed.")

    if not isinstance(state, dict) or sorted(state) != sorted(STATE_KEYS):
        refuse(f"should hold {', '.join(STATE_KEYS)}; it holds {', '.join(map(str, state)) if isinstance(state, dict) else type(state).__name__}")
    counters = state["counters"]
    fields = {field.name: field.type for field in dataclasses.fields(Counters)}
    if not isinstance(counters, dict) or sorted(counters) != sorted(fields) or not all(
            isinstance(counters[name], kind) and not isinstance(counters[name], bool) and counters[name] >= 0
            for name, kind in fields.items()):
        refuse(f"has damaged counters ({counters!r:.120})")
    saved = state["config"] if isinstance(state["config"], dict) else {}
    for name, value in dataclasses.asdict(config).items():
        if name not in RESUMABLE_FIELDS + ("resume", "out") and saved.get(name) != value:
            refuse(f"was written by another run: its {name} is {saved.get(name)!r}, config.json says {value!r}")
    if not isinstance(state["rng"], list) or not all(isinstance(item, dict) and sorted(item) == ["data", "noise"]
                                                     and all(isinstance(v, torch.Tensor) for v in item.values())
                                                     for item in state["rng"]) or not state["rng"]:
        refuse("has no random states")
    for name in ("generator", "critic"):
        weights = state[name]
        if not isinstance(weights, dict) or not all(isinstance(value, torch.Tensor) for value in weights.values()):
            refuse(f"has a damaged {name}")
        if not all(torch.isfinite(value).all() for value in weights.values() if value.is_floating_point()):
            refuse(f"holds NaN or infinite {name} weights")


def _default_out(config):
    """``runs/<loss>-<timestamp>``: the run directory when ``out`` is empty."""
    return Path("runs") / f"{config.loss}-{datetime.now():%Y%m%d-%H%M%S}"
