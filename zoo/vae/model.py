"""Convolutional variational autoencoder with TensorFlow Probability distributions.

Kingma & Welling (2014), "Auto-Encoding Variational Bayes", https://arxiv.org/abs/1312.6114
Burda, Grosse & Salakhutdinov (2016), "Importance Weighted Autoencoders" (the
test log-likelihood estimate), https://arxiv.org/abs/1509.00519

The encoder maps a binary digit x to a diagonal Gaussian posterior q(z|x); the
decoder maps a latent z to the logits of 784 independent Bernoulli pixels p(x|z);
the prior p(z) is a standard normal. Training maximises the ELBO

    log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z)),

reported as its negative, in nats per image, with its two parts as metrics.
Pixels are binarized afresh at every step (pixel ~ Bernoulli(intensity)).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import layers

from zoo.core.nn import distribute
from zoo.core.nn.inputs import check_float_input

tfd = tfp.distributions

IMAGE_SHAPE = (28, 28, 1)

# "tiny" keeps the tests fast; "base" is the committed model; "latent2" is the
# classic 2-D latent space for pictures (the notebook trains it).
PRESETS = {
    "tiny": {"latent_dim": 4, "filters": 4, "hidden_units": 16},
    "base": {"latent_dim": 32, "filters": 48, "hidden_units": 384},
    "latent2": {"latent_dim": 2, "filters": 48, "hidden_units": 384},
}


@keras.saving.register_keras_serializable(package="zoo")
class ConvEncoder(keras.Model):
    """Images ``[batch, 28, 28, 1]`` in [0, 1] -> posterior ``mean``, ``log_variance`` ``[batch, latent_dim]``.

    Two stride-2 convolutions (28 -> 14 -> 7), a dense layer, and a linear head
    for the mean and the log-variance of q(z|x).
    """

    def __init__(self, latent_dim=32, filters=32, hidden_units=256, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.latent_dim = int(latent_dim)
        self.filters = int(filters)
        self.hidden_units = int(hidden_units)
        f = self.filters
        # === Layers ===
        self.body = keras.Sequential([
            layers.Conv2D(f, 3, strides=2, padding="same", activation="gelu"),  # 14x14
            layers.Conv2D(2 * f, 3, strides=2, padding="same", activation="gelu"),  # 7x7
            layers.Flatten(),
            layers.Dense(self.hidden_units, activation="gelu"),
            layers.Dense(2 * self.latent_dim),
        ], name="body")

    def build(self, input_shape):
        self.body.build(input_shape)
        self.built = True

    def call(self, images):
        mean, log_variance = tf.split(self.body(images), 2, axis=-1)
        return mean, log_variance

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "filters": self.filters,
                "hidden_units": self.hidden_units}


@keras.saving.register_keras_serializable(package="zoo")
class ConvDecoder(keras.Model):
    """Latents ``[batch, latent_dim]`` -> Bernoulli logits ``[batch, 28, 28, 1]``.

    A dense projection to 7x7xf, a stride-2 transposed convolution to 14x14, a
    3x3 convolution, and a stride-2 transposed convolution to one 28x28 channel.
    Kept narrow on purpose: the importance-weighted test bound decodes
    10,000 x 1,000 latents, which is a few minutes on a 2-core CPU at this width.
    """

    def __init__(self, latent_dim=32, filters=32, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.latent_dim = int(latent_dim)
        self.filters = int(filters)
        f = self.filters
        # === Layers ===
        self.body = keras.Sequential([
            layers.Dense(7 * 7 * f, activation="gelu"),
            layers.Reshape((7, 7, f)),
            layers.Conv2DTranspose(f, 4, strides=2, padding="same", activation="gelu"),  # 14x14
            layers.Conv2D(f, 3, padding="same", activation="gelu"),
            layers.Conv2DTranspose(IMAGE_SHAPE[-1], 4, strides=2, padding="same"),  # 28x28 logits
        ], name="body")

    def build(self, input_shape):
        self.body.build(input_shape)
        self.built = True

    def call(self, latents):
        return self.body(latents)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "filters": self.filters}


def posterior(mean, log_variance):
    """q(z|x): a diagonal Gaussian over the latent vector."""
    return tfd.MultivariateNormalDiag(loc=mean, scale_diag=tf.exp(0.5 * log_variance))


def prior(latent_dim, dtype=tf.float32):
    """p(z): the standard normal."""
    return tfd.MultivariateNormalDiag(loc=tf.zeros([latent_dim], dtype), scale_diag=tf.ones([latent_dim], dtype))


def likelihood(logits):
    """p(x|z): 784 independent Bernoulli pixels, one event per image."""
    return tfd.Independent(tfd.Bernoulli(logits=logits), reinterpreted_batch_ndims=3)


def log_importance_weights(binary_images, mean, log_variance, latents, logits):
    """log p(x|z) + log p(z) - log q(z|x) for each latent sample.

    Args:
        binary_images: ``[batch, 28, 28, 1]`` in {0, 1}.
        mean, log_variance: the posterior of each image, ``[batch, latent_dim]``.
        latents: ``[samples, batch, latent_dim]`` drawn from that posterior.
        logits: the decoder's logits for those latents, ``[samples, batch, 28, 28, 1]``.

    Returns:
        ``[samples, batch]`` float32 (float64 inputs give float64).
    """
    log_likelihood = likelihood(logits).log_prob(binary_images)
    log_prior = prior(mean.shape[-1], mean.dtype).log_prob(latents)
    log_posterior = posterior(mean, log_variance).log_prob(latents)
    return log_likelihood + log_prior - log_posterior


def iwae_bound(log_weights):
    """The importance-weighted bound log (1/k) sum_k w_k per image, from ``[k, batch]`` log-weights.

    k = 1 is the ELBO; it tightens towards log p(x) as k grows (Burda et al. 2016).
    """
    k = tf.cast(tf.shape(log_weights)[0], log_weights.dtype)
    return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(k)


@keras.saving.register_keras_serializable(package="zoo")
class VAE(keras.Model):
    """Convolutional VAE on binarized MNIST.

    ``train_step`` binarizes each batch afresh, samples z = mean + sigma * eps and
    minimises the negative ELBO; ``encode``, ``decode`` and ``reconstruct`` are what
    the export serves.

    Args:
        latent_dim: size of z.
        filters: width of the convolutions (encoder: f, 2f; decoder: f).
        hidden_units: width of the encoder's dense layer.
        seed: seed of the binarization and reparameterisation noise.

    Example:
        >>> vae = VAE(**PRESETS["tiny"])
        >>> vae.decode(np.zeros((2, 4), "float32"))["images"].shape
        TensorShape([2, 28, 28, 1])
    """

    def __init__(self, latent_dim=32, filters=32, hidden_units=256, seed=0, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.latent_dim = int(latent_dim)
        self.filters = int(filters)
        self.hidden_units = int(hidden_units)
        self.seed = int(seed)
        # === Layers ===
        self.encoder = ConvEncoder(latent_dim, filters, hidden_units, name="encoder")
        self.decoder = ConvDecoder(latent_dim, filters, name="decoder")
        self.encoder.build((None, *IMAGE_SHAPE))
        self.decoder.build((None, self.latent_dim))
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.built = True  # the networks are built above; nothing depends on the input shape
        # === Metrics (the progress bar shows these) ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    # --- what the export serves -------------------------------------------------

    def encode(self, images):
        """Images ``[batch, 28, 28, 1]`` in [0, 1] -> the posterior's ``mean`` and ``log_variance``."""
        mean, log_variance = self.encoder(check_float_input(images, "images", (None, *IMAGE_SHAPE)))
        return {"mean": mean, "log_variance": log_variance}

    def decode(self, latents):
        """Latents ``[batch, latent_dim]`` -> pixel ``images`` (Bernoulli means) and ``logits``."""
        logits = self.decoder(check_float_input(latents, "latents", (None, self.latent_dim)))
        return {"images": tf.sigmoid(logits), "logits": logits}

    def reconstruct(self, images):
        """Images -> the decoded posterior mean (no sampling, so it is deterministic)."""
        return {"images": tf.sigmoid(self.decoder(self.encode(images)["mean"]))}

    def call(self, images):
        return self.reconstruct(images)["images"]

    # --- training ------------------------------------------------------------------

    def binarize(self, images):
        """Dynamic binarization: pixel ~ Bernoulli(intensity), drawn afresh each call."""
        # Noise is drawn for the global batch and sliced per replica, so N replicas match one device.
        uniform = distribute.draw_for_global_batch(
            lambda n: keras.random.uniform((n, *IMAGE_SHAPE), seed=self.seed_generator), tf.shape(images)[0])
        return tf.cast(uniform < images, images.dtype)

    def negative_elbo(self, binary_images):
        """``(reconstruction, kl)`` per image, in nats, with one reparameterised sample."""
        mean, log_variance = self.encoder(binary_images)
        q = posterior(mean, log_variance)
        eps = distribute.draw_for_global_batch(
            lambda n: keras.random.normal((n, self.latent_dim), seed=self.seed_generator), tf.shape(mean)[0])
        latents = mean + tf.exp(0.5 * log_variance) * eps  # reparameterisation: gradients flow to the encoder
        reconstruction = -likelihood(self.decoder(latents)).log_prob(binary_images)
        kl = tfd.kl_divergence(q, prior(self.latent_dim))
        return reconstruction, kl

    def _update_metrics(self, reconstruction, kl):
        self.loss_tracker.update_state(reconstruction + kl)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, images):
        binary = self.binarize(images)
        with tf.GradientTape() as tape:
            reconstruction, kl = self.negative_elbo(binary)
            loss = distribute.scale_loss(tf.reduce_mean(reconstruction + kl))
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self._update_metrics(reconstruction, kl)

    def test_step(self, images):
        return self._update_metrics(*self.negative_elbo(self.binarize(images)))

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "filters": self.filters,
                "hidden_units": self.hidden_units, "seed": self.seed}


def binarize_fixed(images, seed):
    """The evaluation protocol's binarization: one fixed Bernoulli draw per pixel (numpy, seeded)."""
    images = np.asarray(images, np.float32)
    return (np.random.default_rng(seed).uniform(size=images.shape) < images).astype(np.float32)
