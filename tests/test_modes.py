"""trainers.modes: the read-out of modes, coverage counts and the KL of the mode histograms."""

import math

import numpy as np
import pytest
import torch

from trainers.modes import MODES_TOTAL, mode_coverage, modes_of_labels, read_modes
from trainers.procedural import make_faces


def as_generator_output(faces):
    """uint8 (N, S, S, 3) faces as a generator emits them: float32 (N, 3, S, S) in [-1, 1]."""
    return torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1


@pytest.fixture(scope="module")
def real_faces():
    """2000 real faces at 32 px (the quick preset's size) and their labels."""
    return make_faces(2000, size=32, seed=11)


@pytest.mark.parametrize("size", [32, 64])
def test_read_out_matches_the_labels_of_real_faces(size):
    # The read-out must recover the drawn hair and eye colours, >= 95% at either size.
    faces, labels = make_faces(500, size=size, seed=7)
    accuracy = (read_modes(as_generator_output(faces)) == modes_of_labels(labels)).mean()
    assert accuracy >= 0.95


def test_read_out_accepts_numpy_and_clips_out_of_range_values():
    # Generators overshoot [-1, 1] a little; values are clipped before reading, and numpy works too.
    faces, labels = make_faces(50, size=32, seed=3)
    outputs = as_generator_output(faces)
    overshoot = torch.where(outputs >= 1, 1.3, torch.where(outputs <= -1, -1.3, outputs))
    np.testing.assert_array_equal(read_modes(overshoot.numpy()), read_modes(outputs))
    assert read_modes(outputs).dtype == np.int64


def test_modes_of_labels_is_hair_times_five_plus_eyes():
    np.testing.assert_array_equal(modes_of_labels([[0, 0, 0, 0, 0], [2, 3, 1, 1, 1], [5, 4, 2, 3, 1]]), [0, 13, 29])


def test_the_real_set_covers_every_mode_at_kl_zero(real_faces):
    # 2000 uniform draws over 30 modes miss none, and a histogram against itself has KL 0.
    faces, labels = real_faces
    coverage = mode_coverage(as_generator_output(faces), labels)
    assert (coverage.modes_covered, coverage.modes_total) == (MODES_TOTAL, MODES_TOTAL)
    assert coverage.kl_attributes == 0.0
    np.testing.assert_array_equal(coverage.generated_histogram, coverage.real_histogram)
    assert coverage.real_histogram.sum() == 2000


def test_a_constant_generator_covers_one_mode_at_kl_log_of_inverse_mode_mass(real_faces):
    # All mass on mode m: KL(delta_m || p) = -log p_m, about log 30 for near-uniform real modes.
    faces, labels = real_faces
    collapsed = as_generator_output(faces[:1]).expand(100, -1, -1, -1)
    coverage = mode_coverage(collapsed, labels)
    assert coverage.modes_covered == 1
    mode = modes_of_labels(labels[:1])[0]
    assert coverage.generated_histogram[mode] == 100
    p_mode = coverage.real_histogram[mode] / coverage.real_histogram.sum()
    assert coverage.kl_attributes == pytest.approx(-math.log(p_mode), rel=1e-12)


def test_missing_modes_keep_the_kl_finite(real_faces):
    # Half the modes missing: q is uniform on the 15 covered modes and KL(q || p) ~ log 2, not inf.
    faces, labels = real_faces
    modes = modes_of_labels(labels)
    kept = np.isin(modes, np.arange(0, MODES_TOTAL, 2))
    coverage = mode_coverage(as_generator_output(faces[kept]), labels)
    assert coverage.modes_covered == MODES_TOTAL // 2
    assert coverage.kl_attributes == pytest.approx(math.log(2), abs=0.05)


@pytest.mark.parametrize(
    "images",
    [torch.zeros(2, 32, 32, 3), torch.zeros(2, 3, 32, 16), torch.zeros(2, 3, 8, 8), torch.zeros(0, 3, 32, 32)],
)
def test_images_of_the_wrong_shape_are_rejected(images):
    with pytest.raises(ValueError, match=r"`images` should be generator outputs of shape \(N, 3, S, S\)"):
        read_modes(images)


@pytest.mark.parametrize("labels", [np.zeros((4, 2), np.int64), np.zeros(4, np.int64), np.zeros((0, 5), np.int64)])
def test_labels_of_the_wrong_shape_are_rejected(labels):
    with pytest.raises(ValueError, match=r"`real_labels` should be face labels of shape \(N, 5\)"):
        mode_coverage(torch.zeros(1, 3, 32, 32), labels)
    with pytest.raises(ValueError, match=r"`labels` should be face labels of shape \(N, 5\)"):
        modes_of_labels(labels)
