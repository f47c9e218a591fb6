"""Convolutional VAE (Kingma & Welling 2014) on binarized MNIST, with TFP distributions:
``model.py`` (networks), ``recipe.py`` (the rest)."""
