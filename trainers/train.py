"""Train a GAN, WGAN or WGAN-GP on anime faces.

Reads top to bottom: config -> data -> models -> optimisers -> loop -> checkpoint. One
generator step is (1) ``n_critic`` updates of the discriminator/critic, each on a fresh real
batch and fresh noise, then (2) one update of the generator; the losses differ, the loop does
not. After each generator step, `trainers.bookkeeping.after_step` evaluates, logs, closes the
epoch, checkpoints and says whether to stop. An epoch is ``epoch_images`` real images shown to
the critic (10,000 in the anime-face experiment).

    python examples/train_wgan.py --epochs 3 --data faces.zip
    torchrun --nproc_per_node=2 examples/train_wgan.py ...
"""

import dataclasses
import signal
import sys
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from divergences.extras import require

from . import distributed
from .bookkeeping import Clock, Networks, Randomness, Training, after_step, begin, checkpoint, finish
from .config import command_options, explicit_fields, parse_args, pick_device
from .data import load_real_images
from .errors import one_line
from .images import to_float
from .losses import LOSS_SPECS, clip_weights_, gradient_penalty
from .models import Critic, Generator, init_weights
from .monitor import Monitor
from .checkpoint import Counters, restore_state
from .resume import resumed_config, run_to_write
from .runlog import RunLog

tqdm = require("tqdm", "train").tqdm


EXIT_STATUS = {"non_finite": 1, "alarm": 1}
"""Exit status of the command line when a run stops on a NaN or an alarm; an interrupted one exits 128 + the
signal's number, as shells report it (130 for Ctrl-C, 143 for SIGTERM)."""

GRID_SAMPLES = 100
"""Samples per grid: the anime-face experiment's 100 images per epoch."""


class SetupError(ValueError):
    """A run that cannot start: a bad config, data source, run directory or checkpoint.

    Raised before the first training step; the command line reports it as one ``error:`` line.
    A ValueError raised during training is a bug and is not turned into one.
    """


@contextmanager
def _setting_up():
    """Raise a ValueError of the block as a `SetupError` with the same message."""
    try:
        yield
    except SetupError:
        raise
    except ValueError as error:
        raise SetupError(str(error)) from error


class Interrupted(KeyboardInterrupt):
    """A signal that stops the run at once: before it started, or a second Ctrl-C or SIGTERM.

    Attributes
    ----------
    status : int
        The exit status a shell gives for the signal: 130 (SIGINT) or 143 (SIGTERM).
    message : str
        One line for a person: what was kept.
    """

    def __init__(self, signum, message):
        super().__init__(message)
        self.status, self.message = 128 + signum, message


def main(argv=None, *, loss=None, monitor=None):
    """Command-line entry point of ``examples/train_*.py``; ``loss`` is the script's default.

    A run that cannot start (`SetupError`) or a file that cannot be read or written (``OSError``,
    a full disk) exits with one ``error:`` line; any other exception propagates with its traceback.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    threads = command_options(argv).threads
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with _setting_up():
            config = parse_args(argv, loss=loss)
            if config.resume:
                config = resumed_config(config, explicit_fields(argv))
        summary = train(config, monitor=monitor)
    except (OSError, SetupError) as error:
        sys.exit(f"error: {one_line(error)}")
    except Interrupted as stop:
        print(stop.message, file=sys.stderr)
        sys.exit(stop.status)
    except KeyboardInterrupt:  # before the trainer took over Ctrl-C
        print("interrupted.", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    if summary["reason"] == "interrupted":
        sys.exit(128 + signal.Signals[summary["signal"]])
    if summary["reason"] != "finished":
        sys.exit(EXIT_STATUS[summary["reason"]])
    return summary


def train(config, *, monitor=None):
    """Train one run; return its summary (a dict, also the ``end`` line of ``metrics.jsonl``).

    Parameters
    ----------
    config : TrainConfig
        The run's settings (resolved here; see `TrainConfig.resolved`).
    monitor : callable, optional
        Called as ``monitor(context)``, a `trainers.bookkeeping.EvalContext`, on the main process at step 0 and every
        ``eval_every`` generator steps; returns a dict of signals for ``metrics.jsonl``, whose
        optional ``"alarms"`` entry is a list of alarm dicts (``name``, ``message``, ...). A monitor
        with an ``observe_training(means, images_seen)`` method is also given each ``train``
        line's means, and returns the alarms they raise (`trainers.monitor.Monitor.observe_training`).
        Default: a `trainers.monitor.Monitor` when ``config.monitor`` is true.

    Raises
    ------
    FileNotFoundError, SetupError
        For a missing or unusable data source, a bad config value, an ``out`` that holds a run
        or cannot be written, or an unreadable, damaged or mismatched checkpoint or run file.
        Raised before the run directory is created or changed. `SetupError` is a ValueError.
    OSError
        When a file cannot be written during the run (a full disk): the last checkpoint is kept.
    Interrupted
        On a Ctrl-C or SIGTERM before the data is loaded (nothing is written), or a second one
        later (the last checkpoint is kept). A first one later stops the run at the end of the
        generator step, checkpointed, with reason ``interrupted``.
    """
    with _stop_requests() as request, ExitStack() as cleanup:
        with _setting_up():
            config = config.resolved()
            if config.dry_run and not config.resume:  # a resumed dry run has its settings in config.json
                config = _dry_run_settings(config)
            if monitor is None and config.monitor:
                monitor = Monitor(config)
            cluster = distributed.start(config.device)
        cleanup.push(lambda error_type, error, traceback: distributed.stop(cluster, clean=error_type is None))
        return _train(config, cluster, monitor, request, cleanup)


def _train(config, cluster, monitor, request, cleanup):
    with _setting_up():  # every refusal comes before the first step
        run = _set_up(config, cluster, monitor, request, cleanup)
    spec, counters, device = run.spec, run.counters, run.device
    stop = begin(run)
    while stop is None and counters.epoch < config.epochs:
        # (1) update the critic n_critic times, each on fresh real images and fresh noise
        run.networks.critic.requires_grad_(True)
        critic_metrics = []
        for _ in range(_critic_steps(config, counters.step)):
            real = run.data.sample(config.batch_size, run.randomness.data_rng)
            noise = run.networks.generator.noise(config.batch_size, generator=run.randomness.noise_rng, device=device)
            with torch.no_grad(), run.autocast:
                fake = run.networks.generator(noise)
            with run.autocast:
                real_out, fake_out = run.networks.critic_step_model(real), run.networks.critic_step_model(fake)
                loss_d = spec.critic_loss(real_out.float(), fake_out.float())
            metrics = _means(spec, real_out, fake_out)
            if spec.gradient_penalty:
                penalty = gradient_penalty(run.networks.critic_step_model, real, fake, generator=run.randomness.noise_rng)
                loss_d = loss_d + config.gp_weight * penalty
                metrics["gp"] = penalty.detach()
            run.networks.optimizer_d.zero_grad(set_to_none=True)
            loss_d.backward()
            run.networks.optimizer_d.step()
            if spec.clips_weights:
                clip_weights_(run.networks.critic, config.clip)
            critic_metrics.append({"loss_d": loss_d.detach(), **metrics})
            counters.critic_steps += 1
            counters.images_seen += config.batch_size * cluster.world_size

        # (2) update the generator through the frozen critic
        run.networks.critic.requires_grad_(False)
        noise = run.networks.generator.noise(config.batch_size, generator=run.randomness.noise_rng, device=device)
        with run.autocast:
            loss_g = spec.generator_loss(run.networks.critic(run.networks.generator_step_model(noise)).float())
        run.networks.optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        run.networks.optimizer_g.step()
        counters.step += 1
        stop = after_step(run, {"loss_g": loss_g.detach(), **_mean_of(critic_metrics)})
    return finish(run, stop)


def _set_up(config, cluster, monitor, request, cleanup):
    """Check, load and build everything a run needs, open its run directory and checkpoint a new run's initial state."""
    device = pick_device(config.device, cluster.local_rank)
    spec = LOSS_SPECS[config.loss]
    directory, state, records = run_to_write(config, cluster)  # refusals come before anything is loaded or written
    say = tqdm.write if cluster.main else (lambda text: None)

    # data (before anything is written: a bad source leaves no run directory behind)
    data = load_real_images(config, device)
    say(f"data: {data.description}")
    threads = torch.get_num_threads()
    say(f"device: {device}" + (f", {threads} thread{'s' * (threads != 1)} (--threads N)" if device.type == "cpu" else ""))

    # models, optimisers, random generators; the checkpoint's state for a resumed run
    generator, critic = _networks(config, device)
    optimizer_g, optimizer_d = _optimisers(config, spec, generator, critic)
    randomness = _randomness(config, cluster, device, data, generator)
    counters = Counters()
    if state is not None:
        restore_state(state, RunLog.checkpoint_in(directory), counters=counters, rank=cluster.rank,
                      world_size=cluster.world_size, generator=generator, critic=critic, optimizer_g=optimizer_g,
                      optimizer_d=optimizer_d, noise_rng=randomness.noise_rng, data_rng=randomness.data_rng)

    # the run directory: from here on a first Ctrl-C or SIGTERM asks to checkpoint and stop
    request.at_once = False
    logs = dict(enabled=cluster.main, tensorboard=config.tensorboard)
    log = cleanup.enter_context(RunLog.reopen(directory, records, counters.step, **logs) if state is not None
                                else RunLog.create(directory, numbered=not config.out, **logs))
    if log.replaced:
        say(f"replaced the files of a run in {log.directory} that stopped before its first checkpoint")
    if state is not None:
        say(f"resumed {log.directory} at epoch {counters.epoch}, generator step {counters.step}")
        if hasattr(monitor, "restore"):
            monitor.restore(log.evaluations, log.alarms)
    log.write_config({**dataclasses.asdict(config), "world_size": cluster.world_size})
    if state is None and len(data.holdout):
        log.real_samples(to_float(data.holdout[:GRID_SAMPLES]))

    generator_step_model, critic_step_model = _step_models(config, spec, cluster, generator, critic)
    total_images = config.epochs * config.epoch_images
    bar = cleanup.enter_context(tqdm(
        total=total_images, initial=min(counters.images_seen, total_images), unit="img", unit_scale=True,
        dynamic_ncols=True, disable=not (cluster.main and config.progress and sys.stderr.isatty())))
    networks = Networks(generator=generator, critic=critic, generator_step_model=generator_step_model,
                        critic_step_model=critic_step_model, optimizer_g=optimizer_g, optimizer_d=optimizer_d)
    run = Training(config=config, spec=spec, cluster=cluster, device=device, data=data, networks=networks,
                   randomness=randomness, counters=counters, log=log, monitor=monitor, request=request,
                   autocast=torch.autocast(device.type, dtype=torch.bfloat16) if config.bf16 else nullcontext(),
                   bar=bar, say=say, clock=Clock(counters.seconds, counters.images_seen))
    if state is None:
        with run.clock.paused():  # not training time
            checkpoint(run)  # the initial state: every run directory can be resumed
    request.directory = log.directory  # a second Ctrl-C or SIGTERM now stops at once, the checkpoint kept
    return run


def _networks(config, device):
    """The generator and the critic of ``config``, initialised from its seed (DCGAN's N(0, 0.02)), on ``device``."""
    torch.manual_seed(config.seed)
    generator = Generator.of(config).to(device)
    critic = Critic(config.image_size, config.ndf, norm=config.critic_norm).to(device)
    generator.apply(init_weights)
    critic.apply(init_weights)
    if device.type == "cuda" and config.channels_last:
        generator.to(memory_format=torch.channels_last)
        critic.to(memory_format=torch.channels_last)
    return generator, critic


def _randomness(config, cluster, device, data, generator):
    """The random generators of one process: noise and batches differ per process; the grids' noise is the same for all."""
    noise_rng = torch.Generator(device).manual_seed(config.seed * 1000 + cluster.rank + 1)
    data_rng = torch.Generator("cpu" if data.streaming else device).manual_seed(config.seed * 1000 + cluster.rank + 500)
    fixed_noise = generator.noise(GRID_SAMPLES, generator=torch.Generator().manual_seed(config.seed)).to(device)
    return Randomness(noise_rng=noise_rng, data_rng=data_rng, fixed_noise=fixed_noise)


def _step_models(config, spec, cluster, generator, critic):
    """The generator and the critic as the steps call them: wrapped by DDP for several processes, compiled if asked.

    With several processes, gradients are averaged by DDP; the critic keeps its own batch-norm buffers
    (two forwards per step), and the generator step calls the bare critic (no gradient sync).
    """
    generator_step_model, critic_step_model = generator, critic
    if cluster.distributed:
        generator_step_model = distributed.wrap(generator, sync_buffers=True)
        critic_step_model = distributed.wrap(critic, sync_buffers=False)
    if config.compile:
        generator_step_model = torch.compile(generator_step_model)
        if not spec.gradient_penalty:  # the penalty's double backward does not compile
            critic_step_model = torch.compile(critic_step_model)
    return generator_step_model, critic_step_model


def _critic_steps(config, step):
    """n_critic, or the WGAN reference code's 100 for the first 25 generator steps and every 500th."""
    if config.reference_schedule and (step < 25 or step % 500 == 0):
        return 100
    return config.n_critic


def _means(spec, real_out, fake_out):
    """``d_real`` and ``d_fake``, mean D(x) and D(G(z)): probabilities for the GAN losses, critic scores for the WGANs."""
    real_out, fake_out = real_out.detach().float(), fake_out.detach().float()
    if spec.probability:
        real_out, fake_out = torch.sigmoid(real_out), torch.sigmoid(fake_out)
    return {"d_real": real_out.mean(), "d_fake": fake_out.mean()}


def _mean_of(records):
    """The mean over the critic steps of each metric (dicts of 0-d tensors), in one reduction on the device."""
    names = list(records[0])
    means = torch.stack([torch.stack([record[name] for name in names]) for record in records]).mean(0)
    return dict(zip(names, means))


def _optimisers(config, spec, generator, critic):
    """The generator's and the critic's optimisers: ``spec.optimiser`` at ``lr`` and ``lr * critic_lr_factor``."""
    critic_lr = config.lr * config.critic_lr_factor
    if spec.optimiser == "rmsprop":
        return (torch.optim.RMSprop(generator.parameters(), lr=config.lr),
                torch.optim.RMSprop(critic.parameters(), lr=critic_lr))
    return (torch.optim.Adam(generator.parameters(), lr=config.lr, betas=spec.betas),
            torch.optim.Adam(critic.parameters(), lr=critic_lr, betas=spec.betas))


@dataclass
class _StopRequest:
    """What Ctrl-C and SIGTERM do in each phase of a run."""

    signum: int | None = None  # the first signal received
    at_once: bool = True  # nothing written yet: a signal stops at once
    directory: Path | None = None  # set once the run has a checkpoint: a second signal stops at once

    @property
    def requested(self):
        return self.signum is not None


@contextmanager
def _stop_requests():
    """Handle Ctrl-C and SIGTERM for a run: raise `Interrupted` before the run directory is written, and on
    a second signal once a checkpoint exists; otherwise record a request to checkpoint and stop."""
    request = _StopRequest()
    previous = {}

    def handler(signum, frame):
        if request.at_once:
            raise Interrupted(signum, "interrupted before the run started; nothing was written.")
        if request.requested and request.directory is not None:
            raise Interrupted(signum, f"stopped at once by a second signal; the last checkpoint is kept: resume "
                                      f"with --resume {request.directory}")
        request.signum = signum

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: signals stay with the caller
            pass
    try:
        yield request
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _dry_run_settings(config):
    """Two generator steps on a tiny set, whatever the number of processes: everything runs and is written once."""
    step_images = config.batch_size * config.n_critic * distributed.world_size()
    return dataclasses.replace(config, epochs=1, epoch_images=2 * step_images, log_every=1, eval_every=1,
                               reference_schedule=False)
