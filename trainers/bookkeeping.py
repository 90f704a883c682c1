"""What a run does around its generator steps: evaluate, log, draw grids, checkpoint, decide to stop.

`trainers.train` sets a run up as a `Training` and runs the two-block loop; it calls `begin`
before the first step, `after_step` after each one, and `finish` at the end. A decision to stop
is a `Stop` record, written as the ``end`` line of ``metrics.jsonl``.
"""

import math
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import distributed
from .checkpoint import Counters, save_checkpoint, training_state
from .config import TrainConfig
from .losses import LossSpec
from .models import buffers_restored
from .runlog import RunLog

ETA_AFTER_SECONDS = 10.0
"""Training seconds after which a run prints its speed and the time it has left, once."""

QUICK_HINT_SECONDS = 3600.0
"""A CPU run with more time left than this suggests ``--preset quick``."""

STEP_METRICS = ("loss_d", "loss_g", "d_real", "d_fake", "gp")
"""The per-step metrics of a ``train`` line, in its order; ``gp`` only for a loss with a gradient penalty.
The critic's are averaged over the critic steps of their generator step."""


@dataclass
class EvalContext:
    """What the monitor gets at each evaluation (every ``eval_every`` generator steps)."""

    config: TrainConfig
    counters: Counters
    generator: torch.nn.Module
    critic: torch.nn.Module
    data: object  # trainers.data.RealImages
    device: torch.device


@dataclass(frozen=True)
class Stop:
    """Why a run ended; its fields (but ``keeps_state``) are those of the ``end`` line.

    Attributes
    ----------
    reason : {"finished", "alarm", "interrupted", "non_finite"}
        What ended the run; the command line's exit status follows from it.
    message : str
        One line for a person: what happened and what was kept.
    keeps_state : bool
        Whether the checkpoint holds the state at the stop: false after a NaN, when the last good
        checkpoint is kept.
    signal : str or None
        The signal's name (``SIGINT``, ``SIGTERM``) for an interrupted run.
    """

    reason: str
    message: str
    keeps_state: bool = True
    signal: str | None = None

    def record(self):
        """The ``reason``, ``message`` and, for a signal, ``signal`` fields of the ``end`` line."""
        return {"reason": self.reason, "message": self.message, **({"signal": self.signal} if self.signal else {})}


class Clock:
    """Training wall time, paused during evaluations; images/s since the previous reading.

    While paused it reads the time at which the pause began, so that its readings never go back.
    """

    def __init__(self, seconds, images):
        self._offset, self._start, self._paused, self._paused_at = seconds, time.perf_counter(), 0.0, None
        self._last_time, self._last_images = seconds, images

    def seconds(self):
        now = time.perf_counter() if self._paused_at is None else self._paused_at
        return self._offset + now - self._start - self._paused

    @contextmanager
    def paused(self):
        if self._paused_at is not None:  # already paused
            yield
            return
        self._paused_at = time.perf_counter()
        try:
            yield
        finally:
            self._paused += time.perf_counter() - self._paused_at
            self._paused_at = None

    def rate(self, images):
        now = self.seconds()
        rate = (images - self._last_images) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_images = now, images
        return rate


@dataclass(kw_only=True)
class Networks:
    """The two networks, as the run saves them and as its steps call them, and their optimisers."""

    generator: torch.nn.Module
    critic: torch.nn.Module
    generator_step_model: torch.nn.Module  # the generator as the generator step calls it (DDP, compiled)
    critic_step_model: torch.nn.Module  # the critic as the critic steps call it (DDP, compiled)
    optimizer_g: torch.optim.Optimizer
    optimizer_d: torch.optim.Optimizer


@dataclass(kw_only=True)
class Randomness:
    """The run's random generators (saved in its checkpoints) and the fixed noise of its sample grids."""

    noise_rng: torch.Generator  # the generator's noise, one stream per process
    data_rng: torch.Generator  # the order of the real batches, one stream per process
    fixed_noise: torch.Tensor  # (samples per grid, nz, 1, 1): the same noise for every grid


@dataclass(kw_only=True)
class Training:
    """A run once set up (by `trainers.train`): what its loop trains and what its bookkeeping writes. Keywords only."""

    config: TrainConfig
    spec: LossSpec
    cluster: distributed.Cluster
    device: torch.device
    data: object  # trainers.data.RealImages
    networks: Networks
    randomness: Randomness
    counters: Counters
    log: RunLog
    monitor: Callable | None  # monitor(EvalContext) -> dict of signals, on the main process
    request: object  # trainers.train's stop request: the first Ctrl-C or SIGTERM
    autocast: object  # the context of every forward pass: bfloat16 autocast or nothing
    bar: object  # the tqdm progress bar, in images
    say: Callable  # prints a line on the main process
    clock: Clock
    window: list = field(default_factory=list)  # each step's metrics since the last train line, on the device
    eta_said: bool = False  # whether the time left was printed (once, after ETA_AFTER_SECONDS of training)
    alarm_stop: Stop | None = None  # a train line's alarm under stop_on_alarm: the run stops at the next step


def begin(run):
    """Step 0 of a new run: its first grid and evaluation; or close the epoch a resumed run stopped at the end of.

    Returns
    -------
    Stop or None
        A `Stop` when a signal or a ``stop_on_alarm`` alarm came during step 0 (the checkpoint of
        the initial state is kept: the resumed run does step 0 again), or when the closed epoch's
        state is not finite.
    """
    counters = run.counters
    if counters.step == 0:  # a new run, or one stopped before its first generator step
        sample_grid(run, 0)
        with run.clock.paused():
            alarms = evaluate(run)
        return _stop_before_training(run, alarms)
    if counters.epoch < run.config.epochs and _epoch_complete(run):  # stopped at the last step of an epoch
        return _close_epoch(run)
    return None


def after_step(run, metrics):
    """The bookkeeping after a generator step: evaluate, log, close the epoch, checkpoint; return a `Stop` or None.

    Parameters
    ----------
    run : Training
        The run, its counters already at the step just done.
    metrics : dict of str to 0-d torch.Tensor
        The step's `STEP_METRICS`, on the device; read back only when a ``train`` line is written.
    """
    config, counters = run.config, run.counters
    run.window.append(metrics)
    run.bar.update(min(counters.images_seen, _total_images(config)) - run.bar.n)
    stop = run.alarm_stop
    if counters.step % config.eval_every == 0:
        with run.clock.paused():
            alarms = evaluate(run)
        if alarms and config.stop_on_alarm and stop is None:
            stop = _alarm_stop(alarms, counters.step)
    stopping = distributed.any_process(run.cluster, run.request.requested or stop is not None, run.device)
    epoch_complete = _epoch_complete(run)
    if counters.step % config.log_every == 0 or stopping or epoch_complete:
        stop = _log_window(run) or stop
    if stopping and stop is None:
        stop = _interrupted(run)
    if stop is None and epoch_complete:
        return _close_epoch(run)
    return _saved(run, stop) if stop is not None else None


def finish(run, stop):
    """Write the ``end`` line and print the run's summary; return the ``end`` line, the summary of `train`.

    ``stop`` is None for a run that trained all its epochs.
    """
    counters = run.counters
    if stop is None:
        stop, epoch = Stop("finished", f"trained {counters.epoch} epoch(s)."), counters.epoch
    else:
        epoch = counters.epoch + 1  # the epoch in progress
    run.bar.close()
    summary = {"kind": "end", **_where(run, epoch), **stop.record()}
    run.log.log(summary)
    run.say(_summary(run, stop))
    return summary


def sample_grid(run, epoch):
    """Write ``samples/epoch_NNN.png`` from the fixed noise (main process only), leaving batch-norm statistics as they were."""
    if not run.cluster.main:
        return
    with torch.no_grad(), run.autocast, buffers_restored(run.networks.generator):
        run.log.samples(run.networks.generator(run.randomness.fixed_noise), epoch)


def evaluate(run):
    """Call the monitor (main process only), write its ``eval`` line and its ``alarm`` lines; return the alarms."""
    if run.monitor is None or not run.cluster.main:
        return []
    started = time.perf_counter()
    with buffers_restored(run.networks.generator, run.networks.critic):  # an evaluation must not move batch-norm statistics
        signals = dict(run.monitor(EvalContext(run.config, run.counters, run.networks.generator, run.networks.critic, run.data,
                                               run.device)))
    alarms = signals.pop("alarms", [])
    run.log.evaluation(_where(run), signals, alarms, time.perf_counter() - started)
    _say_alarms(run, alarms)
    return alarms


def _say_alarms(run, alarms):
    """Print each alarm."""
    for alarm in alarms:
        run.say(f"ALARM {alarm['name']} at step {run.counters.step}: {alarm['message']}")


def checkpoint(run):
    """Save the state if every number in it is finite (on every process); return whether it was."""
    finite = _finite(run.networks.generator, run.networks.critic, run.networks.optimizer_g, run.networks.optimizer_d)
    if not distributed.all_processes(run.cluster, finite, run.device):
        return False
    rng = distributed.gather(run.cluster, {"noise": run.randomness.noise_rng.get_state(), "data": run.randomness.data_rng.get_state()})
    if run.cluster.main:
        save_checkpoint(training_state(config=run.config, counters=run.counters, generator=run.networks.generator,
                                       critic=run.networks.critic, optimizer_g=run.networks.optimizer_g, optimizer_d=run.networks.optimizer_d,
                                       rng=rng), run.log.checkpoint_path)
    return True


def _total_images(config):
    return config.epochs * config.epoch_images


def _epoch_complete(run):
    """Whether the epoch in progress has shown its ``epoch_images`` real images."""
    return run.counters.images_seen >= (run.counters.epoch + 1) * run.config.epoch_images


def _close_epoch(run):
    """Count the epoch, draw its grid, print its line and checkpoint; a `Stop` if the state is not finite."""
    counters = run.counters
    counters.epoch += 1
    sample_grid(run, counters.epoch)
    run.say(f"epoch {counters.epoch}/{run.config.epochs}: generator step {counters.step}, critic step "
            f"{counters.critic_steps}, {counters.images_seen:,} images; samples in {run.log.directory / 'samples'}")
    return _saved(run, None)


def _saved(run, stop):
    """Checkpoint where the run is unless ``stop`` keeps the last good state; ``stop``, or a `Stop` if the state is not finite."""
    run.counters.seconds = run.clock.seconds()
    if (stop is None or stop.keeps_state) and not checkpoint(run):
        return _non_finite(f"the weights, batch-norm statistics or optimiser state became NaN or infinite by "
                           f"generator step {run.counters.step}")
    return stop


def _log_window(run):
    """Write the window's means as one ``train`` line and empty it; a `Stop` if a value is not finite on any process."""
    stop = _train_line(run)
    run.window.clear()
    if distributed.any_process(run.cluster, stop is not None, run.device) and stop is None:  # all stop unsaved
        stop = _non_finite(f"another process saw a NaN or infinite loss by generator step {run.counters.step}")
    return stop


def _train_line(run):
    """Write the ``train`` line of the window and hand it to the monitor.

    Returns a `Stop` instead if one of its values is not finite.
    """
    counters, window = run.counters, run.window
    names = [name for name in STEP_METRICS if name in window[0]]
    # (steps, metrics): the loop's one synchronisation with images in device memory (a streamed batch also
    # waits for its copy to the device)
    values = torch.stack([torch.stack([metrics[name] for name in names]) for metrics in window]).cpu()
    finite = torch.isfinite(values).all(1)
    if not finite.all():
        bad_step = counters.step - len(window) + 1 + int((~finite).nonzero()[0])
        bad = [name for name, value in zip(names, values[~finite][0]) if not math.isfinite(value)]
        return _non_finite(f"{' and '.join(bad)} became NaN or infinite at generator step {bad_step}")
    means = dict(zip(names, values.double().mean(0).tolist()))
    means.update(run.spec.training_estimate(means))
    images_per_s = run.clock.rate(counters.images_seen)
    run.log.log({"kind": "train", **_where(run), **means, "images_per_s": images_per_s})
    if hasattr(run.monitor, "observe_training") and run.cluster.main:
        alarms = run.monitor.observe_training(means, counters.images_seen)
        _say_alarms(run, alarms)
        for alarm in alarms:
            run.log.log({"kind": "alarm", **_where(run), **alarm})
        if alarms and run.config.stop_on_alarm and run.alarm_stop is None:  # stopped at the next step, all processes
            run.alarm_stop = _alarm_stop(alarms, counters.step)
    if not run.eta_said and run.clock.seconds() >= ETA_AFTER_SECONDS:
        run.eta_said = True
        run.say(_time_left(run))
    run.bar.set_postfix(loss_d=f"{means['loss_d']:.4g}", loss_g=f"{means['loss_g']:.4g}", refresh=False)
    return None


def _time_left(run):
    """One line: the training speed so far and the time the remaining images take at it."""
    counters = run.counters
    speed = counters.images_seen / run.clock.seconds()
    left = max(_total_images(run.config) - counters.images_seen, 0) / speed
    line = (f"{speed:,.0f} images/s on {run.device.type}: the remaining {run.config.epochs - counters.epoch} "
            f"epoch(s) take about {_duration(left)}, evaluations not counted")
    if run.device.type == "cpu" and left > QUICK_HINT_SECONDS:
        line += "; on a CPU, --preset quick shows learning in minutes"
    return line + "."


def _duration(seconds):
    """``2 h 05 min``, ``7 min`` or ``40 s``."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    return f"{round(seconds / 60)} min" if seconds >= 90 else f"{round(seconds)} s"


def _where(run, epoch=None):
    """The position fields of every metrics line; ``epoch`` defaults to the one in progress (0 at step 0)."""
    counters = run.counters
    if epoch is None:
        epoch = counters.epoch + 1 if counters.step else 0
    return {"epoch": epoch, "step": counters.step, "critic_steps": counters.critic_steps,
            "images_seen": counters.images_seen, "seconds": round(run.clock.seconds(), 3)}


def _alarm_stop(alarms, step):
    return Stop("alarm", f"stopped by the {alarms[0]['name']} alarm at generator step {step}.")


def _interrupted(run):
    return Stop("interrupted", f"interrupted at generator step {run.counters.step}; resume with --resume "
                f"{run.log.directory}", signal=signal.Signals(run.request.signum).name)


def _non_finite(what):
    return Stop("non_finite", f"{what}; stopped without saving, the last good checkpoint is kept.", keeps_state=False)


def _stop_before_training(run, alarms):
    """The `Stop` when a signal or a ``stop_on_alarm`` alarm came during step 0 on any process, else None."""
    alarm = bool(alarms) and run.config.stop_on_alarm
    if not distributed.any_process(run.cluster, run.request.requested or alarm, run.device):
        return None
    if alarm:
        return _alarm_stop(alarms, 0)
    if run.request.signum is None:  # another process was interrupted
        run.request.signum = signal.SIGTERM
    return _interrupted(run)


def _summary(run, stop):
    counters = run.counters
    timed = counters.images_seen and counters.seconds
    rate = f" ({counters.images_seen / counters.seconds:,.0f} images/s)" if timed else ""
    return (f"{stop.message}\n{run.config.loss}: {counters.epoch} epoch(s), {counters.step} generator steps, "
            f"{counters.critic_steps} critic steps, {counters.images_seen:,} real images, {counters.seconds:.1f} s"
            f"{rate}\nrun directory: {run.log.directory} (samples/, metrics.jsonl, checkpoints/last.pt)")


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
