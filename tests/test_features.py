"""Feature networks: the fixed random network is the same everywhere; TorchScript files; pooled pixels."""

import numpy as np
import pytest
import torch

from trainers.features import (PixelFeatures, RandomFeatures, ScriptedFeatures, extract, feature_network,
                               pooled_pixels, weights_digest)
from trainers.monitor import _pixels

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

RANDOM_WEIGHTS_SHA256 = "1e38ff3491b117a024764b1eef4625ca703e8e9fc091a5b5f816a98c59ca47c8"
"""The digest of RandomFeatures' weights as first drawn: a machine, numpy or torch that drew other weights
would give other features, and numbers incomparable with everyone else's."""


class InceptionLike(torch.nn.Module):
    """The interface of the TorchScript Inception of StyleGAN2-ADA: uint8 NCHW in, features with return_features."""

    def forward(self, images: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        channels = images.float().mean((2, 3))  # (N, 3)
        if return_features:
            return torch.cat([channels, channels.square()], 1)  # (N, 6)
        return channels.sum(1, keepdim=True)  # (N, 1): "logits", not features


class PlainExtractor(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().flatten(1)[:, :4]


def faces(n, size=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def test_random_weights_are_the_same_on_every_machine():
    assert weights_digest(RandomFeatures()) == RANDOM_WEIGHTS_SHA256


def test_random_features_shape_dtype_and_determinism():
    images = torch.from_numpy(faces(3)).permute(0, 3, 1, 2)
    features = RandomFeatures()(images)
    assert features.shape == (3, 1984) and features.dtype == torch.float32
    assert torch.equal(features, RandomFeatures()(images))
    # an image's features do not depend on its batch, but for the round-off of the convolution's algorithm
    torch.testing.assert_close(features[1:2], RandomFeatures()(images[1:2]), rtol=1e-5, atol=1e-6)


def test_random_features_in_float64_agree_with_float32():
    images = torch.from_numpy(faces(4)).permute(0, 3, 1, 2)
    network = RandomFeatures()
    features = network(images)
    exact = network.double()(images)
    torch.testing.assert_close(features.double(), exact, rtol=1e-4, atol=1e-5)


def test_other_sizes_are_resized_to_64():
    small = torch.from_numpy(faces(2, size=32)).permute(0, 3, 1, 2)
    assert RandomFeatures()(small).shape == (2, 1984)


def test_feature_networks_refuse_float_images():
    with pytest.raises(ValueError, match="uint8"):
        RandomFeatures()(torch.zeros(1, 3, 64, 64))


def test_pixel_features_are_the_monitors_pooled_pixels():
    images = torch.from_numpy(faces(5)).permute(0, 3, 1, 2)
    unit = images.float() / 127.5 - 1
    torch.testing.assert_close(PixelFeatures()(images), _pixels(unit).float())
    assert pooled_pixels(unit).shape == (5, 768)


def test_a_torchscript_file_is_asked_for_its_features(tmp_path):
    path = tmp_path / "inception-like.pt"
    torch.jit.script(InceptionLike()).save(str(path))
    images = faces(7, size=32)
    features = extract(feature_network(str(path), "cpu"), images, "cpu", batch_size=3)
    channels = torch.from_numpy(images).float().mean((1, 2))
    torch.testing.assert_close(features, torch.cat([channels, channels.square()], 1))


def test_a_torchscript_file_without_return_features_is_called_plainly(tmp_path):
    path = tmp_path / "plain.pt"
    torch.jit.script(PlainExtractor()).save(str(path))
    assert extract(feature_network(str(path), "cpu"), faces(2, size=8), "cpu").shape == (2, 4)


def test_bad_feature_files_are_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        ScriptedFeatures(tmp_path / "missing.pt", "cpu")
    (tmp_path / "junk.pt").write_bytes(b"not a torchscript archive")
    with pytest.raises(ValueError, match="is not a TorchScript file"):
        ScriptedFeatures(tmp_path / "junk.pt", "cpu")
    path = tmp_path / "scalar.pt"
    torch.jit.script(torch.nn.Flatten(0)).save(str(path))
    with pytest.raises(ValueError, match=r"should return \(N, D\) features"):
        extract(feature_network(str(path), "cpu"), faces(2, size=8), "cpu")
