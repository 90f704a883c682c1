"""Hostile inputs to the trainer's data and report: generated classes of damage, never a traceback.

Each class is generated, not listed report by report:

- damaged zip members (header fields, compressed streams) and random byte flips: the member is
  skipped with the one warning of unreadable files, in memory and when streaming; a zip that is
  wholly unreadable, or holds no usable image, is a ``ValueError`` naming it;
- decompression bombs under Pillow's own limit: skipped without being decoded;
- 16-bit PNGs of every colour type: the same picture as their 8-bit version, to rounding;
- held-out images without spread: finite monitor signals, no division by zero;
- run directories with symlinked or fake sample grids, ``$`` in names, and metrics records with
  values of the wrong type or range: the report refuses, skips or escapes them, naming file and line.
"""

import base64
import io
import json
import math
import os
import struct
import threading
import warnings
import zipfile
import zlib

from html import escape

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from trainers import _report_html
from trainers import images as images_module
from trainers import report as report_module
from trainers.bookkeeping import EvalContext
from trainers.config import TrainConfig
from trainers.data import RealImages, load_real_images
from trainers.images import ImageFiles, StreamingImages, load_images, to_float
from trainers.monitor import Monitor
from trainers.report import load_run, write_report
from trainers.checkpoint import Counters
from trainers.verdict import verdict

SIZE = 8  # side of the decoded images in these tests


def _png_bytes(value, side=12):
    """A small valid RGB PNG filled with ``value``."""
    path = io.BytesIO()
    Image.new("RGB", (side, side), (value, 255 - value, 60)).save(path, "PNG")
    return path.getvalue()


# ---------------------------------------------------------------------------------------------
# Zip archives damaged field by field
# ---------------------------------------------------------------------------------------------

# Offsets of the fields in a local file header (L) and a central directory entry (C).
_LOCAL = {"flag": 6, "method": 8, "crc": 14, "compressed": 18, "size": 22}
_CENTRAL = {"flag": 8, "method": 10, "crc": 16, "compressed": 20, "size": 24, "offset": 42}
_WIDTH = {"flag": "<H", "method": "<H", "crc": "<I", "compressed": "<I", "size": "<I", "offset": "<I"}


def _zip(members, compression=zipfile.ZIP_STORED):
    """Zip bytes holding ``members`` (name -> bytes) in order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return bytearray(buffer.getvalue())


def _entry(data, name):
    """(offset of the local header, offset of the central entry, offset of the data) of member ``name``."""
    with zipfile.ZipFile(_memory_of(data)) as archive:
        info = archive.getinfo(name)
    local = info.header_offset
    name_length, extra_length = struct.unpack_from("<HH", data, local + 26)
    central, encoded = data.index(b"PK\x01\x02"), name.encode()
    while data[central + 46: central + 46 + len(encoded)] != encoded:
        central = data.index(b"PK\x01\x02", central + 4)
    return local, central, local + 30 + name_length + extra_length


def _memory_of(data):
    return io.BytesIO(bytes(data))


def _set_field(data, name, field, value, *, local=True, central=True):
    local_at, central_at, _ = _entry(data, name)
    if local and field in _LOCAL:
        struct.pack_into(_WIDTH[field], data, local_at + _LOCAL[field], value)
    if central:
        struct.pack_into(_WIDTH[field], data, central_at + _CENTRAL[field], value)
    return data


def _flip_data(data, name, where=0.5, count=8):
    """Invert ``count`` bytes of a member's stored (or compressed) data, from ``where`` of its length."""
    _, _, start = _entry(data, name)
    with zipfile.ZipFile(_memory_of(data)) as archive:
        length = archive.getinfo(name).compress_size
    at = start + int(where * max(length - count, 0))
    for i in range(at, at + min(count, length)):
        data[i] ^= 0xFF
    return data


def _damage_bad_crc(data):
    with zipfile.ZipFile(_memory_of(data)) as archive:
        crc = archive.getinfo("b.png").CRC
    return _set_field(data, "b.png", "crc", crc ^ 0x1234)


def _damage_local_name(data):
    local, _, _ = _entry(data, "b.png")
    data[local + 30] = ord("x")  # the local header's name no longer matches the directory's
    return data


def _damage_local_magic(data):
    local, _, _ = _entry(data, "b.png")
    data[local: local + 4] = b"JUNK"
    return data


MEMBER_DAMAGE = {
    # name: (compression of the archive, how member b.png is damaged)
    "bad CRC": (zipfile.ZIP_STORED, _damage_bad_crc),
    "broken deflate stream": (zipfile.ZIP_DEFLATED, lambda d: _flip_data(d, "b.png", 0.3)),
    "deflate stream cut short": (zipfile.ZIP_DEFLATED, lambda d: _flip_data(d, "b.png", 1.0, count=40)),
    "broken bzip2 stream": (zipfile.ZIP_BZIP2, lambda d: _flip_data(d, "b.png", 0.3)),
    "broken lzma stream": (zipfile.ZIP_LZMA, lambda d: _flip_data(d, "b.png", 0.3)),
    "encrypted": (zipfile.ZIP_STORED, lambda d: _set_field(d, "b.png", "flag", 0x1)),
    "strong encryption flag": (zipfile.ZIP_STORED, lambda d: _set_field(d, "b.png", "flag", 0x41)),
    "compressed patch flag": (zipfile.ZIP_STORED, lambda d: _set_field(d, "b.png", "flag", 0x20)),
    "deflate64": (zipfile.ZIP_DEFLATED, lambda d: _set_field(d, "b.png", "method", 9)),
    "PPMd": (zipfile.ZIP_DEFLATED, lambda d: _set_field(d, "b.png", "method", 98)),
    "AES (method 99)": (zipfile.ZIP_DEFLATED, lambda d: _set_field(d, "b.png", "method", 99)),
    "unknown method": (zipfile.ZIP_STORED, lambda d: _set_field(d, "b.png", "method", 0xBEEF)),
    "name differs from header": (zipfile.ZIP_STORED, _damage_local_name),
    "bad local header magic": (zipfile.ZIP_STORED, _damage_local_magic),
    "offset past the end": (zipfile.ZIP_STORED, lambda d: _set_field(d, "b.png", "offset", 2**31)),
    "sizes past the end": (zipfile.ZIP_STORED, lambda d: _set_field(_set_field(d, "b.png", "compressed", 2**31),
                                                                    "b.png", "size", 2**31)),
    "size smaller than the data": (zipfile.ZIP_DEFLATED, lambda d: _set_field(d, "b.png", "size", 10)),
    "image bytes flipped": (zipfile.ZIP_STORED, lambda d: _flip_data(d, "b.png", 0.6)),
}


def _damaged_zip(tmp_path, damage):
    """A zip of a.png, b.png (damaged) and c.png, written to ``tmp_path``."""
    compression, damage_member = MEMBER_DAMAGE[damage]
    data = _zip({"a.png": _png_bytes(10), "b.png": _png_bytes(100), "c.png": _png_bytes(200)}, compression)
    path = tmp_path / "faces.zip"
    path.write_bytes(bytes(damage_member(data)))
    return path


@pytest.mark.parametrize("damage", MEMBER_DAMAGE)
def test_damaged_member_is_skipped_with_one_warning(tmp_path, damage):
    # The two intact members decode; the damaged one is named in the one warning.
    path = _damaged_zip(tmp_path, damage)
    with pytest.warns(UserWarning) as record:
        images = load_images(path, size=SIZE)
    assert len(record) == 1 and "skipped 1 " in str(record[0].message) and "'b.png'" in str(record[0].message)
    assert images.shape == (2, SIZE, SIZE, 3)
    assert images[:, 0, 0, 0].tolist() == [10, 200]


def _finishes(function, seconds=20):
    """Run ``function`` in a thread; return its result, or fail if it has not finished in ``seconds``."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.mark.parametrize("damage", MEMBER_DAMAGE)
def test_damaged_member_is_skipped_when_streaming(tmp_path, damage):
    # Drawn mid-epoch, the damaged member is replaced by another draw, with one warning naming it.
    path = _damaged_zip(tmp_path, damage)
    with ImageFiles(path) as files:
        stream = StreamingImages(files, files.names, SIZE)
        with pytest.warns(UserWarning, match="b.png") as record:
            batch = stream.sample(32, torch.Generator().manual_seed(0), torch.device("cpu"))
            stream.sample(32, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert len(record) == 1
    assert batch.shape == (32, 3, SIZE, SIZE)
    # only a.png (red 10) and c.png (red 200) come out
    assert set(torch.round((batch[:, 0, 0, 0] + 1) * 127.5).tolist()) <= {10.0, 200.0}


@pytest.mark.parametrize("damage", ["encrypted", "deflate64", "bad CRC"])
def test_stream_of_only_damaged_members_is_an_error_not_a_hang(tmp_path, damage):
    path = _damaged_zip(tmp_path, damage)
    with ImageFiles(path) as files:
        stream = StreamingImages(files, ["b.png"], SIZE)
        with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"faces\.zip"):
            _finishes(lambda: stream.sample(4, torch.Generator().manual_seed(0), torch.device("cpu")))


def test_streamed_run_skips_a_damaged_held_out_member(tmp_path):
    # Streaming (a tiny data_memory_gb): a damaged member among the two held out is skipped with the warning.
    names = [f"{i:02d}.png" for i in range(20)]
    config = TrainConfig(data=str(tmp_path / "faces.zip"), image_size=16, holdout_images=20, data_memory_gb=1e-6,
                         device="cpu").resolved()
    damaged = names[min(np.random.default_rng(config.seed).permutation(20)[:2])]
    data = _set_field(_zip({name: _png_bytes(10 * i) for i, name in enumerate(names)}), damaged, "method", 9)
    (tmp_path / "faces.zip").write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=damaged) as record:
        real = load_real_images(config, torch.device("cpu"))
        real.sample(64, torch.Generator().manual_seed(0))
    assert len(record) == 1
    assert real.streaming and len(real.holdout) == 1 and len(real.train) == 18


def _truncate(fraction):
    return lambda data: data[: int(len(data) * fraction)]


ARCHIVE_DAMAGE = {
    "empty file": lambda data: b"",
    "random bytes": lambda data: bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)),
    "truncated to 90%": _truncate(0.9),
    "truncated to 50%": _truncate(0.5),
    "last 10 bytes cut": lambda data: data[:-10],
    "directory offset past the end": lambda data: data[:-6] + struct.pack("<I", 2**31) + data[-2:],
    "directory size too large": lambda data: data[:-10] + struct.pack("<I", 2**31) + data[-6:],
    "every member encrypted": lambda data: _all_members(data, "flag", 0x1),
    "every member deflate64": lambda data: _all_members(data, "method", 9),
    "no image member": lambda data: _zip({"notes.txt": b"hello"}),
    "only a directory": lambda data: _zip({"faces/": b""}),
}


def _all_members(data, field, value):
    for name in ("a.png", "b.png", "c.png"):
        data = _set_field(data, name, field, value)
    return data


@pytest.mark.parametrize("damage", ARCHIVE_DAMAGE)
def test_unusable_zip_is_a_value_error_naming_it(tmp_path, damage):
    data = _zip({"a.png": _png_bytes(10), "b.png": _png_bytes(100), "c.png": _png_bytes(200)})
    path = tmp_path / "faces.zip"
    path.write_bytes(bytes(ARCHIVE_DAMAGE[damage](data)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a skipped-files warning may come first
        with pytest.raises(ValueError, match=r"faces\.zip"):
            load_images(path, size=SIZE)


@pytest.mark.parametrize("seed", range(40))
def test_random_byte_flips_give_images_or_a_value_error(tmp_path, seed):
    # Any 1-8 bytes of a deflated zip changed at random: decoded images (the intact ones, skipping
    # the rest with a warning) or a ValueError naming the zip; never another exception.
    rng = np.random.default_rng(seed)
    members = {f"{i}.png": _png_bytes(20 * i) for i in range(4)}
    data = _zip(members, zipfile.ZIP_DEFLATED if seed % 2 else zipfile.ZIP_STORED)
    for at in rng.integers(0, len(data), rng.integers(1, 9)):
        data[at] ^= int(rng.integers(1, 256))
    path = tmp_path / "faces.zip"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            images = _finishes(lambda: load_images(path, size=SIZE))
        except ValueError as error:
            assert "faces.zip" in str(error)
            return
    assert images.dtype == np.uint8 and 1 <= len(images) <= 4


# ---------------------------------------------------------------------------------------------
# Decompression bombs under Pillow's limit
# ---------------------------------------------------------------------------------------------


def _chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(width, height, bit_depth, colour_type, rows, palette=None):
    """PNG bytes from raw ``rows`` (a callable row index -> bytes without the filter byte)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    compressor = zlib.compressobj(9)
    compressed = b"".join(compressor.compress(b"\x00" + rows(y)) for y in range(height)) + compressor.flush()
    chunks = [_chunk(b"IHDR", header)]
    if palette is not None:
        chunks.append(_chunk(b"PLTE", palette))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + _chunk(b"IDAT", compressed) + _chunk(b"IEND", b"")


BOMBS = {
    # name: (width, height, bit depth, colour type); all compress to a few tens of KB
    "12000x12000 1-bit grey": (12000, 12000, 1, 0),
    "12000x12000 1-bit palette": (12000, 12000, 1, 3),
    "4500x4500 RGB": (4500, 4500, 8, 2),
    "100000x200 grey": (100000, 200, 8, 0),
    "5000x5000 16-bit grey": (5000, 5000, 16, 0),
}


@pytest.mark.parametrize("bomb", BOMBS)
def test_decompression_bomb_is_skipped_without_decoding(tmp_path, monkeypatch, bomb):
    width, height, depth, colour = BOMBS[bomb]
    row = bytes(math.ceil(width * depth * {0: 1, 2: 3, 3: 1}[colour] / 8))
    palette = bytes(range(3)) * 1 if colour == 3 else None
    (tmp_path / "big.png").write_bytes(_png(width, height, depth, colour, lambda y: row, palette))
    Image.new("RGB", (20, 20), (1, 2, 3)).save(tmp_path / "small.png")
    decoded = []
    original = ImageFile.ImageFile.load

    def load(image):
        decoded.append(image.size)
        if image.size[0] * image.size[1] > images_module.MAX_PIXELS:
            pytest.fail(f"decoded a {image.size} image")
        return original(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    with pytest.warns(UserWarning) as record:
        images = load_images(tmp_path, size=SIZE)
    assert len(record) == 1 and "big.png" in str(record[0].message) and f"{width}x{height}" in str(record[0].message)
    assert images.shape == (1, SIZE, SIZE, 3) and images[0, 0, 0].tolist() == [1, 2, 3]
    assert set(decoded) == {(20, 20)}


def test_pixel_limit_is_what_the_docs_say():
    assert images_module.MAX_PIXELS == 4096 * 4096


# ---------------------------------------------------------------------------------------------
# 16-bit PNGs: the same picture as their 8-bit version
# ---------------------------------------------------------------------------------------------

# colour type: channels
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _gradients(channels, seed):
    """An 8-bit (16, 64, channels) image and a 16-bit one that rounds to it (v16 / 257 within 0.5)."""
    rng = np.random.default_rng(seed)
    eight = (np.arange(64)[None, :, None] * 4 + np.arange(16)[:, None, None] * (1 + np.arange(channels))) % 256
    eight = eight.astype(np.uint16)
    if channels in (2, 4):
        eight[..., -1] = 255  # opaque: alpha is dropped, not composited
    sixteen = np.clip(eight.astype(np.int64) * 257 + rng.integers(-128, 129, eight.shape), 0, 65535).astype(">u2")
    return eight.astype(np.uint8), sixteen


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("colour_type", sorted(_CHANNELS))
def test_sixteen_bit_png_is_its_eight_bit_picture(tmp_path, colour_type, seed):
    channels = _CHANNELS[colour_type]
    eight, sixteen = _gradients(channels, seed)
    (tmp_path / "a8.png").write_bytes(_png(64, 16, 8, colour_type, lambda y: eight[y].tobytes()))
    (tmp_path / "b16.png").write_bytes(_png(64, 16, 16, colour_type, lambda y: sixteen[y].tobytes()))
    pictures = load_images(tmp_path, size=16).astype(int)
    assert np.abs(pictures[0] - pictures[1]).max() <= 1


def test_sixteen_bit_grey_saved_by_pillow_keeps_its_range(tmp_path):
    # A full-range 16-bit ramp: black at the left, white at the right, mid-grey in the middle.
    ramp = np.tile(np.linspace(0, 65535, 64).round().astype(np.uint16), (64, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    with Image.open(tmp_path / "ramp.png") as image:
        assert image.mode.startswith("I;16")
    picture = load_images(tmp_path, size=64)[0].astype(int)
    expected = np.round(ramp / 257)
    assert np.abs(picture[..., 0] - expected).max() <= 1
    assert (picture[..., 0] == picture[..., 1]).all() and (picture[..., 1] == picture[..., 2]).all()


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.uint16])
def test_wide_samples_are_read_on_the_sixteen_bit_scale(dtype):
    # Modes I, F and I;16 (PNG's decoders give I;16; I and F come from formats we do not decode,
    # and are read alike): v / 257 rounded, clipped to [0, 255].
    eight = np.arange(256, dtype=np.int64).reshape(16, 16)
    wide = Image.fromarray(np.minimum(eight * 257 + 100, 65535).astype(dtype))
    assert wide.mode == {np.int32: "I", np.float32: "F", np.uint16: "I;16"}[dtype]
    rgb = np.asarray(images_module._to_rgb(wide))
    assert rgb.shape == (16, 16, 3) and (rgb[..., 0] == eight).all() and (rgb[..., 2] == eight).all()


# ---------------------------------------------------------------------------------------------
# Held-out images without spread: the monitor's signals stay finite
# ---------------------------------------------------------------------------------------------


def _monitor_config(**overrides):
    settings = dict(image_size=16, nz=4, batch_size=8, eval_images=8, alarm_after_images=0, device="cpu",
                    alarm_patience=1, loss="gan")
    settings.update(overrides)
    return TrainConfig(**settings).resolved()


class _Replay(torch.nn.Module):
    def __init__(self, images):
        super().__init__()
        self.images = images
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def forward(self, noise):
        return self.images[torch.arange(len(noise)) % len(self.images)] + self.offset


class _Mean(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))

    def forward(self, images):
        return self.weight * images.mean((1, 2, 3))


def _holdout(kind):
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (1, 16, 16, 3), dtype=np.uint8)
    return torch.from_numpy({
        "8 identical": np.repeat(one, 8, axis=0),
        "8 identical black": np.zeros((8, 16, 16, 3), np.uint8),
        "8 identical white": np.full((8, 16, 16, 3), 255, np.uint8),
        "a single image": one,
        "two images": rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8),
    }[kind])


GENERATED = {
    "the held-out images": lambda real: real,
    "one of them, constant": lambda real: real[:1],
    "noise": lambda real: torch.rand((8, 3, 16, 16), generator=torch.Generator().manual_seed(1)) * 2 - 1,
}


@pytest.mark.parametrize("loss", ["gan", "wgan"])
@pytest.mark.parametrize("generated", GENERATED)
@pytest.mark.parametrize("holdout", ["8 identical", "8 identical black", "8 identical white", "a single image",
                                     "two images"])
def test_monitor_without_spread_in_the_held_out_images(holdout, generated, loss):
    held = _holdout(holdout)
    data = RealImages(train=held, holdout=held, holdout_labels=None, description="")
    real = to_float(held)
    monitor = Monitor(_monitor_config(loss=loss))
    for step in range(2):
        generator = _Replay(GENERATED[generated](real))
        context = EvalContext(monitor.config, Counters(step=step, images_seen=step), generator, _Mean(), data,
                              torch.device("cpu"))
        signals = monitor(context)
        numbers = {k: v for k, v in signals.items() if isinstance(v, float)}
        assert all(math.isfinite(v) for v in numbers.values()), numbers
    spread = len(held) > 1 and not (held == held[:1]).all()
    assert (signals["diversity_real"] > 0) == spread
    if generated == "the held-out images":
        assert signals["sliced_pixels"] == pytest.approx(0, abs=1e-12)
    if not spread and generated != "noise":
        # generated = the one real picture: no spread either, as diverse as the real images, no alarm
        assert signals["diversity_fake"] == signals["diversity_real"] == 0 and signals["alarms"] == []
    if not spread and generated == "noise":
        assert signals["diversity_fake"] > 0 and signals["alarms"] == []


# ---------------------------------------------------------------------------------------------
# Hostile report inputs
# ---------------------------------------------------------------------------------------------

SECRET = b"password=hunter2 this must never reach the report\n"


def _run(path, name="run", *, lines=None, alarm_name="mode_collapse"):
    """A minimal run directory: config, 3 evaluations and an alarm, one valid sample grid."""
    run = path / name
    (run / "samples").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"loss": "wgan", "epochs": 2}))
    if lines is None:
        lines = [{"kind": "eval", "epoch": e, "step": 4 * e, "images_seen": 256 * e, "seconds": e,
                  "sliced_pixels": 1.0 / (e + 1), "grad_norm_g": 1.0 + e} for e in range(3)]
        lines.append({"kind": "alarm", "epoch": 1, "step": 4, "images_seen": 256, "name": alarm_name, "message": "m"})
    (run / "metrics.jsonl").write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    Image.new("RGB", (8, 8), (5, 6, 7)).save(run / "samples" / "epoch_000.png")
    return run


def _secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_bytes(SECRET)
    return path


def _outside_png(tmp_path):
    path = tmp_path / "outside.png"
    Image.new("RGB", (8, 8), (9, 9, 9)).save(path)
    return path


GRID_ATTACKS = {
    "symlink to a secret file": lambda run, tmp: os.symlink(_secret(tmp), run / "samples" / "epoch_001.png"),
    "symlink to a PNG outside": lambda run, tmp: os.symlink(_outside_png(tmp), run / "samples" / "epoch_001.png"),
    "symlink to a PNG inside": lambda run, tmp: os.symlink(run / "samples" / "epoch_000.png",
                                                           run / "samples" / "epoch_001.png"),
    "text file named .png": lambda run, tmp: (run / "samples" / "epoch_001.png").write_bytes(SECRET),
    "JPEG named .png": lambda run, tmp: Image.new("RGB", (8, 8)).save(run / "samples" / "epoch_001.png", "JPEG"),
    "empty file": lambda run, tmp: (run / "samples" / "epoch_001.png").write_bytes(b""),
    "folder named .png": lambda run, tmp: (run / "samples" / "epoch_001.png").mkdir(),
    "FIFO named .png": lambda run, tmp: os.mkfifo(run / "samples" / "epoch_001.png"),
    "samples folder is a symlink outside": lambda run, tmp: _samples_elsewhere(run, tmp),
}


def _samples_elsewhere(run, tmp):
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "epoch_001.png").write_bytes(SECRET)
    _outside_png(tmp).rename(elsewhere / "epoch_002.png")
    (run / "samples" / "epoch_000.png").unlink()
    (run / "samples").rmdir()
    os.symlink(elsewhere, run / "samples")


@pytest.mark.parametrize("attack", GRID_ATTACKS)
def test_report_embeds_only_png_grids_inside_the_run(tmp_path, attack):
    run, loaded = _attacked(GRID_ATTACKS[attack], tmp_path, r"epoch_00[12]\.png")
    kept = {} if attack == "samples folder is a symlink outside" else {0: run / "samples" / "epoch_000.png"}
    assert loaded.samples == kept
    html = _page_without_the_secret(loaded)
    assert html.count("<figure>") == len(kept)


REAL_GRID_ATTACKS = {
    "symlink to a secret file": lambda run, tmp: os.symlink(_secret(tmp), run / "samples" / "real.png"),
    "symlink to a PNG outside": lambda run, tmp: os.symlink(_outside_png(tmp), run / "samples" / "real.png"),
    "text file named real.png": lambda run, tmp: (run / "samples" / "real.png").write_bytes(SECRET),
    "folder named real.png": lambda run, tmp: (run / "samples" / "real.png").mkdir(),
}


@pytest.mark.parametrize("attack", REAL_GRID_ATTACKS)
def test_report_embeds_the_real_grid_only_if_it_is_a_png_inside_the_run(tmp_path, attack):
    _, loaded = _attacked(REAL_GRID_ATTACKS[attack], tmp_path, r"not embedding real\.png")
    assert loaded.real_grid is None
    assert "real images, held out" not in _page_without_the_secret(loaded)


def _attacked(attack, tmp_path, warning):
    """A run directory after ``attack``, and the run loaded from it with the ``warning`` it must give."""
    run = _run(tmp_path)
    attack(run, tmp_path)
    with pytest.warns(UserWarning, match=warning):
        return run, _finishes(lambda: load_run(run))


def _page_without_the_secret(loaded):
    """The report page of a loaded run, checked not to hold the secret file's bytes."""
    html = _finishes(lambda: _report_html.render([loaded], ["run"], [verdict(loaded)], []))
    assert base64.b64encode(SECRET[:30]).decode()[:32] not in html
    return html


def test_grid_names_that_are_not_epochs_are_ignored(tmp_path):
    run = _run(tmp_path)
    for name in ("epoch_²³.png", "epoch_1a.png", "epoch_.png", "epoch_-1.png"):
        Image.new("RGB", (8, 8)).save(run / "samples" / name, "PNG")
    assert load_run(run).samples == {0: run / "samples" / "epoch_000.png"}


HOSTILE_NAMES = ["$", "$x$", "a$b", "$$", r"$\frac{1}{0}$", r"\$", "$^$", "100$ run", "$_{$", "\\", "%s {} _^"]


def test_dollar_and_tex_in_run_and_alarm_names(tmp_path):
    # Shown as written, never parsed as mathtext; each name reaches the page HTML-escaped.
    runs = [_run(tmp_path, f"run {i} {name}", alarm_name=name) for i, name in enumerate(HOSTILE_NAMES)]
    html = write_report(runs, tmp_path / "report.html").read_text(encoding="utf-8")
    assert all(escape(name) in html and escape(run.name) in html for name, run in zip(HOSTILE_NAMES, runs))


# Counters: what an alarm's position, the epoch estimate and the summary are computed from.
COUNTERS = ["step", "epoch", "images_seen", "critic_steps", "seconds"]
BAD_COUNTERS = {
    "string": "12", "float": 2.5, "huge int": 10**400, "above 2**63": 2**63, "negative": -1, "bool": True,
    "null": None, "list": [1], "object": {"a": 1}, "NaN": float("nan"), "infinity": float("inf"),
}
BAD_COUNTER_CASES = [(field, value) for field in COUNTERS for value in BAD_COUNTERS
                     if not (field == "seconds" and value in ("float", "above 2**63"))]  # valid numbers of seconds


@pytest.mark.parametrize(("field", "value"), BAD_COUNTER_CASES)
def test_metrics_record_with_a_bad_counter_is_skipped_naming_file_and_line(tmp_path, field, value):
    bad = BAD_COUNTERS[value]
    lines = [{"kind": "eval", "epoch": e, "step": e, "images_seen": 64 * e, "seconds": 1.0 * e, "critic_steps": e,
              "sliced_pixels": 0.5} for e in range(3)]
    lines[1][field] = bad
    lines.insert(2, {"kind": "alarm", "epoch": 1, "step": 1, "images_seen": 64, "name": "diverged", field: bad})
    run = _run(tmp_path, lines=lines)
    with pytest.warns(UserWarning, match=r"metrics\.jsonl.*line 2\b.*line 3\b"):
        loaded = load_run(run)
    assert [line["step"] for line in loaded.lines] == [0, 2]
    assert loaded.alarms == []


@pytest.mark.slow
@pytest.mark.parametrize(("field", "value"), BAD_COUNTER_CASES)
def test_report_of_a_bad_counter_is_written(tmp_path, field, value):
    lines = [{"kind": "eval", "epoch": e, "step": e, "images_seen": 64 * e, "seconds": 1.0 * e,
              "sliced_pixels": 0.5} for e in range(3)]
    lines[-1][field] = BAD_COUNTERS[value]
    run = _run(tmp_path, lines=lines)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert write_report([run]).is_file()


BAD_SIGNALS = {"string": "x", "huge int": 10**400, "NaN": float("nan"), "infinity": float("inf"),
               "-infinity": float("-inf"), "bool": True, "null": None, "list": [], "1e308": 1e308, "-1e308": -1e308}
SIGNALS = ("loss_d", "loss_g", "sliced_pixels", "grad_norm_g", "diversity_fake", "modes_covered", "modes_total",
           "js_bound", "w_estimate")


def _signal_lines(bad_values):
    """Two good lines, then one line per bad value, holding it in every plotted signal."""
    lines = [{"kind": "train" if e % 2 else "eval", "epoch": e, "step": e, "images_seen": 64 * e, "seconds": e,
              **dict.fromkeys(SIGNALS, 1.0)} for e in range(2 + len(bad_values))]
    for line, value in zip(lines[2:], bad_values):
        line.update(dict.fromkeys(SIGNALS, value))
    return lines


def test_report_with_every_bad_signal_value_is_written(tmp_path):
    run = _run(tmp_path, lines=_signal_lines(list(BAD_SIGNALS.values())))
    html = write_report([run]).read_text(encoding="utf-8")
    assert "<table class=\"summary\">" in html and (run / "curves.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.parametrize("value", BAD_SIGNALS)
def test_report_with_one_bad_signal_value_is_written(tmp_path, value):
    run = _run(tmp_path, lines=_signal_lines([BAD_SIGNALS[value]] * 2))
    html = write_report([run]).read_text(encoding="utf-8")
    assert "<table class=\"summary\">" in html and (run / "curves.png").stat().st_size > 1000


def test_only_finite_numbers_are_plotted(tmp_path):
    run = load_run(_run(tmp_path, lines=_signal_lines(list(BAD_SIGNALS.values()))))
    assert report_module._series(run, "eval", "sliced_pixels", "images_seen") == ([0], [1.0])
    assert report_module._series(run, "train", "loss_d", "images_seen") == ([64], [1.0])


NOT_OBJECTS = ["[1, 2]", "3", '"text"', "null", "true"]
NOT_JSON = ["{", "{'single': 1}", "\x00\x01", "NaNx", "9" * 5000, "[" * 100000, "{}}"]


@pytest.mark.parametrize("line", NOT_OBJECTS + NOT_JSON)
def test_metrics_line_that_is_not_an_object_names_file_and_line(tmp_path, line):
    run = _run(tmp_path, lines=['{"kind": "eval", "step": 0}', line, '{"kind": "eval", "step": 1}'])
    with pytest.raises(ValueError, match=r"metrics\.jsonl', line 2\b"):
        load_run(run)


@pytest.mark.parametrize("text", ["9" * 5000, "[" * 100000, '{"a": ' + "9" * 5000 + "}", "[1]", '"x"', "{"])
@pytest.mark.parametrize("file", ["config.json", "alarms.json"])
def test_damaged_json_file_names_it(tmp_path, file, text):
    run = _run(tmp_path)
    if file == "alarms.json" and text == "[1]":
        text = '{"not": "a list"}'
    (run / file).write_text(text)
    with pytest.raises(ValueError, match=file.replace(".", r"\.")):
        load_run(run)


def test_alarms_json_entries_with_bad_steps_are_skipped(tmp_path):
    run = _run(tmp_path)
    (run / "alarms.json").write_text(json.dumps([{"name": "diverged", "step": "late", "images_seen": 5},
                                                 {"name": "diverged", "step": 2, "images_seen": 128},
                                                 {"name": "mode_collapse", "step": None}]))
    with pytest.warns(UserWarning, match=r"alarms\.json.*entry 1\b.*entry 3\b"):
        loaded = load_run(run)
    assert [(a["name"], a["step"]) for a in loaded.alarms] == [("diverged", 2), ("mode_collapse", 4)]
    with pytest.warns(UserWarning, match="entry 1"):
        assert write_report([run]).is_file()


@pytest.mark.parametrize("damage", ["deeply nested config", "report path is a folder"])
def test_cli_error_is_one_line(tmp_path, capsys, damage):
    run = _run(tmp_path)
    out = tmp_path / "report.html"
    if damage == "deeply nested config":
        (run / "config.json").write_text("[" * 100000)
    else:
        out.mkdir()
    with pytest.raises(SystemExit) as exit_:
        report_module.main([str(run), "--out", str(out)])
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and error.count("\n") == 1 and "error:" in error
    assert ("config.json" if damage == "deeply nested config" else "report.html") in error
