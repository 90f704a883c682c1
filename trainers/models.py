"""DCGAN generator and critic, sized by ``image_size`` (any power of two >= 16).

The layout follows pytorch/examples' ``dcgan/main.py``: the generator upsamples a
``(B, nz, 1, 1)`` code to ``4 x 4`` and doubles the resolution with strided transposed
convolutions until ``image_size``; the critic mirrors it and ends in one score per image,
with no sigmoid (use ``BCEWithLogitsLoss`` for the GAN loss).
"""

from contextlib import contextmanager

import torch
from torch import nn

NORMS = ("batch", "layer", "none")


def _check_image_size(image_size):
    """Raise ``ValueError`` unless ``image_size`` is a power of two >= 16."""
    if isinstance(image_size, bool) or not isinstance(image_size, int):
        raise ValueError(f"`image_size` should be an int power of two >= 16. Instead, received {image_size!r}.")
    if image_size < 16 or image_size & (image_size - 1):
        raise ValueError(
            f"`image_size` should be a power of two >= 16 (16, 32, 64, ...). Instead, received {image_size}."
        )


def _check_norm(norm):
    """Raise ``ValueError`` unless ``norm`` is one of :data:`NORMS`."""
    if norm not in NORMS:
        raise ValueError(f"`norm` should be one of {NORMS}. Instead, received {norm!r}.")


def _n_blocks(image_size):
    """Number of resolution-doubling blocks between ``4 x 4`` and ``image_size / 2``."""
    return image_size.bit_length() - 1 - 3  # log2(S) - 3: 16 -> 1, 32 -> 2, 64 -> 3


def _norm_layer(norm, channels):
    """Per-batch (``"batch"``), per-sample (``"layer"``) or no normalisation."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)  # normalises each sample over (C, H, W)
    return nn.Identity()


def latent(n, nz, *, generator=None, device=None):
    """``n`` latent codes of length ``nz``, shaped as the DCGAN generator takes them: (n, nz, 1, 1) standard normal.

    The one place the trainer, the monitor, the evaluator and `trainers.sample` draw noise.
    """
    return torch.randn(n, nz, 1, 1, generator=generator, device=device)


class Generator(nn.Module):
    """DCGAN generator: ``(B, nz, 1, 1)`` noise to ``(B, channels, S, S)`` images in ``[-1, 1]``.

    Parameters
    ----------
    image_size : int, power of two >= 16
        Side ``S`` of the generated images.
    nz : int
        Length of the latent code.
    ngf : int
        Width of the last hidden layer; the first has ``ngf * S / 8`` channels.
    channels : int
        Channels of the generated images (3 for RGB).

    Raises
    ------
    ValueError
        If ``image_size`` is not a power of two >= 16.

    Examples
    --------
    >>> g = Generator(image_size=32, nz=8, ngf=4)
    >>> g(torch.randn(2, 8, 1, 1)).shape
    torch.Size([2, 3, 32, 32])
    """

    def __init__(self, image_size=64, nz=100, ngf=64, channels=3):
        super().__init__()
        _check_image_size(image_size)
        self.nz = nz
        n = _n_blocks(image_size)
        width = ngf * 2**n
        layers = [  # (B, nz, 1, 1) -> (B, ngf * 2**n, 4, 4)
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(n):  # (B, w, s, s) -> (B, w / 2, 2s, 2s), ending at (B, ngf, S/2, S/2)
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [  # (B, ngf, S/2, S/2) -> (B, channels, S, S)
            nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False),
            nn.Tanh(),
        ]
        self.main = nn.Sequential(*layers)

    @classmethod
    def of(cls, config):
        """The generator a `trainers.config.TrainConfig` describes (its ``image_size``, ``nz`` and ``ngf``)."""
        return cls(config.image_size, config.nz, config.ngf)

    def noise(self, n, *, generator=None, device=None):
        """``n`` latent codes for this generator: (n, nz, 1, 1) standard normal, from ``generator`` if given.

        Examples
        --------
        >>> Generator(image_size=16, nz=8, ngf=4).noise(3).shape
        torch.Size([3, 8, 1, 1])
        """
        return latent(n, self.nz, generator=generator, device=device)

    def forward(self, z):
        """Map ``(B, nz, 1, 1)`` codes to ``(B, channels, S, S)`` images in ``[-1, 1]``."""
        return self.main(z)


class Critic(nn.Module):
    """DCGAN discriminator / WGAN critic: ``(B, channels, S, S)`` images to ``(B,)`` scores.

    The output is a raw logit (GAN) or score (WGAN); there is no sigmoid.

    Parameters
    ----------
    image_size : int, power of two >= 16
        Side ``S`` of the input images.
    ndf : int
        Width of the first layer; the last hidden one has ``ndf * S / 8`` channels.
    channels : int
        Channels of the input images (3 for RGB).
    norm : {"batch", "layer", "none"}
        Normalisation after each hidden convolution but the first. ``"batch"`` for GAN and
        WGAN; ``"layer"`` (``GroupNorm(1, C)``, per sample) or ``"none"`` for WGAN-GP, whose
        gradient penalty is taken per sample and must not mix samples of a batch.

    Raises
    ------
    ValueError
        If ``image_size`` is not a power of two >= 16 or ``norm`` is not a known name.

    Examples
    --------
    >>> d = Critic(image_size=16, ndf=4, norm="layer")
    >>> d(torch.randn(2, 3, 16, 16)).shape
    torch.Size([2])
    """

    def __init__(self, image_size=64, ndf=64, channels=3, norm="batch"):
        super().__init__()
        _check_image_size(image_size)
        _check_norm(norm)
        n = _n_blocks(image_size)
        width = ndf
        layers = [  # (B, channels, S, S) -> (B, ndf, S/2, S/2)
            nn.Conv2d(channels, width, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for _ in range(n):  # (B, w, s, s) -> (B, 2w, s/2, s/2), ending at (B, ndf * 2**n, 4, 4)
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                _norm_layer(norm, width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]  # (B, ndf * 2**n, 4, 4) -> (B, 1, 1, 1)
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        """Map ``(B, channels, S, S)`` images to ``(B,)`` logits or scores."""
        return self.main(x).flatten()  # (B, 1, 1, 1) -> (B,)


def init_weights(module):
    """DCGAN initialisation, for ``model.apply(init_weights)``.

    Convolution weights are drawn from ``N(0, 0.02)``; normalisation weights from
    ``N(1, 0.02)`` with zero bias. Other modules are left as they are.

    Parameters
    ----------
    module : torch.nn.Module
        One module; ``nn.Module.apply`` visits every submodule.

    Examples
    --------
    >>> g = Generator(image_size=16, nz=4, ngf=2).apply(init_weights)
    >>> bool(g.main[0].weight.std() < 0.1)
    True
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@contextmanager
def buffers_restored(*modules):
    """Undo what a forward pass in training mode does to the modules' buffers (batch-norm running statistics).

    An evaluation, a sample grid or `trainers.watch.Watch` runs the networks as training does, and must
    leave them as training left them.
    """
    saved = [{name: buffer.clone() for name, buffer in module.named_buffers()} for module in modules]
    try:
        yield
    finally:
        with torch.no_grad():
            for module, buffers in zip(modules, saved):
                for name, buffer in module.named_buffers():
                    buffer.copy_(buffers[name])
