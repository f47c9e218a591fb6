"""Train DCGAN on MNIST: the GAN training loop with convolutional networks.

    python -m zoo train dcgan --epochs 15
"""

from zoo.dcgan.model import DCGAN, PRESETS
from zoo.gan.train import train_adversarial


def train(**options):
    return train_adversarial(DCGAN, PRESETS, "dcgan", **options)
