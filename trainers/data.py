"""Real images for a run: the user's folder or zip, or the embedded procedural faces, split into train and holdout."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .files import write_atomically
from .images import ImageFiles, StreamingImages, decode_files, load_images, sample_batch
from .procedural import make_faces

DRY_RUN_IMAGES = 64
"""Images loaded by a dry run: enough for a batch, few enough to decode in an instant."""


@dataclass
class RealImages:
    """Training and holdout images of a run.

    Attributes
    ----------
    train : (N, S, S, 3) torch.Tensor of uint8, or StreamingImages
        The images batches are drawn from: in memory on the training device, or decoded on demand.
    holdout : (H, S, S, 3) torch.Tensor of uint8
        Images never trained on, for the monitor; on the training device.
    holdout_labels : (H, 5) torch.Tensor of int64 or None
        Attributes of the holdout faces (procedural set only), see `trainers.procedural.ATTRIBUTES`.
    description : str
        One line for a person: where the images come from and how many.
    """

    train: object
    holdout: torch.Tensor
    holdout_labels: torch.Tensor | None
    description: str

    @property
    def streaming(self):
        return isinstance(self.train, StreamingImages)

    def sample(self, batch_size, generator):
        """A random training batch, (B, 3, S, S) floats in [-1, 1] on the training device."""
        if self.streaming:
            return self.train.sample(batch_size, generator, self.holdout.device)
        return sample_batch(self.train, batch_size, generator)


def load_real_images(config, device):
    """Load the real images a config asks for onto ``device``.

    Parameters
    ----------
    config : TrainConfig
        Uses ``data``, ``image_size``, ``procedural_images``, ``holdout_images``,
        ``data_memory_gb``, ``seed`` and ``dry_run``.
    device : torch.device
        Where the in-memory images are kept.

    Returns
    -------
    RealImages

    Raises
    ------
    FileNotFoundError, ValueError
        From `trainers.images.load_images`, for a missing, empty or unreadable source (when
        streaming: no readable image among the held-out files).

    Warns
    -----
    UserWarning
        Once, naming unreadable files, which are skipped (see `trainers.images.load_images`).
    """
    size = config.image_size
    if not config.data:
        count = DRY_RUN_IMAGES if config.dry_run else config.procedural_images
        images, labels, where = _procedural(count, size, config.seed)
        return _split(images, labels, config, device, f"{count:,} procedural faces ({where})")
    files = ImageFiles(config.data)
    if not config.dry_run and len(files.names) * size * size * 3 > config.data_memory_gb * 2**30:
        return _streaming(files, config, device)
    files.close()
    limit = DRY_RUN_IMAGES if config.dry_run else None
    images = load_images(config.data, size=size, limit=limit)
    return _split(images, None, config, device, f"{len(images):,} images from {config.data}")


def cache_dir():
    """Where generated data sets are cached: ``$DIVERGENCES_CACHE``, else ``$XDG_CACHE_HOME/divergences``, else ``~/.cache/divergences``."""
    if os.environ.get("DIVERGENCES_CACHE"):
        return Path(os.environ["DIVERGENCES_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "divergences"


def _procedural(count, size, seed):
    """The procedural faces and labels, from the cache or freshly drawn (then cached if possible)."""
    path = cache_dir() / f"procedural-faces-n{count}-s{size}-seed{seed}.npz"
    try:
        with np.load(path) as cached:
            return cached["images"], cached["labels"], f"cached in {path}"
    except (OSError, KeyError, ValueError):
        pass
    images, labels = make_faces(count, size=size, seed=seed)
    try:
        write_atomically(path, lambda file: np.savez(file, images=images, labels=labels))
        return images, labels, f"drawn and cached in {path}"
    except OSError:
        return images, labels, "drawn, not cached: the cache folder is not writable"


def _holdout_count(config, total):
    return min(config.holdout_images, total // 10)


def _split(images, labels, config, device, description):
    """Hold out a seeded random subset; move both parts to ``device``."""
    order = np.random.default_rng(config.seed).permutation(len(images))
    held = order[: _holdout_count(config, len(images))]
    kept = np.sort(order[len(held):])
    tensor = torch.from_numpy(images)
    if len(held) == 0:  # too few images to spare any: the monitor compares with training images
        held = kept
    holdout_labels = None if labels is None else torch.from_numpy(labels[np.sort(held)])
    return RealImages(
        train=tensor[kept].to(device),
        holdout=tensor[np.sort(held)].to(device),
        holdout_labels=holdout_labels,
        description=f"{description}; {len(kept):,} for training, {len(held):,} held out",
    )


def _streaming(files, config, device):
    """Keep the file names of the training part; decode only the holdout part now."""
    order = np.random.default_rng(config.seed).permutation(len(files.names))
    held = [files.names[i] for i in np.sort(order[: max(1, _holdout_count(config, len(order)))])]
    kept = [files.names[i] for i in np.sort(order[len(held):])]
    holdout = torch.from_numpy(decode_files(files, held, size=config.image_size)).to(device)
    return RealImages(
        train=StreamingImages(files, kept, config.image_size),
        holdout=holdout,
        holdout_labels=None,
        description=f"{len(files.names):,} images from {config.data}, streamed (over data_memory_gb); "
        f"{len(kept):,} for training, {len(holdout):,} held out",
    )
