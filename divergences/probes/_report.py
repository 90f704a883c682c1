"""Tables and figures shared by the probes' result objects."""

import math


def markdown_table(result, names, rows):
    """Markdown table of ``result``'s array fields ``names`` at the indices ``rows``."""
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for i in rows:
        # Adding 0.0 turns -0.0 into 0.0.
        lines.append("| " + " | ".join(f"{getattr(result, name)[i] + 0.0:.6g}" for name in names) + " |")
    return "\n".join(lines)


def new_axes(panels, figsize):
    """``panels`` axes side by side on a new Figure, which needs no display (Agg when saved)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained").subplots(1, panels)


def values_and_gradients(ax, abscissa, series, xlabel, titles):
    """Two panels: each divergence against ``abscissa`` with a log 2 line, and its gradient.

    ``series`` holds (label, line style, values, gradients); returns the figure.
    """
    values, grads = new_axes(2, (10, 4)) if ax is None else ax
    for label, style, value, grad in series:
        values.plot(abscissa, value, style, label=label)
        grads.plot(abscissa, grad, style, label=label)
    values.axhline(math.log(2), color="grey", linestyle="--", label="log 2")
    for axis, title in zip((values, grads), titles):
        axis.set_xlabel(xlabel)
        axis.set_title(title)
        axis.legend(fontsize="small")
    return values.figure
