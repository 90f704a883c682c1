"""The command-line tools end every failure in one line: a bad input (status 2) and Ctrl-C (status 130)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from trainers import evaluate, report, sample


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(("module", "work", "argv"), [
    (evaluate, "_run", ["procedural", "procedural", "--n", "20"]),
    (sample, "_sample", ["some-run", "--out", "samples.png"]),
    (report, "write_report", ["some-run"]),
])
def test_ctrl_c_ends_in_one_line_with_status_130(monkeypatch, capsys, module, work, argv):
    monkeypatch.setattr(module, work, _interrupt)
    with pytest.raises(SystemExit) as stop:
        module.main(argv)
    error = capsys.readouterr().err
    assert stop.value.code == 130 and error.endswith(": interrupted.\n") and error.count("\n") == 1


@pytest.mark.parametrize(("module", "options"), [(sample, ["--out", "samples.png"]), (report, [])])
def test_a_missing_run_ends_in_one_error_line_with_status_2(tmp_path, capsys, module, options):
    with pytest.raises(SystemExit) as stop:
        module.main([str(tmp_path / "missing"), *options])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and "error:" in error and str(tmp_path / "missing") in error and error.count("\n") == 1


@pytest.mark.parametrize("command", [
    ["examples/train_wgan.py"], ["examples/train_gan.py"], ["examples/demo_gan_vs_wgan.py"],
    ["examples/compare_gan_wgan.py"], ["examples/monitor_your_loop.py"],
    ["-m", "trainers.evaluate", "procedural", "procedural"], ["-m", "trainers.sample", "run"],
    ["-m", "trainers.report", "run"],
])
def test_ctrl_c_while_torch_imports_ends_in_one_line(tmp_path, command):
    """A torch whose import is interrupted, as Ctrl-C in the first seconds of a command would: one line, status 130."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise KeyboardInterrupt\n")
    root = Path(__file__).resolve().parents[1]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    done = subprocess.run([sys.executable, *command], cwd=root, env=environment, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode in (130, -signal.SIGINT)
    assert done.stderr.endswith(": interrupted.\n") and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize("command", [["examples/train_wgan.py"], ["-m", "trainers.evaluate", "procedural", "procedural"]])
def test_ctrl_c_that_a_library_swallows_during_start_up_still_ends_in_one_line(tmp_path, command):
    """A Ctrl-C inside a library's import that the library swallows (numpy was once left half-initialised that way,
    then an AttributeError traceback): the command exits at the signal, in one line."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        "import os, signal, time\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
        "except BaseException:\n"
        "    pass\n"
        "raise AttributeError(\"module 'torch' is half-initialised\")\n")
    root = Path(__file__).resolve().parents[1]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    done = subprocess.run([sys.executable, *command], cwd=root, env=environment, capture_output=True, text=True,
                          timeout=60, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert done.returncode == 130 and done.stderr.endswith(": interrupted.\n") and done.stderr.count("\n") == 1, done.stderr
