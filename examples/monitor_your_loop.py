"""The monitor in your own training loop: an MLP GAN on a ring of 8 Gaussians, watched by `trainers.watch.Watch`.

    .venv/bin/python examples/monitor_your_loop.py                     # GAN (BCE), 3,000 steps, under a minute
    .venv/bin/python examples/monitor_your_loop.py --loss wgan-gp      # the same loop with a gradient penalty
    .venv/bin/python examples/monitor_your_loop.py --out runs/ring --steps 5000

Nothing here is the bundled DCGAN trainer: the models, the data and the loop are this file's. The
only lines that concern the monitor are marked "# monitor". It writes the run directory of
docs/run_format.md (metrics.jsonl, alarms.json, a scatter of generated points per evaluation in
samples/) and report.html, whose path it prints last.
"""

from trainers.errors import interrupt_in_one_line

if __name__ == "__main__":  # before torch imports: Ctrl-C there ends in one line
    interrupt_in_one_line("monitor_your_loop.py")

import argparse
import math
from datetime import datetime

import torch
from torch import nn

from trainers.watch import Watch


def ring(n, generator=None, modes=8, radius=2.0, spread=0.05):
    """n points from a ring of ``modes`` Gaussians (the usual mode-collapse test of GAN papers)."""
    angles = 2 * math.pi * torch.randint(modes, (n,), generator=generator) / modes
    centres = radius * torch.stack([angles.cos(), angles.sin()], 1)
    return centres + spread * torch.randn(n, 2, generator=generator)


def mlp(inputs, outputs, width=128):
    return nn.Sequential(nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, outputs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", choices=("gan", "wgan-gp"), default="gan")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--out", default=f"runs/ring-{datetime.now():%Y%m%d-%H%M%S}")
    args = parser.parse_args()
    torch.manual_seed(0)
    nz, batch = 8, 256
    generator, critic = mlp(nz, 2), mlp(2, 1)
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.9))
    optimizer_d = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    n_critic = 5 if args.loss == "wgan-gp" else 1
    held_out = ring(1000, torch.Generator().manual_seed(1))  # real points kept out of training

    watch = Watch(held_out, args.out, loss=args.loss, batch_size=batch * n_critic,  # monitor
                  noise=lambda n: torch.randn(n, nz), eval_every=100, eval_samples=500)  # monitor
    for step in range(1, args.steps + 1):
        for _ in range(n_critic):
            real, fake = ring(batch), generator(torch.randn(batch, nz)).detach()
            if args.loss == "gan":
                loss_d = (nn.functional.softplus(-critic(real)) + nn.functional.softplus(critic(fake))).mean()
            else:
                loss_d = critic(fake).mean() - critic(real).mean() + 10 * gradient_penalty(critic, real, fake)
            optimizer_d.zero_grad()
            loss_d.backward()
            optimizer_d.step()
        scores = critic(generator(torch.randn(batch, nz)))
        loss_g = nn.functional.softplus(-scores).mean() if args.loss == "gan" else -scores.mean()
        optimizer_g.zero_grad()
        loss_g.backward()
        optimizer_g.step()
        for alarm in watch.step(step, generator=generator, critic=critic, loss_d=loss_d, loss_g=loss_g):  # monitor
            print(f"ALARM {alarm['name']} at step {step}: {alarm['message']}")
    print(f"report: {watch.close()}")  # monitor


def gradient_penalty(critic, real, fake):
    """WGAN-GP's penalty: (‖∇x critic(x)‖ - 1)² at random points between real and generated ones."""
    mix = torch.rand(len(real), 1)
    points = (mix * real + (1 - mix) * fake).requires_grad_(True)
    (gradient,) = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    return ((gradient.norm(dim=1) - 1) ** 2).mean()


if __name__ == "__main__":
    main()
