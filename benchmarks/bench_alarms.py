"""The monitor's alarms on real failures: healthy runs, induced failures, detection delay against practitioners' rules.

A fixed suite of short runs of the bundled trainer at the quick preset (32x32 faces, small
DCGANs), each with a recorded cause (docs/monitor.md reports the results):

- healthy: gan, wgan and wgan-gp x 2 seeds, on the procedural faces and, when
  ``../shared/data/anime-faces.zip`` (or ``--anime PATH``) exists, on the anime faces;
- induced failures, on the procedural faces, x the same 2 seeds, each with the alarm that should answer it:
  the discriminator winning (its learning rate x10) with gan-minimax and with gan
  (vanishing_gradient); the generator's learning rate x50 (diverged or mode_collapse); NaN in
  the generator's weights halfway (diverged); a generator that from halfway maps all noise to
  3 images (mode_collapse); a WGAN with a momentum optimiser (Adam, lr 1e-4, beta1 = 0.5) and
  n_critic = 1, which the WGAN paper warns against (diverged or mode_collapse); two generator
  updates, each on fresh noise, per critic update (diverged or mode_collapse).

Ground truth is read off each run's own samples. A run is *failing* at an evaluation when it
has fallen from its own best so far (`_fallen`: under half the most modes it covered or half
its most diversity, or a sliced distance above 1.25x its lowest), or when it is worse than its
twin after as many real images (where the twin got that far): a sliced distance above 1.25x the
twin's, or modes covered below 0.75x. The twin is the healthy suite's procedural run of the
same family and seed: `gan` for the GAN losses (on these faces it collapses itself, so for them
the comparison is weak) and `wgan` for the WGANs. Real images, not generator steps: with
n_critic = 1 a run takes a generator step per batch of real images where the WGAN twin takes
one per five, so at equal generator steps it has seen a fifth of the data. A run meant healthy
is healthy if its last evaluation has not fallen (and it ended finite); false alarms are
counted on the runs healthy by that test. An induced failure's onset is its injection step
where it is injected at a known step (the NaN, the collapse to 3 images); otherwise the first
evaluation from which on the run is failing at every evaluation. A cause that never makes its
run fail has no onset, and an alarm on that run is a false one. The delay is the first expected
alarm's step minus the onset. The baseline is the practitioners' rules, read off the same run's
metrics: the discriminator's loss below 0.05 (GAN losses), ‖∇θ L_G‖ above 100, a negative
critic loss, a NaN; both it and the monitor wait for ``alarm_after_images`` real images (but
for a NaN). A rule that fires on a healthy run is a false alarm; the baseline's delay is that
of the earliest rule that raised none (the table shows the earliest of all four as well).

Run:  .venv/bin/python benchmarks/bench_alarms.py [--quick] [--epochs E] [--only healthy|failures]
"""

import dataclasses
import json
import math
import statistics
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from _timing import parse_args, report
from trainers import train as train_module
from trainers.config import PRESETS, TrainConfig
from trainers.models import Generator
from trainers.train import train

ANIME = Path(__file__).resolve().parents[2] / "shared" / "data" / "anime-faces.zip"
SEEDS = (0, 1)
HEALTHY = ("gan", "wgan", "wgan-gp")
ONSET_DISTANCE = 1.25  # sliced distance above this multiple of the twin's (or of its own lowest): failing
ONSET_MODES = 0.75  # modes covered below this multiple of the twin's: failing
BASELINE_LOSS_D = 0.05
BASELINE_GRADIENT = 100.0
COLLAPSED_IMAGES = 3
COLLAPSED_MODES = 1 / 2  # a run meant healthy ending with less than this share of its most modes (or diversity): collapsed


@dataclasses.dataclass(frozen=True)
class Failure:
    """An induced failure: its settings, the alarms that answer it, and how it is induced (``None``: settings only)."""

    loss: str
    settings: dict
    expected: tuple
    injection: str | None = None


FAILURES = {
    "discriminator wins (gan-minimax, critic lr x10)": Failure("gan-minimax", {"critic_lr_factor": 10.0},
                                                               ("vanishing_gradient",)),
    "discriminator wins (gan, critic lr x10)": Failure("gan", {"critic_lr_factor": 10.0}, ("vanishing_gradient",)),
    "generator lr x50 (gan)": Failure("gan", {"lr": 2e-4 * 50, "critic_lr_factor": 1 / 50},
                                      ("diverged", "mode_collapse")),
    "NaN in the generator halfway (wgan)": Failure("wgan", {}, ("diverged",), injection="nan"),
    "generator drops modes halfway (wgan)": Failure("wgan", {}, ("mode_collapse",), injection="collapse"),
    "WGAN with Adam (beta1 0.5) and n_critic 1": Failure("wgan", {"n_critic": 1}, ("diverged", "mode_collapse"),
                                                         injection="momentum"),
    "2 generator updates per critic update (wgan, n_critic 1)": Failure("wgan", {"n_critic": 1},
                                                                        ("diverged", "mode_collapse"),
                                                                        injection="two_generator_updates"),
}


def options(parser):
    parser.add_argument("--epochs", type=int, help="epochs of 3,200 real images per run (default 20; 2 with --quick)")
    parser.add_argument("--only", choices=("healthy", "failures"), help="one part only (failures need the healthy twins)")
    parser.add_argument("--anime", type=Path, default=ANIME, help=f"the anime faces zip (default {ANIME}, if present)")


def config_for(args, loss, seed, data="", **settings):
    """The quick preset, ``epochs`` of 3,200 images, monitor on, nothing but metrics written."""
    config = TrainConfig(**PRESETS["quick"], loss=loss, seed=seed, data=data, progress=False, tensorboard=False,
                         log_every=5)
    if args.quick:
        config = dataclasses.replace(config, image_size=16, ngf=8, ndf=8, procedural_images=600, holdout_images=60,
                                     eval_images=32, eval_every=5, alarm_after_images=0)
    return dataclasses.replace(config, epochs=args.epochs, **settings)


def run(config, injection=None):
    """Train ``config`` (with ``injection``); return its metrics lines, and the seconds it took."""
    with tempfile.TemporaryDirectory() as out, ExitStack() as stack:
        if injection is not None:
            stack.enter_context(INJECTIONS[injection](_halfway(config)))
        started = time.perf_counter()
        train(dataclasses.replace(config, out=str(Path(out) / "run")))
        seconds = time.perf_counter() - started
        lines = [json.loads(line) for line in (Path(out) / "run" / "metrics.jsonl").read_text().splitlines()]
    return lines, seconds


def _halfway(config):
    """The generator step halfway through the run."""
    resolved = config.resolved()
    return config.epochs * config.epoch_images // (resolved.batch_size * resolved.n_critic) // 2


@contextmanager
def _nan_at(step):
    """At generator step ``step``, the generator's first weight becomes NaN (after its optimiser's step)."""
    original = train_module._optimisers

    def optimisers(config, spec, generator, critic):
        optimizer_g, optimizer_d = original(config, spec, generator, critic)
        count = {"steps": 0}

        def inject(optimizer, args, kwargs):
            count["steps"] += 1
            if count["steps"] == step:
                with torch.no_grad():
                    next(generator.parameters()).fill_(math.nan)

        optimizer_g.register_step_post_hook(inject)
        return optimizer_g, optimizer_d

    with mock.patch.object(train_module, "_optimisers", optimisers):
        yield


@contextmanager
def _collapse_at(step):
    """From generator step ``step`` on, the generator maps every noise vector to one of 3 fixed ones."""
    original = train_module._optimisers
    state = {"steps": 0}

    class Collapsing(Generator):
        def forward(self, noise):
            if state["steps"] >= step:
                prototypes = torch.randn(COLLAPSED_IMAGES, *noise.shape[1:], generator=torch.Generator().manual_seed(7))
                noise = prototypes.to(noise.device)[noise.flatten(1)[:, 0].abs().mul(1000).long() % COLLAPSED_IMAGES]
            return super().forward(noise)

    def optimisers(config, spec, generator, critic):
        optimizer_g, optimizer_d = original(config, spec, generator, critic)
        optimizer_g.register_step_post_hook(lambda *_: state.update(steps=state["steps"] + 1))
        return optimizer_g, optimizer_d

    with mock.patch.object(train_module, "Generator", Collapsing), \
            mock.patch.object(train_module, "_optimisers", optimisers):
        yield


@contextmanager
def _momentum(step):
    """Both networks trained by Adam (lr 1e-4, betas 0.5 and 0.9) instead of RMSProp (lr 5e-5); weight clipping kept."""
    def optimisers(config, spec, generator, critic):
        return (torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.5, 0.9)),
                torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.5, 0.9)))

    with mock.patch.object(train_module, "_optimisers", optimisers):
        yield


@contextmanager
def _two_generator_updates(step):
    """After each generator update, a second one on fresh noise through the same critic: 2 generator updates per critic update."""
    original = train_module._optimisers

    def optimisers(config, spec, generator, critic):
        optimizer_g, optimizer_d = original(config, spec, generator, critic)
        single = optimizer_g.step
        noise_rng = torch.Generator().manual_seed(config.seed + 3)

        def twice():
            single()
            noise = torch.randn(config.batch_size, config.nz, 1, 1, generator=noise_rng)
            loss = spec.generator_loss(critic(generator(noise.to(next(generator.parameters()).device))).float())
            optimizer_g.zero_grad(set_to_none=True)
            loss.backward()  # the critic is frozen for the generator's update: only the generator gets gradients
            single()

        optimizer_g.step = twice
        return optimizer_g, optimizer_d

    with mock.patch.object(train_module, "_optimisers", optimisers):
        yield


INJECTED_HALFWAY = ("nan", "collapse")  # the injections that start at a known step (the others change settings)
INJECTIONS = {"nan": _nan_at, "collapse": _collapse_at, "momentum": _momentum,
              "two_generator_updates": _two_generator_updates}


def alarms_of(lines):
    """[(name, step)] of the monitor's alarms, and ``diverged`` at the step of a NaN stop."""
    found = [(line["name"], line["step"]) for line in lines if line["kind"] == "alarm"]
    end = [line for line in lines if line["kind"] == "end"]
    if end and end[-1]["reason"] == "non_finite" and not any(name == "diverged" for name, _ in found):
        found.append(("diverged", end[-1]["step"]))
    return found


def baseline_of(lines, config):
    """{rule: the step it first holds} of the practitioners' rules that hold somewhere in the run."""
    warm = config.alarm_after_images
    probability = config.loss.startswith("gan")
    first = {}

    def holds(rule, step):
        first.setdefault(rule, step)

    for line in lines:
        if line["kind"] == "end" and line["reason"] == "non_finite":
            holds("NaN", line["step"])
        if any(isinstance(v, float) and not math.isfinite(v) for v in line.values()):
            holds("NaN", line["step"])
        if line.get("images_seen", 0) < warm:
            continue
        if line["kind"] == "train" and probability and line["loss_d"] < BASELINE_LOSS_D:
            holds("discriminator loss near 0", line["step"])
        if line["kind"] == "train" and line["loss_d"] < 0:
            holds("negative critic loss", line["step"])
        if line["kind"] == "eval" and line.get("grad_norm_g", 0) > BASELINE_GRADIENT:
            holds("gradient norm above 100", line["step"])
    return first


def _first(rules, excluded=()):
    """(rule, step) of the earliest of ``rules`` not in ``excluded``, or None."""
    kept = [(step, rule) for rule, step in rules.items() if rule not in excluded]
    return (min(kept)[1], min(kept)[0]) if kept else None


def _delay(steps):
    return "-" if steps is None else "never" if steps == math.inf else f"{steps:g}"


def _shown(found):
    return f"{found[0]} at {found[1]}" if found else "none"


def onset_of(lines, twin, injected_at):
    """The ground-truth onset step: ``injected_at``, or the first evaluation from which on the run is failing.

    Failing at an evaluation (`failing`): worse than its ``twin`` without the cause after as many
    real images (the twin's curve interpolated), or fallen from its own best (`_fallen`).
    ``None``: the run never failed for good.
    """
    if injected_at is not None:
        return injected_at
    verdicts = failing(lines, twin)
    for index, (step, _) in enumerate(verdicts):
        if all(worse for _, worse in verdicts[index:]):
            return step
    return None


def failing(lines, twin):
    """[(step, whether the run is failing there)] at each finite evaluation of ``lines``.

    The twin is compared after the same number of real images, not generator steps: a run with
    fewer critic steps per generator step takes more generator steps per image.
    """
    evals = _evaluations(lines)
    reference = _evaluations(twin)
    seen = [line["images_seen"] for line in reference]
    twin_distances = [line["sliced_pixels"] for line in reference]
    twin_modes = [line.get("modes_covered") for line in reference]
    verdicts = []
    for index, line in enumerate(evals):
        worse = False
        if seen[0] <= line["images_seen"] <= seen[-1]:
            worse = line["sliced_pixels"] > ONSET_DISTANCE * np.interp(line["images_seen"], seen, twin_distances)
            if "modes_covered" in line:
                worse = worse or line["modes_covered"] < ONSET_MODES * np.interp(line["images_seen"], seen, twin_modes)
        verdicts.append((line["step"], worse or _fallen(evals[:index + 1]) is not None))
    return verdicts


def _evaluations(lines):
    return [line for line in lines if line["kind"] == "eval" and line.get("finite", True)]


def healthy(args, data):
    """The healthy runs' table, their metrics lines by (data, loss, seed), and the baseline rules that fired on them."""
    rows, lines_of, false_rules = [], {}, set()
    for name, source in data.items():
        for loss in HEALTHY:
            for seed in SEEDS:
                config = config_for(args, loss, seed, source)
                lines, seconds = run(config)
                lines_of[(name, loss, seed)] = lines
                ours, baseline = alarms_of(lines), baseline_of(lines, config.resolved())
                truth = ground_truth(lines)
                if truth == "healthy":
                    false_rules.update(baseline)
                steps = max(line["step"] for line in lines)
                rows.append({"part": "healthy", "data": name, "loss": loss, "seed": seed, "generator steps": steps,
                             "evaluations": sum(line["kind"] == "eval" for line in lines), "ground truth": truth,
                             "monitor alarms": ", ".join(f"{n} at {s}" for n, s in ours) or "none",
                             "baseline rules": ", ".join(f"{r} at {s}" for r, s in baseline.items()) or "none",
                             "seconds": seconds})
    watched = [row for row in rows if row["ground truth"] == "healthy"]
    false_ours = sum(row["monitor alarms"] != "none" for row in watched)
    false_baseline = sum(row["baseline rules"] != "none" for row in watched)
    rows.append({"part": "healthy", "data": "all", "ground truth": f"{len(watched)} of {len(rows)} runs healthy",
                 "generator steps": sum(row["generator steps"] for row in watched),
                 "monitor alarms": f"false alarms in {false_ours} of {len(watched)} healthy runs",
                 "baseline rules": f"false alarms in {false_baseline} of {len(watched)} healthy runs "
                                   f"({', '.join(sorted(false_rules)) or 'no rule'})",
                 "target": "0 false alarms in the runs healthy by ground truth", "met": false_ours == 0})
    return rows, lines_of, false_rules


def ground_truth(lines):
    """Whether a run meant to be healthy was, by its samples: 'healthy', or how it failed (`_fallen` at its end)."""
    evals = _evaluations(lines)
    ends = [line for line in lines if line["kind"] == "end"]
    if ends and ends[-1]["reason"] == "non_finite" or not evals:
        return "diverged (NaN)"
    return _fallen(evals) or "healthy"


def _fallen(evals):
    """How the last of ``evals`` has fallen from the best of them, or ``None``.

    Collapsed: it covers fewer than `COLLAPSED_MODES` of the most modes covered (procedural
    faces), or its generated images are less than that share as diverse as at their most: the
    run lost what it had learnt. Diverged: its sliced distance is above `ONSET_DISTANCE` times
    the lowest.
    """
    last = evals[-1]
    if "modes_covered" in last:
        most = max(line["modes_covered"] for line in evals)
        if last["modes_covered"] < COLLAPSED_MODES * most:
            return f"collapsed: {last['modes_covered']} modes at the end, {most} at most"
    most_diverse = max(line["diversity_fake"] for line in evals)
    if last["diversity_fake"] < COLLAPSED_MODES * most_diverse:
        return f"collapsed: diversity {last['diversity_fake']:.3g} at the end, {most_diverse:.3g} at most"
    lowest = min(line["sliced_pixels"] for line in evals)
    if last["sliced_pixels"] > ONSET_DISTANCE * lowest:
        return f"diverged: sliced distance {last['sliced_pixels']:.3g}, {last['sliced_pixels'] / lowest:.2f}x its lowest"
    return None


def failures(args, twins, false_rules):
    rows, ours_delays, baseline_delays = [], [], []
    for cause, failure in FAILURES.items():
        for seed in SEEDS:
            row, delays = _failure_row(args, cause, failure, seed, twins, false_rules)
            rows.append(row)
            if delays is not None:
                ours_delays.append(delays[0])
                baseline_delays.append(delays[1])
    failed = [row for row in rows if row["onset (ground truth)"] != "none"]
    detected = sum(row["right alarm"] for row in failed)
    # a cause that produced no failure should raise nothing: an alarm there is a false one
    false_alarms = sum(row["monitor alarms"] != "none" for row in rows if row not in failed)
    rows.append({"part": "failures", "cause": "all",
                 "onset (ground truth)": f"{len(failed)} of {len(rows)} runs failed ({len(FAILURES)} causes x "
                                         f"{len(SEEDS)} seeds)",
                 "monitor alarms": f"false alarms on {false_alarms} of {len(rows) - len(failed)} runs that did not fail",
                 "right alarm": f"{detected} of {len(failed)}",
                 "delay": f"median {_delay(statistics.median(ours_delays))}" if ours_delays else "-",
                 "baseline delay": f"median {_delay(statistics.median(baseline_delays))}" if baseline_delays else "-",
                 "target": "every failure its right alarm, no alarm where none failed; median delay below the baseline's",
                 "met": detected == len(failed) and false_alarms == 0 and bool(ours_delays) and bool(baseline_delays)
                 and statistics.median(ours_delays) < statistics.median(baseline_delays)})
    return rows


def _failure_row(args, cause, failure, seed, twins, false_rules):
    """Run one induced failure: its table row, and (our delay, the baseline's) where it has an onset, else None."""
    config = config_for(args, failure.loss, seed, **failure.settings)
    injected_at = _halfway(config) if failure.injection in INJECTED_HALFWAY else None
    lines, seconds = run(config, failure.injection)
    family = "gan" if failure.loss.startswith("gan") else "wgan"
    onset = onset_of(lines, twins[("procedural", family, seed)], injected_at)
    ours = alarms_of(lines)
    right = [(name, step) for name, step in ours if name in failure.expected]
    rules = baseline_of(lines, config.resolved())
    baseline = _first(rules, false_rules)  # the rules that raised no false alarm on the healthy runs
    # with a ground-truth onset, a miss is a detection never made (an infinite delay)
    delay = None if onset is None else right[0][1] - onset if right else math.inf
    baseline_delay = None if onset is None else baseline[1] - onset if baseline else math.inf
    row = {"part": "failures", "cause": cause, "seed": seed, "expected": " or ".join(failure.expected),
           "onset (ground truth)": onset if onset is not None else "none",
           "monitor alarms": ", ".join(f"{n} at {s}" for n, s in ours) or "none",
           "right alarm": bool(right) if onset is not None else "- (no failure)", "delay": _delay(delay),
           "baseline, all rules": _shown(_first(rules)), "baseline without false-alarm rules": _shown(baseline),
           "baseline delay": _delay(baseline_delay), "generator steps": max(line["step"] for line in lines),
           "seconds": seconds}
    return row, None if onset is None else (delay, baseline_delay)


def main():
    args = parse_args(__doc__, repeats=1, extra=options)
    args.epochs = args.epochs or (2 if args.quick else 20)
    data = {"procedural": ""}
    if args.anime.exists() and not args.quick and args.only != "failures":
        data["anime"] = str(args.anime)
    healthy_rows, twins, false_rules = healthy(args, data)
    if args.only in (None, "healthy"):
        report("alarms_healthy", healthy_rows, args, notes=_notes(args))
    if args.only in (None, "failures"):
        report("alarms_failures", failures(args, twins, false_rules), args, notes=_notes(args))


def _notes(args):
    sizes = ("--quick: 16x16 faces, DCGAN widths 8, eval_every 5, no warm-up: a check that the suite runs, not a "
             "measurement" if args.quick else
             "quick preset (32x32 faces, DCGAN widths 32), eval_every 20, alarm_after_images 10,000")
    return [f"{sizes}; steps are generator steps.", *NOTES]


NOTES = ["delay: the first expected alarm's step minus the ground-truth onset step (negative: the alarm came first); "
         "'never': missed, counted as an infinite delay in the median; '-': no ground-truth failure in the run.",
         "baseline delay: of the practitioners' rules that raised no alarm on any healthy run (a rule that fires on "
         "healthy runs detects nothing); 'baseline, all rules' shows the earliest of all four."]


if __name__ == "__main__":
    main()
