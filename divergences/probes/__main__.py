"""Run the gradient probes: one PNG per probe and ``probes.md`` with their tables.

    python -m divergences.probes [--out DIR] [--only NAME]
"""

import argparse
import time
from functools import partial
from pathlib import Path

from divergences import probes

# name: (what it shows, how to run it)
PROBES = {
    "parallel_lines": (
        "WGAN paper, Example 1: JS flat at log 2 with zero gradient, W1 = |θ| with gradient ±1.",
        probes.parallel_lines,
    ),
    "shift_sweep": (
        "Gaussians moved apart by Δ: JS tends to log 2 and its gradient to 0, W1 = Δ with gradient 1.",
        partial(probes.shift_sweep, family="gaussian"),
    ),
    "shift_sweep_box": (
        "Uniform boxes moved apart by Δ: JS is exactly log 2 with zero gradient once the supports separate.",
        partial(probes.shift_sweep, family="box"),
    ),
    "discriminator_vs_critic": (
        "WGAN paper, Figure 2: the optimal discriminator saturates and its gradient at the fakes vanishes; "
        "the critics stay nearly linear.",
        probes.discriminator_vs_critic,
    ),
    "few_samples": (
        "Two samples of the same law: plug-in JS rises to log 2 as bins outnumber samples.",
        probes.few_samples,
    ),
    "high_dimension": (
        "Random lines in R^d never meet: JS is log 2 for every d and shift, W1 and sliced W1 still shrink.",
        probes.high_dimension,
    ),
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m divergences.probes", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/probes"), help="output folder (default: runs/probes)")
    parser.add_argument("--only", choices=sorted(PROBES), help="run one probe only")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    names = [args.only] if args.only else list(PROBES)
    sections = ["# Gradient probes", ""]
    for name in names:
        summary, run = PROBES[name]
        start = time.perf_counter()
        result = run()
        figure = result.plot()
        figure.savefig(args.out / f"{name}.png", dpi=100)
        seconds = time.perf_counter() - start
        table = result.table()
        sections += [f"## {name}", "", summary, "", table, "", f"![{name}]({name}.png)", ""]
        print(f"{name} ({seconds:.1f} s)\n{table}\n")
    report = args.out / "probes.md"
    report.write_text("\n".join(sections), encoding="utf-8")
    print(f"wrote {len(names)} figure(s) and {report} in {args.out}/")


if __name__ == "__main__":
    main()
