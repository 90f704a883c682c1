"""Fault injection for the trainer's run lifecycle: the cases are generated, not listed one by one.

Every case ends in a clean finish or a one-line ``error:``/interruption message with a conventional
exit status, never a traceback; afterwards the run directory holds no temporary file, its
checkpoint (if any) loads and is finite, its metrics hold one run (one step-0 evaluation, at most
one ``end`` line, generator steps counted once), and a resume finishes it. Kills (-9) run the
trainer in a child process; signals, damaged files and full disks run it in this process.
"""

import dataclasses
import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from trainers import resume as resume_module
from trainers import train as train_module
from trainers.checkpoint import load_checkpoint, save_checkpoint
from trainers.config import LATER_FIELDS, RESUMABLE_FIELDS, TrainConfig
from trainers.train import main

ROOT = Path(__file__).resolve().parents[1]

TINY = ["--image-size=16", "--nz=8", "--ngf=8", "--ndf=8", "--batch-size=8", "--procedural-images=200",
        "--holdout-images=20", "--epoch-images=80", "--log-every=1", "--eval-every=1", "--progress=false",
        "--tensorboard=false", "--device=cpu"]
"""A WGAN of two generator steps per epoch on 16x16 faces: a fraction of a second per epoch."""

SIGNAL_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Probe:
    """A monitor that returns the step and, at its ``at``-th call, raises ``signum`` ``times`` times."""

    def __init__(self, at=None, signum=None, times=1):
        self.at, self.signum, self.times, self.calls = at, signum, times, 0

    def __call__(self, context):
        self.calls += 1
        if self.calls == self.at:
            for _ in range(self.times):
                signal.raise_signal(self.signum)
        return {"probe": float(context.counters.step)}


def invoke(argv, capsys, monitor=None):
    """Run the command line in this process; return (exit status, its last printed line, all it printed)."""
    try:
        main(argv, loss="wgan", monitor=monitor or Probe())
        status, message = 0, None
    except SystemExit as stop:
        status, message = (1, stop.code) if isinstance(stop.code, str) else (stop.code or 0, None)
    except KeyboardInterrupt:  # would end the pytest session: report it as the failure it is
        pytest.fail("a KeyboardInterrupt escaped the command line")
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "Traceback" not in printed
    return status, message or (printed.strip().splitlines() or [""])[-1], printed


def new_run(out, *extra):
    return [*TINY, f"--out={out}", *extra]


def resume(out, *extra):
    return [f"--resume={out}", *extra]


def metrics(run):
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


def snapshot(directory):
    """{relative path: sha256} of every file under ``directory``."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(directory).rglob("*")) if p.is_file()}


def check_run(run):
    """The invariants of a run directory after any fault: see the module docstring."""
    run = Path(run)
    assert not [p.name for p in run.rglob("*.tmp")], "temporary files left behind"
    checkpoint = run / "checkpoints" / "last.pt"
    if checkpoint.exists():
        state = load_checkpoint(checkpoint)
        for name in ("generator", "critic"):
            assert all(torch.isfinite(value).all() for value in state[name].values() if value.is_floating_point())
        saved = json.loads((run / "config.json").read_text())
        # A resume may be killed after writing config.json (with its `resume`) and before its first checkpoint,
        # which the trainer allows for: it compares neither `resume` nor the resumable fields.
        invocation = RESUMABLE_FIELDS + ("resume",)
        assert {k: v for k, v in state["config"].items() if k not in invocation} == {
            k: v for k, v in saved.items() if k not in invocation + ("world_size",)}
    if (run / "metrics.jsonl").exists():
        text = (run / "metrics.jsonl").read_text()
        complete = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]  # a kill may cut the last
        records = [json.loads(line, parse_constant=_refuse) for line in complete]
        assert all(isinstance(record, dict) for record in records)
        assert sum(r["kind"] == "eval" and r["step"] == 0 for r in records) <= 1
        assert sum(r["kind"] == "end" for r in records) <= 1
        steps = [r["step"] for r in records if r["kind"] == "train"]
        assert steps == sorted(set(steps)), "generator steps logged twice"


def _refuse(constant):
    raise AssertionError(f"metrics.jsonl holds a bare {constant}, which is not JSON")


def finish(run, capsys, epochs=3):
    """Resume ``run`` to ``epochs`` epochs; check that it finished as one run."""
    status, message, _ = invoke(resume(run, f"--epochs={epochs}"), capsys)
    assert status == 0, message
    check_run(run)
    records = metrics(run)
    assert [r["reason"] for r in records if r["kind"] == "end"] == ["finished"]
    assert [r["step"] for r in records if r["kind"] == "train"] == list(range(1, 2 * epochs + 1))
    assert load_checkpoint(Path(run) / "checkpoints" / "last.pt")["counters"]["epoch"] == epochs


@pytest.fixture(autouse=True)
def _sigterm_guard():
    """A SIGTERM the trainer does not catch raises here instead of killing pytest."""
    def uncaught(signum, frame):
        raise AssertionError("SIGTERM reached the default handler")

    previous = signal.signal(signal.SIGTERM, uncaught)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run of 1 epoch, finished; copy it before damaging it."""
    out = tmp_path_factory.mktemp("base") / "run"
    main(new_run(out, "--epochs=1"), loss="wgan", monitor=Probe())
    return out


# 1. An --out that holds a run is refused; nothing of the first run changes

RUN_FILES = ["config.json", "metrics.jsonl", "alarms.json", "checkpoints/last.pt", "samples/epoch_000.png"]


@pytest.mark.parametrize("kept", ["all", "metrics.jsonl", "checkpoints/last.pt"])
def test_out_holding_a_run_is_refused_and_left_untouched(finished, tmp_path, capsys, kept):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    for path in sorted(out.rglob("*"), reverse=True):
        if kept != "all" and path.is_file() and str(path.relative_to(out)) != kept:
            path.unlink()
    before = snapshot(out)
    status, message, _ = invoke(new_run(out, "--epochs=2"), capsys)
    assert status == 1 and message.startswith("error:") and str(out) in message and "--resume" in message
    assert snapshot(out) == before


@pytest.mark.parametrize("kept", ["config.json", "alarms.json", "samples/epoch_000.png"])
def test_out_holding_a_run_without_checkpoint_or_metrics_is_started_again(finished, tmp_path, capsys, kept):
    """The files a run writes before its initial checkpoint, and no more: it died at start-up, nothing to lose."""
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    for path in sorted(out.rglob("*"), reverse=True):
        if path.is_file() and str(path.relative_to(out)) != kept:
            path.unlink()
    status, _, printed = invoke(new_run(out, "--epochs=1"), capsys)
    assert status == 0 and "replaced the files of a run" in printed
    check_run(out)


def test_an_empty_out_directory_is_used(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert invoke(new_run(tmp_path / "run", "--epochs=1"), capsys)[0] == 0
    check_run(tmp_path / "run")


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(resume_module, "_default_out", lambda config: Path("runs") / "wgan-20250101-120000")
    for _ in range(2):
        assert invoke([*TINY, "--epochs=1"], capsys)[0] == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["wgan-20250101-120000", "wgan-20250101-120000-2"]
    for run in runs:
        check_run(tmp_path / "runs" / run)
        assert len([r for r in metrics(tmp_path / "runs" / run) if r["kind"] == "end"]) == 1


def test_a_run_in_use_by_another_process_is_refused(finished, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = snapshot(out)
    handle = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        status, message, _ = invoke(resume(out, "--epochs=2"), capsys)
    finally:
        os.close(handle)
    assert status == 1 and "in use" in message and str(out) in message
    assert snapshot(out) == before


# 3. An --out that cannot be written is refused before the data is loaded; a full disk stops cleanly


def _unwritable(tmp_path, kind):
    """An --out that cannot be written: a file, inside a file, or inside a read-only folder."""
    if kind == "file":
        (tmp_path / "out").write_text("")
        return tmp_path / "out"
    if kind == "inside a file":
        (tmp_path / "file").write_text("")
        return tmp_path / "file" / "run"
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes through permission bits: a read-only mount instead
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)]).returncode:
            pytest.skip("cannot mount a tmpfs")
    else:
        folder.chmod(0o555)
    return folder / "run"


@pytest.mark.parametrize("kind", ["file", "inside a file", "read-only"])
def test_an_unwritable_out_is_refused_before_loading_data(tmp_path, capsys, kind):
    out = _unwritable(tmp_path, kind)
    try:
        status, message, printed = invoke(new_run(out, "--epochs=1"), capsys)
    finally:
        if kind == "read-only" and os.geteuid() == 0:
            subprocess.run(["umount", str(out.parent)])
    assert status == 1 and message.startswith("error:") and str(out) in message, message
    assert "data:" not in printed  # refused before the data was loaded


@pytest.fixture
def tmpfs(tmp_path):
    """A function that mounts a tmpfs of the given size at tmp_path/disk (root only) and returns it."""
    if os.geteuid() != 0:
        pytest.skip("a small disk needs root (tmpfs)")
    disk = tmp_path / "disk"
    disk.mkdir()

    def mount(kilobytes, remount=False):
        options = f"{'remount,' if remount else ''}size={kilobytes}k"
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)]).returncode:
            pytest.skip("cannot mount a tmpfs")
        return disk

    yield mount
    while subprocess.run(["umount", str(disk)], capture_output=True).returncode == 0:
        pass


@pytest.mark.parametrize("kilobytes", [4, 8, 60, 120, 200, 280, 360, 440, 520, 600])
def test_a_full_disk_stops_with_a_message_and_keeps_the_checkpoint(tmpfs, capsys, kilobytes):
    out = tmpfs(kilobytes) / "run"
    status, message, _ = invoke(new_run(out, "--epochs=3"), capsys)
    assert status == 0 or (status == 1 and message.startswith("error:") and "No space left" in message), message
    if out.exists():
        check_run(out)
    tmpfs(4096, remount=True)
    if status == 1 and (out / "checkpoints" / "last.pt").exists():
        finish(out, capsys)
    elif status == 1 and out.exists():  # stopped before its first checkpoint: restarted in place, not stuck
        status, message, _ = invoke(resume(out, "--epochs=3"), capsys)
        assert status == 1 and "stopped before its first checkpoint" in message and f"--out {out}" in message, message
        status, message, printed = invoke(new_run(out, "--epochs=1"), capsys)
        assert status == 0 and "replaced the files of a run" in printed, message
        check_run(out)


def test_a_run_that_trained_nothing_is_replaced_but_one_that_trained_is_not(finished, tmp_path, capsys):
    dead = tmp_path / "dead"
    shutil.copytree(finished, dead)
    shutil.rmtree(dead / "checkpoints")
    (dead / "metrics.jsonl").write_text("")
    (dead / "notes.txt").write_text("mine")
    status, _, printed = invoke(new_run(dead, "--epochs=1"), capsys)
    assert status == 0 and "replaced the files of a run" in printed and (dead / "notes.txt").read_text() == "mine"
    trained = tmp_path / "trained"
    shutil.copytree(finished, trained)
    shutil.rmtree(trained / "checkpoints")  # no checkpoint, but metrics lines: work that must not be removed
    status, message, _ = invoke(new_run(trained, "--epochs=1"), capsys)
    assert status == 1 and "already holds a run" in message and (trained / "metrics.jsonl").exists()


# 4. Damaged run files: a one-line error naming the file, the run left as it was


def _flip(data, index):
    return data[:index] + bytes([data[index] ^ 0x40]) + data[index + 1:]


class _Payload:
    """Pickled by reference to os.system: what a weights_only load must refuse to run."""

    def __reduce__(self):
        return os.system, ("touch pwned",)


def checkpoint_damages():
    """(name, function of the checkpoint's bytes -> damaged bytes)."""
    cases = [("empty", lambda data: b""), ("random bytes", lambda data: random.Random(0).randbytes(len(data)))]
    for fraction in (0.0001, 0.01, 0.5, 0.99):
        cases.append((f"cut at {fraction:.2%}", lambda data, f=fraction: data[:max(1, int(len(data) * f))]))
    cases.append(("one byte short", lambda data: data[:-1]))
    for fraction in (0.0, 0.0003, 0.0006, 0.001, 0.1, 0.3, 0.5, 0.7, 0.9, 0.9999):
        cases.append((f"byte flipped at {fraction:.2%}", lambda data, f=fraction: _flip(data, int(len(data) * f))))
    return cases


@pytest.mark.parametrize("name, damage", checkpoint_damages(), ids=[name for name, _ in checkpoint_damages()])
def test_a_damaged_checkpoint_is_refused(finished, tmp_path, capsys, name, damage):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    path = out / "checkpoints" / "last.pt"
    path.write_bytes(damage(path.read_bytes()))
    _refused(out, "last.pt", capsys)


def _refused(out, file_name, capsys):
    before = snapshot(out)
    status, message, _ = invoke(resume(out, "--epochs=2"), capsys)
    assert status == 1 and message.startswith("error:") and file_name in message and "\n" not in message, message
    assert snapshot(out) == before


def _rewrite_checkpoint(out, change):
    path = out / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    change(state)
    save_checkpoint(state, path)


def _nan_weight(state):
    next(iter(state["generator"].values())).fill_(float("nan"))


def _other_size(state):
    state["critic"] = {name: torch.zeros(3, *value.shape) for name, value in state["critic"].items()}


@pytest.mark.parametrize("change", [
    lambda state: state.clear(),
    lambda state: state.pop("critic"),
    lambda state: state["counters"].update(step="3"),
    lambda state: state["counters"].update(extra=1),
    lambda state: state.update(rng=[]),
    lambda state: state["config"].update(loss="gan"),
    lambda state: state["config"].update(image_size=32),
    _nan_weight,
    _other_size,
    lambda state: state.update(generator={"x": _Payload()}),
], ids=["empty dict", "no critic", "string step", "unknown counter", "no random states", "another loss",
        "another image size", "NaN weight", "other shapes", "malicious pickle"])
def test_a_checkpoint_of_another_run_or_shape_is_refused(finished, tmp_path, capsys, change, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    _rewrite_checkpoint(out, change)
    monkeypatch.chdir(tmp_path)
    _refused(out, "last.pt", capsys)
    assert not (tmp_path / "pwned").exists()


def config_damages():
    """(name, function of the config dict -> the new text of config.json)."""
    cases = [("not JSON", lambda c: json.dumps(c)[:40]), ("empty", lambda c: ""), ("a list", lambda c: "[1, 2]"),
             ("a string", lambda c: '"wgan"'), ("null", lambda c: "null"), ("a number", lambda c: "3"),
             ("unknown field", lambda c: json.dumps({**c, "learning_rate": 1})),
             ("out of domain", lambda c: json.dumps({**c, "epochs": 0})),
             ("another loss", lambda c: json.dumps({**c, "loss": "gan"})),
             ("another size", lambda c: json.dumps({**c, "image_size": 32}))]
    wrong = {int: ["3", 1.5, True, None], float: ["x", True, None], str: [1, None, ["a"]], bool: [1, "yes", None]}
    for spec in TrainConfig.__dataclass_fields__.values():
        kind = spec.type if spec.type in wrong else {int | None: int, float | None: float, str | None: str}[spec.type]
        for value in wrong[kind]:
            if value is None and spec.type in (int | None, float | None, str | None):
                continue
            cases.append((f"{spec.name}={value!r}", lambda c, n=spec.name, v=value: json.dumps({**c, n: v})))
        if spec.name not in LATER_FIELDS:  # those a run from before they were added lacks: read with their defaults
            cases.append((f"no {spec.name}", lambda c, n=spec.name: json.dumps({k: v for k, v in c.items() if k != n})))
    return cases


@pytest.mark.parametrize("name, damage", config_damages(), ids=[name for name, _ in config_damages()])
def test_a_damaged_config_is_refused(finished, tmp_path, capsys, name, damage):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    path = out / "config.json"
    path.write_text(damage(json.loads(path.read_text())))
    _refused(out, "config.json", capsys)


METRICS_DAMAGES = {"a list": "[1]", "a number": "3", "a string": '"train"', "null": "null", "not JSON": "{bad",
                   "string step": '{"kind": "train", "step": "1"}', "no kind": '{"step": 1}',
                   "alarm without name": '{"kind": "alarm", "step": 1}', "huge step": '{"kind": "eval", "step": 1e999}',
                   "negative images": '{"kind": "eval", "step": 1, "images_seen": -5}',
                   "NaN seconds": '{"kind": "train", "step": 1, "seconds": NaN}'}


@pytest.mark.parametrize("line", [0, 2])
@pytest.mark.parametrize("damage", METRICS_DAMAGES)
def test_a_damaged_metrics_line_is_refused(finished, tmp_path, capsys, damage, line):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    path = out / "metrics.jsonl"
    rows = path.read_text().splitlines()
    rows[line] = METRICS_DAMAGES[damage]
    path.write_text("\n".join(rows) + "\n")
    _refused(out, "metrics.jsonl", capsys)


@pytest.mark.parametrize("damage", ["cut last line", "empty", "missing", "alarms.json damaged"])
def test_damage_a_crash_can_cause_is_repaired_on_resume(finished, tmp_path, capsys, damage):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    path = out / "metrics.jsonl"
    if damage == "cut last line":
        path.write_text(path.read_text() + '{"kind": "train", "st')
    elif damage == "empty":
        path.write_text("")
    elif damage == "missing":
        path.unlink()
    else:
        (out / "alarms.json").write_text("{")
    status, message, _ = invoke(resume(out, "--epochs=2"), capsys)
    assert status == 0, message
    check_run(out)
    assert json.loads((out / "alarms.json").read_text()) == []


@pytest.mark.parametrize("name", ["config.json", "metrics.jsonl", "checkpoints/last.pt"])
def test_a_run_file_that_is_a_folder_is_refused(finished, tmp_path, capsys, name):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    (out / name).unlink()
    (out / name).mkdir()
    _refused(out, Path(name).name, capsys)


# 5. Values that pass the parser but cannot run: refused before anything is written

@pytest.mark.parametrize("extra, field", [
    (["--lr=1e39"], "lr"), (["--lr=1e38", "--critic-lr-factor=10"], "critic_lr_factor"),
    (["--seed=99999999999999999"], "seed"), (["--seed=-1"], "seed"), (["--eval-images=100000"], "eval_images"),
    (["--device=meta"], "device"), (["--device=xla"], "device"), (["--device=cpu:3"], "device"),
    (["--device=cuda:99"], "device"),
])
def test_values_that_cannot_run_are_refused_before_the_run_directory(tmp_path, capsys, extra, field):
    status, message, _ = invoke(new_run(tmp_path / "run", "--epochs=1", *extra), capsys)
    assert status == 1 and message.startswith("error:") and f"`{field}`" in message, message
    assert not (tmp_path / "run").exists()


# 6. Signals in every phase: a one-line message, 130 or 143, a checkpoint to resume from

def signal_at(monkeypatch, owner, name, at, signum, times):
    """Replace ``owner.name`` by a function (or method) that raises ``signum`` ``times`` times at its ``at``-th call."""
    original, calls = getattr(owner, name), []

    def hooked(*args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            for _ in range(times):
                signal.raise_signal(signum)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, hooked)


PHASES = {  # phase: (object, attribute, call) of the function that gets the signal; the monitor is "monitor"
    "loading data": (train_module, "load_real_images", 1),
    "first file write": (os, "fsync", 1),
    "second file write": (os, "fsync", 2),
    "step-0 evaluation": ("monitor", None, 1),
    "first generator step": (train_module, "LOSS_SPECS", 1),
    "third generator step": (train_module, "LOSS_SPECS", 3),
    "third evaluation": ("monitor", None, 3),
    "fifth file write": (os, "fsync", 5),
    "eighth file write": (os, "fsync", 8),
    "end line": (train_module.RunLog, "log", 10),
}


def _inject(monkeypatch, phase, signum, times):
    owner, name, at = PHASES[phase]
    if owner == "monitor":
        return Probe(at, signum, times)
    if name == "LOSS_SPECS":
        spec = train_module.LOSS_SPECS["wgan"]
        holder = types.SimpleNamespace(loss=spec.generator_loss)
        signal_at(monkeypatch, holder, "loss", at, signum, times)
        monkeypatch.setitem(train_module.LOSS_SPECS, "wgan", dataclasses.replace(spec, generator_loss=holder.loss))
        return Probe()
    signal_at(monkeypatch, owner, name, at, signum, times)
    return Probe()


SIGNAL_CASES = [(phase, signum, times) for phase in PHASES for signum in (signal.SIGINT, signal.SIGTERM) for times in (1, 2)]


@pytest.mark.parametrize("phase, signum, times", [
    pytest.param(*case, marks=[pytest.mark.slow] if case[1] == signal.SIGTERM and case[2] == 2 else [],
                 id=f"{case[0]}-{signal.Signals(case[1]).name}-x{case[2]}") for case in SIGNAL_CASES])
def test_a_signal_in_any_phase_stops_cleanly_and_the_run_resumes(finished, tmp_path, capsys, monkeypatch, phase, signum, times):
    # `finished` has cached the procedural faces: the data loading writes no file
    out = tmp_path / "run"
    monitor = _inject(monkeypatch, phase, signum, times)
    status, message, printed = invoke(new_run(out, "--epochs=2"), capsys, monitor=monitor)
    monkeypatch.undo()
    assert status in (0, SIGNAL_STATUS[signum]), (status, printed)
    if status:  # the interruption in one line: the end message, or the message of a stop at once
        assert any(line.startswith(("interrupted", "stopped at once")) for line in printed.splitlines()), printed
    if not out.exists():
        assert phase == "loading data"
        return
    check_run(out)
    finish(out, capsys)


# 8. kill -9 at random points and inside checkpoint writes, in a child process

CHILD = """
import os, sys, time
from pathlib import Path
block = int(os.environ.get("BLOCK_AT_FSYNC", "0"))
if block:
    fsync, calls = os.fsync, []
    def blocking(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith("last.pt."):
            calls.append(fd)
            if len(calls) == block:
                Path(os.environ["READY"]).write_text("")
                time.sleep(600)
        fsync(fd)
    os.fsync = blocking
from trainers.train import main
main(sys.argv[1:], loss="wgan")
"""


def _kill_then_resume(tmp_path, capsys, delay=None, block_at=None):
    out, ready = tmp_path / "run", tmp_path / "ready"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "READY": str(ready), "BLOCK_AT_FSYNC": str(block_at or 0)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, *new_run(out, "--epochs=3", "--monitor=false")],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        if block_at:
            deadline = time.monotonic() + 120
            while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        else:
            assert child.stdout.readline().startswith("data:")
            time.sleep(delay)
    finally:
        child.kill()
        child.communicate()
    if not (out / "checkpoints" / "last.pt").exists():
        return
    before = load_checkpoint(out / "checkpoints" / "last.pt")["counters"]
    finish(out, capsys)
    assert before["step"] <= 6


@pytest.mark.parametrize("block_at", [1, 2])
def test_kill_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, capsys, block_at):
    _kill_then_resume(tmp_path, capsys, block_at=block_at)
    assert (tmp_path / "ready").exists()


@pytest.mark.parametrize("seed", range(2))
def test_kill_at_a_random_point_then_resume(tmp_path, capsys, seed):
    _kill_then_resume(tmp_path, capsys, delay=random.Random(seed).uniform(0, 1.0))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 32))
def test_kill_at_many_random_points_then_resume(tmp_path, capsys, seed):
    _kill_then_resume(tmp_path, capsys, delay=random.Random(seed).uniform(0, 1.5))


@pytest.mark.slow
@pytest.mark.parametrize("block_at", [3, 4])
def test_kill_during_later_checkpoint_writes(tmp_path, capsys, block_at):
    _kill_then_resume(tmp_path, capsys, block_at=block_at)


# 2, 7. Only finite states are checkpointed; files and lines a reader can trust

def test_an_exploding_learning_rate_keeps_only_a_finite_checkpoint(tmp_path, capsys):
    status, _, printed = invoke(new_run(tmp_path / "run", "--epochs=3", "--lr=1e30"), capsys)
    assert status == 1 and "NaN or infinite" in printed
    check_run(tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    for name in ("generator", "critic", "optimizer_g", "optimizer_d"):
        for value in _tensors(state[name]):
            assert torch.isfinite(value).all() and value.abs().max() < 1e6, name


def _tensors(value):
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    return []


def test_run_files_respect_the_umask(tmp_path, capsys):
    previous = os.umask(0o022)
    try:
        invoke(new_run(tmp_path / "run", "--epochs=1"), capsys)
    finally:
        os.umask(previous)
    modes = {str(p.relative_to(tmp_path / "run")): p.stat().st_mode & 0o777 for p in (tmp_path / "run").rglob("*")}
    assert modes and all(mode == (0o755 if (tmp_path / "run" / name).is_dir() else 0o644) for name, mode in modes.items()), modes


def test_non_finite_signals_are_written_as_json(tmp_path, capsys):
    def nan_monitor(context):
        return {"probe": float("nan"), "peak": float("inf"), "low": float("-inf")}

    invoke(new_run(tmp_path / "run", "--epochs=1"), capsys, monitor=nan_monitor)
    check_run(tmp_path / "run")
    first = metrics(tmp_path / "run")[0]
    assert (first["probe"], first["peak"], first["low"]) == ("NaN", "Infinity", "-Infinity")


def test_stop_on_alarm_at_step_zero(tmp_path, capsys):
    def alarming(context):
        return {"alarms": [{"name": "diverged", "message": "NaN images"}]}

    status, message, _ = invoke(new_run(tmp_path / "run", "--epochs=2", "--stop-on-alarm"), capsys, monitor=alarming)
    assert status == 1
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["counters"]["step"] == 0
    end = [r for r in metrics(tmp_path / "run") if r["kind"] == "end"]
    assert [(r["reason"], r["step"]) for r in end] == [("alarm", 0)]


def test_resuming_with_fewer_epochs_than_done_is_refused(finished, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    main(resume(out, "--epochs=2"), loss="wgan", monitor=Probe())
    capsys.readouterr()
    before = snapshot(out)
    status, message, _ = invoke(resume(out, "--epochs=1"), capsys)
    assert status == 1 and "`epochs`" in message and "2" in message
    assert snapshot(out) == before


def test_a_resumed_dry_run_takes_the_epochs_given(tmp_path, capsys):
    assert invoke(new_run(tmp_path / "run", "--dry-run"), capsys)[0] == 0
    assert invoke(resume(tmp_path / "run", "--epochs=2"), capsys)[0] == 0
    assert [r["step"] for r in metrics(tmp_path / "run") if r["kind"] == "train"] == [1, 2, 3, 4]


def test_a_dry_run_takes_two_steps_whatever_the_number_of_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    config = train_module._dry_run_settings(TrainConfig(batch_size=8).resolved())
    assert config.epoch_images == 2 * 2 * 8 * 5  # 2 steps of 2 processes x 5 critic steps x 8 images


def test_an_atomic_write_never_replaces_a_special_file(tmp_path):
    # the rename replaced /dev/full with a JSON file (found by a hostile pass): a pipe, or a device, stays what it is
    from trainers.files import write_atomically

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="is not a regular file"):
        write_atomically(fifo, lambda file: file.write(b"{}"))
    assert fifo.is_fifo() and sorted(path.name for path in tmp_path.iterdir()) == ["pipe"]


def test_an_atomic_write_names_the_file_asked_for_not_its_temporary(tmp_path):
    # the error of a folder where no file can be made named the temporary file, which the user never asked for
    from trainers.files import write_atomically

    with pytest.raises(OSError) as error:
        write_atomically("/proc/out.json", lambda file: file.write(b"{}"))
    assert error.value.filename == "/proc/out.json" and ".tmp" not in str(error.value)


def test_an_atomic_write_takes_a_name_of_any_length_the_file_system_takes(tmp_path):
    # the temporary beside a 240-character name (21 characters more) did not fit the file system's 255
    from trainers.files import write_atomically

    path = tmp_path / ("n" * 240)
    write_atomically(path, lambda file: file.write(b"{}"))
    assert path.read_bytes() == b"{}" and sorted(tmp_path.iterdir()) == [path]
