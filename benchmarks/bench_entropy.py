"""KL and Jensen-Shannon on a (10^4, 10^3) batch of histograms: ours vs scipy, torch vs numpy in.

Measures, on float64 random histograms p, q of shape (10^4, 10^3) (seeded,
entries uniform in [0, 1), normalised along axis 1 by both libraries):

* ``divergences.js(p, q, axis=1)`` vs ``scipy.spatial.distance.jensenshannon(p, q, axis=1)**2``
  (scipy returns the JS *distance*; its square is the divergence), target:
  ours at least as fast (ratio >= 1);
* ``divergences.kl(p, q, axis=1)`` vs ``scipy.stats.entropy(p, q, axis=1)``,
  target: ours at least as fast;
* ours with torch CPU tensors in (``torch.from_numpy``, no copy) vs ours with
  numpy arrays in, for js and kl, target: torch no slower (ratio >= 1).

The values must agree with scipy to 1e-12 relative (max over the batch); the
script fails otherwise.

Run:  .venv/bin/python benchmarks/bench_entropy.py [--quick] [--repeats R]
"""

import numpy as np
import scipy.spatial.distance
import scipy.stats
import torch

import divergences
from _timing import compare, parse_args, report

AGREEMENT = 1e-12


def max_relative_difference(values, reference):
    values = values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    return float(np.max(np.abs(values - reference) / np.abs(reference)))


def case(label, ours, peer_name, peer, repeats):
    our_time, our_values, peer_time, peer_values, speedup = compare(ours, peer, repeats)
    difference = max_relative_difference(our_values, np.asarray(peer_values))
    return {
        "case": label,
        "peer": peer_name,
        "ours median s": our_time,
        "peer median s": peer_time,
        "ratio peer/ours": speedup,
        "max rel. diff": difference,
        "agree 1e-12": difference <= AGREEMENT,
        "target": ">= 1x",
        "met": speedup >= 1.0,
    }


def main():
    args = parse_args(__doc__)
    shape = (1_000, 100) if args.quick else (10_000, 1_000)
    rng = np.random.default_rng(0)
    p, q = rng.random(shape), rng.random(shape)
    p_t, q_t = torch.from_numpy(p), torch.from_numpy(q)
    size = f"{shape[0]:,} x {shape[1]:,}"
    js_np = lambda: divergences.js(p, q, axis=1)  # noqa: E731
    kl_np = lambda: divergences.kl(p, q, axis=1)  # noqa: E731
    rows = [
        case(f"js, {size}", js_np, "scipy jensenshannon**2",
             lambda: scipy.spatial.distance.jensenshannon(p, q, axis=1) ** 2, args.repeats),
        case(f"kl, {size}", kl_np, "scipy.stats.entropy",
             lambda: scipy.stats.entropy(p, q, axis=1), args.repeats),
        # "ours" is torch in, the "peer" is ours with numpy in.
        case(f"js torch in, {size}", lambda: divergences.js(p_t, q_t, axis=1), "ours, numpy in", js_np, args.repeats),
        case(f"kl torch in, {size}", lambda: divergences.kl(p_t, q_t, axis=1), "ours, numpy in", kl_np, args.repeats),
    ]
    report("entropy", rows, args, notes=[
        "ratio > 1 means the first column is faster; medians of wall-clock times after one warm-up.",
    ])
    disagreements = [row for row in rows if not row["agree 1e-12"]]
    if disagreements:
        raise SystemExit(f"values disagree beyond {AGREEMENT:g} relative: {[r['case'] for r in disagreements]}")


if __name__ == "__main__":
    main()
