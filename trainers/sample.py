"""Draw samples from a run's generator: single images into a folder, or one grid.

    python -m trainers.sample RUN --n 64 --out samples.png     # one grid
    python -m trainers.sample RUN --n 500 --out samples/        # 0000.png, 0001.png, ...

In your own code, the generator of a run (in eval mode, on the CPU unless ``device`` says)::

    from trainers.sample import load_generator
    generator = load_generator("runs/wgan-20260101-120000")
    images = generator(generator.noise(16))      # (16, 3, S, S) in [-1, 1]

A checkpoint is also an ordinary PyTorch file: ``torch.load("RUN/checkpoints/last.pt",
weights_only=True)["generator"]`` is the generator's state dict (docs/run_format.md).
"""

from trainers.errors import interrupt_in_one_line

if __name__ == "__main__":  # before torch imports: Ctrl-C there ends in one line
    interrupt_in_one_line("python -m trainers.sample")

import json
from pathlib import Path

import torch

from .checkpoint import load_checkpoint
from .config import config_from_saved, pick_device
from .errors import OneLineParser, command
from .files import write_atomically
from .grid import Image, save_grid
from .images import to_uint8
from .models import Generator
from .runlog import RunLog


def load_generator(run, *, device="cpu"):
    """The generator of the run in ``run``, from its last checkpoint, in eval mode on ``device``.

    Parameters
    ----------
    run : str or path-like
        A run directory: ``config.json`` and ``checkpoints/last.pt``.
    device : str or torch.device, optional
        Where the generator goes. Default ``"cpu"``.

    Returns
    -------
    Generator
        ``generator(generator.noise(n))`` gives n images (n, 3, S, S) in [-1, 1].

    Raises
    ------
    FileNotFoundError
        If ``run`` has no ``config.json`` or no checkpoint.
    ValueError
        If either is damaged, or the checkpoint holds no generator of the config's shape.
    """
    path = Path(run)
    config = run_config(path)
    state = load_checkpoint(RunLog.checkpoint_in(path))
    generator = Generator.of(config)
    try:
        generator.load_state_dict(state["generator"])
    except (KeyError, RuntimeError, TypeError) as error:
        raise ValueError(f"the checkpoint of {str(path)!r} does not hold a generator of its config "
                         f"({type(error).__name__}).") from None
    generator.step = state["counters"]["step"]  # the generator step it was saved at, for descriptions
    return generator.to(device).eval()


def run_config(path):
    """The `TrainConfig` of the run directory ``path``, checked; FileNotFoundError or ValueError naming the file."""
    file = Path(path) / "config.json"
    if not file.is_file():
        raise FileNotFoundError(f"{str(path)!r} is not a run directory: it has no config.json.")
    try:
        return config_from_saved(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"{str(file)!r} cannot be read as a run's config: {error}") from None
    except RecursionError:  # JSON nested deeper than Python's parser goes
        raise ValueError(f"{str(file)!r} cannot be read as a run's config: it is nested too deeply.") from None


def generate(generator, count, *, seed=0, batch=250):
    """``count`` images of ``generator`` from seeded noise, as (count, S, S, 3) uint8 on the CPU.

    The noise is drawn at once, so the images depend on ``seed`` and not on ``batch``.

    Raises
    ------
    ValueError
        If the generator produces NaN or infinite images.
    """
    noise = generator.noise(count, generator=torch.Generator().manual_seed(seed))  # drawn at once: batch-free
    device = next(generator.parameters()).device
    parts = []
    with torch.no_grad():
        for codes in noise.split(batch):
            images = generator(codes.to(device)).float()
            if not torch.isfinite(images).all():
                raise ValueError("the generator produces NaN or infinite images.")
            parts.append(to_uint8(images).permute(0, 2, 3, 1).cpu())
    return torch.cat(parts)


def main(argv=None):
    parser = OneLineParser(prog="python -m trainers.sample", description=__doc__.splitlines()[0])
    parser.add_argument("run", metavar="RUN", help="a run directory (config.json and checkpoints/last.pt)")
    parser.add_argument("--n", type=int, default=64, help="how many images (default 64)")
    parser.add_argument("--out", type=Path, required=True,
                        help="FILE.png: one grid of all the images; anything else: a folder of NNNN.png files")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, cuda:1, mps")
    args = parser.parse_args(argv)
    written = command(parser, lambda: _sample(args))
    print(written)


def _sample(args):
    if args.n < 1:
        raise ValueError(f"--n should be a positive integer. Instead, received {args.n}.")
    if args.seed < 0:
        raise ValueError(f"--seed should be >= 0. Instead, received {args.seed}.")
    generator = load_generator(args.run, device=pick_device(args.device))
    images = generate(generator, args.n, seed=args.seed)
    what = f"{args.n} image(s) of {args.run} (generator step {generator.step}, seed {args.seed})"
    if args.out.suffix.lower() == ".png":
        save_grid(images.permute(0, 3, 1, 2).float().div(127.5).sub(1), args.out)
        return f"{what}: grid {args.out}"
    args.out.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images.numpy()):
        write_atomically(args.out / f"{index:04d}.png", lambda file, image=image: Image.fromarray(image).save(file, "PNG"))
    return f"{what}: {args.out}/0000.png ... {args.n - 1:04d}.png"


if __name__ == "__main__":
    main()
