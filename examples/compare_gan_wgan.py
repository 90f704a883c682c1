"""Train a GAN and a WGAN with the WGAN paper's settings (and the DCGAN's) on the same data, and compare them in one report.

    python examples/compare_gan_wgan.py                               # embedded procedural faces, paper preset
    python examples/compare_gan_wgan.py --preset quick --epochs 10    # minutes on a CPU
    python examples/compare_gan_wgan.py --data anime-faces.zip --out runs/compare

Every training setting (`--help`) applies to both runs, except the loss: the GAN is trained with
BCE and Adam 2e-4, the WGAN with weight clipping and RMSProp 5e-5 (n_critic = 5), unless `--lr`
or `--n-critic` say otherwise. The runs go to OUT/gan and OUT/wgan and the side-by-side report to
OUT/report.html (default OUT: runs/compare-<timestamp>); the report's path is printed last.
"""

import dataclasses
import os
import sys
from datetime import datetime
from pathlib import Path

from trainers.config import parse_args
from trainers.report import write_report
from trainers.train import Interrupted, train


def main(argv):
    config = parse_args(argv)
    if config.resume:
        sys.exit("error: --resume is not supported here; resume each run with examples/train_gan.py or train_wgan.py.")
    out = Path(config.out or f"runs/compare-{datetime.now():%Y%m%d-%H%M%S}")
    runs = []
    for loss in ("gan", "wgan"):
        print(f"--- training {loss} into {out / loss}")
        try:
            train(dataclasses.replace(config, loss=loss, out=str(out / loss)))
        except (OSError, ValueError) as error:
            sys.exit(f"error: {error}")
        except Interrupted as stop:  # before a run started, or a second Ctrl-C: no report
            print(stop.message, file=sys.stderr)
            sys.exit(stop.status)
        runs.append(out / loss)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one process writes the report
        print(f"report: {write_report(runs, out / 'report.html')}")


if __name__ == "__main__":
    main(sys.argv[1:])
