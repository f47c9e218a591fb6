"""Class-conditional DDPM on MNIST with a small U-Net, DDIM sampling and classifier-free guidance.

Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models"; Song, Meng &
Ermon (2021), "Denoising Diffusion Implicit Models"; Ho & Salimans (2022),
"Classifier-Free Diffusion Guidance"; cosine schedule of Nichol & Dhariwal (2021).

Images live in [-1, 1] inside the model. ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``
with t in 0..T-1 (index t is the paper's step t + 1); the U-Net predicts eps from x_t,
t and a label (0-9, or NULL_LABEL = 10 for "no label", trained by dropping labels).
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo.core import distribute
from zoo.core.ema import copy_weights, update_moving_average

IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
NULL_LABEL = NUM_CLASSES  # "no label": the unconditional model

PRESETS = {
    "tiny": {"base_channels": 8, "channel_multipliers": (1, 2), "attention_resolutions": (), "num_timesteps": 100},
    "base": {"base_channels": 48, "channel_multipliers": (1, 2, 2), "attention_resolutions": (7,),
             "num_timesteps": 1000},
}


def cosine_alpha_bars(num_timesteps, offset=0.008):
    """``abar_t`` for t = 0..T-1 (Nichol & Dhariwal's cosine schedule, betas clipped at 0.999)."""
    steps = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
    f = np.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
    return np.cumprod(1 - betas).astype(np.float32)


def ddim_timesteps(num_timesteps, steps):
    """The ``steps`` timesteps DDIM visits, from T-1 down to 0, evenly spaced."""
    from zoo.core.errors import BadInputError
    from zoo.diffusion.tflite_sample import timesteps

    try:
        return timesteps(num_timesteps, steps)
    except ValueError as error:
        raise BadInputError(str(error)) from None


def timestep_embedding(timesteps, dim):
    """Sinusoidal embedding ``[batch, dim]`` of integer timesteps (Vaswani et al.)."""
    half = dim // 2
    frequencies = tf.exp(-math.log(10000.0) * tf.range(half, dtype=tf.float32) / half)
    angles = tf.cast(tf.expand_dims(timesteps, 1), tf.float32) * tf.expand_dims(frequencies, 0)
    return tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)


def _groups(channels):
    return min(8, channels)


@keras.saving.register_keras_serializable(package="zoo")
class ResidualBlock(layers.Layer):
    """GroupNorm-SiLU-conv, plus the (time, label) embedding, GroupNorm-SiLU-conv; a 1x1 skip if widths differ."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.norm_1 = layers.GroupNormalization(_groups(self.channels), epsilon=1e-5)
        self.conv_1 = layers.Conv2D(self.channels, 3, padding="same")
        self.embedding_projection = layers.Dense(self.channels)
        self.norm_2 = layers.GroupNormalization(_groups(self.channels), epsilon=1e-5)
        self.conv_2 = layers.Conv2D(self.channels, 3, padding="same", kernel_initializer="zeros")
        self.skip = None

    def build(self, input_shape):
        x_shape, embedding_shape = input_shape
        if x_shape[-1] != self.channels:
            self.skip = layers.Conv2D(self.channels, 1)
            self.skip.build(x_shape)
        self.norm_1.build(x_shape)
        self.conv_1.build(x_shape)
        self.embedding_projection.build(embedding_shape)
        out_shape = (*x_shape[:-1], self.channels)
        self.norm_2.build(out_shape)
        self.conv_2.build(out_shape)
        self.built = True

    def call(self, inputs):
        x, embedding = inputs
        h = self.conv_1(tf.nn.silu(self.norm_1(x)))
        h = h + tf.reshape(self.embedding_projection(embedding), [-1, 1, 1, self.channels])
        h = self.conv_2(tf.nn.silu(self.norm_2(h)))
        return h + (self.skip(x) if self.skip is not None else x)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="zoo")
class AttentionBlock(layers.Layer):
    """Single-head self-attention over the pixels of a (small) feature map, with a residual."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.norm = layers.GroupNormalization(_groups(self.channels), epsilon=1e-5)
        self.qkv = layers.Dense(3 * self.channels)
        self.projection = layers.Dense(self.channels, kernel_initializer="zeros")

    def build(self, input_shape):
        self.norm.build(input_shape)
        self.qkv.build(input_shape)
        self.projection.build(input_shape)
        self.built = True

    def call(self, x):
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        h = tf.reshape(self.norm(x), [-1, height * width, self.channels])
        query, key, value = tf.split(self.qkv(h), 3, axis=-1)
        weights = tf.nn.softmax(tf.matmul(query, key, transpose_b=True) / math.sqrt(self.channels), axis=-1)
        attended = self.projection(tf.matmul(weights, value))
        return x + tf.reshape(attended, tf.shape(x))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="zoo")
class UNet(keras.Model):
    """Noise predictor: ``(images_t [b, 28, 28, 1], timestep int32 [b], labels int32 [b]) -> eps``."""

    def __init__(self, base_channels=48, channel_multipliers=(1, 2, 2), attention_resolutions=(7,),
                 num_timesteps=1000, **kwargs):
        super().__init__(**kwargs)
        self.base_channels = int(base_channels)
        self.channel_multipliers = [int(m) for m in channel_multipliers]
        self.attention_resolutions = [int(r) for r in attention_resolutions]
        self.num_timesteps = int(num_timesteps)
        width = 4 * self.base_channels
        self.embedding_dim = width
        self.time_mlp = [layers.Dense(width, activation="silu"), layers.Dense(width)]
        self.label_embedding = layers.Embedding(NUM_CLASSES + 1, width)
        self.conv_in = layers.Conv2D(self.base_channels, 3, padding="same")
        self.down, self.downsample, self.up, self.upsample = [], [], [], []
        resolution, channels = IMAGE_SHAPE[0], []
        for level, multiplier in enumerate(self.channel_multipliers):
            c = self.base_channels * multiplier
            attention = AttentionBlock(c) if resolution in self.attention_resolutions else None
            self.down.append((ResidualBlock(c), attention))
            channels.append(c)
            if level < len(self.channel_multipliers) - 1:
                self.downsample.append(layers.Conv2D(c, 3, strides=2, padding="same"))
                resolution = (resolution + 1) // 2
        c = channels[-1]
        self.middle = [ResidualBlock(c), AttentionBlock(c), ResidualBlock(c)]
        for level in reversed(range(len(self.channel_multipliers))):
            c = self.base_channels * self.channel_multipliers[level]
            attention = AttentionBlock(c) if resolution in self.attention_resolutions else None
            self.up.append((ResidualBlock(c), attention))
            if level > 0:
                self.upsample.append(layers.Conv2DTranspose(c, 4, strides=2, padding="same"))
                resolution *= 2
        self.norm_out = layers.GroupNormalization(_groups(self.base_channels), epsilon=1e-5)
        self.conv_out = layers.Conv2D(IMAGE_SHAPE[-1], 3, padding="same", kernel_initializer="zeros")

    def call(self, inputs):
        images_t, timestep, labels = inputs
        embedding = timestep_embedding(timestep, self.embedding_dim)
        embedding = self.time_mlp[1](self.time_mlp[0](embedding)) + self.label_embedding(labels)
        h = self.conv_in(images_t)
        skips = []
        for level, (block, attention) in enumerate(self.down):
            h = block((h, embedding))
            if attention is not None:
                h = attention(h)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.middle[2]((self.middle[1](self.middle[0]((h, embedding))), embedding))
        for i, (block, attention) in enumerate(self.up):
            skip = skips.pop()
            if i > 0:
                h = self.upsample[i - 1](h)
                h = h[:, : tf.shape(skip)[1], : tf.shape(skip)[2]]  # 7 -> 14 -> 28
            h = block((tf.concat([h, skip], axis=-1), embedding))
            if attention is not None:
                h = attention(h)
        return self.conv_out(tf.nn.silu(self.norm_out(h)))

    def get_config(self):
        return {**super().get_config(), "base_channels": self.base_channels,
                "channel_multipliers": self.channel_multipliers,
                "attention_resolutions": self.attention_resolutions, "num_timesteps": self.num_timesteps}


@keras.saving.register_keras_serializable(package="zoo")
class Diffusion(keras.Model):
    """DDPM training of a :class:`UNet`, an EMA copy for sampling, DDIM and guidance.

    Args:
        label_dropout: fraction of training labels replaced by NULL_LABEL, so one
            network is both the conditional and the unconditional model.
        ema_decay: decay of the sampling network's weight average.
        seed: seeds the weights, timesteps, noise and label dropout.
        **unet_config: the :class:`UNet`'s arguments.
    """

    def __init__(self, label_dropout=0.1, ema_decay=0.999, seed=0, **unet_config):
        keras_kwargs = {k: unet_config.pop(k) for k in ("name", "trainable", "dtype") if k in unet_config}
        super().__init__(**keras_kwargs)
        self.label_dropout, self.ema_decay, self.seed = float(label_dropout), float(ema_decay), int(seed)
        # lists, not tuples: the config must read back the same from a checkpoint's JSON
        self.unet_config = {k: list(v) if isinstance(v, tuple) else v for k, v in unet_config.items()}
        keras.utils.set_random_seed(self.seed)  # the U-Net's initial weights
        self.unet = UNet(**unet_config, name="unet")
        self.ema_unet = UNet(**unet_config, name="ema_unet")
        self.num_timesteps = self.unet.num_timesteps
        alpha_bars = cosine_alpha_bars(self.num_timesteps)
        self.alpha_bars = tf.constant(alpha_bars)
        # The graph looks up square roots, not abar itself: the float16 TFLite variant stores constants in
        # float16, where abar_999 (2.4e-9) and 1 - abar_t for small t round to 0 and the DDIM update would
        # divide by zero; both square roots keep float16's relative precision (<5e-4). Computed in float32
        # exactly as tf.sqrt(abar) was, so float32 outputs are unchanged and match the NumPy loop.
        self.sqrt_alpha_bars = tf.constant(np.sqrt(alpha_bars))
        self.sqrt_one_minus_alpha_bars = tf.constant(np.sqrt(np.float32(1.0) - alpha_bars))
        self.noise_seed = keras.random.SeedGenerator(self.seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        dummy = (tf.zeros([1, *IMAGE_SHAPE]), tf.zeros([1], tf.int32), tf.zeros([1], tf.int32))
        self.unet(dummy)
        self.ema_unet(dummy)
        copy_weights(self.ema_unet, self.unet)
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, inputs):
        return self.ema_unet(inputs)

    def add_noise(self, images, timestep, noise):
        """Forward noising in closed form: ``sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise``."""
        signal, spread = self._schedule_at(timestep)
        return signal * images + spread * noise

    def train_step(self, data):
        images, labels = data  # images in [-1, 1], labels 0..9
        batch = tf.shape(images)[0]

        def draw(n):
            return (keras.random.normal((n, *IMAGE_SHAPE), seed=self.noise_seed),
                    keras.random.randint((n,), 0, self.num_timesteps, seed=self.noise_seed),
                    keras.random.uniform((n,), seed=self.noise_seed))

        # drawn for the global batch and sliced per replica, so N replicas draw what one device would
        noise = distribute.draw_for_global_batch(lambda n: draw(n)[0], batch)
        timestep = tf.cast(distribute.draw_for_global_batch(lambda n: draw(n)[1], batch), tf.int32)
        dropped = distribute.draw_for_global_batch(lambda n: draw(n)[2], batch) < self.label_dropout
        labels = tf.where(dropped, NULL_LABEL, tf.cast(labels, tf.int32))
        with tf.GradientTape() as tape:
            predicted = self.unet((self.add_noise(images, timestep, noise), timestep, labels))
            loss = tf.reduce_mean(tf.square(predicted - noise))
            scaled = distribute.scale_loss(loss)
        gradients = tape.gradient(scaled, self.unet.trainable_variables)
        gradients = distribute.clip_by_global_norm(gradients, 1.0)
        self.optimizer.apply_gradients(zip(gradients, self.unet.trainable_variables))
        self._update_ema()
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        images, labels = data
        batch = tf.shape(images)[0]
        # the same noise and timesteps at every evaluation, drawn for the global batch (as in training) so
        # that the validation loss does not depend on the number of replicas
        noise = distribute.draw_for_global_batch(
            lambda n: tf.random.stateless_normal([n, *IMAGE_SHAPE], seed=[1, 2]), batch)
        timestep = distribute.draw_for_global_batch(
            lambda n: tf.random.stateless_uniform([n], seed=[3, 4], maxval=self.num_timesteps, dtype=tf.int32), batch)
        predicted = self.ema_unet((self.add_noise(images, timestep, noise), timestep, tf.cast(labels, tf.int32)))
        self.loss_tracker.update_state(tf.reduce_mean(tf.square(predicted - noise)))
        return {"loss": self.loss_tracker.result()}

    def _update_ema(self):
        update_moving_average(self.ema_unet.weights, self.unet.weights, self.ema_decay, self.optimizer.iterations)

    def denoise_step(self, images_t, timestep, labels, guidance):
        """Guided noise prediction: ``eps(x, none) + guidance * (eps(x, label) - eps(x, none))``.

        Guidance 0 is the unconditional model, 1 the conditional one; more pushes
        samples towards the label. Both predictions run as one batch.
        """
        both = self.ema_unet((tf.concat([images_t, images_t], 0), tf.concat([timestep, timestep], 0),
                              tf.concat([labels, tf.fill(tf.shape(labels), NULL_LABEL)], 0)))
        conditional, unconditional = tf.split(both, 2, axis=0)
        return {"predicted_noise": unconditional + tf.reshape(guidance, [-1, 1, 1, 1]) * (conditional - unconditional)}

    def ddim_update(self, images_t, timestep, previous_timestep, predicted_noise):
        """One deterministic DDIM step (eta = 0) from ``timestep`` to ``previous_timestep`` (-1: the end)."""
        signal, spread = self._schedule_at(timestep)
        signal_previous, spread_previous = self._schedule_at(previous_timestep)
        x0 = tf.clip_by_value((images_t - spread * predicted_noise) / signal, -1.0, 1.0)
        noise = (images_t - signal * x0) / spread  # consistent with the clipped x0
        return signal_previous * x0 + spread_previous * noise

    def _schedule_at(self, timestep):
        """``sqrt(abar_t)`` and ``sqrt(1 - abar_t)`` shaped ``[batch, 1, 1, 1]``; t = -1 is clean data (1, 0)."""
        valid = timestep >= 0
        index = tf.maximum(timestep, 0)
        signal = tf.where(valid, tf.gather(self.sqrt_alpha_bars, index), 1.0)
        spread = tf.where(valid, tf.gather(self.sqrt_one_minus_alpha_bars, index), 0.0)
        return tf.reshape(signal, [-1, 1, 1, 1]), tf.reshape(spread, [-1, 1, 1, 1])

    def generate(self, noise, labels, guidance, steps=50):
        """DDIM with ``steps`` steps in a ``tf.while_loop``: images ``[batch, 28, 28, 1]`` in [0, 1]."""
        schedule = tf.constant(np.append(ddim_timesteps(self.num_timesteps, steps), -1), tf.int32)
        batch = tf.shape(noise)[0]

        def body(i, x):
            t = tf.fill([batch], schedule[i])
            previous = tf.fill([batch], schedule[i + 1])
            eps = self.denoise_step(x, t, labels, guidance)["predicted_noise"]
            return i + 1, self.ddim_update(x, t, previous, eps)

        _, x = tf.while_loop(lambda i, x: i < steps, body, [tf.constant(0), noise])
        return {"images": (tf.clip_by_value(x, -1.0, 1.0) + 1.0) / 2.0}

    def get_config(self):
        return {**super().get_config(), "label_dropout": self.label_dropout, "ema_decay": self.ema_decay,
                "seed": self.seed, **self.unet_config}
