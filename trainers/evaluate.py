"""Evaluate generated images against real ones, offline: FD, KID, precision/recall/density/coverage and pixel distances.

    python -m trainers.evaluate REAL FAKE [--features random|pixels|PATH] [--n N] [--json FILE]

REAL and FAKE are each a folder or a zip of images, a run directory of this trainer (images are
then generated from its checkpoint), or ``procedural`` (the embedded procedural faces, freshly
drawn). See docs/evaluation.md.
"""

from trainers.errors import interrupt_in_one_line

if __name__ == "__main__":  # before torch imports: Ctrl-C there ends in one line
    interrupt_in_one_line("python -m trainers.evaluate")

import json
import os
import sys
import time
from pathlib import Path

import torch

from divergences import frechet, kid, patch_sliced, prdc, sliced
from divergences.checks import available_memory

from .config import pick_device
from .errors import OneLineParser, command
from .features import extract, feature_network, pooled_pixels
from .files import write_atomically
from .images import ImageFiles, load_images, to_float
from .procedural import make_faces
from .sample import generate, load_generator, run_config

KEYS = ("fd", "kid", "kid_std", "precision", "recall", "density", "coverage", "sliced", "patch_swd")
"""The numbers of an evaluation, in the order of its table and under these keys in its JSON."""

DESCRIPTIONS = {
    "fd": "Fréchet distance of the features' Gaussian fits (FID's formula)",
    "kid": "KID: unbiased MMD², cubic kernel, mean over subsets of 1000",
    "kid_std": "standard deviation of KID over its subsets",
    "precision": "generated images inside the real k-NN balls (quality)",
    "recall": "real images inside the generated k-NN balls (diversity)",
    "density": "real balls per generated image / k (about 1 if matched)",
    "coverage": "real images with a generated image in their ball",
    "sliced": "sliced W1 between 16 x 16 pooled pixels",
    "patch_swd": "sliced W1 between local patches (Progressive GAN's SWD)",
}

MIN_SIZE = 16
"""The smallest ``--size``: that of the smallest procedural faces and networks."""

DRAWN_IMAGES = 10_000
"""Images generated from a run, or drawn from the procedural faces, when ``--n`` is not given."""

PROCEDURAL_SEED = 1_000_003
"""Seed of the procedural faces drawn as a source: not a seed training draws its faces with."""


def evaluate(real, fake, *, features="random", device="cpu", k=5, seed=0, progress=False):
    """All the numbers of `KEYS` for two sets of images.

    Parameters
    ----------
    real, fake : (N, S, S, 3) and (M, S, S, 3) numpy.ndarray of uint8
        The images, channels last, of one size; N, M > k.
    features : str, optional
        ``"random"``, ``"pixels"`` or the path of a TorchScript feature extractor (see
        `trainers.features`). Default ``"random"``.
    device : torch.device or str, optional
        Where the features and the distances are computed.
    k : int, optional
        The neighbour of precision, recall, density and coverage. Default 5.
    seed : int, optional
        Seed of KID's subsets and of the sliced distances' directions and patches.
    progress : bool, optional
        Show progress bars on stderr.

    Returns
    -------
    dict
        The float of every key of `KEYS`.
    """
    network = feature_network(features, device)
    real_features = extract(network, real, device, progress=progress, what="real images")
    fake_features = extract(network, fake, device, progress=progress, what="generated images")
    return {**feature_metrics(real_features, fake_features, k=k, seed=seed), **pixel_metrics(real, fake, device, seed=seed)}


def feature_metrics(real_features, fake_features, *, k=5, seed=0):
    """FD, KID (with its std), precision, recall, density and coverage of two (N, D) feature sets, as floats.

    The features are taken to float64 first: every metric accumulates in float64.
    """
    real_features, fake_features = real_features.double(), fake_features.double()
    numbers = {"fd": float(frechet(real_features, fake_features))}
    numbers["kid"], numbers["kid_std"] = (float(v) for v in kid(real_features, fake_features, seed=seed))
    numbers.update({name: float(value) for name, value in prdc(real_features, fake_features, k=k)._asdict().items()})
    return numbers


def pixel_metrics(real, fake, device, *, seed=0):
    """``sliced`` and ``patch_swd`` (see `DESCRIPTIONS`) of two sets of (N, S, S, 3) uint8 images, as floats."""
    real_images, fake_images = _as_float_images(real, device), _as_float_images(fake, device)
    return {"sliced": float(sliced(pooled_pixels(real_images), pooled_pixels(fake_images), p=1, seed=seed)),
            "patch_swd": float(patch_sliced(real_images, fake_images, patches_per_image=32, n_projections=128,
                                            seed=seed).mean())}


def load_source(source, *, n=None, size=None, device="cpu", seed=0):
    """The images of a source: (N, S, S, 3) uint8, and one line describing them.

    ``source`` is ``"procedural"``, a run directory (``config.json`` and a checkpoint), or a
    folder or zip of images. ``n`` caps the images read from a folder or zip (the first in sorted
    order), and sets the number drawn from a run or the procedural faces (default
    `DRAWN_IMAGES`). ``size``: the side images are read at (default: a run's own, else 64).
    """
    if str(source) == "procedural":
        count = n or DRAWN_IMAGES
        images, _ = make_faces(count, size=size or 64, seed=PROCEDURAL_SEED + seed)
        return images, f"{count:,} procedural faces (seed {PROCEDURAL_SEED + seed})"
    path = Path(source)
    if path.is_dir() and (path / "config.json").exists():
        return _generated(path, n or DRAWN_IMAGES, size, device, seed)
    images = load_images(path, size=size or 64, limit=n)
    return images, f"{len(images):,} images from {path}"


def _check_memory(args, size):
    """ValueError before anything is loaded if the images asked for cannot fit in the memory available.

    Counted: N uint8 images of side ``size`` a source (N = ``--n``, or `DRAWN_IMAGES` drawn from a run
    or the procedural faces; for a folder or zip, its image files, at most ``--n``), twice over for
    the copies made while they are read or generated.
    """
    counts = [_images_asked(source, args.n) for source in (args.real, args.fake)]
    needed = 2 * sum(count * size * size * 3 for count in counts if count)
    available = available_memory()
    if available is not None and needed > available:
        images = " + ".join(f"{count:,}" for count in counts if count)
        raise ValueError(f"the images asked for need about {needed / 2**30:,.1f} GiB ({images} images of {size} x {size} x 3 "
                         f"bytes, twice over), more than the {available / 2**30:,.1f} GiB available; lower --n or --size.")


MAX_COUNT = 2**62
"""The largest --n taken (counts are int64)."""


def _within(path, folder):
    """Whether ``path`` is ``folder`` or inside it, symbolic links resolved."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _images_asked(source, n):
    """How many images ``source`` gives: ``n`` or `DRAWN_IMAGES` generated or drawn; a folder's or zip's image
    files, at most ``n``; None where it cannot be told (a source that does not exist: loading it says so)."""
    if str(source) == "procedural" or run_image_size(source):
        return n or DRAWN_IMAGES
    try:
        with ImageFiles(source) as files:
            count = len(files.names)
    except (OSError, ValueError):
        return n
    return min(count, n) if n else count


def run_image_size(source):
    """The image size of a run directory, or None if ``source`` is not one."""
    path = Path(source)
    if not (path.is_dir() and (path / "config.json").exists()):
        return None
    return run_config(path).image_size


def _generated(path, count, size, device, seed):
    """``count`` images from the generator of the run in ``path``, as uint8."""
    config = run_config(path)
    if size is not None and size != config.image_size:
        raise ValueError(f"the run {str(path)!r} generates {config.image_size} x {config.image_size} images, "
                         f"not {size} x {size}; evaluate at --size {config.image_size}.")
    generator = load_generator(path, device=device)
    try:
        images = generate(generator, count, seed=seed)
    except ValueError:
        raise ValueError(f"the generator of {str(path)!r} produces NaN or infinite images.") from None
    return images.numpy(), f"{count:,} images generated by {path} (step {generator.step})"


def _as_float_images(images, device):
    """(N, S, S, 3) uint8 numpy images as (N, 3, S, S) floats in [-1, 1] on ``device``."""
    return to_float(torch.from_numpy(images).to(device))


def floor(real, *, features="random", device="cpu", k=5, seed=0, progress=False):
    """The numbers of `evaluate` between the two halves of ``real``: what a generator as good as the data scores.

    At half the sample size: FD's bias grows as samples shrink, so this floor is at or above the
    one at the full size (KID is unbiased); None when ``real`` has fewer than 2 (k + 1) images.
    """
    half = len(real) // 2
    if half <= k:
        return None
    return evaluate(real[:half], real[half:2 * half], features=features, device=device, k=k, seed=seed, progress=progress)


READING = ("lower is better for fd, kid, sliced and patch_swd, higher for precision, recall and coverage "
           "(density about 1); a generator as good as the data scores near the real-vs-real floor.")
"""The one-line reading guide printed under the table."""


def table(numbers, *, features, floor_numbers=None):
    """The numbers as lines of text, one per key, with the real-vs-real floor and what each measures."""
    floor_header = f" {'real-vs-real':>12}" if floor_numbers else ""
    lines = [f"{'metric':<10} {'value':>12}{floor_header}  ({features} features for fd .. coverage)"]
    for key in KEYS:
        floor_value = f" {floor_numbers[key]:>12.6g}" if floor_numbers else ""
        lines.append(f"{key:<10} {numbers[key]:>12.6g}{floor_value}  {DESCRIPTIONS[key]}")
    lines.append("reading: " + READING)
    if floor_numbers is None:
        lines.append("real-vs-real floor: not computed (REAL holds too few images to split in two halves).")
    else:
        lines.append("real-vs-real: REAL's two halves against each other, at half the sample size (FD's floor at the "
                     "full size is lower).")
    if all(numbers[key] == 0 for key in ("precision", "coverage")):
        lines.append("precision and coverage are 0: no generated image lies inside any real image's k-nearest-neighbour "
                     "ball, so in these features the samples are farther from the real images than the real images are "
                     "from one another (compare the real-vs-real column); PRDC cannot rank such samples, FD and KID can.")
    return "\n".join(lines)


def main(argv=None):
    parser = OneLineParser(prog="python -m trainers.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("real", metavar="REAL", help="real images: a folder, a zip, a run directory or 'procedural'")
    parser.add_argument("fake", metavar="FAKE", help="generated images: a folder, a zip, a run directory or 'procedural'")
    parser.add_argument("--features", default="random", metavar="random|pixels|PATH",
                        help="feature network: the fixed random network (default), pooled pixels, or a TorchScript "
                             "file taking uint8 (N, 3, H, W) images (the Inception file of StyleGAN2-ADA/clean-fid)")
    parser.add_argument("--n", type=int, help=f"at most N images from a folder or zip; N generated or drawn "
                                              f"(default: all; {DRAWN_IMAGES:,} generated)")
    parser.add_argument("--size", type=int, help=f"side the images are read at, at least {MIN_SIZE} (default: the run's, else 64)")
    parser.add_argument("--k", type=int, default=5, help="neighbour of precision/recall/density/coverage (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated noise, KID's subsets and the "
                                                            "sliced directions (default 0)")
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, cuda:1, mps")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers to FILE as JSON")
    args = parser.parse_args(argv)
    numbers, floor_numbers, summary = command(parser, lambda: _run(args))
    print(summary)
    print(table(numbers, features=args.features, floor_numbers=floor_numbers))
    return numbers


def _run(args):
    """Check the arguments, load both sources, evaluate, write the JSON: (numbers, a summary line)."""
    for name in ("n", "size", "k"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} should be a positive integer. Instead, received {value}.")
    if args.size is not None and args.size < MIN_SIZE:
        raise ValueError(f"--size should be at least {MIN_SIZE} (the smallest side the faces and networks take). "
                         f"Instead, received {args.size}.")
    if args.size is not None and args.size & (args.size - 1):
        raise ValueError(f"--size should be a power of two (16, 32, 64, ...): the distances between patches and the "
                         f"random features halve the images down to 16. Instead, received {args.size}.")
    if args.seed < 0:
        raise ValueError(f"--seed should be >= 0. Instead, received {args.seed}.")
    for name, source in (("REAL", args.real), ("FAKE", args.fake)):
        if not source.strip():
            raise ValueError(f"{name} should be a folder, a zip, a run directory or 'procedural'. Instead, received "
                             f"an empty path.")
    if args.json is not None and args.json.is_dir():
        raise ValueError(f"--json should name a file to write. Instead, {str(args.json)!r} is a folder.")
    if args.json is not None and args.json.exists() and not args.json.is_file():
        raise ValueError(f"--json should name a file to write. Instead, {str(args.json)!r} is not a regular file.")
    for name, source in (("REAL", args.real), ("FAKE", args.fake)):
        if args.json is not None and source != "procedural" and _within(args.json, Path(source)):
            raise ValueError(f"--json should name a file outside the images it evaluates. Instead, "
                             f"{str(args.json)!r} would overwrite {name} ({source!r}) or a file in it.")
    if args.n is not None and args.n > MAX_COUNT:
        raise ValueError(f"--n should be at most {MAX_COUNT:,}. Instead, received {args.n:,}.")
    if args.json is not None and not args.json.parent.exists():
        raise FileNotFoundError(2, "No such directory", str(args.json.parent))
    device = pick_device(args.device)
    progress = sys.stderr.isatty()
    size = args.size or run_image_size(args.real) or run_image_size(args.fake)
    _check_memory(args, size or 64)
    started = time.perf_counter()
    real, real_what = load_source(args.real, n=args.n, size=size, device=device, seed=args.seed)
    fake, fake_what = load_source(args.fake, n=args.n, size=size, device=device, seed=args.seed + 1)
    for name, images in (("REAL", real), ("FAKE", fake)):
        if len(images) <= args.k:
            raise ValueError(f"{name} holds {len(images)} image(s); at least k + 1 = {args.k + 1} are needed.")
    numbers = evaluate(real, fake, features=args.features, device=device, k=args.k, seed=args.seed, progress=progress)
    floor_numbers = floor(real, features=args.features, device=device, k=args.k, seed=args.seed, progress=progress)
    seconds = time.perf_counter() - started
    if args.json is not None:
        record = {**numbers, "floor": floor_numbers, "features": args.features, "k": args.k, "n_real": len(real),
                  "n_fake": len(fake), "real": real_what, "fake": fake_what, "seconds": seconds}
        text = (json.dumps(record, indent=2) + "\n").encode()
        write_atomically(args.json, lambda file: file.write(text))  # a stopped run leaves no half a JSON
    return numbers, floor_numbers, f"real: {real_what}\nfake: {fake_what}\n({seconds:.1f} s on {device})"


if __name__ == "__main__":
    main()
