"""The files of a run directory (see docs/run_format.md); only the main process writes them."""

import json
from pathlib import Path

from .checkpoint import write_atomically
from .grid import save_grid


class RunLog:
    """Writer of ``config.json``, ``metrics.jsonl``, ``alarms.json`` and ``samples/``.

    Parameters
    ----------
    directory : path-like
        The run directory, created if missing.
    enabled : bool
        False on every process but the main one: then nothing is written.
    tensorboard : bool
        Also write every number of ``metrics.jsonl`` as a TensorBoard scalar (tag ``kind/name``,
        step = images seen), if the ``tensorboard`` package is installed; else nothing more.
    """

    def __init__(self, directory, *, enabled=True, tensorboard=False):
        self.directory = Path(directory)
        self.enabled = enabled
        self.alarms = []
        self._scalars = _tensorboard_writer(self.directory) if enabled and tensorboard else None
        if enabled:
            (self.directory / "samples").mkdir(parents=True, exist_ok=True)
            if not (self.directory / "alarms.json").exists():
                self._write_alarms()

    @staticmethod
    def checkpoint_in(directory):
        """Where the checkpoint of the run in ``directory`` is."""
        return Path(directory) / "checkpoints" / "last.pt"

    @property
    def checkpoint_path(self):
        return self.checkpoint_in(self.directory)

    def write_config(self, config_dict):
        if self.enabled:
            _write_atomically(self.directory / "config.json", json.dumps(config_dict, indent=2) + "\n")

    def resume_at(self, step):
        """Drop the lines logged after generator step ``step`` (written after the checkpoint), reload the alarms.

        Returns the ``eval`` lines kept (for the monitor to continue from them); [] if not enabled.
        """
        if not self.enabled:
            return []
        path = self.directory / "metrics.jsonl"
        kept = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash
                    continue
                if record.get("step", 0) <= step and record.get("kind") != "end":
                    kept.append(line)
        _write_atomically(path, "".join(line + "\n" for line in kept))
        records = [json.loads(line) for line in kept]
        self.alarms = [record for record in records if record.get("kind") == "alarm"]
        self._write_alarms()
        return [record for record in records if record.get("kind") == "eval"]

    def log(self, record):
        """Append one JSON line to ``metrics.jsonl`` (and keep alarms in ``alarms.json``)."""
        if not self.enabled:
            return
        with open(self.directory / "metrics.jsonl", "a") as file:
            file.write(json.dumps(record) + "\n")
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

    def _write_alarms(self):
        _write_atomically(self.directory / "alarms.json", json.dumps(self.alarms, indent=2) + "\n")


def _tensorboard_writer(directory):
    """A SummaryWriter into ``directory/tensorboard``, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(directory / "tensorboard"))


def _write_atomically(path, text):
    write_atomically(path, lambda file: file.write(text.encode()))
