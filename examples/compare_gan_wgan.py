"""Train a GAN and a WGAN on the same data, with the same settings but the loss, and compare them in one report.

    .venv/bin/python examples/compare_gan_wgan.py --preset quick                    # minutes on a CPU
    .venv/bin/python examples/compare_gan_wgan.py --data anime-faces.zip --seeds 0 1 2 --out runs/essay
    .venv/bin/python examples/compare_gan_wgan.py --losses gan wgan wgan-gp --preset quick
    .venv/bin/python examples/compare_gan_wgan.py --resume runs/essay               # finish an interrupted comparison

Each loss is trained with its own defaults (gan: BCE and Adam 2e-4; wgan: weight clipping, RMSProp
5e-5 and n_critic = 5; wgan-gp: gradient penalty and Adam 1e-4) unless ``--lr`` or ``--n-critic``
say otherwise; every other training setting (``examples/train_wgan.py --help``) applies to every
run. The runs go to OUT/<loss> (OUT/<loss>-seed<N> with several seeds) and the report to
OUT/report.html (default OUT: runs/compare-<timestamp>); the report's path is printed last.
"""

from trainers.errors import interrupt_in_one_line

if __name__ == "__main__":  # before torch imports: Ctrl-C there ends in one line
    interrupt_in_one_line("compare_gan_wgan.py")

import argparse
import dataclasses
import json
import os
import sys
from datetime import datetime
from pathlib import Path

import torch

from trainers.config import LOSSES, RESUMABLE_FIELDS, command_options, explicit_fields, parse_args
from trainers.report import write_report
from trainers.resume import resumed_config
from trainers.files import write_atomically
from trainers.runlog import read_metrics
from trainers.errors import one_line
from trainers.train import Interrupted, train

PLAN = "compare.json"
"""The file in OUT that holds the comparison's losses, seeds and training settings, so that ``--resume OUT``
alone finishes it."""


def parse(argv):
    """This script's options, and the rest of ``argv``: the training settings of every run."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Every other option is a training setting for all runs: see examples/train_wgan.py --help "
               "(--preset, --threads, --data, --epochs, ...). --loss and --seed are chosen here by --losses and --seeds.",
        allow_abbrev=False)
    parser.add_argument("--losses", nargs="+", choices=LOSSES, metavar="LOSS",
                        help=f"the losses to train, in the report's order: any of {', '.join(LOSSES)} (default: gan "
                             f"wgan, or those of the comparison resumed)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                        help="train each loss once per seed (default: 0, or those of the comparison resumed)")
    parser.add_argument("--out", default="", help="folder of the runs and the report (default: runs/compare-<timestamp>)")
    parser.add_argument("--resume", default="", metavar="OUT",
                        help="finish the comparison in OUT: skip its finished runs, resume the others, start the "
                             "missing ones; --epochs may be raised")
    options, rest = parser.parse_known_args(argv)
    for flag, instead in (("--loss", "--losses"), ("--seed", "--seeds")):
        if any(argument == flag or argument.startswith(flag + "=") for argument in rest):
            parser.error(f"{flag} is not a setting here; use {instead}")
    for name in ("losses", "seeds"):
        values = getattr(options, name)
        if values is not None and len(set(values)) < len(values):
            parser.error(f"--{name} should not repeat a value")
    if options.resume and options.out:
        parser.error("give --resume OUT or --out OUT, not both")
    return options, rest


def run_directories(out, losses, seeds):
    """{(loss, seed): its run directory}: OUT/<loss>, or OUT/<loss>-seed<N> when there are several seeds."""
    return {(loss, seed): out / (loss if len(seeds) == 1 else f"{loss}-seed{seed}") for loss in losses for seed in seeds}


def main(argv):
    options, rest = parse(argv)
    threads = command_options(rest).threads
    if threads is not None:
        torch.set_num_threads(threads)
    out = Path(options.resume or options.out or f"runs/compare-{datetime.now():%Y%m%d-%H%M%S}")
    if not options.resume and (out / PLAN).exists():
        sys.exit(f"error: {str(out)!r} holds a comparison already; finish it with --resume {out}, or choose another --out.")
    changed = explicit_fields(rest)
    if options.resume and changed - set(RESUMABLE_FIELDS):
        sys.exit(f"error: cannot change {', '.join(sorted(changed - set(RESUMABLE_FIELDS)))} when resuming; only "
                 f"{', '.join(RESUMABLE_FIELDS)} may change.")
    plan = _plan(out, options) if options.resume else {"losses": ["gan", "wgan"], "seeds": [0], "settings": []}
    plan.update({name: getattr(options, name) for name in ("losses", "seeds") if getattr(options, name)})
    config = parse_args(plan["settings"] + rest)  # a run the resumed comparison starts has the comparison's settings
    plan["settings"] += rest
    runs = run_directories(out, plan["losses"], plan["seeds"])
    try:  # every run's settings are checked before the first one trains
        for loss, seed in runs:
            dataclasses.replace(config, loss=loss, seed=seed).resolved()
        write_atomically(out / PLAN, lambda file: file.write(json.dumps(plan).encode()))
    except (OSError, ValueError) as error:
        sys.exit(f"error: {one_line(error)}")
    for (loss, seed), directory in runs.items():
        try:
            settings = dataclasses.replace(config, loss=loss, seed=seed, out=str(directory))
            if options.resume and (directory / "config.json").exists():
                settings = resumed_config(dataclasses.replace(config, resume=str(directory)), changed)
                if _finished(directory, settings.epochs):
                    print(f"--- {loss}, seed {seed}: finished, in {directory}")
                    continue
                print(f"--- resuming {loss}, seed {seed} in {directory}")
            else:
                print(f"--- training {loss}, seed {seed} into {directory}")
            train(settings)
        except (OSError, ValueError) as error:
            sys.exit(f"error: {one_line(error)}")
        except Interrupted as stop:  # before a run started, or a second Ctrl-C: no report
            print(stop.message, file=sys.stderr)
            sys.exit(stop.status)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one process writes the report
        print(f"report: {write_report(list(runs.values()), out / 'report.html')}")


def _plan(out, options):
    """The losses, seeds and training settings (command-line arguments) saved in ``out``'s `PLAN`.

    Exits with an ``error:`` line if it cannot be read.
    """
    path = out / PLAN
    if not out.is_dir():
        sys.exit(f"error: --resume {str(out)!r} is not a folder of runs.")
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
        if (not isinstance(plan, dict) or not all(loss in LOSSES for loss in plan.get("losses") or [None])
                or not all(isinstance(seed, int) for seed in plan.get("seeds") or [None])
                or not all(isinstance(argument, str) for argument in plan.get("settings", [None]))):
            raise ValueError("it should name the losses, the seeds and the training settings")
    except (OSError, ValueError, UnicodeDecodeError) as error:
        sys.exit(f"error: cannot read {str(path)!r} ({getattr(error, 'strerror', None) or error}); it is written "
                 f"when a comparison starts, and --resume needs it.")
    return {"losses": plan["losses"], "seeds": plan["seeds"], "settings": plan["settings"]}


def _finished(directory, epochs):
    """Whether the run in ``directory`` has trained ``epochs`` epochs (its last ``end`` line says so)."""
    try:
        ends = [record for record in read_metrics(directory) if record["kind"] == "end"]
    except ValueError:  # damaged: resuming it says what is wrong
        return False
    return bool(ends) and ends[-1].get("reason") == "finished" and ends[-1]["epoch"] >= epochs


if __name__ == "__main__":
    main(sys.argv[1:])
