"""Which digit do the known pixels of a partly hidden digit show? What the diffusion models' ``inpaint`` asks
before it fills the hole, when the caller does not say which digit it is.

A completion of a hidden half drawn without knowing the digit (RePaint with the unconditional model) was read
as the true digit only 0.78 (bottom half hidden) and 0.85 (left half) of the time, while a faithful draw from
p(digit | visible half) would be 0.93 / 0.96 (``benchmarks/inpainting_ceiling.py``): the unconditional loop
keeps the filled half on a digit of its own more often than the visible half allows. So the models factor the
completion as p(digit | known pixels) x p(image | digit, known pixels): this small CNN reads the likeliest digit
from the known pixels and their mask, and the guided, digit-conditioned loop completes the image as that digit.

The recognizer trains beside the denoiser on the same batches, each digit under a mask drawn by
:func:`visible_masks` (a hidden half cut anywhere between rows/columns 10 and 18, a random fraction of the
pixels, a rectangular hole, or nothing hidden), so it reads a digit from whatever part a user keeps.
"""

import keras
import tensorflow as tf
from keras import layers

from zoo.core.nn import distribute

NUM_DIGITS = 10
IMAGE_SIDE = 28
MASK_KINDS = 7  # hidden bottom / top / right / left part, random pixels, a rectangle, nothing


@keras.saving.register_keras_serializable(package="zoo")
class VisibleDigitRecognizer(layers.Layer):
    """``(images [b, 28, 28, 1] in [0, 1], mask [b, 28, 28, 1], 1 = known) -> logits [b, 10]``.

    The known pixels (the hole set to 0) and the mask itself are the two input channels, so a black known pixel
    and a hidden one differ. Three 3 x 3 convolutions (``widths``, a 2 x 2 max-pool after the first two), dropout,
    one dense layer to the 10 logits: all TFLite builtins.
    """

    def __init__(self, widths=(32, 64, 128), dropout=0.3, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.widths, self.dropout_rate, self.seed = [int(w) for w in widths], float(dropout), int(seed)
        self.convs = [layers.Conv2D(w, 3, padding="same", activation="relu") for w in self.widths]
        self.pools = [layers.MaxPooling2D() for _ in self.widths[:-1]]
        self.dropout = layers.Dropout(self.dropout_rate, seed=self.seed)
        self.logits = layers.Dense(NUM_DIGITS)

    def build(self, input_shape=None):
        shape = (None, IMAGE_SIDE, IMAGE_SIDE, 2)
        for i, conv in enumerate(self.convs):
            conv.build(shape)
            shape = (None, shape[1], shape[2], conv.filters)
            if i < len(self.pools):
                shape = (None, shape[1] // 2, shape[2] // 2, shape[3])
        self.logits.build((None, shape[1] * shape[2] * shape[3]))
        self.built = True

    def call(self, images, mask, training=False):
        h = tf.concat([images * mask, mask], axis=-1)
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i < len(self.pools):
                h = self.pools[i](h)
        h = tf.reshape(h, [tf.shape(h)[0], -1])
        if training and self.dropout_rate > 0:
            # The dropout mask is drawn for the global batch (``Dropout`` on ones, then multiplied: the same
            # numbers as ``self.dropout(h)`` on one device), so N replicas drop what one device would.
            keep = distribute.draw_for_global_batch(
                lambda n: self.dropout(tf.ones([n, h.shape[-1]]), training=True), tf.shape(h)[0])
            h = h * keep
        return self.logits(h)

    def get_config(self):
        return {**super().get_config(), "widths": self.widths, "dropout": self.dropout_rate, "seed": self.seed}


def visible_masks(batch, seeds):
    """``float32 [batch, 28, 28, 1]``, 1 where a pixel stays known, each row one of :data:`MASK_KINDS` kinds
    with equal odds: the bottom, top, right or left part hidden from a row/column between 10 and 18 on (the
    half masks of ``inpaint``'s tests hide from 14), each pixel kept with a probability from 0.1 to 0.9, a
    rectangular hole 6-19 pixels on a side, or nothing hidden.

    ``seeds``: a ``keras.random.SeedGenerator`` (training: new masks each step), or an int (the same masks at
    every call: validation)."""
    def seed(k):
        return seeds if isinstance(seeds, keras.random.SeedGenerator) else seeds + k

    kind = keras.random.randint((batch, 1, 1, 1), 0, MASK_KINDS, seed=seed(0))
    cut = keras.random.randint((batch, 1, 1, 1), 10, 19, seed=seed(1))
    keep = keras.random.uniform((batch, 1, 1, 1), 0.1, 0.9, seed=seed(2))
    pixels = keras.random.uniform((batch, IMAGE_SIDE, IMAGE_SIDE, 1), seed=seed(3))
    sides = keras.random.randint((batch, 1, 1, 2), 6, 20, seed=seed(4))
    corner = tf.cast(keras.random.uniform((batch, 1, 1, 2), seed=seed(5)) * tf.cast(IMAGE_SIDE - sides, tf.float32),
                     tf.int32)
    rows = tf.reshape(tf.range(IMAGE_SIDE), [1, IMAGE_SIDE, 1, 1])
    columns = tf.reshape(tf.range(IMAGE_SIDE), [1, 1, IMAGE_SIDE, 1])
    in_hole = ((rows >= corner[..., :1]) & (rows < corner[..., :1] + sides[..., :1])
               & (columns >= corner[..., 1:]) & (columns < corner[..., 1:] + sides[..., 1:]))
    known = [rows < cut, rows >= cut, columns < cut, columns >= cut, pixels < keep, ~in_hole,
             tf.ones([batch, IMAGE_SIDE, IMAGE_SIDE, 1], tf.bool)]
    mask = tf.zeros([batch, IMAGE_SIDE, IMAGE_SIDE, 1])
    for k, known_k in enumerate(known):
        mask += tf.cast(kind == k, tf.float32) * tf.cast(tf.broadcast_to(known_k, tf.shape(mask)), tf.float32)
    return mask


def recognition_loss(recognizer, images, digits, masks, training):
    """``(sum of cross-entropies, number of labelled rows, number read right)`` of the recognizer reading
    ``digits`` from ``images`` (in [0, 1]) under ``masks``; rows whose digit is unknown (outside 0-9: an
    unlabelled image) count for nothing."""
    digits = tf.cast(digits, tf.int32)
    labelled = tf.cast((digits >= 0) & (digits < NUM_DIGITS), tf.float32)
    logits = recognizer(images, masks, training=training)
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.clip_by_value(digits, 0, NUM_DIGITS - 1), logits=logits)
    right = tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32) == digits, tf.float32)
    return tf.reduce_sum(cross_entropy * labelled), tf.reduce_sum(labelled), tf.reduce_sum(right * labelled)
