"""Checkpoints: what they hold, how it is checked and restored, and a file any PyTorch user can open.

The one owner of the checkpoint's format: `training_state` says what a run saves (`STATE_KEYS`,
its `Counters`), `check_state` whether a loaded state is a whole, finite checkpoint of a given run,
`restore_state` loads it into the run's networks, optimisers and random generators.
`save_checkpoint` and `load_checkpoint` move the bytes; they survive a crash mid-write and
refuse a damaged file.

A checkpoint is the archive ``torch.save`` writes (a zip file), with the SHA-256 digest of every
byte before it as the zip's comment, the last 64 bytes of the file: ``torch.load(path,
weights_only=True)`` reads it as it reads any checkpoint, and `load_checkpoint` also checks the
digest. Files are written with `trainers.files.write_atomically`. Checkpoints of the earlier
format (a header line ``divergences-checkpoint v1 sha256=<digest>`` before ``torch.save``'s bytes)
are still read.
"""

import dataclasses
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import RESUMABLE_FIELDS, with_later_fields
from .files import write_atomically

DIGEST_BYTES = 64
"""The digest's length in hexadecimal digits: the zip comment that ends every checkpoint."""

END_OF_ARCHIVE = b"PK\x05\x06"
"""The signature of a zip file's end-of-central-directory record (22 bytes, its comment length last)."""

MAGIC = b"divergences-checkpoint v1 sha256="
HEADER_BYTES = len(MAGIC) + 64 + 1  # the digest in hex and a newline
"""The earlier format's header line, read but no longer written."""


@dataclass
class Counters:
    """Where the run is; saved in every checkpoint."""

    epoch: int = 0  # epochs completed
    step: int = 0  # generator steps
    critic_steps: int = 0
    images_seen: int = 0  # real images shown to the critic, all processes together
    seconds: float = 0.0  # training time, without evaluations


STATE_KEYS = ("config", "counters", "generator", "critic", "optimizer_g", "optimizer_d", "rng")
"""What a checkpoint holds."""


def check_state(state, config, path):
    """Raise ValueError naming ``path`` unless ``state`` is a finite checkpoint of the run ``config`` describes."""
    def refuse(problem):
        raise ValueError(f"checkpoint {str(path)!r} {problem}; it cannot be resumed.")

    if not isinstance(state, dict) or sorted(state) != sorted(STATE_KEYS):
        refuse(f"should hold {', '.join(STATE_KEYS)}; it holds {', '.join(map(str, state)) if isinstance(state, dict) else type(state).__name__}")
    counters = state["counters"]
    fields = {field.name: field.type for field in dataclasses.fields(Counters)}
    if not isinstance(counters, dict) or sorted(counters) != sorted(fields) or not all(
            isinstance(counters[name], kind) and not isinstance(counters[name], bool) and counters[name] >= 0
            for name, kind in fields.items()):
        refuse(f"has damaged counters ({counters!r:.120})")
    saved = state["config"] if isinstance(state["config"], dict) else {}
    saved = with_later_fields(saved)
    for name, value in dataclasses.asdict(config).items():
        if name not in RESUMABLE_FIELDS + ("resume", "out") and saved.get(name) != value:
            refuse(f"was written by another run: its {name} is {saved.get(name)!r}, config.json says {value!r}")
    if not isinstance(state["rng"], list) or not all(isinstance(item, dict) and sorted(item) == ["data", "noise"]
                                                     and all(isinstance(v, torch.Tensor) for v in item.values())
                                                     for item in state["rng"]) or not state["rng"]:
        refuse("has no random states")
    for name in ("generator", "critic"):
        weights = state[name]
        if not isinstance(weights, dict) or not all(isinstance(value, torch.Tensor) for value in weights.values()):
            refuse(f"has a damaged {name}")
        if not all(torch.isfinite(value).all() for value in weights.values() if value.is_floating_point()):
            refuse(f"holds NaN or infinite {name} weights")


def training_state(*, config, counters, generator, critic, optimizer_g, optimizer_d, rng):
    """What a checkpoint holds (`STATE_KEYS`): plain values and tensors, as ``weights_only`` loading accepts.

    ``rng`` is a list with the ``{"noise": ..., "data": ...}`` random states of every process.
    """
    return {"config": dataclasses.asdict(config), "counters": dataclasses.asdict(counters),
            "generator": generator.state_dict(), "critic": critic.state_dict(),
            "optimizer_g": optimizer_g.state_dict(), "optimizer_d": optimizer_d.state_dict(), "rng": rng}


def restore_state(state, path, *, counters, rank, world_size, generator, critic, optimizer_g, optimizer_d,
                  noise_rng, data_rng):
    """Load a checkpoint checked by `check_state` into a run's networks, optimisers, random generators and counters.

    ``rank`` picks this process's random states among the ``world_size`` saved.

    Raises
    ------
    ValueError
        Naming ``path``: the checkpoint was written by another number of processes, does not fit
        the networks, or holds damaged optimiser or random states.
    """
    if len(state["rng"]) != world_size:
        raise ValueError(f"the checkpoint was written by {len(state['rng'])} process(es); resume it with as many, "
                         f"not {world_size}.")
    for name, model in (("generator", generator), ("critic", critic)):
        expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
        found = {key: tuple(value.shape) for key, value in state[name].items()}
        if found != expected:
            wrong = sorted(set(found) ^ set(expected)) or [key for key in expected if found[key] != expected[key]]
            raise ValueError(f"checkpoint {str(path)!r} does not fit the {name} of its config ({wrong[0]}); "
                             f"it cannot be resumed.")
    try:
        generator.load_state_dict(state["generator"])
        critic.load_state_dict(state["critic"])
        optimizer_g.load_state_dict(state["optimizer_g"])
        optimizer_d.load_state_dict(state["optimizer_d"])
        noise_rng.set_state(state["rng"][rank]["noise"])
        data_rng.set_state(state["rng"][rank]["data"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:
        raise ValueError(f"checkpoint {str(path)!r} has damaged optimiser or random states "
                         f"({type(error).__name__}); it cannot be resumed.") from None
    for name, value in state["counters"].items():
        setattr(counters, name, value)


def save_checkpoint(state, path):
    """Write ``state`` to ``path`` atomically, as ``torch.save``'s archive with its SHA-256 digest as the zip comment.

    The state is saved to a temporary file in the same folder, flushed to disk, and renamed
    over ``path``: a reader sees the previous checkpoint or the new one, never half of one.

    Parameters
    ----------
    state : dict
        Tensors, numbers, strings and nested dicts/lists of them (what ``weights_only``
        loading accepts).
    path : str or path-like
        Destination; its folder is created if missing.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    archive = buffer.getvalue()
    if archive[-22:-18] != END_OF_ARCHIVE or archive[-2:] != b"\0\0":  # torch.save writes no comment
        raise AssertionError("torch.save wrote an archive that does not end in a comment-free end-of-archive record")
    body = archive[:-2] + DIGEST_BYTES.to_bytes(2, "little")  # the comment's length, then the comment: the digest
    digest = hashlib.sha256(body).hexdigest().encode()
    write_atomically(path, lambda file: file.write(body + digest))


def load_checkpoint(path):
    """Read a checkpoint written by `save_checkpoint` (or by its earlier format), onto the CPU, with ``weights_only=True``.

    Raises
    ------
    FileNotFoundError
        If there is no checkpoint at ``path``.
    ValueError
        If the file cannot be read, is not a checkpoint of this trainer, fails its checksum
        (truncated, or any byte changed), or holds objects other than tensors and plain values.
        The message is one line and names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: nothing to resume.")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read: {error.strerror}.") from None
    payload = _verified(data, path)
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception:  # torch's message advises an unsafe load: not repeated here
        raise ValueError(f"checkpoint {str(path)!r} holds objects other than tensors and plain values; "
                         f"a weights-only load refused it.") from None


def _verified(data, path):
    """The bytes ``torch.load`` reads, once their digest is checked; ValueError naming ``path`` otherwise."""
    if data.startswith(MAGIC):  # the earlier format: a header line, then torch.save's bytes
        header, payload = data[:HEADER_BYTES], memoryview(data)[HEADER_BYTES:]
        if header.endswith(b"\n") and hashlib.sha256(payload).hexdigest().encode() == header[len(MAGIC):-1]:
            return payload
        raise ValueError(f"checkpoint {str(path)!r} is damaged: its contents do not match its checksum "
                         f"({len(data):,} bytes; truncated or changed since it was written).")
    body, digest = memoryview(data)[:-DIGEST_BYTES], data[-DIGEST_BYTES:]
    if len(data) < 22 + DIGEST_BYTES or data[-DIGEST_BYTES - 22:-DIGEST_BYTES - 18] != END_OF_ARCHIVE:
        raise ValueError(f"checkpoint {str(path)!r} is damaged or not a checkpoint of this trainer "
                         f"(no checksum at its end; {len(data):,} bytes).")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        raise ValueError(f"checkpoint {str(path)!r} is damaged: its contents do not match its checksum "
                         f"({len(data):,} bytes; truncated or changed since it was written).")
    return data
