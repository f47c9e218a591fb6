"""DCGAN (Radford et al. 2016) on MNIST: ``model.py`` (networks), ``recipe.py`` (the rest)."""
