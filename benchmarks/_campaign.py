"""A campaign of benchmark training runs: each resumable, a few at a time in worker processes, kept as raw records.

A benchmark names its runs; `Campaign.run` starts a worker process for each run not yet in the
raw-results file (``script --run NAME``, one torch thread each), at most ``jobs`` at a time, and
adds the record each worker leaves (``record.json`` in its run directory) to the file as it
comes. A run killed midway (Ctrl-C, a reboot, the end of a session) resumes from its last
checkpoint the next time (`train_resumable`); a finished one is not run again. After each run a
progress line says how many are done and the time left.
"""

import dataclasses
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

import _ground_truth as truth
from trainers.checkpoint import load_checkpoint
from trainers.monitor import Monitor
from trainers.runlog import RunLog, read_metrics
from trainers.train import train

RECORD = "record.json"
"""What a worker leaves in its run directory when the run is done: the run's raw record."""


def read_raw(path):
    """The records of a raw-results file (gzipped JSON lines), [] if it does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    with gzip.open(path, "rt", encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def write_raw(path, records):
    """Write ``records`` to ``path`` (gzipped JSON lines, sorted by name, byte-stable), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    text = "".join(json.dumps(record, sort_keys=True, allow_nan=False) + "\n"
                   for record in sorted(records, key=lambda record: record["name"]))
    with open(partial, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as file:
        file.write(text.encode("utf-8"))
    partial.replace(path)


class Campaign:
    """The runs of one benchmark, run in worker processes and collected into one raw-results file.

    Parameters
    ----------
    script : path-like
        The benchmark script; ``script --run NAME [extra...]`` runs one run in a worker.
    names : list of str
        Every run of the campaign, in the order to run them.
    runs_dir : path-like
        Where the run directories go (one per name).
    raw_path : path-like
        The raw-results file.
    jobs : int
        Workers at a time.
    extra : list of str
        Arguments passed on to every worker.
    seconds_per_run : callable
        ``seconds_per_run(name)``: a first guess of a run's duration, for the time left before any
        run has finished.
    """

    def __init__(self, script, names, runs_dir, raw_path, *, jobs=2, extra=(), seconds_per_run=lambda name: 300.0):
        self.script, self.names, self.runs_dir, self.raw_path = script, list(names), Path(runs_dir), Path(raw_path)
        self.jobs, self.extra, self.guess = jobs, list(extra), seconds_per_run

    def run(self):
        """Run every run not yet in the raw file; return the names of the runs whose worker failed."""
        records = {record["name"]: record for record in read_raw(self.raw_path)}
        todo = [name for name in self.names if name not in records]
        print(f"{len(self.names) - len(todo)} of {len(self.names)} runs already in {self.raw_path}; "
              f"{len(todo)} to run, {self.jobs} at a time (run directories in {self.runs_dir})", flush=True)
        running, failed, took = {}, [], {}
        signal.signal(signal.SIGTERM, _interrupt)  # a kill stops the campaign as Ctrl-C does: runs checkpointed
        try:
            done = []
            while todo or running:
                while todo and len(running) < self.jobs:
                    name = todo.pop(0)
                    running[name] = (self._start(name), time.monotonic())
                for name, record in done:  # said once the free places are taken again
                    print(self._progress(name, record, took, todo, running, len(records)), flush=True)
                time.sleep(2)
                done = []
                for name, (process, started) in list(running.items()):
                    if process.poll() is None:
                        continue
                    del running[name]
                    took[name] = time.monotonic() - started
                    record = self._collected(name, process.returncode)
                    if record is None:
                        failed.append(name)
                    else:
                        records[name] = record
                        write_raw(self.raw_path, records.values())
                    done.append((name, record))
            for name, record in done:
                print(self._progress(name, record, took, todo, running, len(records)), flush=True)
        except KeyboardInterrupt:
            for process, _ in running.values():
                process.terminate()  # the trainer checkpoints and stops: the next campaign resumes it
            for process, _ in running.values():
                process.wait()
            print("interrupted: the runs under way were checkpointed; run the same command again to go on.")
            raise
        return failed

    def _start(self, name):
        directory = self.runs_dir / name
        directory.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.runs_dir / f"{name}.log", "a", encoding="utf-8")
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        command = [sys.executable, str(self.script), "--run", name, "--runs", str(self.runs_dir), *self.extra]
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)

    def _collected(self, name, status):
        path = self.runs_dir / name / RECORD
        if status != 0 or not path.exists():
            log = (self.runs_dir / f"{name}.log").read_text(encoding="utf-8", errors="replace")
            print(f"run {name} failed (exit status {status}); the end of its log:\n{log[-2000:]}", flush=True)
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def _progress(self, name, record, took, todo, running, done):
        rate = {}
        for finished, seconds in took.items():
            rate[finished] = seconds / max(self.guess(finished), 1e-9)
        scale = sum(rate.values()) / len(rate)  # measured time / first guess, over this session's runs
        left = sum(self.guess(other) for other in todo) * scale
        left += sum(max(self.guess(other) * scale - (time.monotonic() - started), 0.0)
                    for other, (_, started) in running.items())
        status = "failed" if record is None else "done"
        return (f"[{done}/{len(self.names)}] {name} {status} in {_duration(took[name])}; {len(running)} running, "
                f"{len(todo)} waiting; about {_duration(left / self.jobs)} left at {self.jobs} at a time")


def run_with_truth(name, config, directory, *, data, truth_images, injection=None):
    """Train ``config`` into ``directory`` (resumed if stopped) with the monitor and the ground truth; its raw record.

    ``data`` is ``""`` (procedural faces) or the zip the truth's real images come from; the record
    holds the run's config, the truth's floor, its ``train`` and ``eval`` lines without the fields
    no one reads (`SKIPPED`), its ``end`` line, the alarms it wrote, how often it was started and
    the CPU seconds it took. Exits (status 1) if the run stopped before its end (a signal).
    """
    torch.set_num_threads(1)
    directory = Path(directory)
    reference, other = truth.reference_images(data, config.image_size, truth_images)
    if finished(directory) is None:
        clock = CpuClock(directory)
        monitor = truth.MonitorWithTruth(Monitor(config.resolved()),
                                         truth.Truth(reference, seed=config.seed, nz=config.nz, device="cpu"),
                                         after=clock.tick)
        train_resumable(config, directory, monitor, injection)
        clock.stop()
    end = finished(directory)
    if end is None:
        sys.exit(f"run {name} stopped before its end; the same command resumes it.")
    lines = read_metrics(directory)
    progress = json.loads((directory / "progress.json").read_text())
    return {
        "name": name, "config": dataclasses.asdict(config), "floor": truth.floor(reference, other),
        "lines": [{key: value for key, value in line.items() if key not in SKIPPED}
                  for line in lines if line["kind"] in ("train", "eval")],
        "end": {key: end[key] for key in ("reason", "step", "images_seen", "message")},
        "online_alarms": [[line["name"], line["step"]] for line in lines if line["kind"] == "alarm"],
        "starts": progress["starts"], "cpu_seconds": progress["cpu_seconds"],
    }


SKIPPED = ("epoch", "critic_steps", "seconds", "eval_seconds", "images_per_s", "sliced_patches_levels")
"""Fields of the metrics lines a raw record leaves out: no detector and no truth reads them."""


def write_record(directory, record):
    """Leave ``record`` in the run directory, for the campaign to collect."""
    (Path(directory) / RECORD).write_text(json.dumps(record, allow_nan=False))


class CpuClock:
    """The CPU seconds a run's processes take, kept in ``directory/progress.json`` as the run goes.

    Each process writes its reading so far at every evaluation (`tick`) and adds it to the total
    when it ends (`stop`); a process that was killed (a working session that ended) left its last
    reading, which the next start adds. So a resumed run loses at most the CPU time since its last
    evaluation, not its whole killed process (the totals of earlier campaigns lost those).
    """

    def __init__(self, directory):
        self.path = Path(directory) / "progress.json"
        progress = json.loads(self.path.read_text()) if self.path.exists() else {}
        killed = progress.get("running")
        self.starts = progress.get("starts", 0) + (killed is not None)
        self.total = progress.get("cpu_seconds", 0.0) + (killed or 0.0)
        self.started = time.process_time()

    def tick(self):
        """Record this process's CPU seconds so far."""
        self._write(running=time.process_time() - self.started)

    def stop(self):
        """Add this process's CPU seconds to the total: the run ended, or stopped cleanly."""
        self.starts += 1
        self.total += time.process_time() - self.started
        self._write()

    def _write(self, **running):
        self.path.parent.mkdir(parents=True, exist_ok=True)  # a run without a checkpoint restarts in a new folder
        self.path.write_text(json.dumps({"starts": self.starts, "cpu_seconds": self.total, **running}))


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def train_resumable(config, directory, monitor, injection=None):
    """Train ``config`` into ``directory``: resumed from its checkpoint if it has one, else from scratch.

    A directory without a checkpoint that loads (a run killed before its first one) is removed
    and the run starts again. ``injection``, if given, is called with the generator step the run
    starts from and returns a context manager to train in (`_injections`).
    """
    directory = Path(directory)
    start = _checkpoint_step(directory)
    if start is None and directory.exists():
        shutil.rmtree(directory)
    resumed = dataclasses.replace(config, out=str(directory)) if start is None else \
        dataclasses.replace(config, resume=str(directory))
    with injection(start or 0) if injection is not None else nullcontext():
        train(resumed, monitor=monitor)


def _checkpoint_step(directory):
    """The generator step of ``directory``'s checkpoint, or None if it has none that loads."""
    path = RunLog.checkpoint_in(directory)
    try:
        return int(load_checkpoint(path)["counters"]["step"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def finished(directory):
    """The run's ``end`` line if it ended for good (trained every epoch, or stopped on non-finite values), else None."""
    ends = [line for line in read_metrics(directory) if line["kind"] == "end"]
    return ends[-1] if ends and ends[-1]["reason"] in ("finished", "non_finite") else None


def _duration(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    return f"{round(seconds / 60)} min" if seconds >= 90 else f"{round(seconds)} s"
