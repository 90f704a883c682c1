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

and raises the alarms of `trainers.alarms`, each at most once per run.
"""

import math

import torch

from divergences import critic_w1_estimate, frechet, js_from_discriminator, mmd, patch_sliced, prdc, sinkhorn, sliced
from divergences.checks import check_integer

from .alarms import Alarms, Thresholds
from .config import TrainConfig
from .features import RandomFeatures, pooled_pixels
from .images import to_float, to_uint8
from .losses import LOSS_SPECS
from .models import latent
from .modes import mode_coverage, modes_of_labels

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
        if not isinstance(config, TrainConfig):
            raise TypeError(f"`config` should be a trainers.config.TrainConfig. Instead, received a {type(config).__name__}.")
        self.config = config.resolved()  # validated as the trainer's command line is
        self.features = RandomFeatures()  # moved to the models' device at the first evaluation
        self.alarms = Alarms(config.loss, Thresholds.of(config))

    @property
    def history(self):
        """Every numeric signal's values at the evaluations so far (`trainers.alarms.Alarms.history`)."""
        return self.alarms.history

    @property
    def fired(self):
        """The names of the alarms that fired."""
        return self.alarms.fired

    def restore(self, evaluations, alarms):
        """Continue a resumed run: the signals of its past evaluations, and the alarms that already fired.

        The consecutive-evaluation counts start again from 0.
        """
        self.alarms.restore(_dicts("evaluations", evaluations), _dicts("alarms", alarms))

    def __call__(self, context):
        """The signals of one evaluation, with the alarms that fire now under ``"alarms"``."""
        self.features.to(context.device)
        return self.observe(measure(context, self.config, self.features), context.counters.images_seen)

    def observe(self, signals, images_seen):
        """Remember the signals of one evaluation; return them with the alarms that fire now under ``"alarms"``.

        ``images_seen`` (real images shown to the critic so far) holds back the alarms until
        ``alarm_after_images``.
        """
        if not isinstance(signals, dict):
            raise TypeError(f"`signals` should be a dict of signals. Instead, received a {type(signals).__name__}.")
        images_seen = check_integer("images_seen", images_seen)
        needed = ["finite"] if signals.get("finite") is False else ["finite", "diversity_fake", "diversity_real"]
        missing = [name for name in needed if name not in signals]
        if signals.get("finite") is not False and not {"sliced_pixels", "sliced_samples"} & signals.keys():
            missing.append("sliced_pixels or sliced_samples")
        if missing:
            raise ValueError(f"`signals` should hold the signals the alarms read (`sample_signals` gives them). "
                             f"Instead, it lacks {', '.join(missing)}.")
        return {**signals, "alarms": self.alarms.evaluation(signals, images_seen)}

    def observe_training(self, means, images_seen):
        """Read one ``train`` line: the alarms that fire now (a list of dicts), see `trainers.alarms.Alarms.train_line`.

        Parameters
        ----------
        means : dict of str to float
            The line's means; ``loss_d`` is read.
        images_seen : int
            Real images shown to the critic so far.
        """
        if not isinstance(means, dict):
            raise TypeError(f"`means` should be a dict of a train line's means. Instead, received a {type(means).__name__}.")
        loss_d = means.get("loss_d", math.nan)
        if isinstance(loss_d, bool) or not isinstance(loss_d, (int, float)):
            raise TypeError(f"`means['loss_d']` should be a number. Instead, received a {type(loss_d).__name__}.")
        return self.alarms.train_line(means, check_integer("images_seen", images_seen))


def _dicts(name, records):
    """``records`` as a list of dicts (read once: an iterator is not exhausted before use); TypeError naming ``name``."""
    if isinstance(records, (str, bytes, dict)) or not hasattr(records, "__iter__"):
        raise TypeError(f"`{name}` should be a list of dicts. Instead, received a {type(records).__name__}.")
    records = list(records)
    if not all(isinstance(record, dict) for record in records):
        raise TypeError(f"`{name}` should be a list of dicts. Instead, it holds other objects.")
    return records


def measure(context, config, features):
    """The signals of one evaluation of the trainer's run (a dict of floats and ints, and ``"finite"``).

    ``features`` is the feature network of the feature-space metrics, on the models' device.
    """
    generator, critic, device = context.generator, context.critic, context.device
    real = to_float(context.data.holdout[: config.eval_images])
    other = context.data.holdout[config.eval_images: 2 * config.eval_images]
    noise = latent(config.eval_images, config.nz, generator=torch.Generator().manual_seed(config.seed + 1))
    with torch.no_grad():
        fake = generator(noise.to(device)).float()
    gradient_noise = latent(config.batch_size, config.nz, generator=torch.Generator().manual_seed(config.seed + 2)).to(device)
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
        The loss: are the critic's outputs logits of a probability (GAN) or scores (WGAN)?
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
        As many other real samples as ``real``: their sliced distance to ``real`` is the floor a
        generator as good as the data would reach (``sliced_pixels_floor``, ``sliced_samples_floor``).
    """
    if not torch.isfinite(fake).all():
        return {"finite": False}
    signals = {"finite": True, **_critic_signals(real, fake, spec, critic, scores)}

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
    signals.update(diversity_fake=_diversity(fake_points), diversity_real=_diversity(real_points))

    if labels is not None:
        coverage = mode_coverage(fake, labels)
        signals.update(modes_covered=coverage.modes_covered, modes_total=coverage.modes_total,
                       modes_real=len(set(modes_of_labels(labels).tolist())),
                       kl_attributes=float(coverage.kl_attributes))
    return signals


def _critic_signals(real, fake, spec, critic, scores):
    """The loss's estimate (``js_bound`` or ``w_estimate``) and ``grad_norm_x`` from the critic or its scores;
    ``{"critic_finite": False}`` alone if its scores are not finite."""
    signals = {}
    if critic is not None:
        with torch.no_grad():
            real_out = _critic_scores(critic, real)
        fake_out, signals["grad_norm_x"] = _scores_and_input_gradient(critic, fake, spec)
        scores = real_out, fake_out
    if scores is None:
        return signals
    real_out, fake_out = (torch.as_tensor(score).detach().float().flatten() for score in scores)
    if not (torch.isfinite(real_out).all() and torch.isfinite(fake_out).all()):
        return {"critic_finite": False}
    if spec.probability:
        signals["js_bound"] = float(js_from_discriminator(real_out, fake_out))
    else:
        signals["w_estimate"] = float(critic_w1_estimate(real_out, fake_out))
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


def _critic_scores(critic, samples):
    """The critic's float scores on ``samples``, one a sample; TypeError naming `critic` otherwise."""
    scores = critic(samples)
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point() or scores.numel() != len(samples):
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise TypeError(f"`critic` should return one float score per sample, {len(samples)} here. Instead, it "
                        f"returned {got}.")
    return scores.float()


def _scores_and_input_gradient(critic, fake, spec):
    """The critic's scores on generated images x, and the mean ‖∇x D(x)‖ over them.

    D is the probability sigmoid(score) for the GAN losses, the score itself for the WGANs.
    """
    images = fake.detach().requires_grad_(True)
    scores = _critic_scores(critic, images)
    outputs = torch.sigmoid(scores) if spec.probability else scores
    (gradient,) = torch.autograd.grad(outputs.sum(), images)
    return scores.detach(), float(gradient.flatten(1).norm(dim=1).mean())
