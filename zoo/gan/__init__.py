"""The original GAN (Goodfellow et al. 2014) on MNIST: ``model.py`` (networks), ``recipe.py`` (the rest)."""
