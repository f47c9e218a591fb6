"""Karpathy's char-rnn in Keras 3: a multi-layer LSTM over UTF-8 bytes, with a fixed-size state.

Karpathy (2015), "The Unreasonable Effectiveness of Recurrent Neural Networks",
https://karpathy.github.io/2015/05/21/rnn-effectiveness/ (github.com/karpathy/char-rnn);
Hochreiter & Schmidhuber (1997), "Long Short-Term Memory".

Training runs Keras' ``LSTM`` layers over windows of bytes. What is exported runs
:meth:`CharRNN.step`: one byte through every layer's cell written out in dense ops
(matmul, sigmoid, tanh, mul, add) with the same weights, so the TFLite file has
builtin ops only (Keras' LSTM layer converts with TensorList ops that need Flex,
tensorflow#73254). The state is every layer's h and c, concatenated: ``[batch, S]``
with S = 2 x layers x units, whatever the length of the text.

Truncated backpropagation through time: a training example is ``windows_per_example``
consecutive windows of one stream of text; the state after each window is the
initial state of the next (gradients stop at the window boundary), and each window
is one optimizer update. So the model learns from context longer than a window,
and an example's state needs no variable outside the step (any tf.distribute
strategy, exact resume).
"""

import keras
import tensorflow as tf
from keras import layers

from zoo.core.nn import distribute
from zoo.core.nn.inputs import check_float_input
from zoo.core.nn.text_generation import VOCAB_SIZE, sample_token

GRADIENT_CLIP_NORM = 5.0  # char-rnn's grad_clip

PRESETS = {
    "tiny": {"num_layers": 2, "units": 16, "embedding_dim": 8, "window": 8, "windows_per_example": 4},
    "base": {"num_layers": 2, "units": 512, "embedding_dim": 64, "dropout": 0.2, "window": 64,
             "windows_per_example": 8},
}


@keras.saving.register_keras_serializable(package="zoo")
class CharRNN(keras.Model):
    """Byte-level multi-layer LSTM language model.

    Args:
        num_layers: stacked LSTM layers.
        units: each layer's h and c size.
        embedding_dim: the byte embedding's size.
        dropout: between layers and before the head, in training only.
        window: bytes per truncated-BPTT window (one optimizer update).
        windows_per_example: consecutive windows the state is carried across.
        seed: initial weights and dropout.

    Example:
        >>> rnn = CharRNN(**PRESETS["tiny"])
        >>> out = rnn.step(np.array([72], "int32"), rnn.zero_state(1))
        >>> out["logits"].shape, out["state"].shape
        (TensorShape([1, 256]), TensorShape([1, 64]))
    """

    def __init__(self, num_layers=2, units=256, embedding_dim=64, dropout=0.0, window=64, windows_per_example=8,
                 seed=0, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.num_layers = int(num_layers)
        self.units = int(units)
        self.embedding_dim = int(embedding_dim)
        self.dropout = float(dropout)
        self.window = int(window)
        self.windows_per_example = int(windows_per_example)
        self.seed = int(seed)
        self.state_size = 2 * self.num_layers * self.units
        # === Layers ===
        self.embedding = layers.Embedding(VOCAB_SIZE, self.embedding_dim, name="embedding",
                                          embeddings_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=seed))
        self.lstm_layers = [
            layers.LSTM(self.units, return_sequences=True, return_state=True, name=f"lstm{i}",
                        kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 100 + 2 * i),
                        recurrent_initializer=keras.initializers.Orthogonal(seed=seed * 100 + 2 * i + 1))
            for i in range(self.num_layers)]
        self.dropout_layers = [layers.Dropout(self.dropout, seed=seed * 100 + 50 + i, name=f"dropout{i}")
                               for i in range(self.num_layers)]
        self.head = layers.Dense(VOCAB_SIZE, name="head",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 100 + 99))
        self.embedding.build((None, None))
        inputs = self.embedding_dim
        for lstm in self.lstm_layers:
            lstm.build((None, None, inputs))
            inputs = self.units
        self.head.build((None, self.units))
        self.built = True
        # === Metrics ===
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    @property
    def optimizer_updates_per_step(self):
        """``train_step`` updates the weights once per window (truncated BPTT)."""
        return self.windows_per_example

    def check_state(self, state):
        return check_float_input(state, "state", (None, self.state_size))

    def zero_state(self, batch):
        return tf.zeros([batch, self.state_size])

    def _split_state(self, state):
        """``[batch, S]`` -> [(h, c) per layer]."""
        parts = tf.split(state, 2 * self.num_layers, axis=-1)
        return [(parts[2 * i], parts[2 * i + 1]) for i in range(self.num_layers)]

    # --- training: Keras' LSTM over a window ------------------------------------------------

    def forward(self, tokens, state, training=False):
        """``tokens int32 [batch, time]``, ``state [batch, S]`` -> (logits ``[batch, time, 256]``, state)."""
        x = self.embedding(tokens)
        new_state = []
        for lstm, dropout, (h, c) in zip(self.lstm_layers, self.dropout_layers, self._split_state(state)):
            x, h, c = lstm(x, initial_state=[h, c], training=training)
            x = dropout(x, training=training)
            new_state += [h, c]
        return self.head(x), tf.concat(new_state, axis=-1)

    def call(self, tokens, training=False):
        return self.forward(tokens, self.zero_state(tf.shape(tokens)[0]), training=training)[0]

    # --- what the export serves: one byte through the cells, in dense ops ----------------------

    def step(self, token, state):
        """Signature ``step``: ``token int32 [batch]``, ``state [batch, S]`` -> next-byte ``logits`` and ``state``."""
        x = self.embedding(token)
        new_state = []
        for lstm, (h, c) in zip(self.lstm_layers, self._split_state(state)):
            cell = lstm.cell
            z = tf.matmul(x, cell.kernel) + tf.matmul(h, cell.recurrent_kernel) + cell.bias
            i, f, g, o = tf.split(z, 4, axis=-1)  # Keras' gate order
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            new_state += [h, c]
            x = h
        return {"logits": self.head(x), "state": tf.concat(new_state, axis=-1)}

    def feed(self, tokens, lengths, state):
        """Run each row's first ``lengths`` bytes of ``tokens [batch, time]`` through :meth:`step`.

        Returns the logits after each row's last byte and the state there (a row's
        padding leaves its state alone). An in-graph loop: builtin ``WHILE`` in TFLite.
        """
        batch, time = tf.shape(tokens)[0], tf.shape(tokens)[1]

        def body(t, logits, state):
            out = self.step(tokens[:, t], state)
            active = tf.expand_dims(t < lengths, 1)
            return t + 1, tf.where(active, out["logits"], logits), tf.where(active, out["state"], state)

        _, logits, state = tf.while_loop(lambda t, logits, state: t < time, body,
                                         [tf.constant(0), tf.zeros([batch, VOCAB_SIZE]), state])
        return logits, state

    def generate(self, tokens, lengths, max_new_tokens, temperature, top_k, top_p, noise):
        """Signature ``generate``: feed the prompts, then sample up to ``noise.shape[1]`` bytes, in the graph.

        The inputs are the GPT's (``zoo.gpt.model.GPT.generate``), but nothing limits the
        length except ``max_new_tokens`` and the noise given: the state has a fixed size.

        Returns:
            ``tokens int32 [batch, steps]`` (0 after a row stops) and ``num_tokens int32 [batch]``.
        """
        steps = tf.shape(noise)[1]
        batch = tf.shape(noise)[0]
        limit = tf.minimum(max_new_tokens, steps)
        logits, state = self.feed(tokens, lengths, self.zero_state(batch))

        def body(i, logits, state, output):
            token = tf.where(i < limit, sample_token(logits, temperature, top_k, top_p, noise[:, i]), 0)
            output = output + tf.expand_dims(token, 1) * tf.expand_dims(tf.one_hot(i, steps, dtype=tf.int32), 0)
            out = self.step(token, state)
            return i + 1, out["logits"], out["state"], output

        _, _, _, output = tf.while_loop(lambda i, logits, state, output: i < tf.reduce_max(limit), body,
                                        [tf.constant(0), logits, state, tf.zeros([batch, steps], tf.int32)])
        return {"tokens": output, "num_tokens": tf.maximum(limit, 0)}

    # --- training: truncated BPTT across the windows of an example -------------------------------

    def _split_windows(self, data):
        inputs, targets = data
        w = self.window
        return [(inputs[:, k * w : (k + 1) * w], targets[:, k * w : (k + 1) * w])
                for k in range(self.windows_per_example)]

    def _window_losses(self, inputs, targets, state, training):
        logits, state = self.forward(inputs, state, training=training)
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits), state

    def train_step(self, data):
        """One optimizer update per window; the state flows from window to window (gradients stop there)."""
        state = self.zero_state(tf.shape(data[0])[0])
        for inputs, targets in self._split_windows(data):
            state = tf.stop_gradient(state)
            with tf.GradientTape() as tape:
                losses, state = self._window_losses(inputs, targets, state, training=True)
                scaled = distribute.scale_loss(tf.reduce_mean(losses))
            gradients = distribute.clip_by_global_norm(tape.gradient(scaled, self.trainable_variables),
                                                       GRADIENT_CLIP_NORM)
            self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
            self.loss_tracker.update_state(losses)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        state = self.zero_state(tf.shape(data[0])[0])
        for inputs, targets in self._split_windows(data):
            losses, state = self._window_losses(inputs, targets, state, training=False)
            self.loss_tracker.update_state(losses)
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        return {**super().get_config(), "num_layers": self.num_layers, "units": self.units,
                "embedding_dim": self.embedding_dim, "dropout": self.dropout, "window": self.window,
                "windows_per_example": self.windows_per_example, "seed": self.seed}
