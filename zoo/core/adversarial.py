"""Adversarial training (Goodfellow et al. 2014), shared by every GAN in the zoo.

A GAN model subclasses :class:`AdversarialModel`, creates its generator and
discriminator and passes them to :meth:`AdversarialModel.set_networks`; the
alternating updates, the losses, the EMA generator and the checks on the noise are here.
"""

import keras
from keras import ops

from zoo.core import distribute
from zoo.core.ema import copy_weights, update_moving_average
from zoo.core.inputs import check_float_input

MNIST_SHAPE = (28, 28, 1)


class AdversarialModel(keras.Model):
    """A generator and a discriminator trained with alternating updates.

    The discriminator minimises binary cross-entropy on real (label 1, optionally
    smoothed) and generated (label 0) images; the generator uses the non-saturating
    loss ``-log D(G(z))`` from the GAN paper. Images are in [-1, 1] during training;
    an exponential moving average (EMA) of the generator's weights is kept for
    sampling, which gives steadier samples than the raw weights.

    Subclasses (``zoo.gan``'s GAN, ``zoo.dcgan``'s DCGAN) create their networks and pass them to
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
        self.discriminator.build((None, *MNIST_SHAPE))
        self.ema_generator = None
        if self.ema_decay > 0:
            self.ema_generator = generator.__class__.from_config({**generator.get_config(), "name": "ema_generator"})
            self.ema_generator.build((None, self.latent_dim))
            copy_weights(self.ema_generator, self.generator)
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
        if self.ema_generator is not None:
            update_moving_average(self.ema_generator.weights, self.generator.weights, self.ema_decay,
                                  self.generator_optimizer.iterations)

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
