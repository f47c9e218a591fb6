"""A Coconet-style model of four-part chorales: fill in any masked notes, then sample by blocked Gibbs.

Huang et al. (2017), "Counterpoint by Convolution" (Coconet, https://arxiv.org/abs/1903.07227), the
model behind Google's Bach Doodle: one network learns p(note | every note it is shown) for random
masks (an orderless NADE), so the same weights harmonize a melody (soprano shown, alto, tenor and bass
masked) and compose from nothing (everything masked). Sampling is their annealed blocked Gibbs: start
with every free note masked, then repeatedly mask a shrinking random share of the free notes and
redraw them from the model given the rest.

Here the network is a bidirectional Transformer over the 64 sixteenth-note steps (the zoo's
:class:`zoo.core.nn.decoder.TransformerBlock`, ``causal=False``): a step's input is the sum of its four
voices' embeddings (a pitch, a rest, or "masked") and its position in the four bars; its output is four
distributions, one per voice, over the pitches that voice sings (its range in the training chorales)
and a rest. Pitch is learned across keys by transposing the training chorales.

The sampler runs in the graph (a ``tf.while_loop``, TFLite's builtin ``WHILE``); its randomness
comes from the ``seed`` input through :mod:`zoo.core.apps.counter_random`, integer arithmetic that
draws the same numbers in every runtime and in the NumPy app loop.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo.core.apps.counter_random import counter_uniform
from zoo.core.apps.music import (ANNEAL, GIBBS_STEPS, MAX_SHARE, MIN_SHARE,  # the app loop's schedule, the same
                                  PARALLEL_PENALTY)
from zoo.core.data.chorales import RANGES, VOICES, WINDOW
from zoo.core.nn.decoder import TransformerBlock

LOWEST = min(low for low, _ in RANGES.values())  # 36: token i >= 1 is MIDI LOWEST + i - 1
HIGHEST = max(high for _, high in RANGES.values())  # 81
VOCAB = HIGHEST - LOWEST + 2  # a rest (0) and every pitch any voice sings
MASKED = VOCAB  # the input token of a note the model must fill in
NUM_VOICES = len(VOICES)
OUT_OF_RANGE = -1e4  # added to the logit of a pitch a voice never sings: exp() of it is 0, and float16 holds it


PRESETS = {
    "tiny": {"hidden_dim": 32, "num_layers": 1, "num_heads": 2, "dropout": 0.0},
    "base": {"hidden_dim": 128, "num_layers": 4, "num_heads": 4, "dropout": 0.1},
}


def midi_to_tokens(midi):
    """MIDI int32 (0 = rest) -> tokens (0 = rest, i = MIDI LOWEST + i - 1); pitches must be in range."""
    midi = tf.convert_to_tensor(midi, tf.int32)
    return tf.where(midi > 0, midi - (LOWEST - 1), tf.zeros_like(midi))


def tokens_to_midi(tokens):
    tokens = tf.convert_to_tensor(tokens, tf.int32)
    return tf.where(tokens > 0, tokens + (LOWEST - 1), tf.zeros_like(tokens))


def voice_vocabulary_mask():
    """``[4, VOCAB]`` float32: 0 where a voice may sing the token (a rest or a pitch in its range), OUT_OF_RANGE
    elsewhere."""
    allowed = np.zeros((NUM_VOICES, VOCAB), bool)
    allowed[:, 0] = True
    for v, name in enumerate(VOICES):
        low, high = RANGES[name]
        allowed[v, low - LOWEST + 1 : high - LOWEST + 2] = True
    return np.where(allowed, 0.0, OUT_OF_RANGE).astype(np.float32)


def parallel_motion(voices):
    """bool ``[b, 4, t, VOCAB]``: where a voice drawing token p would move in parallel fifths or octaves with
    another voice, the other notes as they stand (``voices`` MIDI ``[b, 4, t]``, 0 = rest); the NumPy app loop's
    ``zoo.core.apps.music.parallel_motion``, in builtin ops."""
    voices = tf.convert_to_tensor(voices, tf.int32)[:, :, None, :, None]  # [b, voice, other voice, t, candidate]
    others = tf.transpose(voices, [0, 2, 1, 3, 4])
    candidate = tf.reshape(tokens_to_midi(tf.range(VOCAB)), [1, 1, 1, 1, VOCAB])

    def before(x):  # the step before (a rest before the first)
        return tf.concat([tf.zeros_like(x[..., :1, :]), x[..., :-1, :]], axis=-2)

    def after(x):
        return tf.concat([x[..., 1:, :], tf.zeros_like(x[..., :1, :])], axis=-2)

    def parallel(a0, a1, b0, b1):  # voice a moves a0 -> a1 while voice b moves b0 -> b1
        sounding = (a0 > 0) & (a1 > 0) & (b0 > 0) & (b1 > 0)
        same_way = ((a1 > a0) & (b1 > b0)) | ((a1 < a0) & (b1 < b0))
        first, second = tf.math.floormod(tf.abs(a0 - b0), 12), tf.math.floormod(tf.abs(a1 - b1), 12)
        return sounding & same_way & (((first == 7) & (second == 7)) | ((first == 0) & (second == 0)))

    into = parallel(before(voices), candidate, before(others), others)
    out_of = parallel(candidate, after(voices), others, after(others))
    another = tf.constant(~np.eye(NUM_VOICES, dtype=bool)[None, :, :, None, None])
    return tf.reduce_any((into | out_of) & another, axis=2)


def share_at(step, steps=GIBBS_STEPS):
    """The share of free notes Gibbs step ``step`` resamples (float32, as ``zoo.core.apps.music.share_at``)."""
    step = tf.cast(step, tf.float32)
    return tf.maximum(MIN_SHARE, MAX_SHARE - step * tf.constant((MAX_SHARE - MIN_SHARE) / (ANNEAL * steps), tf.float32))


def gibbs_uniforms(seed, step, shape):
    """Gibbs step ``step``'s uniform numbers ``[b, *shape]``: ``[cells]`` picks the notes to resample, ``[cells,
    vocabulary]`` is the Gumbel noise that samples them (one per note and pitch). The NumPy app loop draws the
    same (``zoo.core.apps.music.gibbs_uniforms``)."""
    cells = NUM_VOICES * WINDOW
    block = cells * (1 + VOCAB)  # a step's counters: its mask draws, then its Gumbel draws
    size = int(np.prod(shape))
    first = tf.cast(step, tf.int32) * block + (0 if len(shape) == 1 else cells)
    counter = first + tf.range(size, dtype=tf.int32)
    u = counter_uniform(tf.cast(seed, tf.int32)[:, None], counter[None, :], lambda x: tf.cast(x, tf.float32))
    return tf.reshape(u, [-1, *shape])


@keras.saving.register_keras_serializable(package="zoo")
class ChoraleModel(keras.Model):
    """p(every masked note | the shown notes) for four voices over 64 sixteenths.

    Args:
        hidden_dim, num_layers, num_heads: the Transformer's size.
        dropout: in training only.
        seed: seeds the initial weights.
        forbid_parallels: the sampler's rule of voice leading: a note that would move in parallel fifths or
            octaves with another voice, as the other notes stand, is not drawn (the network alone writes about
            one a hundred moves; Bach almost none). The ``logits`` signature is the network alone either way.

    Example:
    >>> model = ChoraleModel(**PRESETS["tiny"])
    >>> tuple(model(np.full((1, 4, 64), MASKED, "int32")).shape)
    (1, 4, 64, 47)
    """

    def __init__(self, hidden_dim=128, num_layers=4, num_heads=4, dropout=0.1, seed=0, forbid_parallels=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim, self.num_layers, self.num_heads = int(hidden_dim), int(num_layers), int(num_heads)
        self.dropout, self.seed, self.forbid_parallels = float(dropout), int(seed), bool(forbid_parallels)
        keras.utils.set_random_seed(self.seed)
        # one table for the four voices: voice v's token t is row v * (VOCAB + 1) + t
        self.note_embedding = layers.Embedding(NUM_VOICES * (VOCAB + 1), self.hidden_dim, name="note_embedding")
        self.position_embedding = layers.Embedding(WINDOW, self.hidden_dim, name="position_embedding")
        self.blocks = [TransformerBlock(self.hidden_dim, self.num_heads, self.dropout, seed=self.seed + 2 * i,
                                        causal=False, name=f"block_{i}") for i in range(self.num_layers)]
        self.final_norm = layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        self.head = layers.Dense(NUM_VOICES * VOCAB, name="head")
        self.vocabulary_mask = tf.constant(voice_vocabulary_mask())
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="masked_accuracy")
        self(tf.fill([1, NUM_VOICES, WINDOW], MASKED))
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def call(self, tokens, training=False):
        """Tokens ``[b, 4, 64]`` (0 rest, 1..VOCAB-1 pitches, MASKED) -> logits ``[b, 4, 64, VOCAB]``
        (a voice's tokens outside its range near OUT_OF_RANGE)."""
        tokens = tf.convert_to_tensor(tokens, tf.int32)
        rows = tokens + tf.reshape(tf.range(NUM_VOICES) * (VOCAB + 1), [1, NUM_VOICES, 1])
        x = tf.reduce_sum(self.note_embedding(rows), axis=1)  # [b, 64, hidden]
        x = x + self.position_embedding(tf.range(WINDOW))[None]
        for block in self.blocks:
            x, _, _ = block(x, training=training)
        logits = tf.reshape(self.head(self.final_norm(x)), [-1, WINDOW, NUM_VOICES, VOCAB])
        return tf.transpose(logits, [0, 2, 1, 3]) + self.vocabulary_mask[None, :, None, :]

    def log_probs(self, tokens):
        return tf.nn.log_softmax(self(tokens), axis=-1)

    # === Sampling ===
    def gibbs(self, tokens, known, temperature, seed, steps=GIBBS_STEPS):
        """Annealed blocked Gibbs from ``tokens`` ``[b, 4, 64]`` keeping ``known`` (bool, same shape); the free notes
        start masked. ``temperature`` [b] (0: the most likely note), ``seed`` [b] int32."""
        batch = tf.shape(tokens)[0]
        known = tf.reshape(known, [batch, NUM_VOICES * WINDOW])
        current = tf.reshape(tf.where(tf.reshape(known, tf.shape(tokens)), tokens, 0), [batch, -1])
        temperature = tf.reshape(tf.cast(temperature, tf.float32), [-1, 1, 1])

        def body(step, current):
            cells = NUM_VOICES * WINDOW
            resample = tf.logical_and(tf.logical_not(known), gibbs_uniforms(seed, step, [cells]) < share_at(step, steps))
            shown = tf.where(resample, tf.fill(tf.shape(current), MASKED), current)
            logits = tf.reshape(self(tf.reshape(shown, [batch, NUM_VOICES, WINDOW])), [batch, -1, VOCAB])
            if self.forbid_parallels:
                forbidden = parallel_motion(tokens_to_midi(tf.reshape(current, [batch, NUM_VOICES, WINDOW])))
                logits = logits + tf.where(tf.reshape(forbidden, [batch, -1, VOCAB]), PARALLEL_PENALTY, 0.0)
            gumbel = -tf.math.log(-tf.math.log(gibbs_uniforms(seed, step, [cells, VOCAB])))
            # Gumbel-max: argmax(logits / T + g) is argmax(logits + T g) for T > 0, and the most likely note at T = 0
            drawn = tf.argmax(logits + temperature * gumbel, axis=-1, output_type=tf.int32)
            return step + 1, tf.where(resample, drawn, current)

        _, current = tf.while_loop(lambda step, _: step < steps, body, [tf.constant(0), current])
        return tf.reshape(current, [batch, NUM_VOICES, WINDOW])

    def harmonize(self, soprano, temperature, seed):
        """Soprano MIDI ``[b, 64]`` -> voices MIDI ``[b, 4, 64]`` (row 0 is the soprano)."""
        soprano = midi_to_tokens(soprano)
        batch = tf.shape(soprano)[0]
        tokens = tf.concat([soprano[:, None], tf.zeros([batch, NUM_VOICES - 1, WINDOW], tf.int32)], axis=1)
        known = tf.concat([tf.ones([batch, 1, WINDOW], tf.bool), tf.zeros([batch, NUM_VOICES - 1, WINDOW], tf.bool)],
                          axis=1)
        return tokens_to_midi(self.gibbs(tokens, known, temperature, seed))

    def compose(self, temperature, seed):
        """Four voices MIDI ``[b, 4, 64]`` from nothing."""
        batch = tf.shape(seed)[0]
        tokens = tf.zeros([batch, NUM_VOICES, WINDOW], tf.int32)
        return tokens_to_midi(self.gibbs(tokens, tf.zeros_like(tokens, tf.bool), temperature, seed))

    # === Training ===
    def losses_of(self, batch, training):
        tokens, masked = batch["tokens"], tf.cast(batch["masked"], tf.bool)
        shown = tf.where(masked, tf.fill(tf.shape(tokens), MASKED), tokens)
        logits = self(shown, training=training)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(tokens, logits)  # [b, 4, 64]
        weight = tf.cast(masked, tf.float32)
        # Coconet's orderless-NADE objective: the mean over each example's masked notes, then over examples
        per_example = tf.reduce_sum(cross_entropy * weight, axis=[1, 2]) / tf.maximum(
            tf.reduce_sum(weight, axis=[1, 2]), 1.0)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tokens), tf.float32)
        return tf.reduce_mean(per_example), (correct, weight)

    def train_step(self, batch):
        from zoo.core.nn import distribute

        with tf.GradientTape() as tape:
            loss, accuracy = self.losses_of(batch, training=True)
            scaled = distribute.scale_loss(loss)
        gradients = distribute.clip_by_global_norm(tape.gradient(scaled, self.trainable_variables), 1.0)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._track(loss, accuracy)

    def test_step(self, batch):
        return self._track(*self.losses_of(batch, training=False))

    def _track(self, loss, accuracy):
        self.loss_tracker.update_state(loss)
        # pooled over every masked note (the weights): replicas' sums add up to one device's
        correct, weight = accuracy
        self.accuracy_tracker.update_state(correct, sample_weight=weight)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_layers": self.num_layers,
                "num_heads": self.num_heads, "dropout": self.dropout, "seed": self.seed,
                "forbid_parallels": self.forbid_parallels}
