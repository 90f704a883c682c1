"""The monitor's alarms: a rule each, read off the signals of the evaluations so far and off the train lines.

`Alarms` keeps what the rules need (every signal's history, each rule's streak of consecutive
evaluations, the alarms that fired) and says which alarms fire at an evaluation or a train line.
Each alarm fires at most once per run; none but a NaN fires before ``alarm_after_images`` real
images. The thresholds are a `Thresholds` record (docs/monitor.md, "Alarms").
Each message says in one sentence what a person would call the failure, the evidence, and what to try.
"""

import dataclasses
import math
from collections import defaultdict

from divergences.checks import check_choice, check_count, check_integer, check_nonnegative

from .losses import LOSS_SPECS

ALARMS = {
    "vanishing_gradient": "discriminator saturated: JS bound within saturation_margin of log 2 and the generator's "
                          "gradient norm (the discriminator's input gradient where it is not measured) below "
                          "gradient_collapse of its peak since the first evaluation, for alarm_patience "
                          "evaluations; or the JS "
                          "bound of the discriminator's training loss within saturation_margin of log 2 at "
                          "saturation_lines train lines in a row (the trainer's runs; GAN losses)",
    "mode_collapse": "diversity fallen to collapse_drop of its best so far, and either below collapse_diversity "
                     "of the real images' or, with modes covered below collapse_modes of the real images' and "
                     "fallen to collapse_drop of their best, for alarm_patience evaluations",
    "diverged": "generated images not finite, or the sliced pixel distance rising at each of alarm_patience "
                "evaluations to divergence_rise above its lowest value",
    "critic_unbounded": "the critic's W estimate rising at each of 2 x alarm_patience evaluations, to critic_growth "
                        "above its value before them, while the sliced distance reached no new low and is less than "
                        "critic_progress of the way to the real-vs-real floor (WGAN losses)",
    "not_learning": "after learning_budget_images real images, the sliced distance less than learning_progress "
                    "of the way from its first value to the real-vs-real floor (0 without a floor)",
}
"""The alarms and the rule of each; the thresholds are those of `Thresholds`."""

EVIDENCE = {
    "vanishing_gradient": ("js_bound", "grad_norm_g", "grad_norm_x"),
    "mode_collapse": ("diversity_fake", "diversity_real", "modes_covered", "modes_real"),
    "diverged": ("sliced_pixels", "sliced_samples", "finite"),
    "critic_unbounded": ("w_estimate", "sliced_pixels", "sliced_samples"),
    "not_learning": ("sliced_pixels", "sliced_samples", "sliced_pixels_floor", "sliced_samples_floor"),
}
"""The signals an alarm line carries as its evidence."""


_FRACTIONS = {"gradient_collapse": 1.0, "collapse_diversity": 1.0, "collapse_modes": 1.0, "collapse_drop": 1.0,
              "critic_progress": 1.0, "learning_progress": 1.0}
"""The thresholds that are fractions (of a peak, of the real samples', of the way to the floor), with the largest
value that still means something."""


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The alarms' thresholds, checked when made (a named TypeError or ValueError); docs/monitor.md gives each rule.

    The trainer's config builds one (`Thresholds.of(config)`, the same names as
    command-line flags), `trainers.watch.Watch` from its keywords.
    """

    alarm_after_images: int = 10_000  # no alarm but a NaN before the critic has seen this many real images
    alarm_patience: int = 3  # consecutive evaluations a condition must hold
    saturation_margin: float = 0.02  # vanishing_gradient: JS bound within this many nats of log 2 ...
    gradient_collapse: float = 0.1  # ... and a gradient norm below this fraction of its peak since the first evaluation
    saturation_lines: int = 20  # ... or the training loss's bound that close to log 2 at this many train lines in a row
    collapse_diversity: float = 0.25  # mode_collapse: diversity below this fraction of the real samples' ...
    collapse_modes: float = 0.5  # ... or modes covered below this fraction of the real images' ...
    collapse_drop: float = 0.5  # ... with the diversity (and the modes) at most this fraction of their best
    divergence_rise: float = 0.5  # diverged: the sliced distance rising to this fraction above its lowest
    critic_growth: float = 0.25  # critic_unbounded: the W estimate up by this fraction over 2 x alarm_patience evaluations ...
    critic_progress: float = 0.5  # ... with the sliced distance less than this fraction of the way to its floor
    learning_budget_images: int = 30_000  # not_learning: real images after which the distance must have come ...
    learning_progress: float = 0.15  # ... this fraction of the way from its first value to the real-vs-real floor

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "int" or field.type is int:
                minimum = 1 if field.name in ("alarm_patience", "saturation_lines") else 0
                checked = check_count(field.name, value) if minimum else check_integer(field.name, value)
            else:
                checked = check_nonnegative(field.name, value)
                if field.name in _FRACTIONS and checked > _FRACTIONS[field.name]:
                    raise ValueError(f"`{field.name}` should be at most {_FRACTIONS[field.name]:.4g} (a fraction: "
                                     f"of a peak, of the real samples', of the way). Instead, received {value!r}.")
            object.__setattr__(self, field.name, checked)

    @classmethod
    def of(cls, settings):
        """The thresholds of any object with attributes of their names (a `trainers.config.TrainConfig`)."""
        return cls(**{field.name: getattr(settings, field.name) for field in dataclasses.fields(cls)})


class Alarms:
    """The alarm rules of one run: the history of its signals, the rules' streaks, the alarms that fired.

    Parameters
    ----------
    loss : {"gan", "gan-minimax", "wgan", "wgan-gp"}
        What the critic's outputs are: GAN losses have a JS bound, WGAN losses a W estimate.
    thresholds : Thresholds
    """

    def __init__(self, loss, thresholds):
        self.loss = check_choice("loss", loss, tuple(LOSS_SPECS))
        if not isinstance(thresholds, Thresholds):
            raise TypeError(f"`thresholds` should be a trainers.alarms.Thresholds. Instead, received a "
                            f"{type(thresholds).__name__}.")
        self.thresholds = thresholds
        self.history = defaultdict(list)
        self.streaks = defaultdict(int)
        self.fired = set()

    def restore(self, evaluations, alarms):
        """Continue a resumed run from its past evaluations and the alarms that fired; streaks start again from 0."""
        for signals in evaluations:
            self._remember(signals)
        self.fired.update(alarm["name"] for alarm in alarms)

    def _remember(self, signals):
        for name, value in signals.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.history[name].append(value)

    def evaluation(self, signals, images_seen):
        """Remember the signals of one evaluation; return the alarms that fire now (a list of dicts)."""
        self._remember(signals)
        alarms = []
        if not signals["finite"]:
            self._fire_if(alarms, "diverged", True, "Diverged: the generator's samples are NaN or infinite. Try a "
                          "lower learning rate, then resume from the last checkpoint.", signals, patience=1)
            return alarms
        if signals.get("critic_finite") is False:
            self._fire_if(alarms, "diverged", True, "Diverged: the critic's outputs are NaN or infinite (the "
                          "generated samples are finite). Try a lower critic learning rate, then resume from the "
                          "last checkpoint.", signals, patience=1)
            return alarms
        warm = images_seen >= self.thresholds.alarm_after_images
        for name, rule in _RULES.items():
            holds, message, patience = rule(self, signals, images_seen)
            self._fire_if(alarms, name, warm and holds, message, signals, patience=patience)
        return alarms

    def train_line(self, means, images_seen):
        """Read one ``train`` line: the alarms that fire now (a list of dicts).

        For the GAN losses the discriminator's training loss L_D = −E log D(x) − E log(1 − D(G(z)))
        gives the JS lower bound log 2 − L_D / 2 of `divergences.js_from_discriminator` at no cost,
        at every line: ``vanishing_gradient`` fires when it is within ``saturation_margin`` of log 2
        at ``saturation_lines`` lines in a row (after ``alarm_after_images``), without waiting for the
        evaluations. The WGAN losses' lines raise nothing.
        """
        alarms = []
        if not LOSS_SPECS[self.loss].probability:
            return alarms
        loss_d = means.get("loss_d", math.nan)
        bound = LOSS_SPECS[self.loss].training_estimate({"loss_d": loss_d})["js_bound_train"]
        holds = (math.isfinite(loss_d)  # a line without a finite loss is not saturated: the streak breaks
                 and images_seen >= self.thresholds.alarm_after_images and bound >= math.log(2) - self.thresholds.saturation_margin)
        self._fire_if(alarms, "vanishing_gradient", holds,
                      f"The discriminator has won: its training loss {loss_d:.4g} puts the JS bound at {bound:.4f} "
                      f"nats (log 2 = 0.6931) at {self.thresholds.saturation_lines} train lines in a row, so the generator's "
                      f"gradient vanishes or stops carrying information. {_TRY_SATURATED}",
                      {"js_bound_train": bound, "loss_d": loss_d}, streak="vanishing_gradient (train lines)",
                      patience=self.thresholds.saturation_lines)
        return alarms

    def _fire_if(self, alarms, name, holds, message, signals, *, patience=None, streak=None):
        """Count ``holds`` in a row (under ``streak``, default ``name``); fire ``name`` once when the count reaches ``patience``.

        ``patience`` defaults to ``alarm_patience``. The alarm carries the signals of `EVIDENCE`
        (or ``signals`` itself when it is not a signal dict of an evaluation).
        """
        streak = streak or name
        self.streaks[streak] = self.streaks[streak] + 1 if holds else 0
        if self.streaks[streak] >= (patience or self.thresholds.alarm_patience) and name not in self.fired:
            self.fired.add(name)
            evidence = signals if streak != name else {k: v for k, v in signals.items() if k in EVIDENCE[name]}
            alarms.append({"name": name, "message": message, **evidence})

    def _distance_key(self, signals):
        return "sliced_pixels" if "sliced_pixels" in signals else "sliced_samples"


_TRY_SATURATED = ("Try a lower discriminator learning rate, the non-saturating loss (gan), or a WGAN-GP.")


def _vanishing_gradient(alarms, signals, images_seen):
    """The discriminator saturated: JS bound near log 2 and a gradient collapsed from its peak (GAN losses)."""
    if "js_bound" not in signals:
        return False, "", None
    limits, history = alarms.thresholds, alarms.history
    # The generator's own gradient when it is measured: with the non-saturating loss it stays large while the
    # discriminator's input gradient collapses, and the generator goes on learning. The peak is the training's,
    # not the untrained networks' at the first evaluation.
    name = next((name for name in ("grad_norm_g", "grad_norm_x") if name in signals), None)
    gradient = _fraction_of_peak(signals[name], history[name][1:]) if name else 0.0
    holds = signals["js_bound"] >= math.log(2) - limits.saturation_margin and gradient < limits.gradient_collapse
    return holds, (f"The discriminator has won: JS bound {signals['js_bound']:.4f} nats (log 2 = 0.6931) and a "
                   f"gradient at {gradient:.1%} of its peak, so the generator no longer learns. {_TRY_SATURATED}"), None


def _mode_collapse(alarms, signals, images_seen):
    """Diversity fallen to half its best, and low (or, on the procedural faces, few modes left)."""
    limits, history = alarms.thresholds, alarms.history
    diversity = _diversity_ratio(signals["diversity_fake"], signals["diversity_real"])
    few = diversity < limits.collapse_diversity
    if "modes_covered" in signals:
        few = few or (signals["modes_covered"] < limits.collapse_modes * signals["modes_real"]
                      and _fallen(signals["modes_covered"], history["modes_covered"], limits))
    collapsed = few and _fallen(signals["diversity_fake"], history["diversity_fake"], limits)
    modes = f" and cover {signals['modes_covered']} of {signals['modes_real']} modes" if "modes_covered" in signals else ""
    what = "images" if "sliced_pixels" in signals else "samples"
    return collapsed, (f"Mode collapse: the generated {what} are {diversity:.0%} as diverse as real ones{modes}, down "
                       f"from their best. Try a lower learning rate or a WGAN-GP, or go back to a checkpoint from "
                       f"before the drop."), None


def _diverged(alarms, signals, images_seen):
    """The sliced distance rose at each of the last alarm_patience evaluations, to divergence_rise above its lowest."""
    limits = alarms.thresholds
    distances = alarms.history[alarms._distance_key(signals)]
    recent = distances[-limits.alarm_patience - 1:]
    rising = (len(recent) == limits.alarm_patience + 1 and all(b > a for a, b in zip(recent, recent[1:]))
              and distances[-1] >= (1 + limits.divergence_rise) * min(distances))
    what = "images" if "sliced_pixels" in signals else "samples"
    return rising, (f"Diverging: the sliced distance to the real {what} rose at each of the last "
                    f"{limits.alarm_patience} evaluations, to {distances[-1]:.4g} from a low of {min(distances):.4g}. "
                    f"Try a lower learning rate, or go back to the checkpoint of the low."), 1


def _critic_unbounded(alarms, signals, images_seen):
    """The WGAN critic's estimate grows while the samples make no progress: it is not Lipschitz."""
    limits, history = alarms.thresholds, alarms.history
    if LOSS_SPECS[alarms.loss].probability or "w_estimate" not in signals:
        return False, "", None
    estimates, distances = history["w_estimate"], history[alarms._distance_key(signals)]
    window = 2 * limits.alarm_patience
    if len(estimates) <= window or len(distances) <= window:
        return False, "", 1
    recent, before = estimates[-window - 1:], estimates[-window - 1]
    growing = (all(b > a for a, b in zip(recent, recent[1:])) and before > 0
               and recent[-1] >= (1 + limits.critic_growth) * before)
    stalled = min(distances[-window:]) >= min(distances[:-window])  # no new low of the distance in the window
    far = _progress(alarms, signals) < limits.critic_progress
    return growing and stalled and far, (
        f"The critic is not Lipschitz: its W estimate rose at each of the last {window} evaluations, from "
        f"{before:.4g} to {recent[-1]:.4g}, while the samples came no closer to the real ones, so its gradient "
        f"tells the generator nothing useful. Try a smaller weight clip or a gradient penalty (wgan-gp)."), 1


def _not_learning(alarms, signals, images_seen):
    """After learning_budget_images, the sliced distance has come less than learning_progress of the way to the floor."""
    limits = alarms.thresholds
    key = alarms._distance_key(signals)
    distances = alarms.history[key]
    progress = _progress(alarms, signals)
    holds = len(distances) > 1 and images_seen >= limits.learning_budget_images and progress < limits.learning_progress
    return holds, (f"The generator is not learning: after {images_seen:,} real images the sliced distance to the "
                   f"real {'images' if key == 'sliced_pixels' else 'samples'} has come {progress:.0%} of the way "
                   f"from its first value to the real-vs-real floor. Try a larger generator learning rate or a "
                   f"stronger critic, and check that the real data are what you expect."), 1


_RULES = {"vanishing_gradient": _vanishing_gradient, "mode_collapse": _mode_collapse, "diverged": _diverged,
          "critic_unbounded": _critic_unbounded, "not_learning": _not_learning}
"""Each rule: (alarms, signals, images_seen) -> (holds, message, patience or None for alarm_patience)."""


def _progress(alarms, signals):
    """How far the lowest sliced distance so far has come from the first toward the real-vs-real floor (0 without one)."""
    key = alarms._distance_key(signals)
    distances = alarms.history[key]
    floor = signals.get(f"{key}_floor", 0.0)
    first = distances[0]
    return (first - min(distances)) / (first - floor) if first > floor else 1.0


def _fallen(value, history, limits):
    """True if ``value`` is at most ``collapse_drop`` of the best value so far (a generator that got worse)."""
    return value <= limits.collapse_drop * max(history)


def _diversity_ratio(fake, real):
    """How diverse generated images are relative to real ones; real images without spread (all
    identical, or only one) count as matched by generated ones without spread, outdone by any other."""
    if real > 0:
        return fake / real
    return 1.0 if fake == 0 else math.inf


def _fraction_of_peak(value, history):
    peak = max(history, default=0.0)
    return value / peak if peak > 0 else 1.0
