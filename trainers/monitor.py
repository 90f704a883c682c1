"""The training monitor: signals measured with `divergences` at each evaluation, and the alarms read from them.

Every ``eval_every`` generator steps the trainer calls a `Monitor` with the models and the
held-out real images. It measures (see docs/monitor.md):

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
                          "norm below gradient_collapse of its peak, for alarm_patience evaluations (GAN losses)",
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
        signals = measure(context, self.config, self.features)
        self._remember(signals)
        return {**signals, "alarms": self._alarms(signals, context.counters.images_seen)}

    def _alarms(self, signals, images_seen):
        config, alarms = self.config, []

        def rule(name, holds, message, patience=config.alarm_patience):
            self.streaks[name] = self.streaks[name] + 1 if holds else 0
            if self.streaks[name] >= patience and name not in self.fired:
                self.fired.add(name)
                alarms.append({"name": name, "message": message, **{k: v for k, v in signals.items() if k in _EVIDENCE[name]}})

        if not signals["finite"]:
            rule("diverged", True, "the generator's images are NaN or infinite.", patience=1)
            return alarms
        warm = images_seen >= config.alarm_after_images
        if "js_bound" in signals:
            gradient = min(_fraction_of_peak(signals["grad_norm_g"], self.history["grad_norm_g"]),
                           _fraction_of_peak(signals["grad_norm_x"], self.history["grad_norm_x"]))
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
        distances = self.history["sliced_pixels"]
        recent = distances[-config.alarm_patience - 1:]
        rising = (len(recent) == config.alarm_patience + 1 and all(b > a for a, b in zip(recent, recent[1:]))
                  and distances[-1] >= (1 + config.divergence_rise) * min(distances))
        rule("diverged", warm and rising,
             f"training is diverging: the sliced pixel distance rose at each of the last {config.alarm_patience} "
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
    "diverged": ("sliced_pixels", "finite"),
}


def measure(context, config, features):
    """The signals of one evaluation (a dict of floats and ints, and ``"finite"``), see the module docstring.

    ``features`` is the feature network of the feature-space metrics, on the models' device.
    """
    generator, critic, device = context.generator, context.critic, context.device
    real = to_float(context.data.holdout[: config.eval_images])
    noise = torch.randn(config.eval_images, config.nz, 1, 1, generator=torch.Generator().manual_seed(config.seed + 1))
    with torch.no_grad():
        fake = generator(noise.to(device)).float()
    if not torch.isfinite(fake).all():
        return {"finite": False}
    signals = {"finite": True}
    with torch.no_grad():
        real_out = critic(real).float()
    fake_out, signals["grad_norm_x"] = _scores_and_input_gradient(critic, fake, config)
    if LOSS_SPECS[config.loss].probability:
        signals["js_bound"] = float(js_from_discriminator(real_out, fake_out))
    else:
        signals["w_estimate"] = float(critic_w1_estimate(real_out, fake_out))

    real_pixels, fake_pixels = _pixels(real), _pixels(fake)
    signals["sliced_pixels"] = float(sliced(real_pixels, fake_pixels, p=1, seed=0))
    signals["sinkhorn_pixels"] = float(sinkhorn(real_pixels, fake_pixels, p=2, eps=SINKHORN_EPS))
    levels = patch_sliced(real, fake, patches_per_image=32, n_projections=128, seed=0)
    signals["sliced_patches"] = float(levels.mean())
    signals["sliced_patches_levels"] = [float(level) for level in levels]

    signals.update(_feature_signals(features, context.data.holdout[: config.eval_images], fake))
    signals["grad_norm_g"] = _generator_gradient_norm(generator, critic, config, device)
    signals["diversity_fake"] = _diversity(fake_pixels)
    signals["diversity_real"] = _diversity(real_pixels)

    labels = context.data.holdout_labels
    if labels is not None:
        coverage = mode_coverage(fake, labels[: config.eval_images].numpy())
        signals.update(modes_covered=coverage.modes_covered, modes_total=coverage.modes_total,
                       modes_real=len(set(modes_of_labels(labels[: config.eval_images].numpy()).tolist())),
                       kl_attributes=float(coverage.kl_attributes))
    return signals


def _pixels(images):
    """(N, 3, S, S) images as (N, 768) points: 16 x 16 average-pooled, scaled to RMS per pixel.

    They stay on the images' device, where the models run, so that the distances do not wait for a copy:
    float64 on the CPU, float32 elsewhere (the distances' float32 results are within 1e-3 of float64, or warn).
    """
    return pooled_pixels(images, torch.float64 if images.device.type == "cpu" else torch.float32)


def _feature_signals(features, real, fake):
    """FD, KID and coverage between (N, S, S, 3) uint8 real images and (M, 3, S, S) generated ones in [-1, 1].

    The generated images are rounded to uint8 first, as saved images are; each metric is that of
    `trainers.evaluate`, except KID, which is MMD² on all the images (they are fewer than KID's subsets).
    """
    with torch.no_grad():
        real_features = features(real.permute(0, 3, 1, 2)).double()
        fake_features = features(to_uint8(fake)).double()
    fewest, signals = min(len(real_features), len(fake_features)), {}
    if fewest >= 2:  # a Gaussian fit and an unbiased MMD need two images a side
        signals["fd_features"] = float(frechet(real_features, fake_features))
        signals["kid_features"] = float(mmd(real_features, fake_features, kernel="polynomial"))
    if fewest > COVERAGE_K:
        signals["coverage_features"] = float(prdc(real_features, fake_features, k=COVERAGE_K).coverage)
    return signals


def _diversity(points):
    """Mean pairwise Euclidean distance among (N, D) points; 0 for a single point (no spread)."""
    return float(torch.pdist(points).mean()) if len(points) > 1 else 0.0


def _generator_gradient_norm(generator, critic, config, device):
    """‖∇θ L_G‖ over all generator parameters, on one noise batch (the same at every evaluation)."""
    noise = torch.randn(config.batch_size, config.nz, 1, 1, generator=torch.Generator().manual_seed(config.seed + 2))
    loss = LOSS_SPECS[config.loss].generator_loss(critic(generator(noise.to(device))).float())
    parameters = [p for p in generator.parameters() if p.requires_grad]
    gradients = torch.autograd.grad(loss, parameters)
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gradients])))


def _scores_and_input_gradient(critic, fake, config):
    """The critic's scores on generated images x, and the mean ‖∇x D(x)‖ over them.

    D is the probability sigmoid(score) for the GAN losses, the score itself for the WGANs.
    """
    images = fake.detach().requires_grad_(True)
    scores = critic(images).float()
    outputs = torch.sigmoid(scores) if LOSS_SPECS[config.loss].probability else scores
    (gradient,) = torch.autograd.grad(outputs.sum(), images)
    return scores.detach(), float(gradient.flatten(1).norm(dim=1).mean())
