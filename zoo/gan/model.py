"""The original GAN: an MLP generator and discriminator trained adversarially.

Goodfellow et al. (2014), "Generative Adversarial Nets", https://arxiv.org/abs/1406.2661
"""

import keras
import numpy as np
from keras import layers

from zoo.core.nn.adversarial import AdversarialModel
from zoo.core.nn.gan_networks import MNIST_SHAPE as IMAGE_SHAPE
from zoo.core.nn.gan_networks import dense

# Network sizes. "tiny" keeps the tests fast; "base" is the committed model.
PRESETS = {
    "tiny": {"latent_dim": 8, "hidden_units": [16, 32]},
    # base: hinge loss, the one stabiliser that improved this GAN (benchmarks/gan_ablation.py, zoo/gan/README.md)
    "base": {"latent_dim": 64, "hidden_units": [256, 512, 1024], "loss": "hinge"},
}


@keras.saving.register_keras_serializable(package="zoo")
class MLPGenerator(keras.Model):
    """Maps noise ``[batch, latent_dim]`` to images ``[batch, 28, 28, 1]`` in [-1, 1].

    Args:
        latent_dim: size of the noise vector.
        hidden_units: widths of the hidden layers, narrowest first.
    """

    def __init__(self, latent_dim=64, hidden_units=(256, 512, 1024), **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.latent_dim = int(latent_dim)
        self.hidden_units = [int(u) for u in hidden_units]
        # === Layers ===
        self.hidden = []
        for units in self.hidden_units:
            self.hidden.append(layers.Dense(units))
            self.hidden.append(layers.LeakyReLU(0.2))
        self.to_pixels = layers.Dense(int(np.prod(IMAGE_SHAPE)), activation="tanh")
        self.to_image = layers.Reshape(IMAGE_SHAPE)

    def build(self, input_shape):
        x = input_shape
        for layer in self.hidden:
            layer.build(x)
            x = layer.compute_output_shape(x)
        self.to_pixels.build(x)
        self.built = True

    def call(self, noise, training=False):
        x = noise
        for layer in self.hidden:
            x = layer(x, training=training)
        return self.to_image(self.to_pixels(x))

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "hidden_units": self.hidden_units}


@keras.saving.register_keras_serializable(package="zoo")
class MLPDiscriminator(keras.Model):
    """Maps images ``[batch, 28, 28, 1]`` in [-1, 1] to one real-vs-fake logit each.

    Args:
        hidden_units: widths of the hidden layers, widest first.
        dropout: dropout rate after each hidden layer (regularises the discriminator).
        spectral_norm: divide every kernel by its spectral norm (SN-GAN).
    """

    def __init__(self, hidden_units=(1024, 512, 256), dropout=0.3, spectral_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = [int(u) for u in hidden_units]
        self.dropout = float(dropout)
        self.spectral_norm = bool(spectral_norm)
        self.flatten = layers.Flatten()
        self.hidden = []
        for units in self.hidden_units:
            self.hidden += [dense(units, self.spectral_norm), layers.LeakyReLU(0.2), layers.Dropout(self.dropout)]
        self.to_logit = dense(1, self.spectral_norm)

    def build(self, input_shape):
        x = (input_shape[0], int(np.prod(input_shape[1:])))
        for layer in self.hidden:
            layer.build(x)
            x = layer.compute_output_shape(x)
        self.to_logit.build(x)
        self.built = True

    def call(self, images, training=False):
        x = self.flatten(images)
        for layer in self.hidden:
            x = layer(x, training=training)
        return self.to_logit(x, training=training)

    def get_config(self):
        config = {**super().get_config(), "hidden_units": self.hidden_units, "dropout": self.dropout}
        return {**config, "spectral_norm": True} if self.spectral_norm else config


@keras.saving.register_keras_serializable(package="zoo")
class GAN(AdversarialModel):
    """The original GAN: MLP generator and discriminator (Goodfellow et al. 2014).

    Args:
        latent_dim: size of the noise vector.
        hidden_units: generator widths, narrowest first; the discriminator mirrors them.
        **kwargs: ``ema_decay``, ``label_smoothing``, ``loss``, ``r1_gamma``, ``spectral_norm``, ``seed``
            (see :class:`AdversarialModel`).

    Example:
    >>> gan = GAN(**PRESETS["tiny"])
    >>> tuple(gan.generate(np.zeros((2, 8), "float32")).shape)
    (2, 28, 28, 1)
    """

    def __init__(self, latent_dim=64, hidden_units=(256, 512, 1024), **kwargs):
        super().__init__(latent_dim=latent_dim, **kwargs)
        self.hidden_units = [int(u) for u in hidden_units]
        self.set_networks(
            MLPGenerator(self.latent_dim, self.hidden_units, name="generator"),
            MLPDiscriminator(list(reversed(self.hidden_units)), spectral_norm=self.spectral_norm,
                             name="discriminator"),
        )

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units}
