"""A Transformer encoder-decoder over UTF-8 bytes, greedy decoding in the graph, exported builtin-only.

Vaswani et al. (2017), "Attention Is All You Need": the encoder reads the whole source
(:class:`zoo.core.nn.decoder.TransformerBlock` with ``causal=False``), the decoder writes the
target one byte at a time, each block attending to what it wrote (causal self-attention, with the
decoder LM's key/value cache) and to the source (cross-attention). Pre-norm blocks, learned positions.

Bytes in, bytes out: the source is a zero-padded UTF-8 row of ``source_length`` bytes, the target
``target_length`` bytes, and byte 0 ends it (rows are zero padded, so "end" and "padding" are one
symbol). The decoder's input vocabulary adds one start symbol (256) before the first byte.

Three ways to run the same weights:

- ``call((source, target_in))``: logits for every target position (training, scoring);
- ``encode(source)`` then ``decode_step(token, position, cache, memory)``: the source's keys and
  values for every cross-attention (``memory``) are computed once, each new byte costs one position;
- ``translate(source)``: greedy decoding to the end byte, a ``tf.while_loop`` in the graph (TFLite's
  builtin ``WHILE``).
"""

import keras
import tensorflow as tf
from keras import layers

from zoo.core.apps.greedy_bytes import START
from zoo.core.nn.decoder import TransformerBlock


@keras.saving.register_keras_serializable(package="zoo")
class CrossAttentionBlock(TransformerBlock):
    """A decoder block: causal self-attention, attention to the encoder's output, MLP; each pre-norm with a
    residual. ``memory_keys``/``memory_values`` ``[batch, heads, source, head_dim]`` come from :meth:`memory`."""

    def __init__(self, hidden_dim, num_heads, dropout=0.0, seed=None, intermediate_dim=None, activation="gelu",
                 **kwargs):
        kwargs.pop("causal", None)
        super().__init__(hidden_dim, num_heads, dropout, seed, intermediate_dim, activation, causal=True, **kwargs)
        self.cross_norm = layers.LayerNormalization(epsilon=1e-5, name="cross_norm")
        self.cross_query = layers.Dense(self.hidden_dim, name="cross_query")
        self.cross_key_value = layers.Dense(2 * self.hidden_dim, name="cross_key_value")
        self.cross_output = layers.Dense(self.hidden_dim, name="cross_output")
        self.cross_dropout = layers.Dropout(self.dropout, seed=None if seed is None else seed + 2)

    def build(self, input_shape):
        super().build(input_shape)
        self.cross_norm.build(input_shape)
        self.cross_query.build(input_shape)
        self.cross_key_value.build((None, None, self.hidden_dim))
        self.cross_output.build((None, None, self.hidden_dim))

    def memory(self, encoded):
        """The encoder output ``[batch, source, hidden]`` -> this block's cross-attention keys and values."""
        keys, values = tf.split(self.cross_key_value(encoded), 2, axis=-1)
        return self._heads(keys), self._heads(values)

    def _cross_attention(self, x, memory_keys, memory_values, training):
        query = self._heads(self.cross_query(self.cross_norm(x)))
        attended = self._attend(query, memory_keys, memory_values, 0.0)
        return x + self.cross_dropout(self.cross_output(self._merge_heads(attended)), training=training)

    def call(self, x, memory_keys=None, memory_values=None, training=False):
        x, keys, values = self.self_attention(x, training)
        x = self._cross_attention(x, memory_keys, memory_values, training)
        return self._mlp(x, training), keys, values

    def step(self, x, position, cached_keys, cached_values, memory_keys=None, memory_values=None):
        """One position per row, ``x [batch, hidden]``, through the cache (see :meth:`TransformerBlock.self_attention_step`)."""
        x, cached_keys, cached_values = self.self_attention_step(x, position, cached_keys, cached_values)
        query = self._step_heads(self.cross_query(self.cross_norm(x)))
        attended = self._attend(query, memory_keys, memory_values, 0.0)
        x = x + self.cross_output(self._step_merge_heads(attended))
        return self._mlp(x, False), cached_keys, cached_values

    def get_config(self):
        config = super().get_config()
        config.pop("causal", None)
        return config


@keras.saving.register_keras_serializable(package="zoo")
class EncoderDecoder(keras.Model):
    """Bytes -> bytes: ``source int32 [batch, source_length]`` and ``target_in int32 [batch, time]`` (START, then
    the target's bytes shifted right) -> logits ``[batch, time, 256]`` of each target byte.

    Args:
        encoder_layers, decoder_layers, num_heads, hidden_dim: the Transformer's size.
        source_length, target_length: the rows' widths in bytes (learned positions).
        dropout: on embeddings, attention and MLP outputs, during training only.
        seed: seeds the initial weights and dropout.
        intermediate_dim: the MLP's width (default 4 x hidden_dim).
    """

    def __init__(self, encoder_layers=3, decoder_layers=3, num_heads=4, hidden_dim=128, source_length=64,
                 target_length=128, dropout=0.0, seed=None, intermediate_dim=None, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.encoder_layers, self.decoder_layers = int(encoder_layers), int(decoder_layers)
        self.num_heads, self.hidden_dim = int(num_heads), int(hidden_dim)
        self.source_length, self.target_length = int(source_length), int(target_length)
        self.dropout, self.seed = float(dropout), seed
        self.intermediate_dim = int(intermediate_dim or 4 * self.hidden_dim)
        self.head_dim = self.hidden_dim // self.num_heads

        def normal(offset):
            return keras.initializers.RandomNormal(stddev=0.02, seed=None if seed is None else seed + offset)

        def block_seed(offset):
            return None if seed is None else seed + offset

        # === Layers ===
        self.source_embedding = layers.Embedding(256, self.hidden_dim, embeddings_initializer=normal(0),
                                                 name="source_embedding")
        self.source_position = layers.Embedding(self.source_length, self.hidden_dim, embeddings_initializer=normal(1),
                                                name="source_position")
        self.target_embedding = layers.Embedding(257, self.hidden_dim, embeddings_initializer=normal(2),
                                                 name="target_embedding")
        self.target_position = layers.Embedding(self.target_length, self.hidden_dim, embeddings_initializer=normal(3),
                                                name="target_position")
        self.embedding_dropout = layers.Dropout(self.dropout, seed=seed)
        self.encoder_blocks = [
            TransformerBlock(self.hidden_dim, self.num_heads, self.dropout, seed=block_seed(10 * (i + 1)),
                             intermediate_dim=self.intermediate_dim, causal=False, name=f"encoder_{i}")
            for i in range(self.encoder_layers)]
        self.encoder_norm = layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")
        self.decoder_blocks = [
            CrossAttentionBlock(self.hidden_dim, self.num_heads, self.dropout, seed=block_seed(1000 + 10 * i),
                                intermediate_dim=self.intermediate_dim, name=f"decoder_{i}")
            for i in range(self.decoder_layers)]
        self.final_norm = layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        self.output_head = layers.Dense(256, kernel_initializer=normal(4), name="output_head")
        # for a subclass that trains (zoo.seq2seq): state must exist before build()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="byte_accuracy")
        if seed is not None:  # Keras' default Glorot initializers are unseeded
            for i, block in enumerate(self.encoder_blocks + self.decoder_blocks):
                dense = [block.qkv, block.attention_output, block.mlp_hidden, block.mlp_output]
                if isinstance(block, CrossAttentionBlock):
                    dense += [block.cross_query, block.cross_key_value, block.cross_output]
                for j, layer in enumerate(dense):
                    layer.kernel_initializer = keras.initializers.RandomNormal(stddev=0.02, seed=seed + 100 * i + j)
        self.build(None)

    def build(self, input_shape):
        d = self.hidden_dim
        for embedding in (self.source_embedding, self.source_position, self.target_embedding, self.target_position):
            embedding.build((None, None))
        for block in self.encoder_blocks + self.decoder_blocks:
            block.build((None, None, d))
        self.encoder_norm.build((None, None, d))
        self.final_norm.build((None, None, d))
        self.output_head.build((None, None, d))
        self.built = True

    @property
    def cache_shape(self):
        """``[batch, 2 * decoder_layers * heads, target_length, head_dim]``: each layer's keys, then its values."""
        return [None, 2 * self.decoder_layers * self.num_heads, self.target_length, self.head_dim]

    @property
    def memory_shape(self):
        """``[batch, 2 * decoder_layers * heads, source_length, head_dim]``: the cross-attention keys/values."""
        return [None, 2 * self.decoder_layers * self.num_heads, self.source_length, self.head_dim]

    # --- forward passes --------------------------------------------------------------------------

    def encoded(self, source, training=False):
        """``source [batch, source_length]`` -> the encoder's output ``[batch, source_length, hidden]``."""
        positions = tf.expand_dims(tf.range(tf.shape(source)[1]), 0)
        x = self.embedding_dropout(self.source_embedding(source) + self.source_position(positions), training=training)
        for block in self.encoder_blocks:
            x, _, _ = block(x, training=training)
        return self.encoder_norm(x)

    def _memory_list(self, encoded):
        return [block.memory(encoded) for block in self.decoder_blocks]

    def call(self, inputs, training=False):
        source, target_in = inputs
        memory = self._memory_list(self.encoded(source, training))
        positions = tf.expand_dims(tf.range(tf.shape(target_in)[1]), 0)
        x = self.embedding_dropout(self.target_embedding(target_in) + self.target_position(positions),
                                   training=training)
        for block, (keys, values) in zip(self.decoder_blocks, memory):
            x, _, _ = block(x, keys, values, training=training)
        return self.output_head(self.final_norm(x))

    def encode(self, source):
        """Signature ``encode``: ``source`` -> ``{"memory": [batch, 2 x layers x heads, source_length, head_dim]}``,
        layer i's keys at channels [2iH, (2i+1)H), its values next."""
        memory = self._memory_list(self.encoded(source))
        return {"memory": tf.concat([t for pair in memory for t in pair], axis=1)}

    def _split(self, stacked, i):
        h = self.num_heads
        return stacked[:, 2 * i * h : (2 * i + 1) * h], stacked[:, (2 * i + 1) * h : (2 * i + 2) * h]

    def decode_step(self, token, position, cache, memory):
        """Signature ``decode_step``: the byte at ``position`` (START at 0) -> logits of the byte there, and the
        cache with this position written."""
        x = self.target_embedding(token) + self.target_position(position)  # [batch, hidden]: see TransformerBlock._step_heads
        updated = []
        for i, block in enumerate(self.decoder_blocks):
            keys, values = self._split(cache, i)
            memory_keys, memory_values = self._split(memory, i)
            x, keys, values = block.step(x, position, keys, values, memory_keys, memory_values)
            updated += [keys, values]
        return {"logits": self.output_head(self.final_norm(x)), "cache": tf.concat(updated, axis=1)}

    def translate(self, source):
        """Greedy decoding in the graph: ``source`` -> ``{"output": int32 [batch, target_length]}``, the bytes up to
        each row's end byte, zero padded. The loop stops when every row has ended."""
        return self.greedy(self.encode(source)["memory"])

    def greedy(self, memory, decode_step=None):
        """:meth:`translate`'s loop from :meth:`encode`'s ``memory``; ``decode_step`` (default the model's) makes
        each byte: an export passes the one traced function its ``decode_step`` signature calls too, so that the
        SavedModel holds the decoder once."""
        decode_step = decode_step or self.decode_step
        batch, steps = tf.shape(memory)[0], self.target_length
        cache = tf.zeros(tf.stack([batch, *self.cache_shape[1:]]), tf.float32)

        def body(i, token, cache, output, running):
            # the position from the token row, not tf.fill([batch], i), a FILL LiteRT sizes at run time (the loop
            # stays static: zoo.core.export.loop_run_time_shapes; the GPT's loop gained 13-27% from that, this one
            # little: a probe of a re-export, not committed, timed it within a few percent)
            step = decode_step(token, tf.zeros_like(token) + i, cache, memory)
            best = tf.cast(tf.argmax(step["logits"], axis=-1, output_type=tf.int32), tf.int32)
            running = tf.logical_and(running, tf.not_equal(best, 0))
            best = tf.where(running, best, 0)
            output = output + tf.expand_dims(best, 1) * tf.expand_dims(tf.one_hot(i, steps, dtype=tf.int32), 0)
            return i + 1, best, step["cache"], output, running

        def cond(i, token, cache, output, running):
            return tf.logical_and(i < steps, tf.reduce_any(running))

        _, _, _, output, _ = tf.while_loop(
            cond, body, [tf.constant(0), tf.fill([batch], START), cache, tf.zeros([batch, steps], tf.int32),
                         tf.ones([batch], tf.bool)])
        return {"output": output}

    def get_config(self):
        return {**super().get_config(), "encoder_layers": self.encoder_layers, "decoder_layers": self.decoder_layers,
                "num_heads": self.num_heads, "hidden_dim": self.hidden_dim, "source_length": self.source_length,
                "target_length": self.target_length, "dropout": self.dropout, "seed": self.seed,
                "intermediate_dim": self.intermediate_dim}


def teacher_forcing(target):
    """The decoder's input for ``target [batch, time]``: START, then the target shifted right by one."""
    target = tf.convert_to_tensor(target)
    return tf.concat([tf.fill([tf.shape(target)[0], 1], START), target[:, :-1]], axis=1)


def target_weights(target):
    """1 for each byte of the target and for its end byte (the first 0), 0 for the padding after it."""
    ended_before = tf.cumsum(tf.cast(tf.equal(target, 0), tf.float32), axis=1, exclusive=True) > 0
    return 1.0 - tf.cast(ended_before, tf.float32)
