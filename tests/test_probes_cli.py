"""``python -m divergences.probes``: figures and a Markdown report."""

import math

from divergences.probes.__main__ import main


def _column(report, name):
    """The floats of column ``name`` in the report's first Markdown table."""
    rows = [line.strip("|").split("|") for line in report.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0]]
    return [float(row[header.index(name)]) for row in rows[1:]]


def test_one_probe_writes_its_figure_and_table(tmp_path, capsys):
    main(["--out", str(tmp_path), "--only", "shift_sweep_box"])
    report = (tmp_path / "probes.md").read_text(encoding="utf-8")
    assert (tmp_path / "shift_sweep_box.png").stat().st_size > 10_000
    assert "## shift_sweep_box" in report and "![shift_sweep_box](shift_sweep_box.png)" in report
    assert _column(report, "delta") == [0.0, 0.75, 1.5, 2.25, 3.0]
    # The histogram JS, measured on samples: 0 between a box and itself, close to the closed form
    # min(Δ, 1) log 2 = 0.52 at Δ = 0.75, and log 2 (to the table's 6 digits) once the boxes are apart.
    js_hist = _column(report, "js_hist")
    assert js_hist[0] == 0.0
    assert abs(js_hist[1] - 0.75 * math.log(2)) < 0.02
    assert js_hist[2:] == [float(f"{math.log(2):.6g}")] * 3
    assert str(tmp_path) in capsys.readouterr().out
