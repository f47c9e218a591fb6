"""A decoder-only Transformer language model with a key/value cache, exported builtin-only.

Radford et al. (2018, 2019), "Improving Language Understanding by Generative
Pre-Training" / "Language Models are Unsupervised Multitask Learners": pre-norm
blocks, learned positions, tied input/output embeddings. The zoo's byte-level GPT
(``zoo/gpt``) trains one; ``python -m zoo convert keras-hub`` fills one with a
KerasHub GPT-2's weights. Three ways to run the same weights:

- ``call(tokens)``: logits for every position (training, scoring text);
- ``prefill(tokens, lengths)`` then ``decode_step(token, position, cache)``: the
  key/value cache, so each new token costs one position, not a re-run of the prefix;
  ``decode_step_kv`` is the same step for a cache the caller keeps (it reads the cache and
  returns only the position's new keys and values: the phone app's fast path);
- ``generate(...)``: the whole decoding loop in the graph (two nested ``tf.while_loop``s,
  which TFLite runs as its builtin ``WHILE``: the outer one writes 16 positions into the cache
  at once, so the cache is copied once per 16 tokens, not at every one), with sampling noise
  as an input.

Every op converts to TFLite builtins: masks are built from ``range`` comparisons,
the cache is written with a broadcasting select rather than scatters, and tensors stay
4-D or less. :func:`decoder_signatures` is the export of all of it, with the
in-graph input checks TF Serving clients get.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo.core.nn import distribute
from zoo.core.runtime.signature import Signature
from zoo.core.nn.text_generation import SAMPLING_RANGES, checked_sampling, sample_token, sampling_specs

GRADIENT_CLIP_NORM = 1.0  # of the global batch's gradient, as nanoGPT clips
NEG_INF = -1e9  # added to masked attention scores; finite, so no NaN from an all-masked row
GENERATE_BLOCK = 16  # positions the in-graph loop writes into its cache at once (see DecoderLM.generate)
ACTIVATIONS = ("gelu", "gelu_approximate", "relu")  # gelu: the zoo's GPT; gelu_approximate: GPT-2 (tanh form)


def causal_mask(length):
    """``[length, length]`` additive mask: 0 where key <= query, NEG_INF after."""
    positions = tf.range(length)
    allowed = tf.expand_dims(positions, 0) <= tf.expand_dims(positions, 1)
    return (1.0 - tf.cast(allowed, tf.float32)) * NEG_INF


def slots_before(limit, size):
    """``[rows, 1, 1, size]`` additive attention mask over a cache of ``size`` slots: 0 for each row's slots
    before ``limit [rows]`` (the ones to read), NEG_INF from it on."""
    readable = tf.range(size)[None, :] < limit[:, None]
    return tf.reshape((1.0 - tf.cast(readable, tf.float32)) * NEG_INF, [-1, 1, 1, size])


def position_in_cache(position, context):
    """``[batch, 1, context, 1]`` booleans: True at each row's ``position``, for writing a key/value cache
    ``[batch, channels, context, head_dim]`` with one broadcasting select (SELECT_V2 in TFLite)."""
    return tf.reshape(tf.equal(tf.range(context)[None, :], position[:, None]), [-1, 1, context, 1])


def _with_shape(tensor, shape):
    """``tensor``, its static shape set to ``shape`` (no op in the graph; ``tf.ensure_shape`` would be a Flex op)."""
    tensor.set_shape(shape)
    return tensor


def _activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    if name == "gelu_approximate":
        return lambda x: keras.activations.gelu(x, approximate=True)
    return name


@keras.saving.register_keras_serializable(package="zoo")
class TransformerBlock(layers.Layer):
    """Pre-norm block: ``x + attention(norm(x))``, then ``x + mlp(norm(x))``.

    ``intermediate_dim``: the MLP's width (default 4 x hidden); ``activation``: one of :data:`ACTIVATIONS`;
    ``causal``: each position sees only those before it (a decoder); False: every position sees all (an
    encoder, e.g. the chorale model that fills in masked notes).
    """

    def __init__(self, hidden_dim, num_heads, dropout=0.0, seed=None, intermediate_dim=None, activation="gelu",
                 causal=True, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim {hidden_dim} must be divisible by num_heads {num_heads}")
        self.hidden_dim, self.num_heads, self.dropout = int(hidden_dim), int(num_heads), float(dropout)
        self.intermediate_dim = int(intermediate_dim or 4 * self.hidden_dim)
        self.activation = activation
        self.causal = bool(causal)
        self.head_dim = self.hidden_dim // self.num_heads
        self.attention_norm = layers.LayerNormalization(epsilon=1e-5, name="attention_norm")
        self.qkv = layers.Dense(3 * self.hidden_dim, name="qkv")
        self.attention_output = layers.Dense(self.hidden_dim, name="attention_output")
        self.mlp_norm = layers.LayerNormalization(epsilon=1e-5, name="mlp_norm")
        self.mlp_hidden = layers.Dense(self.intermediate_dim, activation=_activation(activation), name="mlp_hidden")
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
        self.mlp_output.build((None, None, self.intermediate_dim))
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
        """Attention over ``x [batch, time, hidden]`` (causal unless ``causal=False``); returns ``(x, keys, values)``.

        ``keys``/``values`` are ``[batch, heads, time, head_dim]``, what the cache stores.
        """
        x, keys, values = self.self_attention(x, training)
        return self._mlp(x, training), keys, values

    def self_attention(self, x, training=False):
        """The block's first half: ``(x + attention(norm(x)), keys, values)``."""
        query, keys, values = tf.split(self.qkv(self.attention_norm(x)), 3, axis=-1)
        query, keys, values = self._heads(query), self._heads(keys), self._heads(values)
        attended = self._attend(query, keys, values, causal_mask(tf.shape(x)[1]) if self.causal else 0.0)
        x = x + self.attention_dropout(self.attention_output(self._merge_heads(attended)), training=training)
        return x, keys, values

    # One position per row, as a 2-D [batch, hidden] tensor: its Dense layers convert to one FULLY_CONNECTED
    # each and its reshapes to constant shapes, where a [batch, 1, hidden] one costs a dozen shape ops per Dense
    # (SHAPE, GATHER, REDUCE_PROD, PACK) that an app pays at every byte.
    def _step_heads(self, x):
        """``[batch, hidden]`` -> ``[batch, heads, 1, head_dim]``."""
        return tf.reshape(x, [-1, self.num_heads, 1, self.head_dim])

    def _step_merge_heads(self, x):
        """``[batch, heads, 1, head_dim]`` -> ``[batch, hidden]``."""
        return tf.reshape(x, [-1, self.hidden_dim])

    def _step_query_keys_values(self, x):
        """``x [batch, hidden]`` -> its query, key and value, each ``[batch, heads, 1, head_dim]``."""
        query, keys, values = tf.split(self.qkv(self.attention_norm(x)), 3, axis=-1)
        return self._step_heads(query), self._step_heads(keys), self._step_heads(values)

    def self_attention_step(self, x, position, cached_keys, cached_values):
        """One new position per row, ``x [batch, hidden]`` at ``position [batch]``, through the attention only.

        Writes this position's key and value into the caches ``[batch, heads, context, head_dim]`` and attends
        to positions ``<= position``; returns ``(x, cached_keys, cached_values)`` (the encoder-decoder's step).
        """
        query, keys, values = self._step_query_keys_values(x)
        context = cached_keys.shape[2] or tf.shape(cached_keys)[2]
        # one select over the cache (a broadcasting SELECT_V2), not a one-hot blend's four passes
        write = position_in_cache(position, context)
        cached_keys = tf.where(write, keys, cached_keys)
        cached_values = tf.where(write, values, cached_values)
        attended = self._attend(query, cached_keys, cached_values, slots_before(position + 1, context))
        return x + self.attention_output(self._step_merge_heads(attended)), cached_keys, cached_values

    def step_on_kept_cache(self, x, mask, cached_keys, cached_values, recent=None):
        """One new position per row, ``x [batch, hidden]``, attending to a cache it only reads.

        ``cached_keys``/``cached_values`` ``[batch, heads, context, head_dim]`` hold the earlier positions;
        ``mask [batch, 1, 1, context]`` (0 or NEG_INF) says which of them to read. ``recent``: optional
        ``(keys, values, mask)``, a second, smaller cache ``[batch, heads, slots, head_dim]`` of the positions
        after the first one's and before this one, with its own mask ``[1, 1, 1, slots]`` (the in-graph loop's
        earlier steps of its block). The new position attends to itself apart, so nothing is written into (or
        copied out of) the caches: the caller keeps them and writes the returned ``keys``/``values
        [batch, heads, head_dim]`` at the position. Returns ``(x, keys, values)``.
        """
        query, keys, values = self._step_query_keys_values(x)
        scale = 1.0 / float(np.sqrt(self.head_dim))
        caches = [(cached_keys, cached_values, mask)] + ([recent] if recent is not None else [])
        scores = [tf.matmul(query, k, transpose_b=True) * scale + m for k, _, m in caches]  # [batch, heads, 1, n]
        own_score = tf.reduce_sum(query * keys, axis=-1, keepdims=True) * scale  # [batch, heads, 1, 1]
        sizes = [k.shape[2] or tf.shape(k)[2] for k, _, _ in caches]
        weights = tf.nn.softmax(tf.concat([*scores, own_score], axis=-1), axis=-1)
        attended, start = weights[..., -1:] * values, 0
        for (_, v, _), size in zip(caches, sizes):
            attended = attended + tf.matmul(weights[..., start:start + size], v)
            start = start + size
        x = x + self.attention_output(self._step_merge_heads(attended))
        heads = [-1, self.num_heads, self.head_dim]
        return self._mlp(x, False), tf.reshape(keys, heads), tf.reshape(values, heads)

    def get_config(self):
        config = {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                  "dropout": self.dropout}
        if self.intermediate_dim != 4 * self.hidden_dim or self.activation != "gelu":  # older files lack them
            config.update(intermediate_dim=self.intermediate_dim, activation=self.activation)
        if not self.causal:
            config["causal"] = False
        return config


@keras.saving.register_keras_serializable(package="zoo")
class DecoderLM(keras.Model):
    """Decoder-only Transformer: tokens ``int32 [batch, time]`` -> logits ``[batch, time, vocabulary]``.

    Args:
        num_layers, num_heads, hidden_dim: the Transformer's size.
        context_length: the most positions it attends over (learned position embeddings).
        dropout: on embeddings, attention and MLP outputs, during training only.
        seed: seeds the initial weights and dropout.
        vocabulary_size: 256 for bytes; a tokenizer's size otherwise.
        intermediate_dim: the MLP's width (default 4 x hidden_dim).
        activation: the MLP's, one of :data:`ACTIVATIONS`.
        stop_token: a token id that ends a row's generation (not returned), e.g.
            GPT-2's ``<|endoftext|>``; None: rows run to ``max_new_tokens``.
    """

    def __init__(self, num_layers=4, num_heads=4, hidden_dim=128, context_length=64, dropout=0.0, seed=None,
                 vocabulary_size=256, intermediate_dim=None, activation="gelu", stop_token=None, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.num_layers, self.num_heads = int(num_layers), int(num_heads)
        self.hidden_dim, self.context_length = int(hidden_dim), int(context_length)
        self.dropout = float(dropout)
        self.seed = seed
        self.vocabulary_size = int(vocabulary_size)
        self.intermediate_dim = int(intermediate_dim or 4 * self.hidden_dim)
        self.activation = activation
        self.stop_token = None if stop_token is None else int(stop_token)
        self.head_dim = self.hidden_dim // self.num_heads
        # === Layers ===
        init = keras.initializers.RandomNormal(stddev=0.02, seed=seed)
        self.token_embedding = layers.Embedding(self.vocabulary_size, self.hidden_dim, embeddings_initializer=init,
                                                name="token_embedding")
        self.position_embedding = layers.Embedding(
            self.context_length, self.hidden_dim, name="position_embedding",
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02, seed=None if seed is None else seed + 1))
        self.embedding_dropout = layers.Dropout(self.dropout, seed=seed)
        self.blocks = [
            TransformerBlock(self.hidden_dim, self.num_heads, self.dropout,
                             seed=None if seed is None else seed + 10 * (i + 1), name=f"block_{i}",
                             intermediate_dim=self.intermediate_dim, activation=activation)
            for i in range(self.num_layers)
        ]
        self.final_norm = layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        # the training step's: state must exist before build()
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
        """Signature ``logits``: ``tokens [batch, time]`` -> ``{"logits": [batch, time, vocabulary]}``."""
        return {"logits": self(tokens)}

    def prefill(self, tokens, lengths):
        """Signature ``prefill``: run the prompts, fill the cache.

        Args:
            tokens: ``int32 [batch, time]``, prompts right-padded to a common length
                (1 <= time <= context); padding never influences the real tokens
                (attention is causal) and its cache entries are overwritten later.
            lengths: ``int32 [batch]``, each prompt's length (1..time).

        Returns:
            ``logits [batch, vocabulary]`` for the token after each prompt, and ``cache``.
        """
        logits, keys, values = self._forward(tokens)
        time = tf.shape(tokens)[1]
        last = tf.one_hot(lengths - 1, time, dtype=tf.float32)  # [batch, time]
        next_logits = tf.reduce_sum(logits * tf.expand_dims(last, -1), axis=1)
        pad = [[0, 0], [0, 0], [0, self.context_length - time], [0, 0]]
        cache = tf.concat([tf.pad(t, pad) for pair in zip(keys, values) for t in pair], axis=1)
        return {"logits": next_logits, "cache": cache}

    def decode_step(self, token, position, cache):
        """Signature ``decode_step``: one token per row through the cache.

        Args:
            token: ``int32 [batch]``, the token at ``position``.
            position: ``int32 [batch]``, 0 <= position < context.
            cache: ``[batch, 2 * layers * heads, context, head_dim]`` from ``prefill``
                or the previous step.

        Returns:
            ``logits [batch, vocabulary]`` for the token at ``position + 1``, and the updated ``cache``.
        """
        h = self.num_heads
        step = self.decode_step_kv(token, position, *[cache[:, i * h:(i + 1) * h] for i in range(2 * self.num_layers)])
        # each layer's keys, then its values, as in the cache: [batch, 2 * layers * heads, 1, head_dim]
        new = tf.reshape(tf.stack([step["keys"], step["values"]], axis=2), [-1, 2 * self.num_layers * h, 1, self.head_dim])
        write = position_in_cache(position, self.context_length)
        return {"logits": step["logits"], "cache": tf.where(write, new, cache)}  # one select over the cache

    def decode_step_kv(self, token, position, *layer_caches):
        """Signature ``decode_step_kv``: :meth:`decode_step` for a cache the caller keeps and writes itself.

        Args:
            token, position: as for :meth:`decode_step`.
            layer_caches: ``keys_0, values_0, keys_1, ...``, each ``[batch, heads, context, head_dim]``:
                layer i's keys and values at the positions before ``position`` (later ones are not read).

        Returns:
            ``logits [batch, vocabulary]``, and ``keys``/``values [batch, layers, heads, head_dim]``: this
            position's, for the caller to write at ``position`` in each layer's cache. The cache is only
            read, so an app that keeps it in the runtime's own input buffers copies no cache at all per token
            (``zoo/core/apps/text_sampling.py``), where ``decode_step`` passes the whole cache in and out.
        """
        x = self._embed(token, position)  # [batch, hidden]: see TransformerBlock._step_heads
        mask = slots_before(position, self.context_length)
        keys, values = [], []
        for i, block in enumerate(self.blocks):
            x, k, v = block.step_on_kept_cache(x, mask, layer_caches[2 * i], layer_caches[2 * i + 1])
            keys.append(k)
            values.append(v)
        return {"logits": self._head(x), "keys": tf.stack(keys, axis=1), "values": tf.stack(values, axis=1)}

    def generate(self, tokens, lengths, max_new_tokens, temperature, top_k, top_p, noise):
        """Signature ``generate``: prefill, then up to ``noise.shape[1]`` decode steps, in the graph.

        Args:
            tokens, lengths: right-padded prompts, as for :meth:`prefill`.
            max_new_tokens: ``int32 [batch]``, tokens to generate per row; a row also
                stops when it reaches the context length, or at ``stop_token``.
            temperature: ``float32 [batch]``; 0 picks the most likely token (greedy).
            top_k: ``int32 [batch]``; sample among the k most likely tokens (0: all).
            top_p: ``float32 [batch]`` in (0, 1]; sample among the most likely tokens
                whose probabilities sum to at least top_p (1: all).
            noise: ``float32 [batch, steps]``, uniform in [0, 1): the randomness of
                step i is ``noise[:, i]``; ``steps`` bounds the generated length.

        Returns:
            ``tokens int32 [batch, steps]`` (0 after a row stops) and
            ``num_tokens int32 [batch]``, how many of them each row generated.
        """
        context, block, layers_ = self.context_length, GENERATE_BLOCK, len(self.blocks)
        steps = tf.shape(noise)[1]
        limit = tf.minimum(tf.minimum(max_new_tokens, context - lengths), steps)  # [batch]
        first = self.prefill(tokens, lengths)
        batch = tf.shape(noise)[0]
        stop = -1 if self.stop_token is None else self.stop_token
        h, slots = self.num_heads, tf.range(context)[None, :]
        # Every shape inside the loops is fixed by the model (a row never makes more than `context` tokens), so
        # TFLite runs its WHILEs without resizing: noise and tokens are `context` wide in the loop.
        if noise.shape[1] != context:  # the exported signature's noise is `context` wide already
            noise = tf.pad(noise, [[0, 0], [0, tf.maximum(context - steps, 0)]])[:, :context]
        cache_shape, recent_shape = [None, h, context, self.head_dim], [None, h, block, self.head_dim]
        caches = [_with_shape(first["cache"][:, i * h:(i + 1) * h], cache_shape) for i in range(2 * layers_)]
        block_slots = tf.range(block)

        # Two loops. TFLite's WHILE copies every tensor its body changes at every iteration, and the cache is
        # 1.2 MB for the zoo's GPT: the outer loop carries it and writes a block of `block` positions at once;
        # the inner loop makes those positions one by one, keeping their keys and values in a small cache of
        # its own and only reading the big one, which it does not change (so it is not copied; the speed:
        # benchmarks/gpt_decode_profile.py). Unrolling the steps instead repeats every layer in the graph, and
        # LiteRT's XNNPACK packs each layer's weights once per use: a probe of 4 unrolled steps was slower.
        # Every loop variable keeps its static shape (`_with_shape`): a cache of unknown width made the body slice
        # the attention weights at sizes read with SHAPE at run time, so LiteRT re-prepared every op after them at
        # every byte (13-27% slower on one thread: BENCHMARKS.md, benchmarks/gpt_decode_profile.py).
        def block_of_steps(i, logits, output, count, running, *caches):
            mask = slots_before(lengths + i, context)

            def step(j, logits, output, count, running, *recent):
                index = i + j
                token = sample_token(logits, temperature, top_k, top_p,
                                     tf.gather(noise, tf.minimum(index, context - 1), axis=1))
                running = tf.logical_and(tf.logical_and(running, index < limit), tf.not_equal(token, stop))
                token = tf.where(running, token, 0)
                output = output + tf.expand_dims(token, 1) * tf.one_hot(index, context, dtype=tf.int32)[None, :]
                count = count + tf.cast(running, tf.int32)
                position = tf.minimum(lengths + index, context - 1)  # finished rows: harmless, unused
                x = self._embed(token, position)
                recent_mask = slots_before(tf.reshape(j, [1]), block)
                write = tf.reshape(tf.equal(block_slots, j), [1, 1, block, 1])
                new_recent = []
                for layer, decoder_block in enumerate(self.blocks):
                    keys, values = recent[2 * layer], recent[2 * layer + 1]
                    x, k, v = decoder_block.step_on_kept_cache(x, mask, caches[2 * layer], caches[2 * layer + 1],
                                                               (keys, values, recent_mask))
                    new_recent += [_with_shape(tf.where(write, new[:, :, None], old), recent_shape)
                                   for new, old in ((k, keys), (v, values))]
                return (j + 1, self._head(x), output, count, running, *new_recent)

            def more_steps(j, logits, output, count, running, *recent):
                return tf.logical_and(tf.logical_and(j < block, i + j < tf.reduce_max(limit)), tf.reduce_any(running))

            done = tf.while_loop(more_steps, step, [tf.constant(0), logits, output, count, running,
                                                    *[tf.zeros_like(cache[:, :, :block]) for cache in caches]])
            made, logits, output, count, running, recent = done[0], *done[1:5], done[5:]
            # [batch, 1, context, block]: where each of the block's positions goes, for the rows still writing
            placement = tf.cast(tf.logical_and(
                tf.equal(slots[:, :, None], (lengths[:, None] + i + block_slots[None, :])[:, None, :]),
                (i + block_slots[None, :] < limit[:, None])[:, None, :]), tf.float32)[:, None]
            written = tf.reduce_max(placement, axis=3, keepdims=True) > 0  # [batch, 1, context, 1]
            caches = [_with_shape(tf.where(written, tf.matmul(placement, new), old), cache_shape)
                      for new, old in zip(recent, caches)]
            return (i + made, logits, output, count, running, *caches)

        def more_blocks(i, logits, output, count, running, *caches):
            return tf.logical_and(i < tf.reduce_max(limit), tf.reduce_any(running))

        loop = tf.while_loop(
            more_blocks, block_of_steps, [tf.constant(0), first["logits"], tf.zeros([batch, context], tf.int32),
                                          tf.zeros([batch], tf.int32), tf.ones([batch], tf.bool), *caches])
        output, count = loop[2], loop[3]
        output = tf.pad(output, [[0, 0], [0, tf.maximum(steps - context, 0)]])[:, :steps]
        return {"tokens": output, "num_tokens": count}

    # --- training: next-token cross-entropy (the zoo's GPT; a converted GPT-2 fine-tuned) --------------

    @property
    def metrics(self):
        return [self.loss_tracker]

    def token_losses(self, inputs, targets, training=False):
        """Cross-entropy of each next token, ``[batch, time]``, in nats."""
        logits = self(inputs, training=training)
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)

    def train_step(self, data):
        inputs, targets = data
        with tf.GradientTape() as tape:
            losses = self.token_losses(inputs, targets, training=True)
            scaled = distribute.scale_loss(tf.reduce_mean(losses))
        gradients = tape.gradient(scaled, self.trainable_variables)
        gradients = distribute.clip_by_global_norm(gradients, GRADIENT_CLIP_NORM)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        self.loss_tracker.update_state(losses)  # a mean over tokens, whatever the batch split
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        inputs, targets = data
        self.loss_tracker.update_state(self.token_losses(inputs, targets))
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        config = {**super().get_config(), "num_layers": self.num_layers, "num_heads": self.num_heads,
                  "hidden_dim": self.hidden_dim, "context_length": self.context_length, "dropout": self.dropout,
                  "seed": self.seed}
        extra = {"vocabulary_size": (self.vocabulary_size, 256),
                 "intermediate_dim": (self.intermediate_dim, 4 * self.hidden_dim),
                 "activation": (self.activation, "gelu"), "stop_token": (self.stop_token, None)}
        # only what differs from the byte-level GPT's defaults: older files lack these keys
        config.update({key: value for key, (value, default) in extra.items() if value != default})
        return config


# --- export --------------------------------------------------------------------------------------

def checked_inputs(model, tokens=None, lengths=None, token=None, position=None):
    """The inputs, after in-graph asserts that give TF Serving clients a clear error.

    The TFLite converter drops asserts, so the manifest records the same limits
    (``range``, ``max_shape``) and every runner checks them before a call.
    """
    context, vocabulary = model.context_length, model.vocabulary_size
    token_message = ("token values must be bytes, 0..255" if vocabulary == 256
                     else f"token ids must be in 0..{vocabulary - 1} (the vocabulary)")
    checks = []
    if tokens is not None:
        checks += [tf.debugging.assert_less_equal(tf.shape(tokens)[1], context,
                                                  message=f"tokens are longer than the model's context of {context}"),
                   tf.debugging.assert_non_negative(tokens, message=token_message),
                   tf.debugging.assert_less(tokens, vocabulary, message=token_message)]
    if lengths is not None:
        checks += [tf.debugging.assert_positive(lengths, message="lengths must be at least 1 (an empty prompt)"),
                   tf.debugging.assert_less_equal(lengths, tf.shape(tokens)[1],
                                                  message="lengths must not exceed the tokens' time dimension")]
    if token is not None:
        checks += [tf.debugging.assert_non_negative(token, message=token_message),
                   tf.debugging.assert_less(token, vocabulary, message=token_message),
                   tf.debugging.assert_non_negative(position, message=f"position must be in 0..{context - 1}"),
                   tf.debugging.assert_less(position, context, message=f"position must be in 0..{context - 1}")]
    with tf.control_dependencies(checks):
        return [tf.identity(t) for t in (tokens, lengths, token, position) if t is not None]


def decoder_signatures(model, serving_default, unit="byte", token_meaning="bytes of UTF-8 text"):
    """``serving_default`` (given: it turns text into tokens) plus ``logits``, ``prefill``, ``decode_step``,
    ``decode_step_kv`` and ``generate`` of a :class:`DecoderLM`, with their meanings, ranges and in-graph checks.

    ``unit``: what a token is, in the meanings ("byte" or "token");
    ``token_meaning``: what the token values are (e.g. "GPT-2 token ids").
    """
    batch = [None]
    context, cache_shape, vocabulary = model.context_length, model.cache_shape, model.vocabulary_size
    units = f"{unit}s"
    tokens = (tf.TensorSpec([None, None], tf.int32),
              f"{token_meaning}, int32 in 0..{vocabulary - 1}, [batch, time]")
    prompts = (tf.TensorSpec([None, None], tf.int32),
               f"prompt {units}, right-padded to a common length (1..{context}), [batch, time]")
    lengths = (tf.TensorSpec(batch, tf.int32), f"each prompt's length in {units} (1..time)")
    cache = (tf.TensorSpec(cache_shape, tf.float32),
             f"key/value cache [batch, 2 x {model.num_layers} layers x {model.num_heads} heads, {context}, "
             f"{model.head_dim}]: layer i's keys at channels [2iH, (2i+1)H), its values next")
    stops = "" if model.stop_token is None else f", or at token {model.stop_token} (not returned)"
    sampling = sampling_specs(f"{units} to generate per row (stops at the context{stops})", unit=unit)
    step_token = (tf.TensorSpec(batch, tf.int32), f"the {unit} at position, 0..{vocabulary - 1}")
    step_position = (tf.TensorSpec(batch, tf.int32), f"its position, 0..{context - 1}")
    layer_cache_shape = [None, model.num_heads, context, model.head_dim]
    token_range, max_time = (0, vocabulary - 1), [None, context]
    logits_shape = f"[batch, {vocabulary}]"

    # Named unlike the model's methods: autograph caches converted functions by name (see the
    # diffusion recipe) and could confuse a closure with the method of the same name.
    def checked_logits(tokens):
        return model.logits(*checked_inputs(model, tokens=tokens))

    def checked_prefill(tokens, lengths):
        return model.prefill(*checked_inputs(model, tokens=tokens, lengths=lengths))

    def checked_decode_step(token, position, cache):
        return model.decode_step(*checked_inputs(model, token=token, position=position), cache)

    def checked_decode_step_kv(token, position, *layer_caches):
        return model.decode_step_kv(*checked_inputs(model, token=token, position=position), *layer_caches)

    def checked_generate(tokens, lengths, max_new_tokens, temperature, top_k, top_p, noise):
        tokens, lengths = checked_inputs(model, tokens=tokens, lengths=lengths)
        return model.generate(tokens, lengths, *checked_sampling(max_new_tokens, temperature, top_k, top_p), noise)

    return [
        serving_default,
        Signature("logits", checked_logits, {"tokens": tokens}, {
            "logits": f"next-{unit} logits at every position, float32 [batch, time, {vocabulary}]"},
            ranges={"tokens": token_range}, max_shapes={"tokens": max_time}),
        Signature("prefill", checked_prefill, {"tokens": prompts, "lengths": lengths}, {
            "logits": f"logits of the {unit} after each prompt, {logits_shape}",
            "cache": "the filled key/value cache, for decode_step"},
            ranges={"tokens": token_range, "lengths": (1, context)}, max_shapes={"tokens": max_time}),
        Signature("decode_step", checked_decode_step, {
            "token": step_token, "position": step_position, "cache": cache,
        }, {"logits": f"logits of the {unit} at position + 1, {logits_shape}", "cache": "the updated cache"},
            ranges={"token": token_range, "position": (0, context - 1)}),
        Signature("decode_step_kv", checked_decode_step_kv, {
            "token": step_token, "position": step_position,
            **{f"{kind}_{i}": (tf.TensorSpec(layer_cache_shape, tf.float32),
                               f"layer {i}'s {kind} at the positions before position (later ones are not read, but "
                               f"must be finite), [batch, {model.num_heads} heads, {context}, {model.head_dim}]")
               for i in range(model.num_layers) for kind in ("keys", "values")},
        }, {"logits": f"logits of the {unit} at position + 1, {logits_shape}",
            "keys": f"this position's keys [batch, {model.num_layers} layers, {model.num_heads} heads, "
                    f"{model.head_dim}]: write keys[:, i] at position in keys_i (the caller keeps the cache)",
            "values": "this position's values, the same shape: write values[:, i] at position in values_i"},
            ranges={"token": token_range, "position": (0, context - 1)}),
        Signature("generate", checked_generate, {
            "tokens": prompts, "lengths": lengths, **sampling,
            "noise": (tf.TensorSpec([None, context], tf.float32),
                      "uniform [0, 1) numbers, one per step: the sampling randomness"),
        }, {"tokens": f"generated {units} [batch, {context}], 0 after each row's num_tokens",
            "num_tokens": f"{units} generated per row: min(max_new_tokens, context - length){stops}"},
            ranges={"tokens": token_range, "lengths": (1, context), **SAMPLING_RANGES},
            max_shapes={"tokens": max_time}),
    ]
