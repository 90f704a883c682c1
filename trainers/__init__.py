"""GAN, WGAN and WGAN-GP trainers for the anime-face experiment (docs/theory.md, docs/training.md)."""
