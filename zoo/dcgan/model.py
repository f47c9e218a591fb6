"""DCGAN: convolutional generator and discriminator.

Radford, Metz & Chintala (2016), "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", https://arxiv.org/abs/1511.06434

The networks and their training live in the core (:class:`zoo.core.nn.gan_networks.ConvGAN`,
which the class-conditional ``cdcgan`` shares); this file names the model and its sizes.
"""

import keras

from zoo.core.nn.gan_networks import ConvGAN

# "tiny" keeps the tests fast; "base" is the committed model, sized so that an
# epoch of MNIST takes about a minute on a 2-core CPU.
PRESETS = {
    "tiny": {"latent_dim": 8, "filters": 4},
    "base": {"latent_dim": 64, "filters": 32},
}


@keras.saving.register_keras_serializable(package="zoo")
class DCGAN(ConvGAN):
    """DCGAN (Radford et al. 2016): the GAN objective with convolutional networks.

    Args:
        latent_dim: size of the noise vector.
        filters: base width of both networks.
        **kwargs: ``discriminator_filters``, ``dropout``, ``ema_decay``, ``label_smoothing``, ``loss``, ``r1_gamma``,
            ``spectral_norm``, ``seed`` (see :class:`zoo.core.nn.gan_networks.ConvGAN`).

    Example:
    >>> import numpy as np
    >>> dcgan = DCGAN(**PRESETS["tiny"])
    >>> tuple(dcgan.generate(np.zeros((2, 8), "float32")).shape)
    (2, 28, 28, 1)
    """
