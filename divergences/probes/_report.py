"""Tables and figures shared by the probes' result objects."""

import math

from divergences import extras


def markdown_table(result, names, rows):
    """Markdown table of ``result``'s array fields ``names`` at the indices ``rows``."""
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for i in rows:
        # Adding 0.0 turns -0.0 into 0.0.
        lines.append("| " + " | ".join(f"{getattr(result, name)[i] + 0.0:.6g}" for name in names) + " |")
    return "\n".join(lines)


def new_axes(panels, figsize):
    """``panels`` axes side by side on a new Figure, which needs no display (Agg when saved)."""
    figure = extras.require("matplotlib.figure", "probes").Figure
    return figure(figsize=figsize, layout="constrained").subplots(1, panels)


# The series of the sampled probes' figures: (label, line style, value field, gradient field).
_SERIES = (
    ("W1 (emd)", ".-", "w1_emd", "grad_w1"),
    ("Sinkhorn", "--", "sinkhorn", "grad_sinkhorn"),
    ("sliced W1", "-", "sliced", "grad_sliced"),
    ("JS (histograms)", ".-", "js_hist", "grad_js"),
)


def values_and_gradients(ax, result, abscissa, xlabel, titles):
    """Two panels: ``result``'s W1, Sinkhorn, sliced W1 and JS against ``abscissa``, and their gradients.

    The values panel has a log 2 line; returns the figure.
    """
    values, grads = new_axes(2, (10, 4)) if ax is None else ax
    for label, style, value, grad in _SERIES:
        values.plot(abscissa, getattr(result, value), style, label=label)
        grads.plot(abscissa, getattr(result, grad), style, label=label)
    values.axhline(math.log(2), color="grey", linestyle="--", label="log 2")
    for axis, title in zip((values, grads), titles):
        axis.set_xlabel(xlabel)
        axis.set_title(title)
        axis.legend(fontsize="small")
    return values.figure
