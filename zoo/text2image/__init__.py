"""Text-to-image diffusion on MNIST, conditioned on CLIP's frozen text encoder: type a prompt, get a digit."""
