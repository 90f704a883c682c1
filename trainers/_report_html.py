"""The HTML of ``python -m trainers.report``: one file, images inlined, nothing fetched."""

import base64
import json
from html import escape

import numpy as np

MAX_GRIDS = 9
"""Sample grids shown per run: evenly spaced over the epochs, the first and the last included."""

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
ul.alarms { margin: 0; padding-left: 1.2em; }
img.curves { max-width: 100%; }
.grids { display: flex; gap: 0.6em; overflow-x: auto; padding-bottom: 0.5em; }
figure { margin: 0; text-align: center; }
figure img { width: 240px; image-rendering: pixelated; border: 1px solid #ccc; }
pre { background: #f7f7f7; padding: 0.5em; font-size: 0.85em; }
"""


def render(runs, labels, curves):
    """Return the report page for ``runs`` (named by ``labels``) with the ``curves`` PNG inlined."""
    title = "Training report: " + " vs ".join(labels)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        "<h2>Summary</h2>",
        _summary(runs, labels),
        "<h2>Curves</h2>",
        f'<img class="curves" src="{_data_uri(curves)}" alt="training curves">',
        "<h2>Samples (fixed noise batch)</h2>",
    ]
    for run, label in zip(runs, labels):
        parts.append(f"<h3>{escape(label)}</h3>")
        parts.append(_grids(run) if run.samples else "<p>No sample grids.</p>")
    parts.append("<h2>Configurations</h2>")
    for run, label in zip(runs, labels):
        config = escape(json.dumps(run.config, indent=2, sort_keys=True))
        parts.append(f"<details><summary>{escape(label)}</summary><pre>{config}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _summary(runs, labels):
    header = ["run", "loss", "epochs done", "steps", "images seen", "wall time", "end", "alarms"]
    rows = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"]
    for run, label in zip(runs, labels):
        last, end = run.last, run.end
        done = max(last.get("epoch", 0) - (end is None or end.get("reason") != "finished"), 0)
        epochs = f"{done} of {run.config['epochs']}" if "epochs" in run.config else str(done)
        seconds = last.get("seconds")
        cells = [
            escape(label),
            escape(str(run.config.get("loss", "?"))),
            _number(epochs),
            _number(f"{last.get('step', 0):,}"),
            _number(f"{last.get('images_seen', 0):,}"),
            _number(f"{seconds / 60:.1f} min" if isinstance(seconds, (int, float)) else "?"),
            _end(end, run.truncated),
            _alarms(run.alarms),
        ]
        cells = [cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in cells]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _number(text):
    return f'<td class="number">{escape(text)}</td>'


def _end(end, truncated):
    if end is None:
        text = "<i>no end line: still running, or killed</i>"
    else:
        text = f"<b>{escape(str(end.get('reason', '?')))}</b>: {escape(str(end.get('message', '')))}"
    if truncated:
        text += "<br><i>last line of metrics.jsonl cut short (dropped)</i>"
    return text


def _alarms(alarms):
    if not alarms:
        return "none"
    items = [
        f"<li><b>{escape(str(a.get('name', 'alarm')))}</b> at step {escape(str(a.get('step', '?')))}, "
        f"epoch {escape(str(a.get('epoch', '?')))}: {escape(str(a.get('message', '')))}</li>"
        for a in alarms
    ]
    return '<ul class="alarms">' + "".join(items) + "</ul>"


def pick_epochs(epochs, most=MAX_GRIDS):
    """Return at most ``most`` of the sorted ``epochs``, evenly spaced, keeping the first and the last.

    >>> pick_epochs(list(range(21)), most=5)
    [0, 5, 10, 15, 20]
    >>> pick_epochs([0, 1, 2])
    [0, 1, 2]
    """
    if len(epochs) <= most:
        return list(epochs)
    indices = np.unique(np.linspace(0, len(epochs) - 1, most).round().astype(int))
    return [epochs[i] for i in indices]


def _grids(run):
    unit = "step" if run.samples and next(iter(run.samples.values())).name.startswith("step_") else "epoch"
    figures = [
        f'<figure><img src="{_data_uri(run.samples[number])}" alt="samples after {unit} {number}">'
        f"<figcaption>{unit} {number}{' (before training)' if number == 0 else ''}</figcaption></figure>"
        for number in pick_epochs(list(run.samples))
    ]
    return '<div class="grids">' + "".join(figures) + "</div>"


def _data_uri(path):
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
