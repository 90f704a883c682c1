"""The project's argument in a few minutes on a CPU: a GAN whose discriminator wins, and a WGAN, in one report.

    .venv/bin/python examples/demo_gan_vs_wgan.py                   # runs/demo: both runs and report.html
    .venv/bin/python examples/demo_gan_vs_wgan.py --out DIR --epochs 20

Both runs train on the same 32x32 procedural faces with the same small DCGANs (``--preset quick``)
and see the same number of real images:

- the GAN with the original minimax loss, log(1 - D(G(z))), and a discriminator learning 10 times
  faster than the generator (``--loss gan-minimax --critic-lr-factor 10``): the discriminator wins,
  the JS bound pins at log 2, its gradient vanishes and the monitor's alarm fires;
- the WGAN with the essay's settings (the WGAN paper's Algorithm 1: weight clipping at 0.01,
  RMSProp 5e-5, n_critic = 5), which keeps learning.

The report's banners give each run's verdict; its path and the verdicts are printed last.
"""

from trainers.errors import interrupt_in_one_line

if __name__ == "__main__":  # before torch imports: Ctrl-C there ends in one line
    interrupt_in_one_line("demo_gan_vs_wgan.py")

import argparse
import dataclasses
import sys
from pathlib import Path

from trainers.config import PRESETS, TrainConfig
from trainers.report import load_run, write_report
from trainers.errors import one_line
from trainers.train import Interrupted, train
from trainers.verdict import verdict

RUNS = {
    "gan-discriminator-wins": {"loss": "gan-minimax", "critic_lr_factor": 10.0, "eval_every": 100},
    "wgan": {"loss": "wgan", "eval_every": 20},
}
"""The two runs: their folder in OUT and what they change from the quick preset. A GAN generator step
shows the critic 64 real images, a WGAN step 5 x 64: with these ``eval_every`` both are evaluated every
6,400 images, so their curves have the same points on the report's axis."""


NOTE = ("This GAN's failure is forced (the saturating loss against a discriminator learning 10 times faster) to "
        "show what the alarms see. How often a GAN breaks on its own, and a WGAN does not, is measured over seeds "
        "in docs/results.md; how well the alarms catch failures they were not tuned on, in docs/monitor.md "
        "(\"The alarm benchmark\").")
"""The paragraph under the report's title: what this demo shows, and where the measured answers are."""


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="folder of the runs and report.html "
                        "(default: runs/demo; it must not hold runs already)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of 3,200 images per run (default: 40)")
    args = parser.parse_args(argv)
    base = dataclasses.replace(TrainConfig(**PRESETS["quick"]), epochs=args.epochs, tensorboard=False)
    for name, changes in RUNS.items():
        print(f"--- {name}: {', '.join(f'{key} = {value}' for key, value in changes.items())}")
        try:
            train(dataclasses.replace(base, out=str(args.out / name), **changes))
        except (OSError, ValueError) as error:
            sys.exit(f"error: {one_line(error)}")
        except Interrupted as stop:
            print(stop.message, file=sys.stderr)
            sys.exit(stop.status)
    runs = [args.out / name for name in RUNS]
    report = write_report(runs, args.out / "report.html", note=NOTE)
    for name, run in zip(RUNS, runs):
        found = verdict(load_run(run))
        print(f"{name}: {found.state.upper()}: {found.reason}")
    print(f"report: {report}")


if __name__ == "__main__":
    main(sys.argv[1:])
