"""The benchmarks' ground truth: what a person would see in a run's samples, measured apart from the monitor.

The alarm benchmark (`bench_alarms.py`) and the essay benchmark score the monitor against this, so
it shares nothing with the monitor but the generator under test: other images, other noise, other
numbers, and a rule of its own. The rule below was written down and committed before any run of
the benchmarks, and is not tuned after (docs/monitor.md, "The alarm benchmark").

Measurement
-----------
At each evaluation of a benchmark run, `Truth` generates `TRUTH_IMAGES` (1,000) images from noise
of its own (seeded with ``seed + TRUTH_NOISE_SEED``; the monitor's noise is ``seed + 1``) and
compares them with 1,000 real images that neither the trainer nor the monitor ever sees
(`reference_images`): for the procedural faces, a draw of their own (seed `TRUTH_SEED`; the
trainer draws its faces with the run's seed); for a zip of real images, 2,000 images set aside
before the run (`set_aside`), of which the trainer is given none. Both sets go through the
offline evaluator's fixed random network (`trainers.features.RandomFeatures`, docs/evaluation.md)
and give ``truth_fd`` (Fréchet distance), ``truth_kid`` (unbiased MMD², cubic kernel, on all the
images), ``truth_spread`` (the mean distance between two generated images' features over the
mean distance between two reference images'), and ``truth_precision``, ``truth_recall``,
``truth_density``, ``truth_coverage`` (Naeem et al. 2020, k = 5). The *floor* is the same numbers
between the 1,000 reference images and 1,000 other real images, once per data set: what a
generator as good as the data would score.

The rule
--------
At each evaluation a run is in none, one or several of these states (`STATES`), each a failure a
person sees in the samples:

- ``collapsed``: ``truth_spread`` is at most `COLLAPSE_FRACTION` (1/2) of the highest spread the
  run reached so far, and that highest was at least `COLLAPSE_MIN_BEST` (0.1 of the real images'
  spread): the samples lost the variety they had (many alike).
- ``degraded``: ``truth_fd`` is at least `DEGRADE_FACTOR` (2) times the lowest FD of the run so
  far: the samples got clearly worse than they were.
- ``not learning``: once the run has seen `NOT_LEARNING_AFTER` (a quarter) of its planned images,
  it is less than `NOT_LEARNING_PROGRESS` (a quarter) of the way from its first FD (the untrained
  generator) to the floor's FD, ``(F_0 - F_t) / (F_0 - F_floor)``: the samples still look much like
  the untrained generator's.
- ``diverged (NaN)``: the generated images hold NaN or infinity, or the trainer stopped on
  non-finite values.

A run *failed* when it ended on non-finite values, or was in some state at each of its last
`FAILED_EVALUATIONS` (2) evaluations. Its *onset* is the first evaluation of that last unbroken
stretch of evaluations in some state (or the step of the non-finite stop), and the failure a person
sees is every state met in that stretch. A stretch in some state that ends before the run does is
a *passing* failure: the run recovered from it.

One change was made after runs began: the collapse state first read ``truth_coverage`` with the
same constants. On the first two runs of the alarm benchmark (healthy gan and gan-minimax, seed
0) coverage was 0 at every evaluation, precision and recall too, although the gan run's samples
collapsed to one face (its grids): at this scale no generated image falls inside a real image's
5-nearest-neighbour ball in these features, so that state could never hold. The spread ratio
took coverage's place, with the same constants; both runs were discarded and the benchmark
started again. Nothing had been tuned and no held-out run had started.

A second change came after the first four runs of the new start (the healthy runs of seed 0),
from their grids, again before any alarm was tuned and before any held-out run: ``not learning``
first measured the way to the floor on a log scale, ``log(F_0 / F_t) / log(F_0 / F_floor)``. The
wgan run's grids show faces with varied hair colours at 128,000 images, yet its FD (15.9, from
56.2; floor 0.13) was only 21% of the log-way: with a floor 400 times below the start, the log
scale asked for an FD far below where a person sees faces. The way is now measured linearly,
with the same quarter. The rule is applied to the recorded numbers, so no run was repeated.
"""

import dataclasses
import hashlib
import math
import os
import zipfile

import numpy as np
import torch

from divergences import frechet, mmd, prdc
from trainers.data import cache_dir
from trainers.features import RandomFeatures, extract
from trainers.images import ImageFiles, decode_files, to_uint8
from trainers.procedural import make_faces

TRUTH_IMAGES = 1000
"""Generated images, and real reference images, compared at each evaluation; as many real ones make the floor."""

TRUTH_SEED = 2_000_003
"""Seed of the truth's procedural reference faces, and of the choice of the images set aside from a zip."""

TRUTH_NOISE_SEED = 7_000_003
"""The truth's noise is drawn with ``seed + TRUTH_NOISE_SEED``: apart from the run's and the monitor's."""

COVERAGE_K = 5
"""The neighbour of precision, recall, density and coverage."""

COLLAPSE_FRACTION = 0.5
COLLAPSE_MIN_BEST = 0.1
DEGRADE_FACTOR = 2.0
NOT_LEARNING_AFTER = 0.25
NOT_LEARNING_PROGRESS = 0.25
FAILED_EVALUATIONS = 2

NAN = "diverged (NaN)"
STATES = ("collapsed", "degraded", "not learning", NAN)
"""The failures a person sees in the samples, as the rule names them."""


class Truth:
    """The ground truth's measurement at each evaluation of one run.

    Parameters
    ----------
    reference : (N, S, S, 3) numpy.ndarray of uint8
        The real images that neither the trainer nor the monitor sees (`reference_images`).
    seed : int
        The run's seed: the truth's noise is drawn with ``seed + TRUTH_NOISE_SEED``.
    nz : int
        Length of the generator's noise vectors.
    device : torch.device
        Where the generator runs.
    """

    def __init__(self, reference, *, seed, nz, device):
        self.device = torch.device(device)
        self.network = RandomFeatures().to(self.device).eval()
        self.reference = extract(self.network, reference, self.device).double()
        self.noise = torch.randn(TRUTH_IMAGES, nz, 1, 1, generator=torch.Generator().manual_seed(seed + TRUTH_NOISE_SEED))

    def __call__(self, generator):
        """``truth_<metric>`` of the generator's images against the reference; ``{"truth_finite": False}`` on NaN.

        The generator runs as the monitor runs it (in training mode, batch-norm statistics of the
        batch, no gradient); the caller restores its batch-norm buffers.
        """
        with torch.no_grad():
            fake = generator(self.noise.to(self.device)).float()
            if not torch.isfinite(fake).all():
                return {"truth_finite": False}
            features = torch.cat([self.network(to_uint8(part)) for part in fake.split(200)]).double()
        return {"truth_finite": True, **{f"truth_{name}": value for name, value in metrics(self.reference, features).items()}}


class MonitorWithTruth:
    """The monitor, and after it at each evaluation the ground truth (`Truth`), which the monitor never reads;
    ``after()``, if given, is called once each evaluation is done (the campaign's CPU clock)."""

    def __init__(self, monitor, truth_probe, after=None):
        self.monitor, self.truth, self.after = monitor, truth_probe, after

    def __call__(self, context):
        signals = {**self.monitor(context), **self.truth(context.generator)}
        if self.after is not None:
            self.after()
        return signals

    def observe_training(self, means, images_seen):
        return self.monitor.observe_training(means, images_seen)

    def restore(self, evaluations, alarms):
        self.monitor.restore([{key: value for key, value in line.items() if not key.startswith("truth_")}
                              for line in evaluations], alarms)


def metrics(reference, features):
    """FD, KID, spread and PRDC (k = `COVERAGE_K`) between two (N, D) float64 feature sets, as floats."""
    numbers = {"fd": float(frechet(reference, features)), "kid": float(mmd(reference, features, kernel="polynomial")),
               "spread": float(torch.pdist(features).mean() / torch.pdist(reference).mean())}
    numbers.update({name: float(value) for name, value in prdc(reference, features, k=COVERAGE_K)._asdict().items()})
    return numbers


def floor(reference, other, device="cpu"):
    """The truth's numbers between two sets of real images (uint8, channels last): a generator as good as the data."""
    network = RandomFeatures().to(device).eval()
    return metrics(extract(network, reference, device).double(), extract(network, other, device).double())


def reference_images(data, size, count=TRUTH_IMAGES):
    """The truth's real images for a run's ``data``: (reference, floor set), each (``count``, S, S, 3) uint8.

    ``data`` is ``""`` (the procedural faces: a draw of their own) or the path of a zip of real
    images (the images `set_aside` chooses, of which the trainer is given none).
    """
    if not data:
        images, _ = make_faces(2 * count, size=size, seed=TRUTH_SEED)
    else:
        with ImageFiles(data) as files:
            images = decode_files(files, set_aside(files.names)[: 2 * count], size=size)
    return images[:count], images[count:]


def set_aside(names):
    """The 2 x `TRUTH_IMAGES` image names of a data set kept from training: a seeded choice among the sorted names."""
    ordered = sorted(names)
    order = np.random.default_rng(TRUTH_SEED).permutation(len(ordered))
    return [ordered[index] for index in order[: 2 * TRUTH_IMAGES]]


def training_zip(data, limit=None):
    """A zip of ``data``'s images without those `set_aside`, the first ``limit`` of them in a seeded order if given.

    Written once (stored, not recompressed) in ``cache_dir()/benchmarks`` and named by a digest of
    the source's names and the limit; returns its path. This is what the trainer is given.
    """
    with ImageFiles(data) as files:
        names = sorted(files.names)
    kept = sorted(set(names) - set(set_aside(names)))
    if limit is not None:
        order = np.random.default_rng(TRUTH_SEED + 1).permutation(len(kept))
        kept = sorted(kept[index] for index in order[:limit])
    digest = hashlib.sha256("\n".join([str(limit), *names]).encode()).hexdigest()[:12]
    path = cache_dir() / "benchmarks" / f"training-{len(kept)}-{digest}.zip"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")  # two workers may write it at once
        with zipfile.ZipFile(data) as source, zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as target:
            for name in kept:
                target.writestr(name, source.read(name))
        partial.replace(path)
    return str(path)


@dataclasses.dataclass(frozen=True)
class Failure:
    """A failed run: where its failure began and what a person sees.

    Attributes
    ----------
    step, images : int
        The onset: generator step and real images seen at the first evaluation of the final
        stretch in some state (or at the non-finite stop).
    states : tuple of str
        Every state of `STATES` met from the onset on, in the order of `STATES`.
    """

    step: int
    images: int
    states: tuple


def states_of(evaluations, floor_fd, planned_images):
    """The states (a frozenset of `STATES`) of a run at each of its evaluations, by the rule of the module docstring.

    Parameters
    ----------
    evaluations : list of dict
        The run's evaluations in order, each with ``images_seen`` and either ``truth_finite``
        False or ``truth_fd`` and ``truth_spread``.
    floor_fd : float
        The floor's FD for the run's data.
    planned_images : int
        The real images the run was set to see (epochs x epoch_images).
    """
    result, first, lowest, best_spread, broken = [], None, math.inf, 0.0, False
    for line in evaluations:
        broken = broken or not line.get("truth_finite", True)
        if broken:
            result.append(frozenset({NAN}))
            continue
        fd, spread = line["truth_fd"], line["truth_spread"]
        first = fd if first is None else first
        lowest, best_spread = min(lowest, fd), max(best_spread, spread)
        states = set()
        if best_spread >= COLLAPSE_MIN_BEST and spread <= COLLAPSE_FRACTION * best_spread:
            states.add("collapsed")
        if fd >= DEGRADE_FACTOR * lowest:
            states.add("degraded")
        if line["images_seen"] >= NOT_LEARNING_AFTER * planned_images and progress(first, fd, floor_fd) < NOT_LEARNING_PROGRESS:
            states.add("not learning")
        result.append(frozenset(states))
    return result


def progress(first, fd, floor_fd):
    """How far an FD is from the first one towards the floor: 0 at the first, 1 at the floor."""
    if first <= floor_fd:  # the untrained generator already scores as the data does: nothing left to learn
        return 1.0
    return (first - fd) / (first - floor_fd)


def failure_of(evaluations, end, floor_fd, planned_images):
    """The run's `Failure`, or None if it did not fail.

    Parameters
    ----------
    evaluations, floor_fd, planned_images
        As for `states_of`.
    end : dict
        The run's ``end`` line: ``reason``, ``step``, ``images_seen``.
    """
    states = states_of(evaluations, floor_fd, planned_images)
    if end["reason"] == "non_finite":
        evaluations = [*evaluations, {"step": end["step"], "images_seen": end["images_seen"]}]
        states = [*states, frozenset({NAN})]
    stretch = _final_stretch(states)
    if not stretch or (len(stretch) < FAILED_EVALUATIONS and NAN not in states[-1]):
        return None
    onset = evaluations[stretch[0]]
    seen = set().union(*(states[index] for index in stretch))
    return Failure(onset["step"], onset["images_seen"], tuple(state for state in STATES if state in seen))


def passing_failures(evaluations, end, floor_fd, planned_images):
    """[(first, last) evaluation indices] of the stretches in some state that the run recovered from."""
    states = states_of(evaluations, floor_fd, planned_images)
    final = set(_final_stretch(states)) if failure_of(evaluations, end, floor_fd, planned_images) else set()
    stretches, start = [], None
    for index, state in enumerate([*states, frozenset()]):
        if state and start is None:
            start = index
        elif not state and start is not None:
            if start not in final:
                stretches.append((start, index - 1))
            start = None
    return stretches


def _final_stretch(states):
    """The indices of the last unbroken run of non-empty states that reaches the end; empty if the last is empty."""
    stretch = []
    for index in range(len(states) - 1, -1, -1):
        if not states[index]:
            break
        stretch.insert(0, index)
    return stretch
