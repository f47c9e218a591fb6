"""The original GAN: an MLP generator and discriminator trained adversarially.

Goodfellow et al. (2014), "Generative Adversarial Nets", https://arxiv.org/abs/1406.2661
"""

import keras
import numpy as np
from keras import layers, ops

from zoo.core import distribute
from zoo.core.inputs import check_float_input

IMAGE_SHAPE = (28, 28, 1)

# Network sizes. "tiny" keeps the tests fast; "base" is the committed model.
PRESETS = {
    "tiny": {"latent_dim": 8, "hidden_units": [16, 32]},
    "base": {"latent_dim": 64, "hidden_units": [256, 512, 1024]},
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
    """

    def __init__(self, hidden_units=(1024, 512, 256), dropout=0.3, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = [int(u) for u in hidden_units]
        self.dropout = float(dropout)
        self.flatten = layers.Flatten()
        self.hidden = []
        for units in self.hidden_units:
            self.hidden += [layers.Dense(units), layers.LeakyReLU(0.2), layers.Dropout(self.dropout)]
        self.to_logit = layers.Dense(1)

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
        return self.to_logit(x)

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units, "dropout": self.dropout}


class AdversarialModel(keras.Model):
    """A generator and a discriminator trained with alternating updates.

    The discriminator minimises binary cross-entropy on real (label 1, optionally
    smoothed) and generated (label 0) images; the generator uses the non-saturating
    loss ``-log D(G(z))`` from the GAN paper. Images are in [-1, 1] during training;
    an exponential moving average (EMA) of the generator's weights is kept for
    sampling, which gives steadier samples than the raw weights.

    Subclasses (:class:`GAN`, DCGAN) create their networks and pass them to
    :meth:`set_networks` at the end of ``__init__``.

    Args:
        latent_dim: size of the noise vector.
        ema_decay: decay of the generator's weight average; 0 disables it.
        label_smoothing: real labels become ``1 - label_smoothing``.
        seed: seed of the noise drawn inside ``train_step``.
    """

    def __init__(self, latent_dim=64, ema_decay=0.999, label_smoothing=0.0, seed=0, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.latent_dim = int(latent_dim)
        self.ema_decay = float(ema_decay)
        self.label_smoothing = float(label_smoothing)
        self.seed = int(seed)
        self.noise_seed = keras.random.SeedGenerator(self.seed)
        # === Trackers ===
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.discriminator_loss_tracker = keras.metrics.Mean(name="discriminator_loss")
        self.real_score_tracker = keras.metrics.Mean(name="real_score")
        self.fake_score_tracker = keras.metrics.Mean(name="fake_score")

    def set_networks(self, generator, discriminator):
        self.generator = generator
        self.discriminator = discriminator
        self.generator.build((None, self.latent_dim))
        self.discriminator.build((None, *IMAGE_SHAPE))
        self.ema_generator = None
        if self.ema_decay > 0:
            self.ema_generator = generator.__class__.from_config({**generator.get_config(), "name": "ema_generator"})
            self.ema_generator.build((None, self.latent_dim))
            for average, weight in zip(self.ema_generator.weights, self.generator.weights):
                average.assign(weight)
        self.built = True

    @property
    def metrics(self):
        return [self.generator_loss_tracker, self.discriminator_loss_tracker,
                self.real_score_tracker, self.fake_score_tracker]

    def compile(self, generator_optimizer=None, discriminator_optimizer=None, **kwargs):
        """Attach one optimizer per network (Adam(2e-4, beta_1=0.5) by default, as in DCGAN)."""
        super().compile(**kwargs)
        self.generator_optimizer = generator_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.discriminator_optimizer = discriminator_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        # Built now so a checkpoint's optimizer state can be loaded before step one.
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def call(self, noise, training=False):
        return self.generator(noise, training=training)

    def train_step(self, real_images):
        import tensorflow as tf  # train_step is TF-backend code (GradientTape)

        batch_size = ops.shape(real_images)[0]
        real_labels = ops.full((batch_size, 1), 1.0 - self.label_smoothing)
        fake_labels = ops.zeros((batch_size, 1))

        noise = self._draw_noise(batch_size)
        with tf.GradientTape() as tape:
            fake_images = self.generator(noise, training=True)
            real_logits = self.discriminator(real_images, training=True)
            fake_logits = self.discriminator(fake_images, training=True)
            discriminator_loss = _bce(real_labels, real_logits) + _bce(fake_labels, fake_logits)
            scaled_loss = distribute.scale_loss(discriminator_loss)  # inside the tape, or no gradient
        grads = tape.gradient(scaled_loss, self.discriminator.trainable_variables)
        self.discriminator_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))

        noise = self._draw_noise(batch_size)
        with tf.GradientTape() as tape:
            fake_logits_for_generator = self.discriminator(self.generator(noise, training=True), training=True)
            # Non-saturating loss: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
            generator_loss = _bce(ops.ones((batch_size, 1)), fake_logits_for_generator)
            scaled_loss = distribute.scale_loss(generator_loss)
        grads = tape.gradient(scaled_loss, self.generator.trainable_variables)
        self.generator_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        self._update_ema()

        self.generator_loss_tracker.update_state(generator_loss)
        self.discriminator_loss_tracker.update_state(discriminator_loss)
        self.real_score_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
        self.fake_score_tracker.update_state(ops.mean(ops.sigmoid(fake_logits)))
        return {m.name: m.result() for m in self.metrics}

    def _draw_noise(self, batch_size):
        # Drawn for the global batch and sliced per replica: N replicas see the noise one device would.
        return distribute.draw_for_global_batch(
            lambda n: keras.random.normal((n, self.latent_dim), seed=self.noise_seed), batch_size)

    def _update_ema(self):
        if self.ema_generator is None:
            return
        # Warm-up (as tf.train.ExponentialMovingAverage's num_updates): early samples
        # follow the fast-changing weights instead of the random initialisation.
        step = ops.cast(self.generator_optimizer.iterations, "float32")
        decay = ops.minimum(self.ema_decay, (1.0 + step) / (10.0 + step))
        for average, weight in zip(self.ema_generator.weights, self.generator.weights):
            average.assign(decay * average + (1.0 - decay) * weight)

    @property
    def sampling_generator(self):
        return self.ema_generator if self.ema_generator is not None else self.generator

    def generate(self, noise):
        """Images ``[batch, 28, 28, 1]`` in [0, 1] from noise ``[batch, latent_dim]``."""
        return generate_images(self.sampling_generator, self.check_noise(noise))

    def check_noise(self, noise):
        """Reject noise of the wrong shape or dtype with a clear message."""
        return check_float_input(noise, "noise", (None, self.latent_dim))

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "ema_decay": self.ema_decay,
            "label_smoothing": self.label_smoothing,
            "seed": self.seed,
        }


def generate_images(generator, noise):
    """Run a generator in inference mode and map its tanh output from [-1, 1] to [0, 1]."""
    return (generator(noise, training=False) + 1.0) / 2.0


def _bce(labels, logits):
    return ops.mean(keras.losses.binary_crossentropy(labels, logits, from_logits=True))


@keras.saving.register_keras_serializable(package="zoo")
class GAN(AdversarialModel):
    """The original GAN: MLP generator and discriminator (Goodfellow et al. 2014).

    Args:
        latent_dim: size of the noise vector.
        hidden_units: generator widths, narrowest first; the discriminator mirrors them.
        **kwargs: ``ema_decay``, ``label_smoothing``, ``seed`` (see :class:`AdversarialModel`).

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
            MLPDiscriminator(list(reversed(self.hidden_units)), name="discriminator"),
        )

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units}
