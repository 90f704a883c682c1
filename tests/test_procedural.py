"""make_faces: the procedural anime-face data set, its labels and its pixel read-outs."""

import numpy as np
import pytest

from trainers.procedural import (ATTRIBUTES, attribute_names, make_faces, read_eye_colour,
                                 read_hair_colour)

N = 2000


@pytest.fixture(scope="module")
def faces():
    return make_faces(N, seed=0)


def test_shapes_and_dtypes(faces):
    images, labels = faces
    assert images.shape == (N, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (N, len(ATTRIBUTES)) and labels.dtype == np.int64


@pytest.mark.parametrize("size", [16, 32, 128])
def test_size_sets_the_image_size_and_colours_stay_readable(size):
    # the hair band and the lower irises scale with the image, so both read-outs still work
    images, labels = make_faces(100, size=size, seed=3)
    assert images.shape == (100, size, size, 3)
    assert (read_hair_colour(images) == labels[:, 0]).mean() >= 0.95
    assert (read_eye_colour(images) == labels[:, 1]).mean() >= 0.95


def test_same_seed_gives_identical_arrays():
    a, b = make_faces(20, seed=7), make_faces(20, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_different_seeds_give_different_arrays():
    a, b = make_faces(20, seed=7), make_faces(20, seed=8)
    assert not np.array_equal(a[0], b[0]) and not np.array_equal(a[1], b[1])


def test_labels_are_in_range_and_uniform(faces):
    # each value's count is Binomial(N, 1/k): within 4 standard errors of N/k
    _, labels = faces
    for j, values in enumerate(ATTRIBUTES.values()):
        k = len(values)
        counts = np.bincount(labels[:, j], minlength=k)
        assert labels[:, j].min() >= 0 and len(counts) == k
        assert np.all(np.abs(counts - N / k) <= 4 * np.sqrt(N * (1 / k) * (1 - 1 / k)))


def test_hair_colour_is_read_off_the_pixels(faces):
    images, labels = faces
    assert (read_hair_colour(images) == labels[:, 0]).mean() >= 0.95


def test_eye_colour_is_read_off_the_pixels(faces):
    images, labels = faces
    assert (read_eye_colour(images) == labels[:, 1]).mean() >= 0.95


def test_faces_are_drawn_not_flat():
    # a face has sclera white and a dark pupil/lid besides the background and hair
    images, _ = make_faces(10, seed=0)
    assert np.all((images == 255).all(-1).any((1, 2)))
    assert np.all((images < 40).all(-1).any((1, 2)))


def test_attribute_names_maps_indices_to_value_names():
    assert attribute_names([0, 1, 2, 3, 1]) == {
        "hair_colour": "black", "eye_colour": "green", "hairstyle": "twin_tails",
        "background": "grey", "mouth": "open"}


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "`n` should be an integer >= 1"),
    ({"n": 2, "size": 15}, "`size` should be an integer >= 16"),
])
def test_bad_values_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_faces(**kwargs)


def test_non_integer_arguments_raise_type_error():
    with pytest.raises(TypeError, match="`size` should be an integer"):
        make_faces(2, size=64.0)


def test_read_outs_reject_non_image_arrays():
    with pytest.raises(ValueError, match="`images` should be of shape"):
        read_hair_colour(np.zeros((2, 64, 64)))
