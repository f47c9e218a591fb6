"""A multi-scale normalizing flow (RealNVP / Glow) on MNIST: ``model.py`` (the bijections), ``recipe.py`` (the rest)."""
