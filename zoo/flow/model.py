"""A multi-scale normalizing flow (RealNVP / Glow) with exact log-densities.

Dinh, Sohl-Dickstein & Bengio (2017), "Density estimation using Real NVP", https://arxiv.org/abs/1605.08803
Kingma & Dhariwal (2018), "Glow: Generative Flow with Invertible 1x1 Convolutions", https://arxiv.org/abs/1807.03039

An image x in [0, 1]^D (already dequantized: (pixel + u) / 256) is mapped by an
invertible function f to noise z = f(x) with a standard-normal density, so

    log p(x) = log N(f(x); 0, I) + log |det df/dx|

exactly. f is a chain of bijections, each with its log-determinant written out:

- ``logit``: x -> logit(alpha + (1 - 2 alpha) x), so the flow's density lives on the
  cube [0, 1]^D (it integrates to 1 there; a test checks it on 2x2 images);
- per level: ``squeeze`` (space-to-depth, 2x2 -> 4 channels, log-det 0), then K steps of
  ``ActNorm`` (per-channel affine), ``InvertibleConv1x1`` (a learned channel mixing,
  LU-parameterised so its log-det is a sum and its inverse is exact) and
  ``AffineCoupling`` (half the channels scaled and shifted by a conv net of the
  other half); then half the channels are factored out as noise (multi-scale).

Everything is Keras ops that lower to builtin TFLite ops: the 1x1 convolution's
inverse is a finite Neumann series of its nilpotent triangular parts (matmuls and
adds), not a matrix inverse or triangular solve, which TFLite has no builtin for.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo.core.nn import distribute
from zoo.core.nn.inputs import check_float_input

IMAGE_SHAPE = (28, 28, 1)
LOGIT_ALPHA = 1e-5  # keeps logit finite at pixel 0 and 1; 1e-6..1e-5 is usual for MNIST
LOG_2PI = math.log(2 * math.pi)
# The inverse's guards. On all 70,000 MNIST digits (dequantized) the committed flow's forward pass stays
# within |h| <= 31 and no coupling scale falls below 5e-5 (log 1/scale <= 9.9), so neither bound touches the
# decode of a digit's noise. Without them a few noise rows of the prior itself (13 in 1,000 at temperature 1)
# push a level-1 coupling's conditioner off the data: its scale underflows, the division by it feeds the
# next coupling, and the image turns NaN (tests/test_flow.py).
STATE_BOUND = 100.0
MAX_LOG_INVERSE_SCALE = 15.0

PRESETS = {
    "tiny": {"levels": 2, "steps_per_level": 2, "hidden_channels": 8},
    "base": {"levels": 2, "steps_per_level": 8, "hidden_channels": 64},
}


@keras.saving.register_keras_serializable(package="zoo")
class ActNorm(layers.Layer):
    """y = (x + bias) * exp(log_scale), per channel (Glow); log-det = H * W * sum(log_scale).

    Starts as the identity; :meth:`FlowModel.initialize_actnorm` sets it from data so
    each channel starts with zero mean and unit variance (Glow's data-dependent init).
    """

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")
        self.log_scale = self.add_weight(shape=(channels,), initializer="zeros", name="log_scale")

    def forward(self, x):
        pixels = float(x.shape[1] * x.shape[2])
        return (x + self.bias) * tf.exp(self.log_scale), pixels * tf.reduce_sum(self.log_scale)

    def inverse(self, y):
        return y * tf.exp(-self.log_scale) - self.bias

    def initialize(self, x):
        """Set bias and scale so ``forward(x)`` has zero mean and unit variance per channel."""
        mean = tf.reduce_mean(x, axis=[0, 1, 2])
        std = tf.math.reduce_std(x, axis=[0, 1, 2])
        self.bias.assign(-mean)
        self.log_scale.assign(-tf.math.log(std + 1e-6))


def _lu_of_random_rotation(channels, seed):
    """P, L (unit lower), U (upper) of a random orthogonal matrix: ``Q = P @ L @ U``, Glow's initialisation."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((channels, channels)))
    a = q.copy()
    perm = np.arange(channels)
    lower = np.eye(channels)
    for k in range(channels):  # Doolittle with partial pivoting: P^T Q = L U
        pivot = k + int(np.argmax(np.abs(a[k:, k])))
        a[[k, pivot]] = a[[pivot, k]]
        lower[[k, pivot], :k] = lower[[pivot, k], :k]
        perm[[k, pivot]] = perm[[pivot, k]]
        for i in range(k + 1, channels):
            lower[i, k] = a[i, k] / a[k, k]
            a[i, k:] -= lower[i, k] * a[k, k:]
    permutation = np.zeros((channels, channels))
    permutation[perm, np.arange(channels)] = 1.0  # P with Q = P @ L @ U
    return permutation, lower, np.triu(a)


def _nilpotent_inverse(strict, channels):
    """(I + N)^-1 = sum_k (-N)^k for a strictly triangular N: exact after ``channels`` terms."""
    identity = tf.eye(channels, dtype=strict.dtype)
    result, power = identity, identity
    for _ in range(channels - 1):
        power = -tf.matmul(power, strict)
        result = result + power
    return result


@keras.saving.register_keras_serializable(package="zoo")
class InvertibleConv1x1(layers.Layer):
    """A learned invertible channel mixing y = W x at every pixel (Glow), W = P L (U + diag(s)).

    LU form: log|det W| = sum(log|s|) per pixel, and the inverse needs no matrix
    inverse op (see :func:`_nilpotent_inverse`).
    """

    def __init__(self, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.channels = c
        permutation, lower, upper = _lu_of_random_rotation(c, self.seed)
        diagonal = np.diag(upper)
        const = keras.initializers.Constant
        self.permutation = self.add_weight(shape=(c, c), initializer=const(permutation), trainable=False,
                                           name="permutation")
        self.sign = self.add_weight(shape=(c,), initializer=const(np.sign(diagonal)), trainable=False, name="sign")
        self.lower = self.add_weight(shape=(c, c), initializer=const(np.tril(lower, -1)), name="lower")
        self.upper = self.add_weight(shape=(c, c), initializer=const(np.triu(upper, 1)), name="upper")
        self.log_diagonal = self.add_weight(shape=(c,), initializer=const(np.log(np.abs(diagonal))),
                                            name="log_diagonal")
        self.lower_mask = tf.constant(np.tril(np.ones((c, c)), -1), self.variable_dtype)
        self.upper_mask = tf.constant(np.triu(np.ones((c, c)), 1), self.variable_dtype)

    def _parts(self):
        strict_lower = self.lower * self.lower_mask
        strict_upper = self.upper * self.upper_mask
        diagonal = self.sign * tf.exp(self.log_diagonal)
        return strict_lower, strict_upper, diagonal

    def weight_matrix(self):
        strict_lower, strict_upper, diagonal = self._parts()
        eye = tf.eye(self.channels, dtype=diagonal.dtype)
        return tf.matmul(self.permutation, tf.matmul(eye + strict_lower, strict_upper + tf.linalg.diag(diagonal)))

    def inverse_matrix(self):
        strict_lower, strict_upper, diagonal = self._parts()
        c = self.channels
        lower_inverse = _nilpotent_inverse(strict_lower, c)
        # U + D = D (I + D^-1 U): its inverse is (I + D^-1 U)^-1 D^-1
        scaled_upper = strict_upper / diagonal[:, None]
        upper_inverse = _nilpotent_inverse(scaled_upper, c) / diagonal[None, :]
        return tf.matmul(upper_inverse, tf.matmul(lower_inverse, self.permutation, transpose_b=True))

    @staticmethod
    def _mix(x, matrix):
        shape = tf.shape(x)
        flat = tf.reshape(x, [-1, x.shape[-1]])
        return tf.reshape(tf.matmul(flat, matrix, transpose_b=True), shape)

    def forward(self, x):
        pixels = float(x.shape[1] * x.shape[2])
        return self._mix(x, self.weight_matrix()), pixels * tf.reduce_sum(self.log_diagonal)

    def inverse(self, y):
        return self._mix(y, self.inverse_matrix())

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="zoo")
class AffineCoupling(layers.Layer):
    """Glow's affine coupling: the second half of the channels is scaled and shifted by a
    conv net of the first half, y_b = (x_b + shift) * sigmoid(raw + 2); log-det = sum log scale.

    The net's last convolution starts at zero, so every coupling starts as the identity.
    """

    def __init__(self, hidden_channels=64, **kwargs):
        super().__init__(**kwargs)
        self.hidden_channels = int(hidden_channels)

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.half = c // 2
        h = self.hidden_channels
        policy = self.dtype_policy  # float64 copies in the Jacobian tests
        self.net = keras.Sequential([
            layers.Conv2D(h, 3, padding="same", activation="relu", dtype=policy),
            layers.Conv2D(h, 1, activation="relu", dtype=policy),
            layers.Conv2D(2 * (c - self.half), 3, padding="same", kernel_initializer="zeros", dtype=policy),
        ], name="net")
        self.net.build((None, input_shape[1], input_shape[2], self.half))

    def _shift_and_log_scale(self, conditioner):
        shift, raw = tf.split(self.net(conditioner), 2, axis=-1)
        return shift, log_sigmoid(raw + 2.0)

    def forward(self, x):
        xa, xb = x[..., : self.half], x[..., self.half :]
        shift, log_scale = self._shift_and_log_scale(xa)
        logdet = tf.reduce_sum(log_scale, axis=[1, 2, 3])
        return tf.concat([xa, (xb + shift) * tf.exp(log_scale)], axis=-1), logdet

    def inverse(self, y):
        """x_b = y_b / scale - shift, written as a product with 1 / scale capped at e^15 (see STATE_BOUND)."""
        ya, yb = y[..., : self.half], y[..., self.half :]
        shift, log_scale = self._shift_and_log_scale(ya)
        inverse_scale = tf.exp(tf.minimum(-log_scale, MAX_LOG_INVERSE_SCALE))
        return tf.concat([ya, yb * inverse_scale - shift], axis=-1)

    def get_config(self):
        return {**super().get_config(), "hidden_channels": self.hidden_channels}


def log_sigmoid(x):
    """log(sigmoid(x)), finite for every finite x. The log of a sigmoid that underflowed to 0 is -inf, and
    tf.math.log_sigmoid converts to TFLite as -log(1 + exp(-x)), whose exp overflows below x = -88."""
    return tf.minimum(x, 0.0) - tf.math.log(1.0 + tf.exp(-tf.abs(x)))


def bounded(h):
    """The inverse's state, kept inside [-STATE_BOUND, STATE_BOUND] (three times what the data reaches)."""
    return tf.clip_by_value(h, -STATE_BOUND, STATE_BOUND)


def logit_forward(x, alpha=LOGIT_ALPHA):
    """[0, 1] -> the real line, and the log-det of that map per image."""
    # p and 1 - p written symmetrically: both stay >= alpha even where a float16 model rounds 1 - 2 alpha to 1
    log_p = tf.math.log(alpha + (1.0 - 2.0 * alpha) * x)
    log_one_minus_p = tf.math.log(alpha + (1.0 - 2.0 * alpha) * (1.0 - x))
    y = log_p - log_one_minus_p
    logdet = tf.reduce_sum(math.log(1.0 - 2.0 * alpha) - log_p - log_one_minus_p, axis=[1, 2, 3])
    return y, logdet


def logit_inverse(y, alpha=LOGIT_ALPHA):
    return tf.clip_by_value((tf.sigmoid(y) - alpha) / (1.0 - 2.0 * alpha), 0.0, 1.0)


@keras.saving.register_keras_serializable(package="zoo")
class FlowModel(keras.Model):
    """Multi-scale flow on images; exact ``log_prob``, ``encode`` (x -> z) and ``decode`` (z -> x).

    Args:
        image_shape: (height, width, channels); height and width divisible by 2**levels.
        levels: squeeze + K steps each; all but the last factor out half their channels.
        steps_per_level: K, flow steps (actnorm, 1x1 conv, coupling) per level.
        hidden_channels: width of each coupling's conv net.
        seed: initial rotations and the dequantization noise.

    Example:
        >>> flow = FlowModel(**PRESETS["tiny"])
        >>> flow.log_prob(np.full((2, 28, 28, 1), 0.5, "float32"))["log_density"].shape
        TensorShape([2])
    """

    def __init__(self, image_shape=IMAGE_SHAPE, levels=2, steps_per_level=8, hidden_channels=64, seed=0, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.image_shape = tuple(int(d) for d in image_shape)
        self.levels = int(levels)
        self.steps_per_level = int(steps_per_level)
        self.hidden_channels = int(hidden_channels)
        self.seed = int(seed)
        height, width, channels = self.image_shape
        if height % 2 ** self.levels or width % 2 ** self.levels:
            raise ValueError(f"image size {height}x{width} must be divisible by 2**levels = {2 ** self.levels}")
        self.dimensions = height * width * channels
        # === Layers ===
        self.flow_layers = []  # actnorm, conv, coupling of every step, level by level
        self.level_shapes = []  # (h, w, c) inside each level, after its squeeze
        self.noise_shapes = []  # the noise each level emits, in order
        h, w, c = height, width, channels
        for level in range(self.levels):
            h, w, c = h // 2, w // 2, c * 4
            self.level_shapes.append((h, w, c))
            for k in range(self.steps_per_level):
                names = f"level{level}_step{k}"
                actnorm = ActNorm(name=f"{names}_actnorm")
                conv = InvertibleConv1x1(seed=self.seed * 1000 + level * 100 + k, name=f"{names}_conv")
                coupling = AffineCoupling(self.hidden_channels, name=f"{names}_coupling")
                for layer in (actnorm, conv, coupling):
                    layer.build((None, h, w, c))
                self.flow_layers += [actnorm, conv, coupling]
            if level < self.levels - 1:
                self.noise_shapes.append((h, w, c - c // 2))
                c = c // 2
            else:
                self.noise_shapes.append((h, w, c))
        self.noise_sizes = [a * b * d for a, b, d in self.noise_shapes]
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.built = True
        # === Metrics ===
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def level_steps(self, level):
        """``[(actnorm, conv, coupling), ...]`` of one level."""
        per_level = 3 * self.steps_per_level
        flat = self.flow_layers[level * per_level : (level + 1) * per_level]
        return [tuple(flat[i : i + 3]) for i in range(0, per_level, 3)]

    # --- the bijection -----------------------------------------------------------------

    def forward(self, images):
        """Images in [0, 1] -> (noise ``[batch, D]``, log|det| ``[batch]``)."""
        h, logdet = logit_forward(images)
        pieces = []
        for level in range(self.levels):
            h = tf.nn.space_to_depth(h, 2)
            for step in self.level_steps(level):
                for layer in step:
                    h, layer_logdet = layer.forward(h)
                    logdet = logdet + layer_logdet
            if level < self.levels - 1:
                keep = h.shape[-1] // 2
                pieces.append(h[..., keep:])
                h = h[..., :keep]
        pieces.append(h)
        noise = tf.concat([tf.reshape(p, [-1, size]) for p, size in zip(pieces, self.noise_sizes)], axis=-1)
        return noise, logdet

    def inverse(self, noise):
        """Noise ``[batch, D]`` -> images in [0, 1]."""
        pieces = tf.split(noise, self.noise_sizes, axis=-1)
        h = tf.reshape(pieces[-1], [-1, *self.noise_shapes[-1]])
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                h = tf.concat([h, tf.reshape(pieces[level], [-1, *self.noise_shapes[level]])], axis=-1)
            for actnorm, conv, coupling in reversed(self.level_steps(level)):
                h = bounded(actnorm.inverse(conv.inverse(coupling.inverse(bounded(h)))))
            h = tf.nn.depth_to_space(h, 2)
        return logit_inverse(h)

    def log_density(self, images):
        """log p(x) in nats on [0, 1]^D, per image."""
        noise, logdet = self.forward(images)
        log_normal = -0.5 * tf.reduce_sum(tf.square(noise), axis=-1) - 0.5 * self.dimensions * LOG_2PI
        return log_normal + logdet

    def bits_per_dim(self, log_density):
        """8 - log p / (D ln 2): the bits/dim of the 8-bit pixels the dequantized x came from."""
        return 8.0 - log_density / (self.dimensions * math.log(2.0))

    # --- what the export serves ---------------------------------------------------------

    def check_images(self, images):
        return check_float_input(images, "images", (None, *self.image_shape))

    def check_noise(self, noise):
        return check_float_input(noise, "noise", (None, self.dimensions))

    def log_prob(self, images):
        """Dequantized images ``[batch, h, w, c]`` in [0, 1] -> ``log_density`` [batch] (nats)."""
        return {"log_density": self.log_density(self.check_images(images))}

    def encode(self, images):
        """Images -> ``noise`` [batch, D], the exact inverse of :meth:`decode`."""
        return {"noise": self.forward(self.check_images(images))[0]}

    def decode(self, noise):
        """Standard-normal ``noise`` [batch, D] (times a temperature) -> ``images`` in [0, 1]."""
        return {"images": self.inverse(self.check_noise(noise))}

    def generate(self, noise):
        return self.decode(noise)["images"]

    def call(self, images):
        return self.log_density(images)

    # --- training -------------------------------------------------------------------------

    def dequantize(self, images):
        """Pixels in [0, 1] (k / 255) -> (k + u) / 256 with fresh u ~ U[0, 1)."""
        uniform = distribute.draw_for_global_batch(
            lambda n: keras.random.uniform((n, *self.image_shape), seed=self.seed_generator), tf.shape(images)[0])
        return (tf.round(images * 255.0) + uniform) / 256.0

    def initialize_actnorm(self, images):
        """Glow's data-dependent init: run a batch through, setting each ActNorm to normalise it."""
        h, _ = logit_forward(tf.convert_to_tensor(images, tf.float32))
        for level in range(self.levels):
            h = tf.nn.space_to_depth(h, 2)
            for actnorm, conv, coupling in self.level_steps(level):
                actnorm.initialize(h)
                for layer in (actnorm, conv, coupling):
                    h, _ = layer.forward(h)
            if level < self.levels - 1:
                h = h[..., : h.shape[-1] // 2]

    def train_step(self, images):
        x = self.dequantize(images)
        with tf.GradientTape() as tape:
            bits = self.bits_per_dim(self.log_density(x))
            loss = distribute.scale_loss(tf.reduce_mean(bits))
        variables = self.trainable_variables
        gradients = distribute.clip_by_global_norm(tape.gradient(loss, variables), 1.0)
        self.optimizer.apply_gradients(zip(gradients, variables))
        self.loss_tracker.update_state(bits)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, images):
        self.loss_tracker.update_state(self.bits_per_dim(self.log_density(self.dequantize(images))))
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape), "levels": self.levels,
                "steps_per_level": self.steps_per_level, "hidden_channels": self.hidden_channels, "seed": self.seed}
