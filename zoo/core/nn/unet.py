"""The diffusion models' shared parts: a small U-Net for 28 x 28 images, the cosine noise schedule, DDIM.

Ho, Jain & Abbeel (2020), DDPM; Song, Meng & Ermon (2021), DDIM; the cosine
schedule of Nichol & Dhariwal (2021), whose "scale-shift norm" is the FiLM option
here. The class-conditional ``diffusion`` model conditions the U-Net on a label
(an embedding of 11 ids); ``text2image`` on a vector (a frozen CLIP text
embedding), through FiLM in every residual block.

Images live in [-1, 1] inside the models. ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``
with t in 0..T-1 (index t is the paper's step t + 1).
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo.core.apps.ddim import noise_permutation
from zoo.core.nn import distribute
from zoo.core.nn.ema import copy_weights, update_moving_average
from zoo.core.nn.loops import while_loop_carrying
from zoo.core.nn.recognizer import VisibleDigitRecognizer, recognition_loss, visible_masks

IMAGE_SHAPE = (28, 28, 1)
NUM_LABELS = 11  # the diffusion model's digits 0-9 and "no label"


def cosine_alpha_bars(num_timesteps, offset=0.008):
    """``abar_t`` for t = 0..T-1 (Nichol & Dhariwal's cosine schedule, betas clipped at 0.999)."""
    steps = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
    f = np.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
    return np.cumprod(1 - betas).astype(np.float32)


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
    """GroupNorm-SiLU-conv, plus the (time, condition) embedding, GroupNorm-SiLU-conv; a 1x1 skip if widths differ.

    The embedding is added to the features (``film=False``), or scales and shifts the
    normalised features, ``norm(h) * (1 + scale) + shift`` (``film=True``: FiLM).
    """

    def __init__(self, channels, film=False, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.film = int(channels), bool(film)
        self.norm_1 = layers.GroupNormalization(_groups(self.channels), epsilon=1e-5)
        self.conv_1 = layers.Conv2D(self.channels, 3, padding="same")
        self.embedding_projection = layers.Dense(2 * self.channels if self.film else self.channels)
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
        if self.film:
            scale, shift = tf.split(tf.reshape(self.embedding_projection(embedding), [-1, 1, 1, 2 * self.channels]),
                                    2, axis=-1)
            h = self.norm_2(h) * (1.0 + scale) + shift
        else:
            h = self.norm_2(h + tf.reshape(self.embedding_projection(embedding), [-1, 1, 1, self.channels]))
        h = self.conv_2(tf.nn.silu(h))
        return h + (self.skip(x) if self.skip is not None else x)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, **({"film": True} if self.film else {})}


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
    """Noise predictor: ``(images_t [b, 28, 28, 1], timestep int32 [b], condition) -> eps``.

    The condition is a label, int32 ``[b]`` in 0..NUM_LABELS-1 (an embedding), or with
    ``condition_dim`` a float32 vector ``[b, condition_dim]`` (a two-layer MLP); either is
    added to the timestep's embedding, which every residual block receives (through
    FiLM with ``film``).
    """

    def __init__(self, base_channels=48, channel_multipliers=(1, 2, 2), attention_resolutions=(7,),
                 num_timesteps=1000, condition_dim=None, film=False, **kwargs):
        super().__init__(**kwargs)
        self.condition_dim = None if condition_dim is None else int(condition_dim)
        self.film = bool(film)
        self.base_channels = int(base_channels)
        self.channel_multipliers = [int(m) for m in channel_multipliers]
        self.attention_resolutions = [int(r) for r in attention_resolutions]
        self.num_timesteps = int(num_timesteps)
        width = 4 * self.base_channels
        self.embedding_dim = width
        self.time_mlp = [layers.Dense(width, activation="silu"), layers.Dense(width)]
        if self.condition_dim is None:
            self.label_embedding = layers.Embedding(NUM_LABELS, width)
        else:
            self.condition_mlp = [layers.Dense(width, activation="silu"), layers.Dense(width)]
        self.conv_in = layers.Conv2D(self.base_channels, 3, padding="same")
        self.down, self.downsample, self.up, self.upsample = [], [], [], []
        resolution, channels = IMAGE_SHAPE[0], []
        for level, multiplier in enumerate(self.channel_multipliers):
            c = self.base_channels * multiplier
            attention = AttentionBlock(c) if resolution in self.attention_resolutions else None
            self.down.append((ResidualBlock(c, self.film), attention))
            channels.append(c)
            if level < len(self.channel_multipliers) - 1:
                self.downsample.append(layers.Conv2D(c, 3, strides=2, padding="same"))
                resolution = (resolution + 1) // 2
        c = channels[-1]
        self.middle = [ResidualBlock(c, self.film), AttentionBlock(c), ResidualBlock(c, self.film)]
        for level in reversed(range(len(self.channel_multipliers))):
            c = self.base_channels * self.channel_multipliers[level]
            attention = AttentionBlock(c) if resolution in self.attention_resolutions else None
            self.up.append((ResidualBlock(c, self.film), attention))
            if level > 0:
                self.upsample.append(layers.Conv2DTranspose(c, 4, strides=2, padding="same"))
                resolution *= 2
        self.norm_out = layers.GroupNormalization(_groups(self.base_channels), epsilon=1e-5)
        self.conv_out = layers.Conv2D(IMAGE_SHAPE[-1], 3, padding="same", kernel_initializer="zeros")

    def call(self, inputs):
        images_t, timestep, condition = inputs
        embedding = self.time_mlp[1](self.time_mlp[0](timestep_embedding(timestep, self.embedding_dim)))
        if self.condition_dim is None:
            embedding = embedding + self.label_embedding(condition)
        else:
            embedding = embedding + self.condition_mlp[1](self.condition_mlp[0](condition))
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
                "attention_resolutions": self.attention_resolutions, "num_timesteps": self.num_timesteps,
                **({"condition_dim": self.condition_dim, "film": self.film} if self.condition_dim is not None else {})}


def randomize_ema_unet(model, seed=0, scale=0.1):
    """``model`` with every weight of its sampling U-Net drawn from N(0, scale^2), the zero-initialised
    output layers too, so that a test's tiny model exercises every path (untrained, it predicts zeros)."""
    rng = np.random.default_rng(seed)
    for weight in model.ema_unet.weights:
        weight.assign(rng.normal(0, scale, weight.shape).astype("float32"))
    return model


class DDIMSampling:
    """The two U-Nets, the noise schedule's arithmetic and the DDPM training step, for a Keras model with
    ``seed`` and ``ema_decay`` that calls :meth:`build_unets` in its constructor (mixed into ``diffusion``'s
    and ``text2image``'s models)."""

    def build_unets(self, unet_config, condition, recognizer=False):
        """The trained network ``unet`` and the sampling network ``ema_unet`` (its weight average, starting
        as its copy), with the schedule, the noise seed and the loss tracker; both networks are built on one
        dummy row with ``condition`` (a row of what the U-Net is conditioned on). Seeds Keras first, so the
        initial weights follow ``seed``. With ``recognizer``, also the
        :class:`~zoo.core.nn.recognizer.VisibleDigitRecognizer` that ``inpaint`` reads the digit with (made
        after the U-Nets, so they start as they would without it)."""
        keras.utils.set_random_seed(self.seed)
        self.unet = UNet(**unet_config, name="unet")
        self.ema_unet = UNet(**unet_config, name="ema_unet")
        self.set_schedule(self.unet.num_timesteps)
        self.noise_seed = keras.random.SeedGenerator(self.seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        dummy = (tf.zeros([1, *IMAGE_SHAPE]), tf.zeros([1], tf.int32), condition)
        self.unet(dummy)
        self.ema_unet(dummy)
        copy_weights(self.ema_unet, self.unet)
        self.recognizer, self.denoiser_frozen = None, False
        if recognizer:
            self.recognizer = VisibleDigitRecognizer(seed=self.seed, name="recognizer")
            self.recognizer.build()
            self.mask_seed = keras.random.SeedGenerator(self.seed + 1)
            self.recognizer_loss_tracker = keras.metrics.Mean(name="recognizer_loss")
            self.recognizer_accuracy_tracker = keras.metrics.Mean(name="recognizer_accuracy")
        self.built = True

    @property
    def metrics(self):
        recognizer = [] if self.recognizer is None else [self.recognizer_loss_tracker, self.recognizer_accuracy_tracker]
        return recognizer if self.denoiser_frozen else [self.loss_tracker] + recognizer

    def copy_denoiser_from(self, source):
        """This model's weights from ``source``, a model of the same class and size; a recognizer that
        ``source`` lacks (a model trained before the recognizer) keeps its new weights."""
        if source.recognizer is not None or self.recognizer is None:
            self.set_weights(source.get_weights())
            return
        added = {id(v) for v in [*self.recognizer.weights, self.mask_seed.state]}
        targets = [v for v in self.weights if id(v) not in added]
        if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in source.weights]:
            raise ValueError(f"the {type(source).__name__} to copy from is not of this model's size")
        for target, weight in zip(targets, source.weights):
            target.assign(weight)

    def read_digits(self, images, mask):
        """The likeliest digit ``int32 [b]`` and the probability of each ``[b, 10]`` that the recognizer reads
        from the known pixels of ``images`` (in [0, 1]; ``mask`` 1 where known)."""
        logits = self.recognizer(images, mask)
        return tf.argmax(logits, axis=-1, output_type=tf.int32), tf.nn.softmax(logits, axis=-1)

    def freeze_denoiser(self):
        """Train only the recognizer from now on (both U-Nets stay as they are): what adds a recognizer to a
        model trained without one (``train --fine-tune-from ... --recognizer-only``)."""
        if self.recognizer is None:
            raise ValueError(f"{type(self).__name__} has no recognizer to train (recognizer=False)")
        self.denoiser_frozen = True
        self.unet.trainable = False
        self.ema_unet.trainable = False

    def call(self, inputs):
        return self.ema_unet(inputs)

    def set_schedule(self, num_timesteps):
        self.num_timesteps = int(num_timesteps)
        alpha_bars = cosine_alpha_bars(self.num_timesteps)
        self.alpha_bars = tf.constant(alpha_bars)
        # The graph looks up sqrt(abar_t) and sqrt(1 - abar_t), computed in float32 as the NumPy loops compute
        # them, stored as their int32 bit patterns and bitcast back after the lookup. The float16 TFLite variant
        # stores every float constant in float16, whose relative error (5e-4) is the size of 1 - ratio^2 between
        # DDIM steps near t = 0: RePaint's noise levels came out wrong (its inpainting ended 0.14 off float32's
        # on average). Integers stay exact, so every variant samples on the float32 schedule.
        self.sqrt_alpha_bars_bits = tf.constant(np.sqrt(alpha_bars).astype(np.float32).view(np.int32))
        self.sqrt_one_minus_alpha_bars_bits = tf.constant(
            np.sqrt(np.float32(1.0) - alpha_bars).astype(np.float32).view(np.int32))

    def training_draws(self, batch):
        """Noise, timesteps and one uniform number per row (to drop the condition), drawn for the global batch
        and sliced per replica, so N replicas draw what one device would."""
        def draw(n):
            return (keras.random.normal((n, *IMAGE_SHAPE), seed=self.noise_seed),
                    keras.random.randint((n,), 0, self.num_timesteps, seed=self.noise_seed),
                    keras.random.uniform((n,), seed=self.noise_seed))

        noise = distribute.draw_for_global_batch(lambda n: draw(n)[0], batch)
        timestep = tf.cast(distribute.draw_for_global_batch(lambda n: draw(n)[1], batch), tf.int32)
        return noise, timestep, distribute.draw_for_global_batch(lambda n: draw(n)[2], batch)

    def noise_prediction_step(self, images, timestep, noise, condition, digits=None):
        """One step on the DDPM "simple" loss (the noise's mean squared error), gradients clipped at global
        norm 1, then the EMA update of the sampling network. With a recognizer and the batch's ``digits``
        (0-9; any other value: unknown), the recognizer learns in the same step, from its own loss (its
        gradients are not clipped with the U-Net's, so the U-Net's step is what it is without it)."""
        if self.denoiser_frozen:
            return self.recognition_step(images, digits)
        recognizing = self.recognizer is not None and digits is not None
        with tf.GradientTape() as tape:
            predicted = self.unet((self.add_noise(images, timestep, noise), timestep, condition))
            loss = tf.reduce_mean(tf.square(predicted - noise))
            scaled = distribute.scale_loss(loss)
            if recognizing:  # one backward pass: the recognizer's loss does not reach the U-Net's weights
                recognition, right = self._recognition(images, digits, training=True)
                both = scaled + distribute.scale_loss(recognition)
        unet_variables = list(self.unet.trainable_variables)
        if recognizing:
            variables = unet_variables + self.recognizer.trainable_variables
            gradients = tape.gradient(both, variables)
        else:
            variables, gradients = unet_variables, tape.gradient(scaled, unet_variables)
        gradients = (distribute.clip_by_global_norm(gradients[:len(unet_variables)], 1.0)
                     + list(gradients[len(unet_variables):]))
        self.optimizer.apply_gradients(zip(gradients, variables))
        update_moving_average(self.ema_unet.weights, self.unet.weights, self.ema_decay, self.optimizer.iterations)
        self.loss_tracker.update_state(loss)
        if recognizing:
            return {"loss": self.loss_tracker.result(), **self._recognition_metrics(recognition, right)}
        return {"loss": self.loss_tracker.result()}

    def recognition_step(self, images, digits):
        """A step of the recognizer alone (:meth:`freeze_denoiser`): the U-Nets and their average unchanged."""
        with tf.GradientTape() as tape:
            recognition, right = self._recognition(images, digits, training=True)
            scaled = distribute.scale_loss(recognition)
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, self.recognizer.trainable_variables),
                                           self.recognizer.trainable_variables))
        return self._recognition_metrics(recognition, right)

    def _recognition(self, images, digits, training):
        """The recognizer's mean cross-entropy (this replica's share of the global batch's, as
        :func:`~zoo.core.nn.distribute.mean_over_global_batch`) and its accuracy on the batch's labelled rows,
        every digit under a mask of :func:`~zoo.core.nn.recognizer.visible_masks` (new ones each training step,
        the same at every validation)."""
        batch = tf.shape(images)[0]
        seeds = self.mask_seed if training else 11
        masks = distribute.draw_for_global_batch(lambda n: visible_masks(n, seeds), batch)
        known = (images + 1.0) / 2.0  # the model's [-1, 1] images, in the [0, 1] that inpaint is given
        total, count, right = recognition_loss(self.recognizer, known, digits, masks, training)
        return distribute.mean_over_global_batch(total, count), (right, count)

    def _recognition_metrics(self, recognition, right):
        self.recognizer_loss_tracker.update_state(recognition)
        self.recognizer_accuracy_tracker.update_state(right[0] / tf.maximum(right[1], 1.0), sample_weight=right[1])
        return {"recognizer_loss": self.recognizer_loss_tracker.result(),
                "recognizer_accuracy": self.recognizer_accuracy_tracker.result()}

    def validation_step(self, images, condition, digits=None):
        """The EMA network's loss with the same noise and timesteps at every evaluation, drawn for the global
        batch (as in training) so that it does not depend on the number of replicas; with a recognizer and
        ``digits``, its loss and accuracy under the same masks at every evaluation (only those while the denoiser
        is frozen: it does not change)."""
        if self.denoiser_frozen:
            return self._recognition_metrics(*self._recognition(images, digits, training=False))
        batch = tf.shape(images)[0]
        noise = distribute.draw_for_global_batch(
            lambda n: tf.random.stateless_normal([n, *IMAGE_SHAPE], seed=[1, 2]), batch)
        timestep = distribute.draw_for_global_batch(
            lambda n: tf.random.stateless_uniform([n], seed=[3, 4], maxval=self.num_timesteps, dtype=tf.int32), batch)
        predicted = self.ema_unet((self.add_noise(images, timestep, noise), timestep, condition))
        self.loss_tracker.update_state(tf.reduce_mean(tf.square(predicted - noise)))
        if self.recognizer is not None and digits is not None:
            return {"loss": self.loss_tracker.result(),
                    **self._recognition_metrics(*self._recognition(images, digits, training=False))}
        return {"loss": self.loss_tracker.result()}

    def add_noise(self, images, timestep, noise):
        """Forward noising in closed form: ``sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise``."""
        signal, spread = self._schedule_at(timestep)
        return signal * images + spread * noise

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
        signal = tf.where(valid, tf.bitcast(tf.gather(self.sqrt_alpha_bars_bits, index), tf.float32), 1.0)
        spread = tf.where(valid, tf.bitcast(tf.gather(self.sqrt_one_minus_alpha_bars_bits, index), tf.float32), 0.0)
        return tf.reshape(signal, [-1, 1, 1, 1]), tf.reshape(spread, [-1, 1, 1, 1])

    def ddim_loop(self, predict_noise, noise, steps, conditioning=()):
        """DDIM with ``steps`` steps in a ``tf.while_loop`` (a builtin WHILE in TFLite) over
        ``predict_noise(images_t, timestep [batch], *conditioning) -> eps``: images ``[batch, 28, 28, 1]`` in
        [0, 1]. ``conditioning``: the tensors every step reads unchanged (labels, guidance), which
        :func:`while_loop_carrying` passes through the loop."""
        schedule = tf.constant(np.append(ddim_timesteps(self.num_timesteps, steps), -1), tf.int32)

        def body(i, x, *conditioning):
            batch = tf.shape(x)[0]
            t = tf.fill([batch], schedule[i])
            previous = tf.fill([batch], schedule[i + 1])
            return i + 1, self.ddim_update(x, t, previous, predict_noise(x, t, *conditioning))

        _, x = while_loop_carrying(lambda i, x: i < steps, body, [tf.constant(0), noise], conditioning)
        return {"images": (tf.clip_by_value(x, -1.0, 1.0) + 1.0) / 2.0}

    def inpaint_loop(self, predict_noise, images, mask, noise, steps, resample, conditioning=()):
        """RePaint on the DDIM schedule in one ``tf.while_loop``: fill the pixels where ``mask`` is 0 so that
        they agree with ``images`` (in [0, 1]) where it is 1, which come back exactly. ``steps`` DDIM steps,
        each but the last run ``resample`` times (known pixels noised to the step's level, one ancestral
        denoising step, noised back up with fresh noise). The fresh noise is ``noise`` permuted again at each draw (the permutation
        of ``zoo.core.apps.ddim.noise_permutation``: a graph cannot draw reproducibly in TFLite), so the app
        loop ``zoo.core.apps.ddim.inpaint_loop`` reproduces this one. ``predict_noise(images_t, timestep,
        *conditioning)``, as in :meth:`ddim_loop`."""
        size = int(np.prod(IMAGE_SHAPE))
        permutation = tf.constant(noise_permutation(size), tf.int32)
        schedule = tf.constant(np.append(ddim_timesteps(self.num_timesteps, steps), -1), tf.int32)

        def body(k, x, z, mask, known, *conditioning):
            batch = tf.shape(x)[0]

            def fresh(z):
                return tf.reshape(tf.gather(tf.reshape(z, [batch, size]), permutation, axis=1),
                                  [batch, *IMAGE_SHAPE])

            i, u = k // resample, k % resample
            t, previous = tf.fill([batch], schedule[i]), tf.fill([batch], schedule[i + 1])
            signal, spread = self._schedule_at(t)
            signal_previous, spread_previous = self._schedule_at(previous)
            ratio = signal / signal_previous
            beta = 1.0 - ratio * ratio
            z = fresh(z)
            x = mask * (signal * known + spread * z) + (1.0 - mask) * x
            x0 = tf.clip_by_value((x - spread * predict_noise(x, t, *conditioning)) / signal, -1.0, 1.0)
            z = fresh(z)
            x = (signal_previous * beta / (spread * spread) * x0
                 + ratio * spread_previous * spread_previous / (spread * spread) * x
                 + tf.sqrt(beta) * spread_previous / spread * z)
            back = tf.logical_and(u + 1 < resample, schedule[i + 1] >= 0)
            z_back = fresh(z)
            return k + 1, tf.where(back, ratio * x + tf.sqrt(beta) * z_back, x), tf.where(back, z_back, z)

        # every step runs `resample` times but the last, once
        _, x, _ = while_loop_carrying(lambda k, x, z: k < (steps - 1) * resample + 1, body,
                                      [tf.constant(0), noise, noise], [mask, images * 2.0 - 1.0, *conditioning])
        # the known pixels exactly as given (mask is 0/1), not through the [-1, 1] round trip
        return {"images": mask * images + (1.0 - mask) * (tf.clip_by_value(x, -1.0, 1.0) + 1.0) / 2.0}


def ddim_timesteps(num_timesteps, steps):
    """The ``steps`` timesteps DDIM visits, from T-1 down to 0, evenly spaced (as the app loops compute them)."""
    from zoo.core.runtime.errors import BadInputError

    if int(steps) < 1:
        raise BadInputError(f"the number of sampling steps must be at least 1, got {steps}")
    return np.linspace(num_timesteps - 1, 0, int(steps)).round().astype(np.int32)


def guided_noise(unet, images_t, timestep, condition, null_condition, guidance):
    """Classifier-free guidance: ``eps(x, null) + guidance * (eps(x, condition) - eps(x, null))``, both
    predictions in one batch. Guidance 0 is the unconditional model, 1 the conditional one."""
    both = unet((tf.concat([images_t, images_t], 0), tf.concat([timestep, timestep], 0),
                 tf.concat([condition, null_condition], 0)))
    conditional, unconditional = tf.split(both, 2, axis=0)
    return unconditional + tf.reshape(guidance, [-1, 1, 1, 1]) * (conditional - unconditional)
