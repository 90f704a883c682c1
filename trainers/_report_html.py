"""The HTML of ``python -m trainers.report``: one file, images inlined, nothing fetched.

The page reads top to bottom: a verdict banner per run, the summary table, the curves (one
figure per panel, each with a line on what a healthy run looks like there), the samples (the
latest grid at full size beside real images, then earlier grids, each enlarged by a click) and
the configurations. It needs no script, and reflows down to a phone's width.
"""

import base64
import json
from html import escape

import numpy as np

MAX_GRIDS = 9
"""Sample grids shown per run: evenly spaced over the epochs, the first and the last included."""

_STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; padding: 0 1em; max-width: 1400px; color: #222; }
.banner { border-left: 0.5em solid; padding: 0.6em 1em; margin: 0.5em 0; border-radius: 0.2em; }
.banner.healthy { border-color: #2a8a3e; background: #eaf6ec; }
.banner.alarm { border-color: #c0392b; background: #fbeaea; }
.banner.unknown { border-color: #999; background: #f3f3f3; }
.banner .state { font-weight: bold; font-size: 1.15em; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
ul.alarms { margin: 0; padding-left: 1.2em; }
.panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 30em), 1fr)); gap: 1em; }
.panels figure img { width: 100%; height: auto; }
figure { margin: 0; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.2em; }
.latest { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.latest img { max-width: 100%; height: auto; border: 1px solid #ccc; }
.earlier { display: flex; flex-wrap: wrap; gap: 0.6em; margin-top: 0.8em; }
.earlier figure { text-align: center; }
label.zoom { cursor: zoom-in; }
label.zoom input { display: none; }
label.zoom img { width: 160px; height: auto; border: 1px solid #ccc; }
label.zoom input:checked + img { width: auto; max-width: 100%; cursor: zoom-out; }
pre { background: #f7f7f7; padding: 0.5em; font-size: 0.85em; overflow-x: auto; }
@media (max-width: 700px) {
  body { margin: 0.5em auto; }
  table.summary, table.summary tbody, table.summary tr, table.summary td { display: block; }
  table.summary tr:first-child { display: none; }
  table.summary tr { border: 1px solid #ccc; margin-bottom: 0.8em; }
  table.summary td { border: none; border-bottom: 1px solid #eee; text-align: left; }
  table.summary td::before { content: attr(data-label) ": "; font-weight: bold; }
}
"""

_HEADER = ["run", "loss", "epochs done", "steps", "images seen", "wall time", "end", "alarms"]


def render(runs, labels, verdicts, panels, note=None):
    """The report page for ``runs``, named by ``labels``, with their ``verdicts`` and the curves' ``panels``.

    ``panels`` is a list of (`trainers.report.Panel`, PNG bytes); ``note``, a paragraph of plain
    text under the title.
    """
    title = "Training report: " + " vs ".join(labels)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        *([f'<p class="note">{escape(note)}</p>'] if note else []),
        *(_banner(label, verdict) for label, verdict in zip(labels, verdicts)),
        "<h2>Summary</h2>",
        _summary(runs, labels),
        "<h2>Curves</h2>",
        "<p>Each run has its colour; a dash-dotted vertical line marks an alarm, labelled with its name.</p>",
        _panels(panels) if panels else "<p>No metrics logged yet.</p>",
        "<h2>Samples (a fixed noise batch)</h2>",
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


def _banner(label, verdict):
    kind = "healthy" if verdict.healthy else "unknown" if verdict.state == "not evaluated" else "alarm"
    return (f'<div class="banner {kind}"><span class="state">{escape(label)}: {escape(verdict.state)}</span>'
            f"<br>{escape(verdict.reason)}</div>")


def _summary(runs, labels):
    rows = ['<table class="summary">', "<tr>" + "".join(f"<th>{h}</th>" for h in _HEADER) + "</tr>"]
    for run, label in zip(runs, labels):
        last, end = run.last, run.end
        done = max(last.get("epoch", 0) - (end is None or end.get("reason") != "finished"), 0)
        epochs = f"{done} of {run.config['epochs']}" if "epochs" in run.config else str(done) if "epoch" in last else "–"
        seconds = last.get("seconds")
        cells = [
            ("", escape(label)),
            ("", escape(str(run.config.get("loss", "?")))),
            ("number", escape(epochs)),
            ("number", escape(f"{last.get('step', 0):,}")),
            ("number", escape(f"{last.get('images_seen', 0):,}")),
            ("number", escape(f"{seconds / 60:.1f} min" if isinstance(seconds, (int, float)) else "?")),
            ("", _end(end, run.truncated)),
            ("", _alarms(run.alarms)),
        ]
        rows.append("<tr>" + "".join(_cell(name, kind, content) for name, (kind, content) in zip(_HEADER, cells))
                    + "</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _cell(name, kind, content):
    """A summary cell; ``data-label`` names its column where the table is stacked (a narrow screen)."""
    css = f' class="{kind}"' if kind else ""
    return f'<td data-label="{name}"{css}>{content}</td>'


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
    items = []
    for alarm in alarms:
        where = f"step {alarm.get('step', '?')}" + (f", epoch {alarm['epoch']}" if "epoch" in alarm else "")
        items.append(f"<li><b>{escape(str(alarm.get('name', 'alarm')))}</b> at {escape(where)}: "
                     f"{escape(str(alarm.get('message', '')))}</li>")
    return '<ul class="alarms">' + "".join(items) + "</ul>"


def _panels(panels):
    figures = [f'<figure><img src="{_data_uri(png)}" alt="{escape(panel.title)}">'
               f"<figcaption><b>{escape(panel.title)}.</b> {escape(panel.caption)}</figcaption></figure>"
               for panel, png in panels]
    return '<div class="panels">' + "".join(figures) + "</div>"


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
    """The latest grid at full size beside the real images, then the earlier ones, newest first, as thumbnails."""
    unit = "step" if next(iter(run.samples.values())).name.startswith("step_") else "epoch"
    shown = pick_epochs(list(run.samples))[::-1]
    latest, earlier = shown[0], shown[1:]
    parts = ['<div class="latest">', _figure(run.samples[latest], f"latest: {_when(unit, latest)}")]
    if run.real_grid is not None:
        parts.append(_figure(run.real_grid, "real images, held out"))
    parts.append("</div>")
    if earlier:
        parts.append('<div class="earlier">' + "".join(
            f'<figure><label class="zoom"><input type="checkbox">'
            f'<img src="{_data_uri(run.samples[number].read_bytes())}" alt="samples after {unit} {number}"></label>'
            f"<figcaption>{_when(unit, number)}</figcaption></figure>" for number in earlier) + "</div>")
    return "".join(parts)


def _figure(path, caption):
    return (f'<figure><img src="{_data_uri(path.read_bytes())}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _when(unit, number):
    return f"{unit} {number}{' (before training)' if number == 0 else ''}"


def _data_uri(png):
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
