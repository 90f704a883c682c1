"""The monitor in any GAN training loop: your generator and critic, or just their outputs.

`Watch` claims a run directory and writes what the trainer writes there (docs/run_format.md):
``config.json``, ``metrics.jsonl`` (``train``, ``eval``, ``alarm`` and ``end`` lines),
``alarms.json``, ``samples/`` and, on `Watch.close`, ``report.html``. Its evaluations are those
of `trainers.monitor` and raise the same alarms (docs/monitor.md)::

    watch = Watch(real, "runs/mine", loss="gan", batch_size=64, noise=lambda n: torch.randn(n, 100))
    for step in range(1, steps + 1):
        ...  # your critic and generator updates
        watch.step(step, generator=G, critic=D, loss_d=loss_d, loss_g=loss_g)
    watch.close()  # the end line and report.html
"""

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch

from divergences.checks import check_choice, check_count, check_flag, check_integer

from .alarms import Alarms, Thresholds
from .features import RandomFeatures
from .grid import save_grid
from .losses import LOSS_SPECS
from .models import buffers_restored
from .monitor import generator_gradient_norm, sample_signals
from .runlog import RunLog

THRESHOLDS = tuple(field.name for field in dataclasses.fields(Thresholds))
"""The alarm thresholds `Watch` takes as keywords: the fields of `trainers.alarms.Thresholds`."""

MAX_SEED = 2**32 - 1
MAX_EVAL_SAMPLES = 4096
"""The largest ``eval_samples``: each evaluation holds that many samples and their pairwise distances."""


class Watch:
    """Monitor a training loop that is not the bundled trainer; write its run directory and report.

    Parameters
    ----------
    real : torch.Tensor or numpy.ndarray
        Real samples the generated ones are compared with, kept out of training: images
        (N, C, H, W) in [-1, 1], or points (N, D). At most ``eval_samples`` of them, drawn once
        with ``seed``, are used at each evaluation.
    out : str or path-like
        The run directory. It may exist but must not hold a run: two runs are never mixed.
    loss : {"gan", "gan-minimax", "wgan", "wgan-gp"}
        What the critic's outputs are: logits of a probability for the GAN losses (the monitor
        reads the JS lower bound), scores for the WGANs (the W1 estimate); and the generator loss
        whose gradient norm is ``grad_norm_g``.
    batch_size : int
        Real samples shown to the critic per call of `step` (n_critic × m for a WGAN), to count
        ``images_seen``; `step` takes ``images_seen=`` instead for any other count.
    noise : callable, optional
        ``noise(n)`` returns the generator's input for ``n`` samples. Called once, with torch's
        random state set by ``seed`` and restored after, so that every evaluation (and every
        sample grid) uses the same noise and your run's random numbers are not touched. Needed
        when `step` gets a ``generator``.
    eval_every : int
        Evaluate at every step that is a multiple of this (and at the first `step` call).
    log_every : int
        Write a ``train`` line (the mean of the losses given since the last one) every this many steps.
    eval_samples : int
        Generated and real samples compared at each evaluation.
    seed : int
        Seed of the held-out draw and of the noise.
    labels : numpy.ndarray, optional
        (N, 5) attribute labels of ``real`` when it holds the procedural faces (`trainers.procedural.make_faces`):
        mode coverage.
    **thresholds
        Alarm thresholds by the names in `THRESHOLDS` (defaults: `trainers.alarms.Thresholds`'s).

    Raises
    ------
    TypeError
        If ``real`` is not a tensor or array of floats, ``noise`` not callable, a threshold unknown.
    ValueError
        If ``real`` has fewer than 2 samples, a shape other than (N, D) or (N, C, H, W), or
        values that are not finite; a setting is outside its domain; or ``out`` holds a run.

    Notes
    -----
    Monitoring does not change training: the evaluation draws from its own random generator,
    the gradients it computes are not left on the parameters, and batch-norm statistics are
    restored. The models are called in the mode they are in.
    """

    def __init__(self, real, out, *, loss, batch_size, noise=None, eval_every=50, log_every=10, eval_samples=128,
                 seed=0, labels=None, **thresholds):
        unknown = sorted(set(thresholds) - set(THRESHOLDS))
        if unknown:
            raise TypeError(f"Watch got unknown keyword(s) {', '.join(unknown)}; the thresholds are {', '.join(THRESHOLDS)}.")
        if noise is not None and not callable(noise):
            raise TypeError(f"`noise` should be a function of the number of samples. Instead, received a "
                            f"{type(noise).__name__}.")
        self.loss = check_choice("loss", loss, tuple(LOSS_SPECS))
        self.batch_size = check_count("batch_size", batch_size)
        self.eval_every = check_count("eval_every", eval_every)
        self.log_every = check_count("log_every", log_every)
        self.eval_samples = check_count("eval_samples", eval_samples)
        if self.eval_samples > MAX_EVAL_SAMPLES:
            raise ValueError(f"`eval_samples` should be at most {MAX_EVAL_SAMPLES}. Instead, received {eval_samples}.")
        self.seed = check_integer("seed", seed)
        if self.seed > MAX_SEED:
            raise ValueError(f"`seed` should be at most {MAX_SEED} (2**32 - 1). Instead, received {seed}.")
        self.thresholds = Thresholds(**thresholds)
        self.spec = LOSS_SPECS[self.loss]
        self.real, self.other_real, self.labels = _held_out(real, labels, self.eval_samples, self.seed)
        self.noise_function = noise
        self._noise = None
        self.alarms = Alarms(self.loss, self.thresholds)
        self.features = RandomFeatures() if self.real.dim() == 4 and self.real.shape[1] == 3 else None
        self.log = RunLog.create(_run_directory(out), advice="give another `out`, or remove the run that is there")
        self.log.write_config({"source": "trainers.watch.Watch", "loss": self.loss, "batch_size": self.batch_size,
                               "eval_every": self.eval_every, "log_every": self.log_every,
                               "eval_images": self.eval_samples, "seed": self.seed,
                               **dataclasses.asdict(self.thresholds), "real_samples": len(self.real),
                               "sample_shape": list(self.real.shape[1:])})
        self.directory = self.log.directory
        if self.real.dim() == 4 and self.real.shape[1] in (1, 3):
            self.log.real_samples(_three_channels(self.real[:100]))
        self.images_seen = 0
        self.last_step = None
        self._window = []
        self._started = time.perf_counter()
        self._evaluating = 0.0
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, error_type, error, traceback):
        self.close(reason="finished" if error_type is None else "error",
                   message=None if error_type is None else f"stopped by {error_type.__name__}: {error}")

    def step(self, step, *, generator=None, critic=None, fake=None, real_scores=None, fake_scores=None,
             images_seen=None, **losses):
        """Record one generator step; evaluate when it is time. Returns the alarms that fire (a list of dicts).

        Parameters
        ----------
        step : int
            The generator step just done, increasing from call to call (gaps are allowed).
        generator, critic : torch.nn.Module, optional
            The models. With both (and ``noise``) the evaluation generates its own samples and
            measures everything, the gradient norms included.
        fake : torch.Tensor, optional
            Without a generator: generated samples, shaped like ``real``.
        real_scores, fake_scores : torch.Tensor, optional
            Without a critic: its outputs on real samples and on ``fake``, for the JS bound or
            the W1 estimate (the vanishing-gradient alarm then reads the JS bound alone).
        images_seen : int, optional
            Real samples shown to the critic so far (default: ``batch_size`` per step so far).
        **losses : float or 0-d torch.Tensor
            Values to average into the ``train`` lines, e.g. ``loss_d=..., loss_g=...``.
        """
        self._check_open()
        step = check_integer("step", step)
        if self.last_step is not None and step <= self.last_step:
            raise ValueError(f"`step` should increase from call to call. Instead, received {step} after {self.last_step}.")
        reserved = sorted(set(losses) & _LINE_FIELDS) + [repr(name) for name in losses if not name.strip()]
        if reserved:
            raise ValueError(f"loss names should not be empty or one of the train line's own fields "
                             f"({', '.join(sorted(_LINE_FIELDS))}). Instead, received {', '.join(reserved)}.")
        values = {name: _number(name, value) for name, value in losses.items()}
        before = self.images_seen, self.last_step
        self.images_seen, self.last_step = self._count(step, images_seen), step
        try:  # a call that raises leaves the Watch as it was
            alarms = []
            if before[1] is None or step % self.eval_every == 0:
                alarms = self.evaluate(generator=generator, critic=critic, fake=fake, real_scores=real_scores,
                                       fake_scores=fake_scores)
        except BaseException:
            self.images_seen, self.last_step = before
            raise
        if values:
            self._window.append(values)
        if self._window and step % self.log_every == 0:
            self._write_train_line()
        return alarms

    def evaluate(self, *, generator=None, critic=None, fake=None, real_scores=None, fake_scores=None):
        """Evaluate now (`step` calls this every ``eval_every`` steps); returns the alarms that fire."""
        self._check_open()
        _models(generator, critic)
        started = time.perf_counter()
        with buffers_restored(*[model for model in (generator, critic) if model is not None]):
            samples = self._generated(generator, fake)
            signals = sample_signals(
                self.real.to(samples.device), samples, self.spec, critic=critic,
                scores=None if real_scores is None else _scores(real_scores, fake_scores),
                features=None if self.features is None else self.features.to(samples.device),
                generator_gradient=self._generator_gradient(generator, critic), labels=self.labels,
                other_real=None if self.other_real is None else self.other_real.to(samples.device))
        alarms = self.alarms.evaluation(signals, self.images_seen)
        self.log.evaluation(self._where(), signals, alarms, time.perf_counter() - started)
        self._draw(samples)
        self._evaluating += time.perf_counter() - started
        return alarms

    def close(self, *, reason="finished", message=None, report=True):
        """Write the ``end`` line (and the last ``train`` line), release the directory, write ``report.html``.

        Returns the report's path (None with ``report=False``). Closing twice does nothing.
        """
        if not isinstance(reason, str) or not reason:
            raise TypeError(f"`reason` should be a non-empty str. Instead, received {_description(reason)}.")
        if message is not None and not isinstance(message, str):
            raise TypeError(f"`message` should be a str or None. Instead, received {_description(message)}.")
        report = check_flag("report", report)
        if self.closed:
            return None
        if self._window:
            self._write_train_line()
        fired = ", ".join(sorted(self.alarms.fired)) or "none"
        self.log.log({"kind": "end", **self._where(), "reason": reason,
                      "message": message or f"watched {self.last_step or 0} generator steps; alarms: {fired}."})
        self.log.__exit__(None, None, None)
        self.closed = True
        if not report:
            return None
        from .report import write_report  # matplotlib is loaded only for the report
        return write_report([self.directory], self.directory / "report.html")

    def _check_open(self):
        if self.closed:
            raise ValueError(f"this Watch of {str(self.directory)!r} is closed.")

    def _count(self, step, images_seen):
        if images_seen is None:
            return step * self.batch_size
        images_seen = check_integer("images_seen", images_seen)
        if images_seen < self.images_seen:
            raise ValueError(f"`images_seen` should never decrease. Instead, received {images_seen} after "
                             f"{self.images_seen}.")
        return images_seen

    def _generated(self, generator, fake):
        if (generator is None) == (fake is None):
            raise ValueError("give `generator` (and `noise` to Watch) or a batch of generated samples as `fake`, one of them.")
        if fake is not None:
            fake = _samples("fake", fake, allow_nan=True)
            if fake.shape[1:] != self.real.shape[1:]:
                raise ValueError(f"`fake` should have the shape of the real samples, (N, "
                                 f"{', '.join(map(str, self.real.shape[1:]))}). Instead, received {tuple(fake.shape)}.")
            return fake.detach().float()
        with torch.no_grad():
            samples = generator(self._fixed_noise(generator)[: self.eval_samples])
        if not isinstance(samples, torch.Tensor) or not samples.is_floating_point():
            raise TypeError(f"`generator` should return a tensor of floats. Instead, it returned {_description(samples)}.")
        samples = samples.float()
        if samples.shape[1:] != self.real.shape[1:]:
            raise ValueError(f"`generator`'s samples should have the shape of the real ones, (N, "
                             f"{', '.join(map(str, self.real.shape[1:]))}). Instead, it returned {tuple(samples.shape)}.")
        return samples

    def _fixed_noise(self, generator):
        """The noise of every evaluation, on the generator's device: ``eval_images`` rows to generate, then
        ``batch_size`` rows for the generator's gradient. Drawn (and checked) at the first call."""
        if self.noise_function is None:
            raise ValueError("a `generator` needs `noise`: give Watch(noise=lambda n: ...), the generator's input for n samples.")
        if self._noise is None:
            rows = self.eval_samples + self.batch_size
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + 1)
                noise = self.noise_function(rows)
            if not isinstance(noise, torch.Tensor) or len(noise) != rows:
                raise ValueError(f"`noise(n)` should return a tensor of n rows. Instead, noise({rows}) returned {_description(noise)}.")
            self._noise = noise
        return self._noise.to(next((p.device for p in generator.parameters()), self._noise.device))

    def _generator_gradient(self, generator, critic):
        if generator is None or critic is None:
            return None
        noise = self._fixed_noise(generator)[self.eval_samples:]
        return lambda: generator_gradient_norm(generator, critic, noise, self.spec)

    def _draw(self, samples):
        """``samples/step_NNNNNNN.png``: a grid of up to 100 images, or a scatter of 2-D points over the real ones."""
        path = self.directory / "samples" / f"step_{self.last_step:07d}.png"
        if samples.dim() == 4 and samples.shape[1] in (1, 3) and torch.isfinite(samples).all():
            save_grid(_three_channels(samples[:100]), path)
        elif samples.dim() == 2 and samples.shape[1] == 2:
            _scatter(self.real, samples, path, f"step {self.last_step}")

    def _write_train_line(self):
        names = sorted({name for values in self._window for name in values})
        means = {name: float(np.mean([values[name] for values in self._window if name in values])) for name in names}
        self.log.log({"kind": "train", **self._where(), **means})
        self._window.clear()

    def _where(self):
        seconds = time.perf_counter() - self._started - self._evaluating
        return {"step": self.last_step or 0, "images_seen": self.images_seen, "seconds": round(seconds, 3)}


def _three_channels(images):
    """(N, 1 or 3, H, W) images as (N, 3, H, W): grey images repeated into each channel."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _held_out(real, labels, count, seed):
    """At most ``count`` of the real samples (and their labels), drawn once with ``seed``, as float32 on the CPU;
    and as many others for the real-vs-real floor, or None when there are too few."""
    real = _samples("real", real)
    if len(real) < 2:
        raise ValueError(f"`real` should hold at least 2 samples. Instead, received {len(real)}.")
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(real)))
    chosen, others = order[:count], order[count:2 * count]
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 2 or labels.shape[1] != 5 or len(labels) != len(real):
            raise ValueError(f"`labels` should be ({len(real)}, 5) attribute labels of the {len(real)} real samples. "
                             f"Instead, received shape {labels.shape}.")
        if not np.issubdtype(labels.dtype, np.number) or not np.isfinite(labels).all():
            raise ValueError("`labels` should be finite numbers (the procedural faces' attributes). Instead, they hold "
                             "NaN, infinite or non-numeric values.")
        labels = labels[chosen.numpy()]
    other = real[others].float().cpu() if len(others) == len(chosen) else None
    chosen_real = real[chosen].float().cpu()
    if not (torch.isfinite(chosen_real).all() and (other is None or torch.isfinite(other).all())):
        raise ValueError(f"`real` should be finite in float32, the precision the monitor measures in. Instead, its "
                         f"values reach {float(real.abs().max()):.3g}; rescale the samples.")
    return chosen_real, other, labels


def _run_directory(out):
    """``out`` as a path, refused with a named error when it is not one: a type other than str or path-like
    (bytes included), an empty path (which would mean the working directory), a NUL character."""
    if not isinstance(out, (str, os.PathLike)) or isinstance(os.fspath(out), bytes):
        raise TypeError(f"`out` should be a path: a str or a path-like object. Instead, received {_description(out)}.")
    path = os.fspath(out)
    if not path.strip():
        raise ValueError("`out` should name the run directory. Instead, received an empty path.")
    if "\0" in path:
        raise ValueError(f"`out` should be a path without NUL characters. Instead, received {path!r}.")
    return Path(path)


def _models(generator, critic):
    """TypeError naming the model that is given but is not a torch.nn.Module."""
    for name, model in (("generator", generator), ("critic", critic)):
        if model is not None and not isinstance(model, torch.nn.Module):
            raise TypeError(f"`{name}` should be a torch.nn.Module. Instead, received {_description(model)}.")


def _samples(name, value, *, allow_nan=False):
    """``value`` as a float tensor of (N, D) points or (N, C, H, W) images; TypeError or ValueError naming ``name``."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"`{name}` should be a tensor or array of floats. Instead, received {_description(value)}.")
    if value.layout != torch.strided or value.device.type == "meta":
        raise TypeError(f"`{name}` should be a dense tensor with values (not sparse, not on the meta device). "
                        f"Instead, received a {value.layout} tensor on {value.device}.")
    if value.dim() not in (2, 4) or value.shape[0] == 0 or 0 in value.shape[1:]:
        raise ValueError(f"`{name}` should be (N, D) points or (N, C, H, W) images with N >= 1. Instead, received shape "
                         f"{tuple(value.shape)}.")
    if not allow_nan and not torch.isfinite(value).all():
        raise ValueError(f"`{name}` should be finite. Instead, it holds NaN or infinite values.")
    return value.detach()


def _scores(real_scores, fake_scores):
    if fake_scores is None:
        raise ValueError("give `real_scores` and `fake_scores` together.")
    scores = []
    for name, value in (("real_scores", real_scores), ("fake_scores", fake_scores)):
        value = torch.as_tensor(value) if isinstance(value, (np.ndarray, list)) else value
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.numel() == 0:
            raise TypeError(f"`{name}` should be a non-empty tensor or array of floats. Instead, received {_description(value)}.")
        scores.append(value.detach().float().flatten().cpu())
    return tuple(scores)


_LINE_FIELDS = frozenset({"kind", "step", "images_seen", "seconds"})
"""The fields every line of metrics.jsonl has; a loss of the same name would overwrite one."""


def _number(name, value):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.detach().item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"the loss `{name}` should be a number or a one-element tensor. Instead, received {_description(value)}.")
    return float(value)


def _description(value):
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _scatter(real, fake, path, title):
    """A PNG of 2-D real points (grey) and generated ones (blue), written atomically."""
    from matplotlib.figure import Figure

    from .files import write_atomically

    figure = Figure(figsize=(3.2, 3.2), layout="constrained")
    ax = figure.subplots()
    ax.scatter(*real.T.cpu().numpy(), s=6, color="0.6", label="real")
    ax.scatter(*fake.T.cpu().numpy(), s=6, color="tab:blue", label="generated")
    ax.set_title(title, fontsize="small")
    ax.legend(fontsize="x-small", loc="upper right")
    ax.set_aspect("equal", adjustable="datalim")
    write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=90))
