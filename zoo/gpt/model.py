"""A byte-level GPT: a decoder-only Transformer over UTF-8 bytes, with a key/value cache.

Radford et al. (2018, 2019), "Improving Language Understanding by Generative
Pre-Training" / "Language Models are Unsupervised Multitask Learners"; the
layout follows nanoGPT (pre-norm blocks, learned positions, tied embeddings).

The vocabulary is the 256 byte values, so any UTF-8 text (Chinese included) can be
read and written with no tokenizer file. Three ways to run the same weights:

- ``call(tokens)``: logits for every position (training, scoring text);
- ``prefill(tokens, lengths)`` then ``decode_step(token, position, cache)``: the
  key/value cache, so each new byte costs one position, not a re-run of the prefix;
- ``generate(...)``: the whole decoding loop in the graph (a ``tf.while_loop``,
  which TFLite runs as its builtin ``WHILE``), with sampling noise as an input.

Every op converts to TFLite builtins: masks are built from ``range`` comparisons,
the cache is written with one-hot blends rather than scatters, and tensors stay
4-D or less.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo.core import distribute
from zoo.core.text_generation import VOCAB_SIZE, sample_token

GRADIENT_CLIP_NORM = 1.0  # of the global batch's gradient, as nanoGPT clips
NEG_INF = -1e9  # added to masked attention scores; finite, so no NaN from an all-masked row

# "tiny" keeps the tests fast; "nanogpt_cpu" is nanoGPT's CPU recipe (for the
# benchmark); "base" is the committed model.
PRESETS = {
    "tiny": {"num_layers": 2, "num_heads": 2, "hidden_dim": 32, "context_length": 32, "dropout": 0.0},
    "nanogpt_cpu": {"num_layers": 4, "num_heads": 4, "hidden_dim": 128, "context_length": 64, "dropout": 0.0},
    "base": {"num_layers": 6, "num_heads": 6, "hidden_dim": 192, "context_length": 128, "dropout": 0.1},
}


def causal_mask(length):
    """``[length, length]`` additive mask: 0 where key <= query, NEG_INF after."""
    positions = tf.range(length)
    allowed = tf.expand_dims(positions, 0) <= tf.expand_dims(positions, 1)
    return (1.0 - tf.cast(allowed, tf.float32)) * NEG_INF


@keras.saving.register_keras_serializable(package="zoo")
class TransformerBlock(layers.Layer):
    """Pre-norm block: ``x + attention(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, hidden_dim, num_heads, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim {hidden_dim} must be divisible by num_heads {num_heads}")
        self.hidden_dim, self.num_heads, self.dropout = int(hidden_dim), int(num_heads), float(dropout)
        self.head_dim = self.hidden_dim // self.num_heads
        self.attention_norm = layers.LayerNormalization(epsilon=1e-5, name="attention_norm")
        self.qkv = layers.Dense(3 * self.hidden_dim, name="qkv")
        self.attention_output = layers.Dense(self.hidden_dim, name="attention_output")
        self.mlp_norm = layers.LayerNormalization(epsilon=1e-5, name="mlp_norm")
        self.mlp_hidden = layers.Dense(4 * self.hidden_dim, activation="gelu", name="mlp_hidden")
        self.mlp_output = layers.Dense(self.hidden_dim, name="mlp_output")
        self.attention_dropout = layers.Dropout(self.dropout, seed=seed)
        self.mlp_dropout = layers.Dropout(self.dropout, seed=None if seed is None else seed + 1)

    def build(self, input_shape):
        d = self.hidden_dim
        self.attention_norm.build(input_shape)
        self.qkv.build(input_shape)
        self.attention_output.build((None, None, d))
        self.mlp_norm.build(input_shape)
        self.mlp_hidden.build(input_shape)
        self.mlp_output.build((None, None, 4 * d))
        self.built = True

    def _heads(self, x):
        """``[batch, time, hidden]`` -> ``[batch, heads, time, head_dim]``."""
        batch, time = tf.shape(x)[0], tf.shape(x)[1]
        return tf.transpose(tf.reshape(x, [batch, time, self.num_heads, self.head_dim]), [0, 2, 1, 3])

    def _merge_heads(self, x):
        batch, time = tf.shape(x)[0], tf.shape(x)[2]
        return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [batch, time, self.hidden_dim])

    def _attend(self, query, keys, values, mask):
        scores = tf.matmul(query, keys, transpose_b=True) * (1.0 / float(np.sqrt(self.head_dim))) + mask
        return tf.matmul(tf.nn.softmax(scores, axis=-1), values)

    def _mlp(self, x, training):
        return x + self.mlp_dropout(self.mlp_output(self.mlp_hidden(self.mlp_norm(x))), training=training)

    def call(self, x, training=False):
        """Full causal attention over ``x [batch, time, hidden]``; returns ``(x, keys, values)``.

        ``keys``/``values`` are ``[batch, heads, time, head_dim]``, what the cache stores.
        """
        query, keys, values = tf.split(self.qkv(self.attention_norm(x)), 3, axis=-1)
        query, keys, values = self._heads(query), self._heads(keys), self._heads(values)
        attended = self._attend(query, keys, values, causal_mask(tf.shape(x)[1]))
        x = x + self.attention_dropout(self.attention_output(self._merge_heads(attended)), training=training)
        return self._mlp(x, training), keys, values

    def step(self, x, position, cached_keys, cached_values):
        """One new position per row: ``x [batch, 1, hidden]`` at ``position [batch]``.

        Writes this position's key and value into the caches ``[batch, heads,
        context, head_dim]`` and attends to positions ``<= position``.
        """
        query, keys, values = tf.split(self.qkv(self.attention_norm(x)), 3, axis=-1)
        query, keys, values = self._heads(query), self._heads(keys), self._heads(values)
        context = tf.shape(cached_keys)[2]
        write = tf.reshape(tf.one_hot(position, context, dtype=tf.float32), [-1, 1, context, 1])
        cached_keys = cached_keys * (1.0 - write) + keys * write
        cached_values = cached_values * (1.0 - write) + values * write
        visible = tf.expand_dims(tf.range(context), 0) <= tf.expand_dims(position, 1)  # [batch, context]
        mask = tf.reshape((1.0 - tf.cast(visible, tf.float32)) * NEG_INF, [-1, 1, 1, context])
        attended = self._attend(query, cached_keys, cached_values, mask)
        x = x + self.attention_output(self._merge_heads(attended))
        return self._mlp(x, False), cached_keys, cached_values

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="zoo")
class GPT(keras.Model):
    """Byte-level GPT: tokens ``int32 [batch, time]`` (bytes 0-255) -> logits ``[batch, time, 256]``.

    Args:
        num_layers, num_heads, hidden_dim: the Transformer's size.
        context_length: the most positions it attends over (learned position embeddings).
        dropout: on embeddings, attention and MLP outputs, during training only.
        seed: seeds the initial weights and dropout.
    """

    def __init__(self, num_layers=4, num_heads=4, hidden_dim=128, context_length=64, dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.num_layers, self.num_heads = int(num_layers), int(num_heads)
        self.hidden_dim, self.context_length = int(hidden_dim), int(context_length)
        self.dropout = float(dropout)
        self.seed = seed
        self.head_dim = self.hidden_dim // self.num_heads
        # === Layers ===
        init = keras.initializers.RandomNormal(stddev=0.02, seed=seed)
        self.token_embedding = layers.Embedding(VOCAB_SIZE, self.hidden_dim, embeddings_initializer=init,
                                                name="token_embedding")
        self.position_embedding = layers.Embedding(
            self.context_length, self.hidden_dim, name="position_embedding",
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02, seed=None if seed is None else seed + 1))
        self.embedding_dropout = layers.Dropout(self.dropout, seed=seed)
        self.blocks = [
            TransformerBlock(self.hidden_dim, self.num_heads, self.dropout,
                             seed=None if seed is None else seed + 10 * (i + 1), name=f"block_{i}")
            for i in range(self.num_layers)
        ]
        self.final_norm = layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        if seed is not None:
            self._seed_dense_layers(seed)
        self.build((None, None))

    def _seed_dense_layers(self, seed):
        # Keras' default Glorot initializers are unseeded; seed every Dense so the
        # same --seed gives the same initial weights.
        for i, block in enumerate(self.blocks):
            for j, dense in enumerate((block.qkv, block.attention_output, block.mlp_hidden, block.mlp_output)):
                dense.kernel_initializer = keras.initializers.RandomNormal(stddev=0.02, seed=seed + 100 * i + j)

    def build(self, input_shape):
        self.token_embedding.build((None, None))
        self.position_embedding.build((None, None))
        for block in self.blocks:
            block.build((None, None, self.hidden_dim))
        self.final_norm.build((None, None, self.hidden_dim))
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker]

    @property
    def cache_shape(self):
        """``[batch, 2 * layers * heads, context, head_dim]``: each layer's keys, then its values."""
        return [None, 2 * self.num_layers * self.num_heads, self.context_length, self.head_dim]

    # --- forward passes --------------------------------------------------------------------------

    def _embed(self, tokens, positions, training=False):
        x = self.token_embedding(tokens) + self.position_embedding(positions)
        return self.embedding_dropout(x, training=training)

    def _head(self, x):
        # weight tying: the output projection is the token embedding, transposed
        return tf.matmul(self.final_norm(x), self.token_embedding.embeddings, transpose_b=True)

    def _forward(self, tokens, training=False):
        tokens = tf.convert_to_tensor(tokens)
        x = self._embed(tokens, tf.expand_dims(tf.range(tf.shape(tokens)[1]), 0), training)
        keys, values = [], []
        for block in self.blocks:
            x, k, v = block(x, training=training)
            keys.append(k)
            values.append(v)
        return self._head(x), keys, values

    def call(self, tokens, training=False):
        return self._forward(tokens, training)[0]

    def logits(self, tokens):
        """Signature ``logits``: ``tokens [batch, time]`` -> ``{"logits": [batch, time, 256]}``."""
        return {"logits": self(tokens)}

    def prefill(self, tokens, lengths):
        """Signature ``prefill``: run the prompts, fill the cache.

        Args:
            tokens: ``int32 [batch, time]``, prompts right-padded to a common length
                (1 <= time <= context); padding never influences the real bytes
                (attention is causal) and its cache entries are overwritten later.
            lengths: ``int32 [batch]``, each prompt's length (1..time).

        Returns:
            ``logits [batch, 256]`` for the byte after each prompt, and ``cache``.
        """
        logits, keys, values = self._forward(tokens)
        time = tf.shape(tokens)[1]
        last = tf.one_hot(lengths - 1, time, dtype=tf.float32)  # [batch, time]
        next_logits = tf.reduce_sum(logits * tf.expand_dims(last, -1), axis=1)
        pad = [[0, 0], [0, 0], [0, self.context_length - time], [0, 0]]
        cache = tf.concat([tf.pad(t, pad) for pair in zip(keys, values) for t in pair], axis=1)
        return {"logits": next_logits, "cache": cache}

    def decode_step(self, token, position, cache):
        """Signature ``decode_step``: one byte per row through the cache.

        Args:
            token: ``int32 [batch]``, the byte at ``position``.
            position: ``int32 [batch]``, 0 <= position < context.
            cache: ``[batch, 2 * layers * heads, context, head_dim]`` from ``prefill``
                or the previous step.

        Returns:
            ``logits [batch, 256]`` for the byte at ``position + 1``, and the updated ``cache``.
        """
        x = self._embed(tf.expand_dims(token, 1), tf.expand_dims(position, 1))
        h = self.num_heads
        updated = []
        for i, block in enumerate(self.blocks):
            keys = cache[:, 2 * i * h : (2 * i + 1) * h]
            values = cache[:, (2 * i + 1) * h : (2 * i + 2) * h]
            x, keys, values = block.step(x, position, keys, values)
            updated += [keys, values]
        return {"logits": self._head(x)[:, 0, :], "cache": tf.concat(updated, axis=1)}

    def generate(self, tokens, lengths, max_new_tokens, temperature, top_k, top_p, noise):
        """Signature ``generate``: prefill, then up to ``noise.shape[1]`` decode steps, in the graph.

        Args:
            tokens, lengths: right-padded prompts, as for :meth:`prefill`.
            max_new_tokens: ``int32 [batch]``, bytes to generate per row; a row also
                stops when it reaches the context length.
            temperature: ``float32 [batch]``; 0 picks the most likely byte (greedy).
            top_k: ``int32 [batch]``; sample among the k most likely bytes (0: all).
            top_p: ``float32 [batch]`` in (0, 1]; sample among the most likely bytes
                whose probabilities sum to at least top_p (1: all).
            noise: ``float32 [batch, steps]``, uniform in [0, 1): the randomness of
                step i is ``noise[:, i]``; ``steps`` bounds the generated length.

        Returns:
            ``tokens int32 [batch, steps]`` (0 after a row stops) and
            ``num_tokens int32 [batch]``, how many of them each row generated.
        """
        steps = tf.shape(noise)[1]
        limit = tf.minimum(tf.minimum(max_new_tokens, self.context_length - lengths), steps)  # [batch]
        first = self.prefill(tokens, lengths)
        batch = tf.shape(noise)[0]

        def body(i, logits, cache, output):
            token = sample_token(logits, temperature, top_k, top_p, noise[:, i])
            token = tf.where(i < limit, token, 0)
            output = output + tf.expand_dims(token, 1) * tf.expand_dims(tf.one_hot(i, steps, dtype=tf.int32), 0)
            position = tf.minimum(lengths + i, self.context_length - 1)  # finished rows: harmless, unused
            step = self.decode_step(token, position, cache)
            return i + 1, step["logits"], step["cache"], output

        def cond(i, logits, cache, output):
            return i < tf.reduce_max(limit)

        _, _, _, output = tf.while_loop(
            cond, body, [tf.constant(0), first["logits"], first["cache"], tf.zeros([batch, steps], tf.int32)])
        return {"tokens": output, "num_tokens": tf.maximum(limit, 0)}

    # --- training --------------------------------------------------------------------------------

    def byte_losses(self, inputs, targets, training=False):
        """Cross-entropy of each next byte, ``[batch, time]``, in nats."""
        logits = self(inputs, training=training)
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)

    def train_step(self, data):
        inputs, targets = data
        with tf.GradientTape() as tape:
            losses = self.byte_losses(inputs, targets, training=True)
            scaled = distribute.scale_loss(tf.reduce_mean(losses))
        gradients = tape.gradient(scaled, self.trainable_variables)
        gradients = distribute.clip_by_global_norm(gradients, GRADIENT_CLIP_NORM)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        self.loss_tracker.update_state(losses)  # a mean over bytes, whatever the batch split
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        inputs, targets = data
        self.loss_tracker.update_state(self.byte_losses(inputs, targets))
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        return {**super().get_config(), "num_layers": self.num_layers, "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim, "context_length": self.context_length, "dropout": self.dropout,
                "seed": self.seed}
