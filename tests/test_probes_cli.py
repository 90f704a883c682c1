"""``python -m divergences.probes``: figures and a Markdown report."""

import math

from divergences.probes.__main__ import main


def test_one_probe_writes_its_figure_and_table(tmp_path, capsys):
    main(["--out", str(tmp_path), "--only", "shift_sweep_box"])
    report = (tmp_path / "probes.md").read_text(encoding="utf-8")
    assert (tmp_path / "shift_sweep_box.png").stat().st_size > 10_000
    assert "## shift_sweep_box" in report and "![shift_sweep_box](shift_sweep_box.png)" in report
    # The boxes end up apart: the table's last rows read JS = log 2.
    assert f"{math.log(2):.6g}" in report
    assert str(tmp_path) in capsys.readouterr().out
