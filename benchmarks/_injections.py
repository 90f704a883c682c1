"""Failures the alarm benchmark causes by changing the trainer's code rather than its settings.

Each entry of `INJECTIONS` takes the run's config and returns a function of the generator step the
run starts from (0, or its checkpoint's when resumed) that gives the context manager to train in.
"""

import math
from contextlib import contextmanager
from unittest import mock

import torch

from trainers import train as train_module
from trainers.models import Generator

COLLAPSED_IMAGES = 3
"""The generator that collapses maps every noise vector to one of this many images."""


def halfway(config):
    """The generator step halfway through the run."""
    resolved = config.resolved()
    return config.epochs * config.epoch_images // (resolved.batch_size * resolved.n_critic) // 2


def _counting_generator_steps(start, on_step):
    """Patch the trainer's optimisers so that ``on_step(step, generator)`` follows each generator update."""
    original = train_module._optimisers
    state = {"step": start}

    def optimisers(config, spec, generator, critic):
        optimizer_g, optimizer_d = original(config, spec, generator, critic)

        def hook(optimizer, args, kwargs):
            state["step"] += 1
            on_step(state["step"], generator)

        optimizer_g.register_step_post_hook(hook)
        return optimizer_g, optimizer_d

    return mock.patch.object(train_module, "_optimisers", optimisers), state


def nan_at(config):
    """At the generator step halfway, the generator's first weight becomes NaN (after its optimiser's step)."""
    at = halfway(config)

    def injection(start):
        def poison(step, generator):
            if step == at:
                with torch.no_grad():
                    next(generator.parameters()).fill_(math.nan)

        patch, _ = _counting_generator_steps(start, poison)
        return patch

    return injection


def collapse_at(config):
    """From the generator step halfway on, the generator maps every noise vector to one of 3 fixed ones."""
    at = halfway(config)

    @contextmanager
    def injection(start):
        patch, state = _counting_generator_steps(start, lambda step, generator: None)

        class Collapsing(Generator):
            def forward(self, noise):
                if state["step"] >= at:
                    prototypes = torch.randn(COLLAPSED_IMAGES, *noise.shape[1:], generator=torch.Generator().manual_seed(7))
                    noise = prototypes.to(noise.device)[noise.flatten(1)[:, 0].abs().mul(1000).long() % COLLAPSED_IMAGES]
                return super().forward(noise)

        with patch, mock.patch.object(train_module, "Generator", Collapsing):
            yield

    return injection


def momentum(config):
    """Both networks trained by Adam (lr 1e-4, betas 0.5 and 0.9) instead of RMSProp (lr 5e-5); weight clipping kept."""
    def optimisers(config, spec, generator, critic):
        return (torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.5, 0.9)),
                torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.5, 0.9)))

    return lambda start: mock.patch.object(train_module, "_optimisers", optimisers)


def adam_default_betas(config):
    """Both networks trained by Adam with its default betas (0.9, 0.999) at the run's learning rates, not DCGAN's beta1 = 0.5."""
    def optimisers(config, spec, generator, critic):
        return (torch.optim.Adam(generator.parameters(), lr=config.lr, betas=(0.9, 0.999)),
                torch.optim.Adam(critic.parameters(), lr=config.lr * config.critic_lr_factor, betas=(0.9, 0.999)))

    return lambda start: mock.patch.object(train_module, "_optimisers", optimisers)


def two_generator_updates(config):
    """After each generator update, a second one on fresh noise through the same critic: 2 generator updates per critic update."""
    original = train_module._optimisers

    def optimisers(config, spec, generator, critic):
        optimizer_g, optimizer_d = original(config, spec, generator, critic)
        single = optimizer_g.step
        noise_rng = torch.Generator().manual_seed(config.seed + 3)

        def twice():
            single()
            noise = torch.randn(config.batch_size, config.nz, 1, 1, generator=noise_rng)
            loss = spec.generator_loss(critic(generator(noise.to(next(generator.parameters()).device))).float())
            optimizer_g.zero_grad(set_to_none=True)
            loss.backward()  # the critic is frozen for the generator's update: only the generator gets gradients
            single()

        optimizer_g.step = twice
        return optimizer_g, optimizer_d

    return lambda start: mock.patch.object(train_module, "_optimisers", optimisers)


INJECTIONS = {"nan": nan_at, "collapse": collapse_at, "momentum": momentum,
              "two_generator_updates": two_generator_updates, "adam_default_betas": adam_default_betas}
"""Injection name -> function of the config returning the injection (a function of the start step)."""

AT_KNOWN_STEP = ("nan", "collapse")
"""The injections that start at a known step, halfway; the others change the training from the start."""
