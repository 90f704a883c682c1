"""Probes: small experiments with closed forms that show how divergences behave.

``parallel_lines`` is the WGAN paper's Example 1: JS saturates at log 2 with
zero gradient between disjoint supports, W1 grows like |θ| with gradient ±1.
"""

from divergences.probes.parallel_lines import ParallelLines, parallel_lines

__all__ = ["ParallelLines", "parallel_lines"]
