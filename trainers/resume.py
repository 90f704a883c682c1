"""Where a run is written, and what a run directory must hold to be resumed.

`resumed_config` reads a run's ``config.json`` and applies the fields a resumed run may change;
`run_to_write` checks, before anything is loaded or written, that a new run's ``out`` can be
written, or that a resumed run's checkpoint and ``metrics.jsonl`` are whole, finite and of that
run (`trainers.checkpoint.check_state`).
"""

import dataclasses
import json
from datetime import datetime
from pathlib import Path

from .checkpoint import check_state, load_checkpoint
from .config import RESUMABLE_FIELDS, config_from_saved
from .runlog import RunLog, check_new_run_directory, check_writable, never_trained, read_metrics


def resumed_config(config, changed):
    """The config saved in ``config.resume``/config.json, with the fields in ``changed`` taken from ``config``.

    Raises
    ------
    ValueError
        If a field that a resumed run cannot change was given.
    """
    path = Path(config.resume) / "config.json"
    if not path.exists():
        _refuse_if_never_trained(Path(config.resume))
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
    if not path.exists():
        _refuse_if_never_trained(directory)
    state = load_checkpoint(path)
    check_state(state, config, path)
    done = state["counters"]["epoch"]
    if config.epochs < done:
        raise ValueError(f"`epochs` is {config.epochs}, but the run in {str(directory)!r} has already trained {done} "
                         f"epoch(s); give --epochs {done} or more.")
    if cluster.main:
        check_writable(directory)
    return directory, state, read_metrics(directory) if cluster.main else []


def _refuse_if_never_trained(directory):
    """FileNotFoundError saying how to start again, if ``directory`` holds a run that stopped before its first checkpoint."""
    if directory.is_dir() and never_trained(directory):
        raise FileNotFoundError(f"the run in {str(directory)!r} stopped before its first checkpoint and trained nothing: "
                                f"nothing to resume. Start it again with --out {directory} (its files are replaced).")


def _default_out(config):
    """``runs/<loss>-<timestamp>``: the run directory when ``out`` is empty."""
    return Path("runs") / f"{config.loss}-{datetime.now():%Y%m%d-%H%M%S}"
