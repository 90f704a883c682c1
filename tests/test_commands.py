"""The command-line tools end every failure in one line: a bad input (status 2) and Ctrl-C (status 130)."""

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
