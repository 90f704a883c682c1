"""The files of a run directory (see docs/run_format.md); only the main process writes them.

A run directory belongs to one run: a new run refuses a directory that already holds run files,
and a process holds an exclusive lock (``flock``) on the directory while it writes there, so
two processes never write into the same run.
"""

import json
import math
import os
import re
import shutil
import warnings
from pathlib import Path

from .files import write_atomically
from .grid import save_grid
from .verdict import finite_number

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, the directory checks alone guard a run
    fcntl = None

RUN_FILES = ("config.json", "metrics.jsonl", "alarms.json", "checkpoints", "samples", "tensorboard")
"""What a run writes in its directory; a new run refuses a directory holding any of them."""

KINDS = ("train", "eval", "alarm", "end")
"""The kinds of lines of ``metrics.jsonl``."""

_TEMPORARY = re.compile(r"(last\.pt|config\.json|alarms\.json|metrics\.jsonl|epoch_\d+\.png|real\.png)\.[0-9a-z_]{8,16}\.tmp")
"""The temporary files of `trainers.files.write_atomically` (and of its earlier ``mkstemp`` version)."""


class RunLog:
    """Writer of ``config.json``, ``metrics.jsonl``, ``alarms.json`` and ``samples/``; open it with `create` or `reopen`.

    Use it as a context manager: leaving it releases the directory's lock.

    Attributes
    ----------
    directory : pathlib.Path
        The run directory.
    enabled : bool
        False on every process but the main one: then nothing is written.
    alarms : list of dict
        The alarms of the run so far (what ``alarms.json`` holds).
    evaluations : list of dict
        The ``eval`` lines kept by `reopen`, for the monitor to continue from them.
    replaced : bool
        Whether `create` replaced the files of a run that stopped before its first checkpoint.
    """

    def __init__(self, directory, lock=None, *, enabled=True, tensorboard=False):
        self.directory = Path(directory)
        self.enabled = enabled
        self.replaced = False
        self.alarms = []
        self.evaluations = []
        self._lock = lock
        self._scalars = _tensorboard_writer(self.directory) if enabled and tensorboard else None

    @classmethod
    def create(cls, directory, *, numbered=False, enabled=True, tensorboard=False, advice=None):
        """Claim ``directory`` for a new run: create it, lock it, check it holds no run, write ``alarms.json``.

        Parameters
        ----------
        directory : path-like
            The run directory; it may exist, empty or with files other than a run's.
        advice : str, optional
            What a refusal tells a person to do (default: the trainer's ``--resume`` and ``--out``).
        numbered : bool
            If ``directory`` exists, use ``directory-2``, ``directory-3``, ... instead (the
            default ``--out``, whose timestamp two runs may share).

        Raises
        ------
        ValueError
            If the directory holds a run, or another process has locked it.
        OSError
            If it cannot be created or written.
        """
        directory = Path(directory)
        if not enabled:
            return cls(directory, enabled=False)
        if not numbered:
            check_new_run_directory(directory, advice)  # a file, or a run, is refused before anything is made
        directory = _make_numbered(directory) if numbered else _make(directory)
        lock = _lock(directory, advice)
        try:
            check_new_run_directory(directory, advice)
            replaced = any((directory / name).exists() for name in RUN_FILES)  # only a run that never trained gets here
            if replaced:
                _remove_run_files(directory)
            _remove_temporaries(directory)
            run = cls(directory, lock, tensorboard=tensorboard)
            run.replaced = replaced
            (directory / "samples").mkdir()
            run._write_alarms()
        except BaseException:
            _unlock(lock)
            raise
        return run

    @classmethod
    def reopen(cls, directory, records, step, *, enabled=True, tensorboard=False):
        """Continue the run in ``directory`` from its checkpoint at generator step ``step``.

        Locks the directory, removes the temporary files a crash left, and rewrites
        ``metrics.jsonl`` with the lines of ``records`` (see `read_metrics`) logged up to the
        checkpoint, so that the file reads as if the run had never stopped; ``alarms.json`` is
        rebuilt from them. A checkpoint at step 0 is the initial state, written before the
        step-0 lines: those are dropped and done again.

        Raises
        ------
        ValueError
            If another process has locked the directory.
        OSError
            If it cannot be written.
        """
        if not enabled:
            return cls(directory, enabled=False)
        lock = _lock(Path(directory))
        try:
            run = cls(directory, lock, tensorboard=tensorboard)
            _remove_temporaries(run.directory)
            kept = [r for r in records if r["kind"] != "end" and (r["step"] < step or 0 < r["step"] == step)]
            write_atomically(run.directory / "metrics.jsonl", lambda file: file.write("".join(map(_line, kept)).encode()))
            run.alarms = [record for record in kept if record["kind"] == "alarm"]
            (run.directory / "samples").mkdir(exist_ok=True)
            run._write_alarms()
        except BaseException:
            _unlock(lock)
            raise
        run.evaluations = [record for record in kept if record["kind"] == "eval"]
        return run

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._scalars is not None:
            self._scalars.close()
        _unlock(self._lock)
        self._lock = None

    @staticmethod
    def checkpoint_in(directory):
        """Where the checkpoint of the run in ``directory`` is."""
        return Path(directory) / "checkpoints" / "last.pt"

    @property
    def checkpoint_path(self):
        return self.checkpoint_in(self.directory)

    def write_config(self, config_dict):
        if self.enabled:
            _write_text(self.directory / "config.json", json.dumps(config_dict, indent=2) + "\n")

    def evaluation(self, where, signals, alarms, seconds):
        """Write an evaluation: its ``eval`` line (``where``'s position fields, the signals, ``eval_seconds``), then an
        ``alarm`` line for each of ``alarms``. The trainer and `trainers.watch.Watch` both write them so."""
        self.log({"kind": "eval", **where, **signals, "eval_seconds": seconds})
        for alarm in alarms:
            self.log({"kind": "alarm", **where, **alarm})

    def log(self, record):
        """Append one JSON line to ``metrics.jsonl`` (and keep alarms in ``alarms.json``).

        A NaN or infinite number is written as the string ``"NaN"``, ``"Infinity"`` or
        ``"-Infinity"``: bare ``NaN`` is not JSON.
        """
        if not self.enabled:
            return
        with open(self.directory / "metrics.jsonl", "a") as file:
            file.write(_line(record))
        if self._scalars is not None:
            for name, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "images_seen":
                    self._scalars.add_scalar(f"{record['kind']}/{name}", value, record["images_seen"])
            self._scalars.flush()
        if record["kind"] == "alarm":
            self.alarms.append(record)
            self._write_alarms()

    def samples(self, images, epoch):
        """Write the grid ``samples/epoch_NNN.png``; return its path."""
        path = self.directory / "samples" / f"epoch_{epoch:03d}.png"
        if self.enabled:
            save_grid(images, path)
        return path

    def real_samples(self, images):
        """Write ``samples/real.png``, a grid of held-out real images for the report to show beside the samples."""
        if self.enabled:
            save_grid(images, self.directory / "samples" / "real.png")

    def _write_alarms(self):
        _write_text(self.directory / "alarms.json", json.dumps(_json_safe(self.alarms), indent=2) + "\n")


def check_new_run_directory(directory, advice=None):
    """Raise unless a new run can be written into ``directory`` (checked before the data is loaded).

    ``advice`` is what the message tells a person to do instead (default: the trainer's flags,
    ``--resume`` and ``--out``).

    Raises
    ------
    ValueError
        If ``directory`` is a file, holds a run, or cannot be created or written; the message
        names it and says what to do.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{str(directory)!r} is a file, not a folder; {advice or 'choose another --out'}.")
    found = [name for name in RUN_FILES if (directory / name).exists()] if directory.is_dir() else []
    if found and not never_trained(directory):
        raise ValueError(f"{str(directory)!r} already holds a run ({', '.join(found)}); "
                         f"{advice or f'resume it with --resume {directory}, or choose another --out'}.")
    check_writable(directory)


def never_trained(directory):
    """Whether ``directory`` holds the files of a run that stopped before its first checkpoint, having trained nothing.

    The trainer writes its initial checkpoint before any ``metrics.jsonl`` line, so such a run
    (killed at start-up, or stopped by a full disk) has run files but no checkpoint and no
    metrics line: it can be neither resumed nor lost, and a new run in its directory replaces its
    files (`RunLog.create`). Anything in ``checkpoints/`` or any line of ``metrics.jsonl`` (a
    `trainers.watch.Watch` run has no checkpoints) keeps a directory from being taken for one.
    """
    directory = Path(directory)
    checkpoints, metrics = directory / "checkpoints", directory / "metrics.jsonl"
    if checkpoints.is_symlink() or checkpoints.is_file() or (checkpoints.is_dir() and any(checkpoints.iterdir())):
        return False
    if metrics.is_symlink() or metrics.is_dir():
        return False
    try:
        return not metrics.exists() or metrics.stat().st_size == 0
    except OSError:
        return False


def _remove_run_files(directory):
    """Remove the run files (`RUN_FILES`) of a run that never trained (see `never_trained`); other files are kept."""
    for name in RUN_FILES:
        path = directory / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def check_writable(directory):
    """Raise ValueError naming ``directory`` unless it, or the folder it would be created in, can be written."""
    existing = Path(directory).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot create {str(directory)!r}: {str(existing)!r} is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to {str(directory)!r}: {str(existing)!r} is read-only.")


COUNTERS = ("epoch", "step", "critic_steps", "images_seen")
"""The counters of a ``metrics.jsonl`` line: integers in [0, 2**63) wherever present."""


def read_metrics(directory):
    """The lines of ``directory/metrics.jsonl`` as dicts ([] if there is none), checked for a resume.

    The strict reading of `read_metrics_file`: a last line without its newline (cut by a crash)
    is dropped; any other line that cannot be used is an error.

    Raises
    ------
    ValueError
        If the file cannot be read, or a line is not JSON, not an object, lacks a ``kind`` of
        `KINDS` or an integer ``step`` >= 0, has a counter of `COUNTERS` or ``seconds`` out of
        range, or is an alarm without a ``name``; the message names the file and the line.
    """
    path = Path(directory) / "metrics.jsonl"
    return read_metrics_file(path, strict=True)[0] if path.exists() else []


def read_metrics_file(path, *, strict):
    """The lines of a ``metrics.jsonl`` file, and whether a last line cut by a crash was dropped.

    Parameters
    ----------
    path : path-like
    strict : bool
        True (to resume a run): a line that cannot be used raises ValueError. False (to read a
        run for its report, which may come from another tool or an older version): lines of any
        string ``kind`` are kept, and those whose counters are out of range are skipped with one
        warning naming them. A line that is not a JSON object is an error either way.

    Returns
    -------
    lines : list of dict
    cut : bool
        Whether the last line, without its newline and not JSON, was dropped.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict" if strict else "replace")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{str(path)!r} cannot be read: {getattr(error, 'strerror', None) or error}.") from None
    raw = text.splitlines()
    lines, skipped, cut = [], [], False
    for number, line in enumerate(raw, start=1):
        last_cut = number == len(raw) and not text.endswith("\n")
        if not line.strip():
            continue
        try:
            record = parse_json(line)
        except ValueError as error:
            if last_cut:
                cut = True
                break
            raise ValueError(f"{str(path)!r}, line {number}: not valid JSON ({error}).") from None
        if last_cut and strict:  # cut by a crash: written again by the resumed run
            break
        if not isinstance(record, dict):
            raise ValueError(f"{str(path)!r}, line {number}: expected a JSON object, got {line[:40]!r}.")
        problem = record_problem(record, strict=strict)
        if problem and strict:
            raise ValueError(f"{str(path)!r}, line {number}: {problem}; repair or remove the line to resume.")
        if problem:
            skipped.append(f"line {number} ({problem})")
        else:
            lines.append(record)
    warn_skipped(path, skipped)
    return lines, cut


def record_problem(record, *, strict=False):
    """Why a metrics line (or an alarm of ``alarms.json``) cannot be used, or None.

    Any reading wants a string ``kind``, counters (`COUNTERS`) that are integers in [0, 2**63)
    and ``seconds`` a finite number >= 0 where present; the strict one (a resume) also a
    ``kind`` of `KINDS`, a ``step``, and a ``name`` for an alarm.
    """
    kind = record.get("kind", "")
    if not isinstance(kind, str):
        return f"'kind' should be a string, got {_shown(kind)}"
    if strict and kind not in KINDS:
        return f"'kind' should be one of {', '.join(KINDS)}, got {_shown(kind)}"
    if strict and "step" not in record:
        return "'step' is missing"
    for key in COUNTERS:
        value = record.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            return f"{key!r} should be an integer in [0, 2**63), got {_shown(value)}"
    seconds = finite_number(record.get("seconds", 0))
    if seconds is None or seconds < 0:
        return f"'seconds' should be a finite number >= 0, got {_shown(record['seconds'])}"
    if strict and kind == "alarm" and not isinstance(record.get("name"), str):
        return "an alarm line should have a 'name'"
    return None


def parse_json(text):
    """``json.loads``, with the ValueError of an over-long integer and the RecursionError of deep
    nesting both raised as ValueError (json.JSONDecodeError is one too)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def warn_skipped(path, skipped):
    """One warning naming the records of ``path`` that were skipped (none: no warning)."""
    if skipped:
        shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        warnings.warn(f"skipped {len(skipped)} malformed record(s) of {str(path)!r}: {shown}", stacklevel=4)


def _shown(value):
    """A short repr of a bad value for a message."""
    if isinstance(value, int) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _line(record):
    return json.dumps(_json_safe(record)) + "\n"


def _json_safe(value):
    """``value`` with every NaN or infinite float replaced by "NaN", "Infinity" or "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def _make(directory):
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _make_numbered(directory):
    """Create the first of ``directory``, ``directory-2``, ... that does not exist, and return it."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    candidate, number = directory, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1
            candidate = directory.with_name(f"{directory.name}-{number}")


def _lock(directory, advice=None):
    """An open descriptor of ``directory`` holding its exclusive lock; ValueError if another process holds it
    (saying ``advice``, by default the trainer's ``--out``)."""
    handle = os.open(directory, os.O_RDONLY)
    if fcntl is None:
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        raise ValueError(f"{str(directory)!r} is in use by another run (a process is writing there); "
                         f"wait for it to stop, or {advice or 'choose another --out'}.") from None
    return handle


def _unlock(handle):
    if handle is not None:
        os.close(handle)


def _remove_temporaries(directory):
    """Remove the temporary files a killed run left (only ours: ``<run file>.<random>.tmp``)."""
    for folder in (directory, directory / "checkpoints", directory / "samples"):
        if folder.is_dir():
            for path in folder.iterdir():
                if _TEMPORARY.fullmatch(path.name) and path.is_file():
                    path.unlink()


def _tensorboard_writer(directory):
    """A SummaryWriter into ``directory/tensorboard``, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(directory / "tensorboard"))


def _write_text(path, text):
    write_atomically(path, lambda file: file.write(text.encode()))
