"""Probes: small experiments with closed forms that show how divergences behave.

- ``parallel_lines``: the WGAN paper's Example 1. JS saturates at log 2 with
  zero gradient between disjoint supports; W1 grows like |θ| with gradient ±1.
- ``shift_sweep``: two distributions moved apart by Δ (Gaussians, or boxes
  whose supports separate): JS goes to log 2 and its gradient to 0 as the
  overlap vanishes, while W1 grows like Δ with gradient 1 throughout.
- ``discriminator_vs_critic``: the WGAN paper's Figure 2. A discriminator
  trained to optimality saturates and its gradient at the fakes vanishes;
  the WGAN critics (weight clipping, gradient penalty) stay nearly linear.
- ``few_samples`` and ``high_dimension``: the two reasons why real and
  generated supports do not overlap (too few samples for the bins; random
  low-dimensional supports in high dimension), so JS reads log 2 while W1 and
  sliced W1 still measure how far apart the distributions are.
"""

from divergences.probes.critic import DiscriminatorVsCritic, discriminator_vs_critic
from divergences.probes.overlap import FewSamples, HighDimension, few_samples, high_dimension
from divergences.probes.parallel_lines import ParallelLines, parallel_lines
from divergences.probes.shift_sweep import ShiftSweep, shift_sweep

__all__ = [
    "ParallelLines",
    "parallel_lines",
    "ShiftSweep",
    "shift_sweep",
    "DiscriminatorVsCritic",
    "discriminator_vs_critic",
    "FewSamples",
    "few_samples",
    "HighDimension",
    "high_dimension",
]
