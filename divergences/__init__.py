"""Distances between probability distributions, for numpy and torch.

``from divergences import kl, js, emd, sinkhorn``: numpy in, numpy out; torch
in, torch out (same dtype and device, differentiable).  Leading axes are
batch axes everywhere.  Feature-space metrics of generative models sit beside
them: ``frechet`` (the FID formula), ``mmd`` and ``kid``, ``prdc``.
"""

from divergences.discriminator import critic_w1_estimate, js_from_discriminator
from divergences.entropy import js, js_distance, kl
from divergences.frechet import frechet, frechet_gaussians, gaussian_fit
from divergences.mmd import kid, mmd
from divergences.patches import patch_sliced
from divergences.prdc import prdc
from divergences.sinkhorn import sinkhorn
from divergences.sliced import sliced
from divergences.wasserstein import emd, emd_cost

__all__ = [
    "kl",
    "js",
    "js_distance",
    "emd",
    "emd_cost",
    "sinkhorn",
    "sliced",
    "patch_sliced",
    "js_from_discriminator",
    "critic_w1_estimate",
    "frechet",
    "frechet_gaussians",
    "gaussian_fit",
    "mmd",
    "kid",
    "prdc",
]
__version__ = "0.1.0"
