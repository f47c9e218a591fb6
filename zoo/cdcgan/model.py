"""Class-conditional DCGAN: draw a chosen digit with the DCGAN's networks.

Mirza & Osindero (2014), "Conditional Generative Adversarial Nets", https://arxiv.org/abs/1411.1784:
the generator sees the label (an embedding concatenated to the noise). Miyato & Koyama (2018),
"cGANs with Projection Discriminator", https://arxiv.org/abs/1802.05637: the discriminator's logit
gains ``<embed(label), features>``. Both are :mod:`zoo.core.nn.gan_networks`' DCGAN networks with
``num_classes``; training (hinge loss, spectral norm, ...) is :class:`zoo.core.nn.adversarial.AdversarialModel`'s.
"""

import keras

from zoo.core.nn.gan_networks import ConvGAN

NUM_CLASSES = 10

# "tiny" keeps the tests fast; "base" is the committed model (the DCGAN's width).
PRESETS = {
    "tiny": {"latent_dim": 8, "filters": 4, "loss": "hinge", "spectral_norm": True},
    "base": {"latent_dim": 64, "filters": 32, "loss": "hinge", "spectral_norm": True},
}


@keras.saving.register_keras_serializable(package="zoo")
class CDCGAN(ConvGAN):
    """A DCGAN that draws the digit it is asked for: ``generate(noise, labels)``.

    Args:
        latent_dim: size of the noise vector.
        filters: base width of both networks.
        num_classes: how many labels (10 digits).
        **kwargs: ``discriminator_filters``, ``dropout``, ``ema_decay``, ``loss``, ``r1_gamma``, ``spectral_norm``,
            ``seed`` (see :class:`zoo.core.nn.gan_networks.ConvGAN`).

    Example:
    >>> import numpy as np
    >>> cdcgan = CDCGAN(**PRESETS["tiny"])
    >>> tuple(cdcgan.generate(np.zeros((2, 8), "float32"), np.array([3, 7], "int32")).shape)
    (2, 28, 28, 1)
    """

    def __init__(self, latent_dim=64, filters=32, num_classes=NUM_CLASSES, **kwargs):
        super().__init__(latent_dim=latent_dim, filters=filters, num_classes=num_classes, **kwargs)
