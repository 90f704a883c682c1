"""Train a GAN, WGAN or WGAN-GP on anime faces.

Reads top to bottom: config -> data -> models -> optimisers -> loop -> checkpoint. One
generator step is (1) ``n_critic`` updates of the discriminator/critic, each on a fresh real
batch and fresh noise, then (2) one update of the generator; the losses differ, the loop does
not. An epoch is ``epoch_images`` real images shown to the critic (10,000 in the anime-face experiment).

    python examples/train_wgan.py --epochs 3 --data faces.zip
    torchrun --nproc_per_node=2 examples/train_wgan.py ...
"""

import dataclasses
import math
import signal
import sys
import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from divergences._extras import require


from . import distributed
from .checkpoint import save_checkpoint
from .config import TrainConfig, explicit_fields, parse_args, pick_device
from .data import load_real_images
from .losses import LOSS_SPECS, clip_weights_, gradient_penalty
from .models import Critic, Generator, init_weights
from .monitor import Monitor
from .resume import Counters, resumed_config, run_to_write
from .runlog import RunLog

tqdm = require("tqdm", "train").tqdm


STEP_METRICS = ("loss_d", "loss_g", "d_real", "d_fake", "gp")
"""Per generator step, averaged over its critic steps where they belong to those."""

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


@dataclass
class EvalContext:
    """What the monitor gets at each evaluation (every ``eval_every`` generator steps)."""

    config: TrainConfig
    counters: Counters
    generator: torch.nn.Module
    critic: torch.nn.Module
    data: object  # trainers.data.RealImages
    device: torch.device


def main(argv=None, *, loss=None, monitor=None):
    """Command-line entry point of ``examples/train_*.py``; ``loss`` is the script's default.

    A run that cannot start (`SetupError`) or a file that cannot be read or written (``OSError``,
    a full disk) exits with one ``error:`` line; any other exception propagates with its traceback.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        with _setting_up():
            config = parse_args(argv, loss=loss)
            if config.resume:
                config = resumed_config(config, explicit_fields(argv))
        summary = train(config, monitor=monitor)
    except (OSError, SetupError) as error:
        sys.exit(f"error: {_describe(error)}")
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


def _describe(error):
    """One line for an error; an OSError names its cause and file (``No space left on device: 'path'``)."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {str(error.filename)!r}."
    return str(error)


def train(config, *, monitor=None):
    """Train one run; return its summary (a dict, also the ``end`` line of ``metrics.jsonl``).

    Parameters
    ----------
    config : TrainConfig
        The run's settings (resolved here; see `TrainConfig.resolved`).
    monitor : callable, optional
        Called as ``monitor(EvalContext)`` on the main process at step 0 and every
        ``eval_every`` generator steps; returns a dict of signals for ``metrics.jsonl``, whose
        optional ``"alarms"`` entry is a list of alarm dicts (``name``, ``message``, ...).
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
        cleanup.callback(distributed.stop, cluster)
        return _train(config, cluster, monitor, request, cleanup)


def _train(config, cluster, monitor, request, cleanup):
    with _setting_up():  # every refusal comes before the first step
        device = pick_device(config.device, cluster.local_rank)
        spec = LOSS_SPECS[config.loss]
        directory, state, records = run_to_write(config, cluster)  # refusals come before anything is loaded or written
        say = tqdm.write if cluster.main else (lambda text: None)

        # data (before anything is written: a bad source leaves no run directory behind)
        data = load_real_images(config, device)
        say(f"data: {data.description}")

        # models and optimisers
        torch.manual_seed(config.seed)
        generator = Generator(config.image_size, config.nz, config.ngf).to(device)
        critic = Critic(config.image_size, config.ndf, norm=config.critic_norm).to(device)
        generator.apply(init_weights)
        critic.apply(init_weights)
        if device.type == "cuda" and config.channels_last:
            generator.to(memory_format=torch.channels_last)
            critic.to(memory_format=torch.channels_last)
        optimizer_g, optimizer_d = _optimisers(config, spec, generator, critic)

        # randomness: noise and batches differ per process; the grid's noise is the same for all
        noise_rng = torch.Generator(device).manual_seed(config.seed * 1000 + cluster.rank + 1)
        data_rng = torch.Generator("cpu" if data.streaming else device).manual_seed(config.seed * 1000 + cluster.rank + 500)
        fixed_noise = torch.randn(GRID_SAMPLES, config.nz, 1, 1, generator=torch.Generator().manual_seed(config.seed)).to(device)
        counters = Counters()
        if state is not None:
            _restore(state, RunLog.checkpoint_in(directory), cluster, generator, critic, optimizer_g, optimizer_d,
                     noise_rng, data_rng, counters)

        # the run directory: from here on a first Ctrl-C or SIGTERM asks to checkpoint and stop
        request.at_once = False
        logs = dict(enabled=cluster.main, tensorboard=config.tensorboard)
        run = cleanup.enter_context(RunLog.reopen(directory, records, counters.step, **logs) if state is not None
                                    else RunLog.create(directory, numbered=not config.out, **logs))
        if state is not None:
            say(f"resumed {run.directory} at epoch {counters.epoch}, generator step {counters.step}")
            if hasattr(monitor, "restore"):
                monitor.restore(run.evaluations, run.alarms)
        run.write_config({**dataclasses.asdict(config), "world_size": cluster.world_size})

    # several processes: gradients averaged by DDP; the critic keeps its own batch-norm buffers
    # (two forwards per step), and the generator step calls the bare critic (no gradient sync)
    generator_step_model, critic_step_model = generator, critic
    if cluster.distributed:
        generator_step_model = distributed.wrap(generator, sync_buffers=True)
        critic_step_model = distributed.wrap(critic, sync_buffers=False)
    if config.compile:
        generator_step_model = torch.compile(generator_step_model)
        if not spec.gradient_penalty:  # the penalty's double backward does not compile
            critic_step_model = torch.compile(critic_step_model)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if config.bf16 else nullcontext()

    def sample_grid(epoch):
        if not cluster.main:
            return None
        with torch.no_grad(), autocast, _buffers_restored(generator):  # drawing must not move batch-norm statistics
            return run.samples(generator(fixed_noise), epoch)

    def evaluate():
        if monitor is None or not cluster.main:
            return []
        started = time.perf_counter()
        with _buffers_restored(generator, critic):
            signals = dict(monitor(EvalContext(config, counters, generator, critic, data, device)))
        alarms = signals.pop("alarms", [])
        run.log({"kind": "eval", **_where(counters, clock), **signals, "eval_seconds": time.perf_counter() - started})
        for alarm in alarms:
            say(f"ALARM {alarm['name']} at step {counters.step}: {alarm['message']}")
            run.log({"kind": "alarm", **_where(counters, clock), **alarm})
        return alarms

    def checkpoint():
        """Save the state if every number in it is finite (on every process); return whether it was."""
        finite = _finite(generator, critic, optimizer_g, optimizer_d)
        if not distributed.all_processes(cluster, finite, device):
            return False
        rng = distributed.gather(cluster, {"noise": noise_rng.get_state(), "data": data_rng.get_state()})
        if cluster.main:
            save_checkpoint({
                "config": dataclasses.asdict(config), "counters": dataclasses.asdict(counters),
                "generator": generator.state_dict(), "critic": critic.state_dict(),
                "optimizer_g": optimizer_g.state_dict(), "optimizer_d": optimizer_d.state_dict(),
                "rng": rng,
            }, run.checkpoint_path)
        return True

    if state is None:
        checkpoint()  # the initial state: every run directory can be resumed
    request.directory = run.directory  # a second Ctrl-C or SIGTERM now stops at once, the checkpoint kept
    clock = _Clock(counters.seconds, counters.images_seen)
    end = None
    if counters.step == 0:  # a new run, or one stopped before its first generator step
        sample_grid(0)
        with clock.paused():
            alarms = evaluate()
        end = _stop_before_training(config, cluster, device, request, alarms, run)
    window = []  # per-step metrics since the last log line, on the device
    total_images = config.epochs * config.epoch_images
    bar = tqdm(total=total_images, initial=min(counters.images_seen, total_images), unit="img", unit_scale=True,
               dynamic_ncols=True, disable=not (cluster.main and config.progress and sys.stderr.isatty()))
    with bar:
        while counters.epoch < config.epochs and end is None:
            epoch_end = (counters.epoch + 1) * config.epoch_images
            while counters.images_seen < epoch_end:
                # (1) update the critic n_critic times, each on fresh real images and fresh noise
                critic.requires_grad_(True)
                step_metrics = []
                for _ in range(_critic_steps(config, counters.step)):
                    real = data.sample(config.batch_size, data_rng)
                    noise = torch.randn(config.batch_size, config.nz, 1, 1, device=device, generator=noise_rng)
                    with torch.no_grad(), autocast:
                        fake = generator(noise)
                    with autocast:
                        real_out, fake_out = critic_step_model(real), critic_step_model(fake)
                        loss_d = spec.critic_loss(real_out.float(), fake_out.float())
                    penalty = torch.zeros((), device=device)
                    if spec.gradient_penalty:
                        penalty = gradient_penalty(critic_step_model, real, fake, generator=noise_rng)
                        loss_d = loss_d + config.gp_weight * penalty
                    optimizer_d.zero_grad(set_to_none=True)
                    loss_d.backward()
                    optimizer_d.step()
                    if spec.clips_weights:
                        clip_weights_(critic, config.clip)
                    step_metrics.append(torch.stack([loss_d.detach(), *_means(spec, real_out, fake_out), penalty.detach()]))
                    counters.critic_steps += 1
                    counters.images_seen += config.batch_size * cluster.world_size

                # (2) update the generator through the frozen critic
                critic.requires_grad_(False)
                noise = torch.randn(config.batch_size, config.nz, 1, 1, device=device, generator=noise_rng)
                with autocast:
                    loss_g = spec.generator_loss(critic(generator_step_model(noise)).float())
                optimizer_g.zero_grad(set_to_none=True)
                loss_g.backward()
                optimizer_g.step()
                counters.step += 1
                critic_means = torch.stack(step_metrics).mean(0)
                window.append(torch.cat([critic_means[:1], loss_g.detach()[None], critic_means[1:]]))
                bar.update(min(counters.images_seen, total_images) - bar.n)

                if counters.step % config.eval_every == 0:
                    with clock.paused():
                        alarms = evaluate()
                    if alarms and config.stop_on_alarm:
                        end = _end("alarm", f"stopped by the {alarms[0]['name']} alarm at generator step {counters.step}.")
                stopping = distributed.any_process(cluster, request.requested or end is not None, device)
                if counters.step % config.log_every == 0 or stopping or counters.images_seen >= epoch_end:
                    end = _flush(window, counters, clock, config, run, bar) or end
                    window = []
                    non_finite = end is not None and end["reason"] == "non_finite"
                    if distributed.any_process(cluster, non_finite, device) and not non_finite:  # all stop unsaved
                        end = _end("non_finite", f"another process saw a NaN or infinite loss by generator step "
                                   f"{counters.step}; stopped without saving, the last good checkpoint is kept.")
                if stopping and end is None:
                    end = _interrupted(request, counters, run)
                if end is not None:
                    break
            else:
                counters.epoch += 1
                sample_grid(counters.epoch)
                say(_epoch_line(config, counters, run))
            counters.seconds = clock.seconds()
            if (end is None or end["reason"] in ("interrupted", "alarm")) and not checkpoint():
                end = _end("non_finite", f"the weights, batch-norm statistics or optimiser state became NaN or infinite "
                           f"by generator step {counters.step}; stopped without saving, the last good checkpoint is kept.")
    end = end or _end("finished", f"trained {counters.epoch} epoch(s).")
    epoch = counters.epoch if end["reason"] == "finished" else counters.epoch + 1
    summary = {"kind": "end", **_where(counters, clock, epoch), **end}
    run.log(summary)
    say(_summary(config, counters, run, end))
    return summary


def _critic_steps(config, step):
    """n_critic, or the WGAN reference code's 100 for the first 25 generator steps and every 500th."""
    if config.reference_schedule and (step < 25 or step % 500 == 0):
        return 100
    return config.n_critic


def _means(spec, real_out, fake_out):
    """Mean D(x) and D(G(z)): probabilities for the GAN losses, critic scores for the WGANs."""
    if spec.probability:
        return torch.sigmoid(real_out.detach().float()).mean(), torch.sigmoid(fake_out.detach().float()).mean()
    return real_out.detach().float().mean(), fake_out.detach().float().mean()


def _flush(window, counters, clock, config, run, bar):
    """Write the means of the window as one ``train`` line; return an end record if a value is not finite."""
    # (steps, len(STEP_METRICS)): the loop's one synchronisation with images in device memory (a streamed
    # batch also waits for its copy to the device)
    values = torch.stack(window).cpu()
    finite = torch.isfinite(values).all(1)
    if not finite.all():
        bad_step = counters.step - len(window) + 1 + int((~finite).nonzero()[0])
        bad = [name for name, value in zip(STEP_METRICS, values[~finite][0]) if not math.isfinite(value)]
        return _end("non_finite", f"{' and '.join(bad)} became NaN or infinite at generator step {bad_step}; "
                    f"stopped without saving, the last good checkpoint is kept.")
    means = dict(zip(STEP_METRICS, values.double().mean(0).tolist()))
    spec = LOSS_SPECS[config.loss]
    if not spec.gradient_penalty:
        del means["gp"]
    if not spec.probability:
        means["w_estimate"] = means["d_real"] - means["d_fake"]
    images_per_s = clock.rate(counters.images_seen)
    run.log({"kind": "train", **_where(counters, clock), **means, "images_per_s": images_per_s})
    bar.set_postfix(loss_d=f"{means['loss_d']:.4g}", loss_g=f"{means['loss_g']:.4g}", refresh=False)
    return None


class _Clock:
    """Training wall time, paused during evaluations; images/s since the previous reading."""

    def __init__(self, seconds, images):
        self._offset, self._start, self._paused = seconds, time.perf_counter(), 0.0
        self._last_time, self._last_images = seconds, images

    def seconds(self):
        return self._offset + time.perf_counter() - self._start - self._paused

    @contextmanager
    def paused(self):
        started = time.perf_counter()
        try:
            yield
        finally:
            self._paused += time.perf_counter() - started

    def rate(self, images):
        now = self.seconds()
        rate = (images - self._last_images) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_images = now, images
        return rate


def _where(counters, clock, epoch=None):
    """The position fields of every metrics line; ``epoch`` defaults to the one in progress (0 at step 0)."""
    if epoch is None:
        epoch = counters.epoch + 1 if counters.step else 0
    return {"epoch": epoch, "step": counters.step,
            "critic_steps": counters.critic_steps, "images_seen": counters.images_seen, "seconds": round(clock.seconds(), 3)}


def _end(reason, message, **details):
    return {"reason": reason, "message": message, **details}


def _interrupted(request, counters, run):
    return _end("interrupted", f"interrupted at generator step {counters.step}; resume with --resume {run.directory}",
                signal=signal.Signals(request.signum).name)


def _stop_before_training(config, cluster, device, request, alarms, run):
    """The end record when a signal or a ``stop_on_alarm`` alarm came during step 0, else None.

    The checkpoint of the initial state is kept: the resumed run does step 0 again.
    """
    alarm = bool(alarms) and config.stop_on_alarm
    if not distributed.any_process(cluster, request.requested or alarm, device):
        return None
    if alarm:
        return _end("alarm", f"stopped by the {alarms[0]['name']} alarm at generator step 0.")
    if request.signum is None:  # another process was interrupted
        request.signum = signal.SIGTERM
    return _interrupted(request, Counters(), run)


def _finite(*holders):
    """Whether every floating-point tensor of these modules' and optimisers' state dicts is finite."""
    def tensors(value):
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from tensors(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from tensors(item)

    return all(bool(torch.isfinite(tensor).all()) for holder in holders for tensor in tensors(holder.state_dict())
               if tensor.is_floating_point())


def _optimisers(config, spec, generator, critic):
    """The generator's and the critic's optimisers: ``spec.optimiser`` at ``lr`` and ``lr * critic_lr_factor``."""
    critic_lr = config.lr * config.critic_lr_factor
    if spec.optimiser == "rmsprop":
        return (torch.optim.RMSprop(generator.parameters(), lr=config.lr),
                torch.optim.RMSprop(critic.parameters(), lr=critic_lr))
    return (torch.optim.Adam(generator.parameters(), lr=config.lr, betas=spec.betas),
            torch.optim.Adam(critic.parameters(), lr=critic_lr, betas=spec.betas))


def _restore(state, path, cluster, generator, critic, optimizer_g, optimizer_d, noise_rng, data_rng, counters):
    """Load a checked checkpoint (see `trainers.resume.run_to_write`); ValueError naming ``path`` if it does not fit the networks."""
    if len(state["rng"]) != cluster.world_size:
        raise ValueError(f"the checkpoint was written by {len(state['rng'])} process(es); resume it with as many, "
                         f"not {cluster.world_size}.")
    for name, model in (("generator", generator), ("critic", critic)):
        expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
        found = {key: tuple(value.shape) for key, value in state[name].items()}
        if found != expected:
            wrong = sorted(set(found) ^ set(expected)) or [key for key in expected if found[key] != expected[key]]
            raise ValueError(f"checkpoint {str(path)!r} does not fit the {name} of its config ({wrong[0]}); "
                             f"it cannot be resumed.")
    try:
        generator.load_state_dict(state["generator"])
        critic.load_state_dict(state["critic"])
        optimizer_g.load_state_dict(state["optimizer_g"])
        optimizer_d.load_state_dict(state["optimizer_d"])
        noise_rng.set_state(state["rng"][cluster.rank]["noise"])
        data_rng.set_state(state["rng"][cluster.rank]["data"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:
        raise ValueError(f"checkpoint {str(path)!r} has damaged optimiser or random states "
                         f"({type(error).__name__}); it cannot be resumed.") from None
    for name, value in state["counters"].items():
        setattr(counters, name, value)


@contextmanager
def _buffers_restored(*modules):
    """Undo what an evaluation does to batch-norm running statistics."""
    saved = [{name: buffer.clone() for name, buffer in module.named_buffers()} for module in modules]
    try:
        yield
    finally:
        with torch.no_grad():
            for module, buffers in zip(modules, saved):
                for name, buffer in module.named_buffers():
                    buffer.copy_(buffers[name])


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


def _epoch_line(config, counters, run):
    return (f"epoch {counters.epoch}/{config.epochs}: generator step {counters.step}, critic step "
            f"{counters.critic_steps}, {counters.images_seen:,} images; samples in {run.directory / 'samples'}")


def _summary(config, counters, run, end):
    rate = counters.images_seen / max(counters.seconds, 1e-9) if counters.seconds else float("nan")
    return (f"{end['message']}\n{config.loss}: {counters.epoch} epoch(s), {counters.step} generator steps, "
            f"{counters.critic_steps} critic steps, {counters.images_seen:,} real images, {counters.seconds:.1f} s "
            f"({rate:,.0f} images/s)\nrun directory: {run.directory} (samples/, metrics.jsonl, checkpoints/last.pt)")
