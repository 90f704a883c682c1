"""GAN, WGAN and WGAN-GP trainers (see the trainers issue)."""
