"""DCGAN: convolutional generator and discriminator.

Radford, Metz & Chintala (2016), "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", https://arxiv.org/abs/1511.06434
"""

import keras
from keras import layers

from zoo.core.adversarial import MNIST_SHAPE as IMAGE_SHAPE
from zoo.core.adversarial import AdversarialModel

# "tiny" keeps the tests fast; "base" is the committed model, sized so that an
# epoch of MNIST takes about a minute on a 2-core CPU.
PRESETS = {
    "tiny": {"latent_dim": 8, "filters": 4},
    "base": {"latent_dim": 64, "filters": 32},
}


@keras.saving.register_keras_serializable(package="zoo")
class ConvGenerator(keras.Model):
    """Noise ``[batch, latent_dim]`` -> images ``[batch, 28, 28, 1]`` in [-1, 1].

    A dense projection to 7x7x(4f), then two stride-2 transposed convolutions
    (7 -> 14 -> 28), batch norm and ReLU between them, a 3x3 convolution and tanh
    at the end, as the DCGAN paper prescribes (no pooling, no dense hidden layers).

    Args:
        latent_dim: size of the noise vector.
        filters: width f of the last hidden layer; earlier ones are 2f and 4f.
    """

    def __init__(self, latent_dim=64, filters=32, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.latent_dim = int(latent_dim)
        self.filters = int(filters)
        f = self.filters
        # === Layers ===
        self.stack = [
            layers.Dense(7 * 7 * 4 * f, use_bias=False),
            layers.BatchNormalization(synchronized=True),  # global batch statistics under tf.distribute
            layers.ReLU(),
            layers.Reshape((7, 7, 4 * f)),
            layers.Conv2DTranspose(2 * f, 4, strides=2, padding="same", use_bias=False),  # 14x14
            layers.BatchNormalization(synchronized=True),  # global batch statistics under tf.distribute
            layers.ReLU(),
            layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False),  # 28x28
            layers.BatchNormalization(synchronized=True),  # global batch statistics under tf.distribute
            layers.ReLU(),
            layers.Conv2D(IMAGE_SHAPE[-1], 3, padding="same", activation="tanh"),
        ]

    def build(self, input_shape):
        shape = input_shape
        for layer in self.stack:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def call(self, noise, training=False):
        x = noise
        for layer in self.stack:
            x = layer(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "filters": self.filters}


@keras.saving.register_keras_serializable(package="zoo")
class ConvDiscriminator(keras.Model):
    """Images ``[batch, 28, 28, 1]`` in [-1, 1] -> one real-vs-fake logit each.

    Two stride-2 convolutions (28 -> 14 -> 7) with LeakyReLU(0.2), as in DCGAN, and
    dropout instead of batch norm: the discriminator then sees real and fake
    batches separately without batch statistics leaking between them.

    Args:
        filters: width of the first convolution; the second has twice as many.
        dropout: dropout rate after each convolution.
    """

    def __init__(self, filters=32, dropout=0.3, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.dropout = float(dropout)
        f = self.filters
        self.stack = [
            layers.Conv2D(2 * f, 4, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Dropout(self.dropout),
            layers.Conv2D(4 * f, 4, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Dropout(self.dropout),
            layers.Flatten(),
            layers.Dense(1),
        ]

    def build(self, input_shape):
        shape = input_shape
        for layer in self.stack:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def call(self, images, training=False):
        x = images
        for layer in self.stack:
            x = layer(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="zoo")
class DCGAN(AdversarialModel):
    """DCGAN (Radford et al. 2016): the GAN objective with convolutional networks.

    Args:
        latent_dim: size of the noise vector.
        filters: base width of both networks.
        **kwargs: ``ema_decay``, ``label_smoothing``, ``seed`` (see
            :class:`zoo.core.adversarial.AdversarialModel`).

    Example:
    >>> import numpy as np
    >>> dcgan = DCGAN(**PRESETS["tiny"])
    >>> tuple(dcgan.generate(np.zeros((2, 8), "float32")).shape)
    (2, 28, 28, 1)
    """

    def __init__(self, latent_dim=64, filters=32, **kwargs):
        super().__init__(latent_dim=latent_dim, **kwargs)
        self.filters = int(filters)
        self.set_networks(
            ConvGenerator(self.latent_dim, self.filters, name="generator"),
            ConvDiscriminator(self.filters, name="discriminator"),
        )

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}
