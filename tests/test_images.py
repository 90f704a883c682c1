"""Tests of trainers.images on tiny images made here."""

import warnings
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from trainers.images import load_images, sample_batch

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _mixed_folder(root):
    """Four images of different modes, sizes and formats, one in a nested folder, and a text file."""
    root.mkdir()
    (root / "nested" / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / "a.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (20, 20, 4), dtype=np.uint8), "RGBA").save(root / "b.PNG")
    Image.fromarray(rng.integers(0, 256, (30, 30), dtype=np.uint8), "L").save(root / "nested" / "c.jpeg")
    Image.fromarray(rng.integers(0, 256, (16, 40, 3), dtype=np.uint8)).save(root / "nested" / "deeper" / "d.bmp")
    Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8), "L").convert("P").save(root / "e.webp")
    (root / "notes.txt").write_text("not an image")
    return root


def _zip_of(folder, path):
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
    return path


def _sides_blue_centre_red(path):
    """A 40x20 image whose centre 20x20 square is red and whose sides are blue."""
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    image[:] = BLUE
    image[:, 10:30] = RED
    Image.fromarray(image).save(path)
    return path


def test_folder_and_zip_give_identical_arrays(tmp_path):
    # The same files read from a folder or a zip decode to byte-identical arrays, in the same order.
    folder = _mixed_folder(tmp_path / "faces")
    archive = _zip_of(folder, tmp_path / "faces.zip")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the .txt file is ignored silently
        from_folder = load_images(folder, size=8)
        from_zip = load_images(archive, size=8)
    assert from_folder.shape == (5, 8, 8, 3)
    assert from_folder.dtype == np.uint8
    assert from_folder.tobytes() == from_zip.tobytes()


def test_order_is_sorted_relative_path(tmp_path):
    # Files come out in the order of their relative paths: a.png < b/c.png < d.png.
    (tmp_path / "b").mkdir()
    for name, value in [("d.png", 30), ("b/c.png", 20), ("a.png", 10)]:
        Image.new("L", (4, 4), value).save(tmp_path / name)
    images = load_images(tmp_path, size=4)
    assert images[:, 0, 0, 0].tolist() == [10, 20, 30]


def test_centre_crop(tmp_path):
    # A 40x20 image keeps its centre 20x20 square: red, with none of the blue sides.
    _sides_blue_centre_red(tmp_path / "wide.png")
    image = load_images(tmp_path, size=16)[0].astype(int)
    assert (image[..., 0] >= 250).all() and (image[..., 2] <= 5).all()


def test_centre_crop_of_draft_decoded_jpeg(tmp_path):
    # A large JPEG (decoded at reduced scale) is cropped to its centre square too.
    image = np.zeros((400, 800, 3), dtype=np.uint8)
    image[:] = BLUE
    image[:, 200:600] = RED
    Image.fromarray(image).save(tmp_path / "wide.jpg", quality=95)
    result = load_images(tmp_path, size=32)[0].astype(int)
    assert (result[2:-2, 2:-2, 0] >= 230).all() and (result[2:-2, 2:-2, 2] <= 25).all()


def test_corrupt_file_skipped_with_one_warning(tmp_path):
    # A file with an image extension that fails to decode is skipped, with one warning naming it.
    _sides_blue_centre_red(tmp_path / "good.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.warns(UserWarning) as record:
        images = load_images(tmp_path, size=8)
    assert len(record) == 1
    assert "skipped 1 " in str(record[0].message) and "broken.jpg" in str(record[0].message)
    assert images.shape == (1, 8, 8, 3)


def test_warning_names_at_most_three_files(tmp_path):
    # Five unreadable files give one warning with the count and the first three names.
    _sides_blue_centre_red(tmp_path / "good.png")
    for i in range(5):
        (tmp_path / f"bad{i}.png").write_bytes(b"junk")
    with pytest.warns(UserWarning) as record:
        load_images(tmp_path, size=8)
    message = str(record[0].message)
    assert len(record) == 1 and "skipped 5 " in message
    assert "bad2.png" in message and "bad3.png" not in message


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_images(tmp_path / "nowhere")


def test_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no readable image found.*searched 0 file"):
        load_images(tmp_path)


def test_only_unreadable_files(tmp_path):
    # one error that gives the reasons, not a warning with them before it (two messages for one failure)
    (tmp_path / "bad.webp").write_bytes(b"junk")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"1 of them skipped as unreadable: 'bad.webp' \(UnidentifiedImageError"):
            load_images(tmp_path)


def test_neither_folder_nor_zip(tmp_path):
    path = tmp_path / "faces.tar"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="folder or a .zip"):
        load_images(path)


def test_bad_zip(tmp_path):
    path = tmp_path / "faces.zip"
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable zip"):
        load_images(path)


@pytest.mark.parametrize(("name", "value", "error"), [("size", 0, ValueError), ("size", 2.5, TypeError), ("limit", 0, ValueError)])
def test_bad_options(tmp_path, name, value, error):
    with pytest.raises(error, match=f"`{name}`"):
        load_images(tmp_path, **{name: value})


def test_limit_keeps_first_images(tmp_path):
    # limit=2 keeps the first two readable images in sorted order, skipping a corrupt one before them.
    (tmp_path / "0.png").write_bytes(b"junk")
    for value in range(4):
        Image.new("L", (4, 4), 10 * (value + 1)).save(tmp_path / f"{value + 1}.png")
    with pytest.warns(UserWarning, match="skipped 1 "):
        images = load_images(tmp_path, size=4, limit=2)
    assert images[:, 0, 0, 0].tolist() == [10, 20]


@pytest.mark.parametrize("size", [32, 128])
def test_sizes(tmp_path, size):
    folder = _mixed_folder(tmp_path / "faces")
    images = load_images(folder, size=size)
    assert images.shape == (5, size, size, 3) and images.dtype == np.uint8


def test_sample_batch():
    # Pixels 0 and 255 map to -1 and 1; shape becomes (B, 3, H, W).
    images = torch.zeros((6, 5, 5, 3), dtype=torch.uint8)
    images[::2] = 255
    batch = sample_batch(images, 16, torch.Generator().manual_seed(0))
    assert batch.shape == (16, 3, 5, 5) and batch.dtype == torch.float32
    assert set(batch.unique().tolist()) <= {-1.0, 1.0}


def test_sample_batch_channels_first():
    # Channel c of the batch holds channel c of the image.
    images = torch.tensor([0, 255, 51], dtype=torch.uint8).expand(1, 2, 2, 3)
    batch = sample_batch(images, 1, torch.Generator().manual_seed(0))
    assert batch[0, :, 0, 0].tolist() == pytest.approx([-1.0, 1.0, -0.6])


def test_sample_batch_rejects_float_images():
    with pytest.raises(ValueError, match="uint8"):
        sample_batch(torch.zeros((2, 4, 4, 3)), 1, torch.Generator())


def test_a_callers_warning_still_shows_once_per_line(tmp_path):
    # Decoding silences Pillow's bomb warning; doing it with warnings.catch_warnings reset Python's record of
    # warnings already shown, so a caller's own warning from one line showed again after every load.
    folder = _mixed_folder(tmp_path / "faces")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            load_images(folder, size=8)
            warnings.warn("the caller's own", UserWarning)
    assert [str(warning.message) for warning in caught] == ["the caller's own"]
