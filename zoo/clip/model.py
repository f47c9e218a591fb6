"""A CLIP-style dual encoder on MNIST: a byte-level Transformer for text, a small CNN for images.

Radford et al. (2021), "Learning Transferable Visual Models From Natural Language
Supervision". Both encoders map into one D-dimensional space and return unit
vectors; training pulls each image towards its own caption and away from the other
captions in the batch (symmetric InfoNCE, learned temperature).

The text encoder reads UTF-8 bytes (int32 ``[batch, length]``, zero padded; see
:mod:`zoo.core.runtime.utf8`): a start token, then the bytes, bidirectional self-attention in
which padding is masked out as a key, and the mean of the non-padding positions. So
the padding is absent: the same text gives the same embedding with any amount of it.
The text2image model reuses this encoder, frozen, through the registry.
"""

import math

import keras
import tensorflow as tf
from keras import layers

from zoo.core.nn import distribute
from zoo.core.runtime.utf8 import TEXT_BYTES

START_TOKEN = 256  # the byte vocabulary is 0..255; id 256 opens every text (an empty text is just it)
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clips the learned temperature at 100

PRESETS = {
    "tiny": {"embedding_dim": 16, "width": 16, "num_layers": 1, "num_heads": 2, "image_channels": (4, 8),
             "pooling": "attention"},
    "base": {"embedding_dim": 128, "width": 128, "num_layers": 3, "num_heads": 4, "image_channels": (32, 64, 128),
             "pooling": "attention"},
}
POOLINGS = ("mean", "attention")


def unit(x):
    """Rows scaled to length 1 (``tf.math.l2_normalize`` is RSQRT, a builtin)."""
    return x * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(x), axis=-1, keepdims=True), 1e-12))


@keras.saving.register_keras_serializable(package="zoo")
class EncoderBlock(layers.Layer):
    """Pre-norm Transformer block: masked multi-head self-attention and an MLP, each with a residual."""

    def __init__(self, width, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.width, self.num_heads = int(width), int(num_heads)
        self.head_dim = self.width // self.num_heads
        self.norm_1 = layers.LayerNormalization(epsilon=1e-5)
        self.qkv = layers.Dense(3 * self.width)
        self.projection = layers.Dense(self.width)
        self.norm_2 = layers.LayerNormalization(epsilon=1e-5)
        self.hidden = layers.Dense(4 * self.width)
        self.output_dense = layers.Dense(self.width)

    def build(self, input_shape):
        x_shape = input_shape[0]
        self.norm_1.build(x_shape)
        self.qkv.build(x_shape)
        self.projection.build(x_shape)
        self.norm_2.build(x_shape)
        self.hidden.build(x_shape)
        self.output_dense.build((*x_shape[:-1], 4 * self.width))
        self.built = True

    def _heads(self, x):
        return tf.transpose(tf.reshape(x, [tf.shape(x)[0], -1, self.num_heads, self.head_dim]), [0, 2, 1, 3])

    def call(self, inputs):
        x, key_bias = inputs  # key_bias [batch, 1, 1, time]: 0 for text, -1e9 for padding
        query, key, value = tf.split(self.qkv(self.norm_1(x)), 3, axis=-1)
        scores = tf.matmul(self._heads(query), self._heads(key), transpose_b=True) / math.sqrt(self.head_dim)
        attended = tf.matmul(tf.nn.softmax(scores + key_bias, axis=-1), self._heads(value))
        attended = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), tf.shape(x))
        x = x + self.projection(attended)
        return x + self.output_dense(tf.nn.gelu(self.hidden(self.norm_2(x)), approximate=True))

    def get_config(self):
        return {**super().get_config(), "width": self.width, "num_heads": self.num_heads}


@keras.saving.register_keras_serializable(package="zoo")
class TextEncoder(keras.Model):
    """UTF-8 bytes ``int32 [batch, length <= 64]``, zero padded -> unit embedding ``[batch, D]``.

    ``pooling``: how the positions become one vector. ``"attention"``: each of ``num_heads`` learned queries
    weighs the positions (softmax over the text's bytes, padding excluded) and takes its share of the width,
    so the digit's bytes can count for the whole sentence however many words surround them. ``"mean"``: the
    average of the positions (the first committed CLIP's, whose long sentences diluted the digit).
    """

    def __init__(self, embedding_dim=128, width=128, num_layers=3, num_heads=4, max_bytes=TEXT_BYTES,
                 pooling="mean", **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        self.embedding_dim, self.width = int(embedding_dim), int(width)
        self.num_layers, self.num_heads, self.max_bytes = int(num_layers), int(num_heads), int(max_bytes)
        self.pooling = pooling
        self.pool_scores = layers.Dense(self.num_heads) if pooling == "attention" else None
        self.byte_embedding = layers.Embedding(START_TOKEN + 1, self.width)
        self.position_embedding = layers.Embedding(self.max_bytes + 1, self.width)
        self.blocks = [EncoderBlock(self.width, self.num_heads) for _ in range(self.num_layers)]
        self.norm = layers.LayerNormalization(epsilon=1e-5)
        self.to_embedding = layers.Dense(self.embedding_dim, use_bias=False)

    def build(self, input_shape=None):
        self.byte_embedding.build((None, None))
        self.position_embedding.build((None, None))
        for block in self.blocks:
            block.build(((None, None, self.width), (None, 1, 1, None)))
        self.norm.build((None, None, self.width))
        if self.pool_scores is not None:
            self.pool_scores.build((None, None, self.width))
        self.to_embedding.build((None, self.width))
        self.built = True

    def call(self, text):
        text = tf.cast(text, tf.int32)
        batch, length = tf.shape(text)[0], tf.shape(text)[1]
        tokens = tf.concat([tf.fill([batch, 1], START_TOKEN), text], axis=1)
        # the start token and the text's bytes are present; every zero is padding
        present = tf.cast(tf.not_equal(tokens, 0), tf.float32)
        x = self.byte_embedding(tokens) + self.position_embedding(tf.range(length + 1))[None]
        key_bias = tf.reshape((1.0 - present) * -1e9, [batch, 1, 1, length + 1])
        for block in self.blocks:
            x = block((x, key_bias))
        x = self.norm(x)
        if self.pool_scores is None:
            pooled = tf.reduce_sum(x * present[..., None], axis=1) / tf.reduce_sum(present, axis=1, keepdims=True)
        else:
            # [batch, time, heads]; padding selected out (tf.where), not added to: Grappler folded an added mask
            # into the Dense's BiasAdd inside text2image's sampling loop and broke the graph
            scores = tf.where(present[..., None] > 0, self.pool_scores(x), -1e9)
            weights = tf.nn.softmax(scores, axis=1)
            head_dim = self.width // self.num_heads
            values = tf.reshape(x, [batch, length + 1, self.num_heads, head_dim])
            pooled = tf.reshape(tf.reduce_sum(weights[..., None] * values, axis=1), [batch, self.width])
        return unit(self.to_embedding(pooled))

    def get_config(self):
        return {**super().get_config(), "embedding_dim": self.embedding_dim, "width": self.width,
                "num_layers": self.num_layers, "num_heads": self.num_heads, "max_bytes": self.max_bytes,
                "pooling": self.pooling}


@keras.saving.register_keras_serializable(package="zoo")
class ImageEncoder(keras.Model):
    """Digits ``[batch, 28, 28, 1]`` in [0, 1] -> unit embedding ``[batch, D]``: two conv pairs per
    resolution (28, 14, 7), global average pooling, a linear map."""

    def __init__(self, embedding_dim=128, image_channels=(32, 64, 128), **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim, self.image_channels = int(embedding_dim), [int(c) for c in image_channels]
        self.convs = [layers.Conv2D(c, 3, padding="same", activation="relu", strides=2 if i and not j else 1)
                      for i, c in enumerate(self.image_channels) for j in range(2)]
        self.to_embedding = layers.Dense(self.embedding_dim, use_bias=False)

    def call(self, images):
        x = images * 2.0 - 1.0
        for conv in self.convs:
            x = conv(x)
        return unit(self.to_embedding(tf.reduce_mean(x, axis=[1, 2])))

    def get_config(self):
        return {**super().get_config(), "embedding_dim": self.embedding_dim, "image_channels": self.image_channels}


@keras.saving.register_keras_serializable(package="zoo")
class CLIP(keras.Model):
    """The two encoders and the learned temperature of their similarity.

    Args:
        embedding_dim: D, the shared space's size.
        width, num_layers, num_heads, pooling: the text Transformer's (see :class:`TextEncoder`).
        image_channels: the CNN's channels at 28, 14 and 7 pixels.
        seed: seeds the initial weights.
    """

    def __init__(self, embedding_dim=128, width=128, num_layers=3, num_heads=4, image_channels=(32, 64, 128),
                 seed=0, pooling="mean", **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)
        keras.utils.set_random_seed(self.seed)
        self.text_encoder = TextEncoder(embedding_dim, width, num_layers, num_heads, pooling=pooling,
                                        name="text_encoder")
        self.image_encoder = ImageEncoder(embedding_dim, image_channels, name="image_encoder")
        self.embedding_dim = int(embedding_dim)
        # CLIP's initial temperature 0.07
        self.log_logit_scale = self.add_weight(name="log_logit_scale", shape=(),
                                               initializer=keras.initializers.Constant(math.log(1 / 0.07)))
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="batch_accuracy")
        self.text_encoder(tf.zeros([1, TEXT_BYTES], tf.int32))
        self.image_encoder(tf.zeros([1, 28, 28, 1]))
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def call(self, inputs):
        images, text = inputs
        return self.image_encoder(images), self.text_encoder(text)

    def logit_scale(self):
        return tf.exp(tf.minimum(self.log_logit_scale, MAX_LOGIT_SCALE))

    def contrastive_loss(self, images, text):
        """Symmetric InfoNCE over the batch: image i's caption is text i, the others are negatives.

        Returns the loss and how often an image's most similar caption is its own.
        """
        image_embedding, text_embedding = self((images, text))
        logits = self.logit_scale() * tf.matmul(image_embedding, text_embedding, transpose_b=True)
        targets = tf.range(tf.shape(logits)[0])
        loss = (tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))
                + tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, tf.transpose(logits)))) / 2
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), targets),
                                          tf.float32))
        return loss, accuracy

    def train_step(self, data):
        images, text = data
        with tf.GradientTape() as tape:
            # Under tf.distribute each replica contrasts its own slice of the batch (no all-gather),
            # as data-parallel CLIP does without its gather.
            loss, accuracy = self.contrastive_loss(images, text)
            scaled = distribute.scale_loss(loss)
        gradients = distribute.clip_by_global_norm(tape.gradient(scaled, self.trainable_variables), 1.0)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._track(loss, accuracy)

    def test_step(self, data):
        return self._track(*self.contrastive_loss(*data))

    def _track(self, loss, accuracy):
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(accuracy)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        text, image = self.text_encoder, self.image_encoder
        return {**super().get_config(), "embedding_dim": self.embedding_dim, "width": text.width,
                "num_layers": text.num_layers, "num_heads": text.num_heads,
                "image_channels": image.image_channels, "seed": self.seed, "pooling": text.pooling}

