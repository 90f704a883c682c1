"""Trainer throughput for the paper preset: generator steps/s, images/s, data-path and monitor overhead.

Three measurements, each for the GAN and the WGAN at the paper preset (64x64, DCGAN widths 64,
batch 64) on the embedded procedural faces:

1. generator steps/s and real images/s, in steady state (the first generator step, which
   includes allocation and warm-up, is not timed);
2. the overhead of the data path (uint8 images kept on the device, a random batch gathered and
   converted to floats at every critic step) against the same loop fed pre-made float batches:
   (t_data - t_premade) / t_premade, target <= 5%; the two are interleaved, median of repeats;
3. the overhead of the monitor at the default ``eval_every``: the median seconds of one
   evaluation divided by ``eval_every`` generator steps.

Run:  .venv/bin/python benchmarks/bench_trainer.py [--quick] [--repeats R] [--threads T] [--steps N]
"""

import dataclasses
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

from _timing import parse_args, report
from trainers.bookkeeping import EvalContext
from trainers.config import PRESETS, TrainConfig
from trainers.data import RealImages, load_real_images
from trainers.images import to_float
from trainers.models import Critic, Generator, init_weights
from trainers.monitor import Monitor
from trainers.checkpoint import Counters
from trainers.train import train


def paper_config(loss, steps, quick, device="cpu", **options):
    """The paper preset, monitor off, for ``steps`` timed generator steps after one untimed step.

    ``options`` are further config fields (``bf16``, ``compile``).
    """
    config = TrainConfig(loss=loss, device=device, progress=False, monitor=False, log_every=1, tensorboard=False,
                         procedural_images=2000, holdout_images=256, **PRESETS["paper"], **options)
    if quick:
        config = dataclasses.replace(config, image_size=32, ngf=8, ndf=8, batch_size=16)
    resolved = config.resolved()
    per_step = resolved.batch_size * resolved.n_critic
    return dataclasses.replace(config, epochs=1, epoch_images=(steps + 1) * per_step)


def steady_seconds_per_step(config):
    """Seconds per generator step after the first, from the run's own metrics lines."""
    with tempfile.TemporaryDirectory() as out:
        train(dataclasses.replace(config, out=out))
        lines = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    timed = [line for line in lines if line["kind"] == "train"]
    first, last = timed[0], timed[-1]
    return (last["seconds"] - first["seconds"]) / (last["step"] - first["step"])


def premade_batches(config):
    """A `RealImages.sample` replacement cycling through 8 float batches made beforehand."""
    data = load_real_images(config.resolved(), torch.device("cpu"))
    batches = [to_float(data.train[i * config.batch_size:(i + 1) * config.batch_size]).contiguous() for i in range(8)]
    cycle = itertools.cycle(batches)
    return lambda self, batch_size, generator: next(cycle)


def data_path_overhead(config, repeats):
    """Median seconds per generator step with the data path and with pre-made batches, interleaved."""
    with_data, premade = [], []
    replacement = premade_batches(config)
    for _ in range(repeats):
        with_data.append(steady_seconds_per_step(config))
        with mock.patch.object(RealImages, "sample", replacement):
            premade.append(steady_seconds_per_step(config))
    return statistics.median(with_data), statistics.median(premade)


def seconds_per_evaluation(config, repeats):
    """Median seconds of one monitor evaluation on freshly initialised paper-size models."""
    resolved = dataclasses.replace(config, monitor=True).resolved()
    device = torch.device(resolved.device)
    torch.manual_seed(0)
    generator = Generator(resolved.image_size, resolved.nz, resolved.ngf).apply(init_weights).to(device)
    critic = Critic(resolved.image_size, resolved.ndf, norm=resolved.critic_norm).apply(init_weights).to(device)
    critic.requires_grad_(False)
    data = load_real_images(resolved, device)
    monitor = Monitor(resolved)
    context = EvalContext(resolved, Counters(), generator, critic, data, device)
    monitor(context)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        monitor(context)  # its signals are Python numbers: the device has finished when it returns
        times.append(time.perf_counter() - start)
    return statistics.median(times), resolved.eval_every


def main():
    args = parse_args(__doc__, repeats=3, extra=lambda p: p.add_argument("--steps", type=int, default=None,
                                                                         help="timed generator steps per run"))
    rows, notes = [], []
    for loss in ("gan", "wgan"):
        steps = args.steps or (2 if args.quick else {"gan": 12, "wgan": 3}[loss])
        config = paper_config(loss, steps, args.quick)
        resolved = config.resolved()
        data_seconds, premade_seconds = data_path_overhead(config, args.repeats)
        evaluation_seconds, eval_every = seconds_per_evaluation(config, args.repeats)
        images_per_step = resolved.batch_size * resolved.n_critic
        rows.append({
            "loss": loss,
            "image size": resolved.image_size,
            "batch": resolved.batch_size,
            "n_critic": resolved.n_critic,
            "timed steps": steps,
            "generator steps/s": 1 / data_seconds,
            "images/s": images_per_step / data_seconds,
            "s per 10k-image epoch": 10000 / images_per_step * data_seconds,
            "images/s, pre-made batches": images_per_step / premade_seconds,
            "data path overhead %": 100 * (data_seconds - premade_seconds) / premade_seconds,
            "s per evaluation": evaluation_seconds,
            f"monitor overhead % (eval_every)": 100 * evaluation_seconds / (eval_every * data_seconds),
        })
    notes.append("images/s counts real images shown to the critic (batch x n_critic per generator step).")
    notes.append("monitor overhead = seconds of one evaluation / (eval_every x seconds per generator step), "
                 f"eval_every = {TrainConfig().eval_every} (the default).")
    report("trainer", rows, args, notes)


if __name__ == "__main__":
    main()
