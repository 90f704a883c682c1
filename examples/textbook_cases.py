"""Print kl, js, emd, sinkhorn and sliced on a few textbook cases.

Each row states what theory says next to what the library computes, so the
table doubles as a sanity check: JS of disjoint supports is log 2, KL is
infinite there, W1 between point masses is their distance, and so on.

    .venv/bin/python examples/textbook_cases.py
"""

import math

import numpy as np

from divergences import emd, js, kl, sinkhorn, sliced


def main():
    rng = np.random.default_rng(0)
    cloud = rng.normal(size=(200, 2))
    cases = [
        ("JS, disjoint supports", "log 2 = 0.693147", js([1, 0, 0], [0, 1, 0])),
        ("JS, identical", "0", js([1, 2, 3], [1, 2, 3])),
        ("JS, disjoint, base 2", "1 bit", js([1, 0], [0, 1], base=2)),
        ("KL, (1/2,1/2) || (1/4,3/4)", f"{0.5 * math.log(2) + 0.5 * math.log(2 / 3):.6f}", kl([1, 1], [1, 3])),
        ("KL, mass where q has none", "inf", kl([1, 1], [1, 0])),
        ("W1, point masses 0 and 3", "3", emd([0.0], [3.0])),
        ("W1, (0,0) to (3,4)", "5", emd([[0.0, 0.0]], [[3.0, 4.0]])),
        ("W2, cloud shifted by (1,1)", f"{math.sqrt(2):.6f}", emd(cloud, cloud + 1, p=2)),
        ("Sinkhorn eps=1e-3 -> W2^2", f"{emd(cloud, cloud + 1, p=2) ** 2:.6f}", sinkhorn(cloud, cloud + 1, eps=1e-3, debias=False)),
        ("Sinkhorn divergence, same cloud", "0", sinkhorn(cloud, cloud, eps=0.01)),
        ("Sliced W1, line shifted by 2", "2", sliced([0.0, 1.0], [2.0, 3.0], p=1, seed=0)),
    ]
    width = max(len(name) for name, _, _ in cases)
    print(f"{'case':<{width}}  {'theory':>18}  {'computed':>12}")
    for name, theory, value in cases:
        print(f"{name:<{width}}  {theory:>18}  {float(value):>12.6f}")


if __name__ == "__main__":
    main()
