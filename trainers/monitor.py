"""The training monitor: signals measured with `divergences` at each evaluation, and the alarms read from them.

Every ``eval_every`` generator steps the trainer calls a `Monitor` with the models and the
held-out real images (`trainers.watch.Watch` does the same for any training loop). It measures
(see docs/monitor.md):

- the loss's own estimate: the JS lower bound from the discriminator (GAN) or the critic's
  W1 estimate (WGAN), on held-out real and generated images;
- loss-independent distances between real and generated images, so GAN and WGAN runs share
  one axis: sliced W1 and the Sinkhorn divergence on downsampled pixels, and the multi-scale
  patch sliced Wasserstein distance of the Progressive GAN paper;
- gradient health: ‖∇θ L_G‖ and the mean ‖∇x D(x)‖ at generated images (D as a probability
  for the GAN losses, the critic's score for the WGANs);
- the feature-space metrics of `python -m trainers.evaluate`, in the fixed random network's
  features: the Fréchet distance (FID's formula), KID (unbiased MMD² with the cubic kernel, on
  all the evaluation images) and coverage (k = 5);
- diversity: the mean pairwise distance among generated images, and among real ones;
- on the procedural faces, mode coverage (hair × eye colour) and KL(generated ‖ real).

Samples that are not images, (N, D) points, get the same distances on the points themselves:
``sliced_samples``, ``sinkhorn_samples``, ``fd_samples``, ``kid_samples``, ``coverage_samples``.

and raises three alarms (`ALARMS`), each at most once per run.
"""

import math
from collections import defaultdict

import torch

from divergences import critic_w1_estimate, frechet, js_from_discriminator, mmd, patch_sliced, prdc, sinkhorn, sliced

from .features import RandomFeatures, pooled_pixels
from .images import to_float, to_uint8
from .losses import LOSS_SPECS
from .modes import mode_coverage, modes_of_labels

ALARMS = {
    "vanishing_gradient": "discriminator saturated: JS bound within saturation_margin of log 2 and a gradient "
                          "norm below gradient_collapse of its peak, for alarm_patience evaluations; or the JS "
                          "bound of the discriminator's training loss within saturation_margin of log 2 at "
                          "alarm_patience train lines in a row (the trainer's runs; GAN losses)",
    "mode_collapse": "diversity below collapse_diversity of the real images', or modes covered below "
                     "collapse_modes of the real images', and fallen to collapse_drop of its best so far, for "
                     "alarm_patience evaluations",
    "diverged": "generated images not finite, or the sliced pixel distance rising at each of alarm_patience "
                "evaluations to divergence_rise above its lowest value",
}
"""The alarms and the rule of each; thresholds are fields of `trainers.config.TrainConfig`."""

COVERAGE_K = 5
"""The neighbour of the coverage signal (Naeem et al.'s choice); coverage needs more images than this."""

SINKHORN_EPS = 0.01
"""Entropic regularisation of the Sinkhorn pixel divergence, in units of the mean squared pixel difference."""


class Monitor:
    """Measure a run's signals at each evaluation and raise the alarms they call for.

    Parameters
    ----------
    config : TrainConfig
        Resolved config: ``loss``, ``nz``, ``seed``, ``batch_size``, ``eval_images`` and the
        alarm thresholds.

    Notes
    -----
    The generated images come from the same noise at every evaluation, and the monitor draws
    from its own random generator, so monitoring does not change training.
    """

    def __init__(self, config):
        self.config = config
        self.features = RandomFeatures()  # moved to the models' device at the first evaluation
        self.history = defaultdict(list)
        self.streaks = defaultdict(int)
        self.fired = set()

    def restore(self, evaluations, alarms):
        """Continue a resumed run: the signals of its past evaluations, and the alarms that already fired.

        The consecutive-evaluation counts start again from 0.
        """
        for signals in evaluations:
            self._remember(signals)
        self.fired.update(alarm["name"] for alarm in alarms)

    def _remember(self, signals):
        for name, value in signals.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.history[name].append(value)

    def __call__(self, context):
        """The signals of one evaluation, with the alarms that fire now under ``"alarms"``."""
        self.features.to(context.device)
        return self.observe(measure(context, self.config, self.features), context.counters.images_seen)

    def observe(self, signals, images_seen):
        """Remember the signals of one evaluation; return them with the alarms that fire now under ``"alarms"``.

        ``images_seen`` (real images shown to the critic so far) holds back the alarms until
        ``alarm_after_images``.
        """
        self._remember(signals)
        return {**signals, "alarms": self._alarms(signals, images_seen)}

    def observe_training(self, means, images_seen):
        """Read one ``train`` line: the alarms that fire now (a list of dicts).

        For the GAN losses the discriminator's training loss L_D = −E log D(x) − E log(1 − D(G(z)))
        gives the JS lower bound log 2 − L_D / 2 of `divergences.js_from_discriminator` at no cost,
        at every line: ``vanishing_gradient`` fires when it is within ``saturation_margin`` of log 2
        at ``alarm_patience`` lines in a row (after ``alarm_after_images``), without waiting for the
        evaluations. The WGAN losses' lines raise nothing.

        Parameters
        ----------
        means : dict of str to float
            The line's means; ``loss_d`` is read.
        images_seen : int
            Real images shown to the critic so far.
        """
        alarms = []
        if not LOSS_SPECS[self.config.loss].probability:
            return alarms
        loss_d = means.get("loss_d", math.nan)
        bound = math.log(2) - loss_d / 2
        holds = (math.isfinite(loss_d)  # a line without a finite loss is not saturated: the streak breaks
                 and images_seen >= self.config.alarm_after_images and bound >= math.log(2) - self.config.saturation_margin)
        self._rule(alarms, "vanishing_gradient", holds,
                   f"the discriminator is saturated: its training loss {loss_d:.4g} puts the JS bound at "
                   f"{bound:.4f} nats (log 2 = 0.6931) at {self.config.alarm_patience} train lines in a row; the "
                   f"generator's gradient vanishes (gan-minimax) or stops carrying information.",
                   {"js_bound_train": bound, "loss_d": loss_d}, streak="vanishing_gradient (train lines)")
        return alarms

    def _rule(self, alarms, name, holds, message, evidence, *, patience=None, streak=None):
        """Count ``holds`` in a row (under ``streak``, default ``name``).

        Appends alarm ``name`` to ``alarms`` when the count first reaches ``patience`` (default
        ``alarm_patience``) and the alarm has not fired yet.
        """
        streak = streak or name
        self.streaks[streak] = self.streaks[streak] + 1 if holds else 0
        if self.streaks[streak] >= (patience or self.config.alarm_patience) and name not in self.fired:
            self.fired.add(name)
            alarms.append({"name": name, "message": message, **evidence})

    def _alarms(self, signals, images_seen):
        config, alarms = self.config, []

        def rule(name, holds, message, patience=None):
            self._rule(alarms, name, holds, message, {k: v for k, v in signals.items() if k in _EVIDENCE[name]},
                       patience=patience)

        if not signals["finite"]:
            rule("diverged", True, "the generator's images are NaN or infinite.", patience=1)
            return alarms
        warm = images_seen >= config.alarm_after_images
        if "js_bound" in signals:
            gradient = min([_fraction_of_peak(signals[name], self.history[name])
                            for name in ("grad_norm_g", "grad_norm_x") if name in signals], default=0.0)
            rule("vanishing_gradient",
                 warm and signals["js_bound"] >= math.log(2) - config.saturation_margin and gradient < config.gradient_collapse,
                 f"the discriminator is saturated: JS bound {signals['js_bound']:.4f} nats (log 2 = 0.6931) and a gradient "
                 f"norm at {gradient:.1%} of its peak; the generator is no longer learning.")
        diversity = _diversity_ratio(signals["diversity_fake"], signals["diversity_real"])
        collapsed = diversity < config.collapse_diversity and _fallen(signals["diversity_fake"], self.history["diversity_fake"], config)
        if "modes_covered" in signals:
            collapsed = collapsed or (signals["modes_covered"] < config.collapse_modes * signals["modes_real"]
                                      and _fallen(signals["modes_covered"], self.history["modes_covered"], config))
        rule("mode_collapse", warm and collapsed,
             f"mode collapse: generated images are {diversity:.0%} as diverse as real ones"
             + (f" and cover {signals['modes_covered']} of {signals['modes_real']} modes." if "modes_covered" in signals else "."))
        distances = self.history["sliced_pixels" if "sliced_pixels" in signals else "sliced_samples"]
        recent = distances[-config.alarm_patience - 1:]
        rising = (len(recent) == config.alarm_patience + 1 and all(b > a for a, b in zip(recent, recent[1:]))
                  and distances[-1] >= (1 + config.divergence_rise) * min(distances))
        rule("diverged", warm and rising,
             f"training is diverging: the sliced distance to the real {'images' if 'sliced_pixels' in signals else 'samples'} rose at each of the last {config.alarm_patience} "
             f"evaluations, to {distances[-1]:.4g} from a low of {min(distances):.4g}.", patience=1)
        return alarms


def _fallen(value, history, config):
    """True if ``value`` is at most ``collapse_drop`` of the best value so far (a generator that got worse)."""
    return value <= config.collapse_drop * max(history)


def _diversity_ratio(fake, real):
    """How diverse generated images are relative to real ones; real images without spread (all
    identical, or only one) count as matched by generated ones without spread, outdone by any other."""
    if real > 0:
        return fake / real
    return 1.0 if fake == 0 else math.inf


def _fraction_of_peak(value, history):
    peak = max(history)
    return value / peak if peak > 0 else 1.0


_EVIDENCE = {
    "vanishing_gradient": ("js_bound", "grad_norm_g", "grad_norm_x"),
    "mode_collapse": ("diversity_fake", "diversity_real", "modes_covered", "modes_real"),
    "diverged": ("sliced_pixels", "sliced_samples", "finite"),
}


def measure(context, config, features):
    """The signals of one evaluation of the trainer's run (a dict of floats and ints, and ``"finite"``).

    ``features`` is the feature network of the feature-space metrics, on the models' device.
    """
    generator, critic, device = context.generator, context.critic, context.device
    real = to_float(context.data.holdout[: config.eval_images])
    other = context.data.holdout[config.eval_images: 2 * config.eval_images]
    noise = torch.randn(config.eval_images, config.nz, 1, 1, generator=torch.Generator().manual_seed(config.seed + 1))
    with torch.no_grad():
        fake = generator(noise.to(device)).float()
    gradient_noise = torch.randn(config.batch_size, config.nz, 1, 1,
                                 generator=torch.Generator().manual_seed(config.seed + 2)).to(device)
    labels = context.data.holdout_labels
    return sample_signals(real, fake, LOSS_SPECS[config.loss], critic=critic, features=features,
                          generator_gradient=lambda: generator_gradient_norm(generator, critic, gradient_noise,
                                                                             LOSS_SPECS[config.loss]),
                          labels=None if labels is None else labels[: config.eval_images].numpy(),
                          other_real=to_float(other) if len(other) == len(real) else None)


def sample_signals(real, fake, spec, *, critic=None, scores=None, features=None, generator_gradient=None, labels=None,
                   other_real=None):
    """The signals between real and generated samples: those of the module docstring that the arguments allow.

    Parameters
    ----------
    real, fake : torch.Tensor
        Images (N, C, H, W) in [-1, 1], or points (N, D), on one device; ``fake`` may hold NaN
        (then the only signal is ``finite``: False).
    spec : trainers.losses.LossSpec
        The loss: whether the critic's outputs are logits of a probability (GAN) or scores (WGAN).
    critic : torch.nn.Module, optional
        The critic: its outputs on both samples give the loss's estimate and ``grad_norm_x``.
    scores : (torch.Tensor, torch.Tensor), optional
        Without a critic, its outputs on ``real`` and on ``fake``, for the loss's estimate.
    features : torch.nn.Module, optional
        The feature network of ``fd_features``, ``kid_features`` and ``coverage_features``, for
        images of 3 channels.
    generator_gradient : callable, optional
        Returns ‖∇θ L_G‖ (``grad_norm_g``).
    labels : numpy.ndarray, optional
        Attribute labels of the real procedural faces: mode coverage and ``kl_attributes``.
    other_real : torch.Tensor, optional
        As many other real samples as ``real``: the sliced distance between the two real sets is
        the floor a generator as good as the data would reach (``sliced_pixels_floor`` or
        ``sliced_samples_floor``).
    """
    if not torch.isfinite(fake).all():
        return {"finite": False}
    signals = {"finite": True}
    if critic is not None:
        with torch.no_grad():
            real_out = critic(real).float()
        fake_out, signals["grad_norm_x"] = _scores_and_input_gradient(critic, fake, spec)
        scores = real_out, fake_out
    if scores is not None:
        real_out, fake_out = (torch.as_tensor(score).detach().float().flatten() for score in scores)
        if not (torch.isfinite(real_out).all() and torch.isfinite(fake_out).all()):
            return {"finite": False}
        if spec.probability:
            signals["js_bound"] = float(js_from_discriminator(real_out, fake_out))
        else:
            signals["w_estimate"] = float(critic_w1_estimate(real_out, fake_out))

    images = fake.dim() == 4
    real_points, fake_points = (_pixels(real), _pixels(fake)) if images else _points(real, fake)
    suffix = "pixels" if images else "samples"
    signals[f"sliced_{suffix}"] = float(sliced(real_points, fake_points, p=1, seed=0))
    if other_real is not None:
        other_points = _pixels(other_real) if images else _points(real, other_real)[1]
        signals[f"sliced_{suffix}_floor"] = float(sliced(real_points, other_points, p=1, seed=0))
    signals[f"sinkhorn_{suffix}"] = float(sinkhorn(real_points, fake_points, p=2, eps=SINKHORN_EPS))
    if images:
        levels = patch_sliced(real, fake, patches_per_image=32, n_projections=128, seed=0)
        signals["sliced_patches"] = float(levels.mean())
        signals["sliced_patches_levels"] = [float(level) for level in levels]
        if features is not None and real.shape[1] == 3:
            with torch.no_grad():
                signals.update(_feature_signals(features(to_uint8(real)).double(), features(to_uint8(fake)).double(),
                                                "features"))
    else:
        signals.update(_feature_signals(real_points, fake_points, "samples"))
    if generator_gradient is not None:
        signals["grad_norm_g"] = generator_gradient()
    signals["diversity_fake"] = _diversity(fake_points)
    signals["diversity_real"] = _diversity(real_points)

    if labels is not None:
        coverage = mode_coverage(fake, labels)
        signals.update(modes_covered=coverage.modes_covered, modes_total=coverage.modes_total,
                       modes_real=len(set(modes_of_labels(labels).tolist())),
                       kl_attributes=float(coverage.kl_attributes))
    return signals


def _pixels(images):
    """(N, 3, S, S) images as (N, 768) points: 16 x 16 average-pooled, scaled to RMS per pixel.

    They stay on the images' device, where the models run, so that the distances do not wait for a copy:
    float64 on the CPU, float32 elsewhere (the distances' float32 results are within 1e-3 of float64, or warn).
    """
    return pooled_pixels(images, torch.float64 if images.device.type == "cpu" else torch.float32)


def _points(real, fake):
    """(N, D) real and generated samples as points in units of the real ones' RMS pairwise distance.

    Like the pixel points, whose distances are RMS pixel differences, they give the distances and
    Sinkhorn's eps one scale whatever the data's: float64 on the CPU, float32 elsewhere.
    """
    dtype = torch.float64 if real.device.type == "cpu" else torch.float32
    real, fake = real.to(dtype), fake.to(dtype)
    spread = math.sqrt(2 * float(real.var(0, unbiased=False).sum()))  # the RMS distance between two real points
    scale = spread if spread > 0 else 1.0
    return real / scale, fake / scale


def _feature_signals(real, fake, space):
    """FD, KID and coverage between real and generated (N, D) features, named ``fd_<space>`` and so on.

    Each metric is that of `trainers.evaluate`, except KID, which is MMD² on all the points (they
    are fewer than KID's subsets).
    """
    fewest, signals = min(len(real), len(fake)), {}
    if fewest >= 2:  # a Gaussian fit and an unbiased MMD need two points a side
        signals[f"fd_{space}"] = float(frechet(real, fake))
        signals[f"kid_{space}"] = float(mmd(real, fake, kernel="polynomial"))
    if fewest > COVERAGE_K:
        signals[f"coverage_{space}"] = float(prdc(real, fake, k=COVERAGE_K).coverage)
    return signals


def _diversity(points):
    """Mean pairwise Euclidean distance among (N, D) points; 0 for a single point (no spread)."""
    return float(torch.pdist(points).mean()) if len(points) > 1 else 0.0


def generator_gradient_norm(generator, critic, noise, spec):
    """‖∇θ L_G‖ over all the generator's parameters that require gradients, at ``noise``.

    ``spec.generator_loss`` is applied to the critic's outputs on the generated batch.
    """
    loss = spec.generator_loss(critic(generator(noise)).float().flatten())
    parameters = [p for p in generator.parameters() if p.requires_grad]
    gradients = torch.autograd.grad(loss, parameters, allow_unused=True)
    norms = [torch.linalg.vector_norm(g) for g in gradients if g is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def _scores_and_input_gradient(critic, fake, spec):
    """The critic's scores on generated images x, and the mean ‖∇x D(x)‖ over them.

    D is the probability sigmoid(score) for the GAN losses, the score itself for the WGANs.
    """
    images = fake.detach().requires_grad_(True)
    scores = critic(images).float()
    outputs = torch.sigmoid(scores) if spec.probability else scores
    (gradient,) = torch.autograd.grad(outputs.sum(), images)
    return scores.detach(), float(gradient.flatten(1).norm(dim=1).mean())
