"""Adversarial training (Goodfellow et al. 2014), shared by every GAN in the zoo.

A GAN model subclasses :class:`AdversarialModel`, creates its generator and
discriminator and passes them to :meth:`AdversarialModel.set_networks`; the
alternating updates, the losses (BCE or hinge), the R1 penalty, the EMA generator,
class conditioning and the checks on the inputs are here.
"""

import keras
from keras import ops

from zoo.core.nn import distribute
from zoo.core.nn.ema import copy_weights, update_moving_average
from zoo.core.runtime.errors import BadInputError
from zoo.core.nn.inputs import check_float_input, check_label_input

MNIST_SHAPE = (28, 28, 1)
LOSSES = ("bce", "hinge")


class AdversarialModel(keras.Model):
    """A generator and a discriminator trained with alternating updates.

    Losses: ``"bce"``, the GAN paper's: the discriminator minimises binary
    cross-entropy on real (label 1, optionally smoothed) and generated (label 0)
    images, the generator the non-saturating ``-log D(G(z))``; or ``"hinge"`` (Lim &
    Ye 2017, as in SN-GAN and BigGAN): ``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``
    for the discriminator, ``-E[D(G(z))]`` for the generator. ``r1_gamma`` adds the
    R1 penalty ``gamma / 2 * E ||grad_x D(x)||^2`` on real images (Mescheder et al.
    2018). Images are in [-1, 1] during training; an exponential moving average (EMA)
    of the generator's weights is kept for sampling, which gives steadier samples
    than the raw weights.

    With ``num_classes`` the model is class-conditional: training batches are
    ``(images, labels)``, the generator draws images of the batch's labels and the
    discriminator judges (image, label) pairs; :meth:`generate` takes labels.

    Subclasses (``zoo.gan``'s GAN, ``zoo.dcgan``'s DCGAN, ``zoo.cdcgan``'s CDCGAN) create
    their networks (the discriminator spectrally normalised when ``spectral_norm``) and
    pass them to :meth:`set_networks` at the end of ``__init__``.

    Args:
        latent_dim: size of the noise vector.
        ema_decay: decay of the generator's weight average; 0 disables it.
        label_smoothing: real labels become ``1 - label_smoothing`` (BCE only).
        loss: ``"bce"`` or ``"hinge"``.
        r1_gamma: weight of the R1 penalty; 0 disables it.
        spectral_norm: whether the subclass builds a spectrally normalised discriminator.
        num_classes: 0 for an unconditional GAN, else the number of labels.
        seed: seed of the noise drawn inside ``train_step``.
    """

    def __init__(self, latent_dim=64, ema_decay=0.999, label_smoothing=0.0, loss="bce", r1_gamma=0.0,
                 spectral_norm=False, num_classes=0, seed=0, **kwargs):
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise BadInputError(f"unknown GAN loss {loss!r}; choose from {', '.join(LOSSES)}")
        if r1_gamma < 0:
            raise BadInputError(f"r1_gamma must be 0 or more, got {r1_gamma}")
        # === Config ===
        self.latent_dim = int(latent_dim)
        self.ema_decay = float(ema_decay)
        self.label_smoothing = float(label_smoothing)
        self.loss = loss
        self.r1_gamma = float(r1_gamma)
        self.spectral_norm = bool(spectral_norm)
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.noise_seed = keras.random.SeedGenerator(self.seed)
        # === Trackers ===
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.discriminator_loss_tracker = keras.metrics.Mean(name="discriminator_loss")
        self.real_score_tracker = keras.metrics.Mean(name="real_score")
        self.fake_score_tracker = keras.metrics.Mean(name="fake_score")
        self.r1_tracker = keras.metrics.Mean(name="r1_penalty") if self.r1_gamma else None

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
    def conditional(self):
        return self.num_classes > 0

    @property
    def metrics(self):
        return [self.generator_loss_tracker, self.discriminator_loss_tracker,
                self.real_score_tracker, self.fake_score_tracker] + ([self.r1_tracker] if self.r1_tracker else [])

    def compile(self, generator_optimizer=None, discriminator_optimizer=None, **kwargs):
        """Attach one optimizer per network (Adam(2e-4, beta_1=0.5) by default, as in DCGAN)."""
        super().compile(**kwargs)
        self.generator_optimizer = generator_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.discriminator_optimizer = discriminator_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        # Built now so a checkpoint's optimizer state can be loaded before step one.
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def _networks_args(self, labels):
        return {"labels": labels} if self.conditional else {}

    def call(self, noise, labels=None, training=False):
        return self.generator(noise, training=training, **self._networks_args(labels))

    def train_step(self, batch):
        import tensorflow as tf  # train_step is TF-backend code (GradientTape)

        real_images, labels = batch if self.conditional else (batch, None)
        if labels is not None:
            labels = ops.cast(labels, "int32")
        conditioning = self._networks_args(labels)  # generated images get the real batch's labels
        batch_size = ops.shape(real_images)[0]

        noise = self._draw_noise(batch_size)
        with tf.GradientTape() as tape:
            fake_images = self.generator(noise, training=True, **conditioning)
            if self.r1_gamma:
                with tf.GradientTape() as input_tape:
                    input_tape.watch(real_images)
                    real_logits = self.discriminator(real_images, training=True, **conditioning)
                    summed_logits = ops.sum(real_logits)  # inside the tape, or no gradient
                input_gradients = input_tape.gradient(summed_logits, real_images)
                r1_penalty = ops.mean(ops.sum(ops.square(input_gradients), axis=[1, 2, 3]))
            else:
                real_logits = self.discriminator(real_images, training=True, **conditioning)
            fake_logits = self.discriminator(fake_images, training=True, **conditioning)
            discriminator_loss = self._discriminator_loss(real_logits, fake_logits)
            total_loss = discriminator_loss + (0.5 * self.r1_gamma * r1_penalty if self.r1_gamma else 0.0)
            scaled_loss = distribute.scale_loss(total_loss)  # inside the tape, or no gradient
        grads = tape.gradient(scaled_loss, self.discriminator.trainable_variables)
        self.discriminator_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))

        noise = self._draw_noise(batch_size)
        with tf.GradientTape() as tape:
            fake_logits_for_generator = self.discriminator(self.generator(noise, training=True, **conditioning),
                                                           training=True, **conditioning)
            generator_loss = self._generator_loss(fake_logits_for_generator)
            scaled_loss = distribute.scale_loss(generator_loss)
        grads = tape.gradient(scaled_loss, self.generator.trainable_variables)
        self.generator_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        self._update_ema()

        self.generator_loss_tracker.update_state(generator_loss)
        self.discriminator_loss_tracker.update_state(discriminator_loss)
        self.real_score_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
        self.fake_score_tracker.update_state(ops.mean(ops.sigmoid(fake_logits)))
        if self.r1_tracker is not None:
            self.r1_tracker.update_state(r1_penalty)
        return {m.name: m.result() for m in self.metrics}

    def _discriminator_loss(self, real_logits, fake_logits):
        if self.loss == "hinge":
            return ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))
        return _bce(ops.full_like(real_logits, 1.0 - self.label_smoothing), real_logits) + \
            _bce(ops.zeros_like(fake_logits), fake_logits)

    def _generator_loss(self, fake_logits):
        if self.loss == "hinge":
            return -ops.mean(fake_logits)
        # Non-saturating loss: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
        return _bce(ops.ones_like(fake_logits), fake_logits)

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

    def generate(self, noise, labels=None):
        """Images ``[batch, 28, 28, 1]`` in [0, 1] from noise ``[batch, latent_dim]`` (and labels ``[batch]``)."""
        noise = self.check_noise(noise)
        if not self.conditional:
            if labels is not None:
                raise BadInputError("this GAN is unconditional: it takes noise only, no labels")
            return generate_images(self.sampling_generator, noise)
        if labels is None:
            raise BadInputError(f"this GAN is class-conditional: give labels (int32 [batch], 0-{self.num_classes - 1})")
        return generate_images(self.sampling_generator, noise, check_label_input(labels, "labels", self.num_classes))

    def check_noise(self, noise):
        """Reject noise of the wrong shape or dtype with a clear message."""
        return check_float_input(noise, "noise", (None, self.latent_dim))

    def get_config(self):
        config = {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "ema_decay": self.ema_decay,
            "label_smoothing": self.label_smoothing,
            "seed": self.seed,
        }
        # Written only when not the default, so the committed models' configs read as before.
        for key, default in (("loss", "bce"), ("r1_gamma", 0.0), ("spectral_norm", False), ("num_classes", 0)):
            if getattr(self, key) != default:
                config[key] = getattr(self, key)
        return config


def generate_images(generator, noise, labels=None):
    """Run a generator in inference mode and map its tanh output from [-1, 1] to [0, 1]."""
    conditioning = {} if labels is None else {"labels": labels}
    return (generator(noise, training=False, **conditioning) + 1.0) / 2.0


def _bce(labels, logits):
    return ops.mean(keras.losses.binary_crossentropy(labels, logits, from_logits=True))
