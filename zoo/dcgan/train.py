"""Train DCGAN on MNIST: the GAN training loop with convolutional networks.

    python -m zoo train dcgan --epochs 15
"""

from zoo.dcgan.model import DCGAN, PRESETS
from zoo.gan.train import load_trained_adversarial, train_adversarial


def train(**options):
    return train_adversarial(DCGAN, PRESETS, "dcgan", **options)


def load_trained(run_dir):
    """``(model, run, state)`` from the newest intact checkpoint of a DCGAN run."""
    return load_trained_adversarial(DCGAN, PRESETS, run_dir)
