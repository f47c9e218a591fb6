"""A byte-level Transformer encoder-decoder that reads numbers aloud and translates them (English, Chinese).

Vaswani et al. (2017), "Attention Is All You Need"; the task is Sproat & Jaitly's (2016) text normalization.
The network, its cached decoding (``encode`` + ``decode_step``) and the in-graph greedy loop are
:class:`zoo.core.nn.encoder_decoder.EncoderDecoder`'s; this file adds the presets and training.
"""

import keras
import tensorflow as tf

from zoo.core.nn import distribute
from zoo.core.nn.encoder_decoder import EncoderDecoder, target_weights, teacher_forcing

GRADIENT_CLIP_NORM = 1.0
BYTES_PER_ROW = 48.0  # about a target's length with its end byte: the loss is near a per-byte mean

PRESETS = {
    "tiny": {"encoder_layers": 1, "decoder_layers": 1, "num_heads": 2, "hidden_dim": 32, "dropout": 0.0},
    # MLPs 2x wide, not 4x: 1.12 M weights, whose export (five copies of them: .keras, SavedModel, TFLite float32,
    # float16, int8) fits the zoo's 20 MB (the 4x model's 1.51 M exported to 25.2 MB)
    "base": {"encoder_layers": 3, "decoder_layers": 3, "num_heads": 4, "hidden_dim": 128, "intermediate_dim": 256,
             "dropout": 0.0},
}


@keras.saving.register_keras_serializable(package="zoo")
class Seq2Seq(EncoderDecoder):
    """``source int32 [batch, 64]`` (tagged UTF-8) -> ``output int32 [batch, 128]`` (UTF-8), greedy.

    Trained by teacher forcing: the cross-entropy of every target byte and of the end byte (0) after it,
    averaged over those bytes (the padding after the end is not scored). ``byte_accuracy`` is the fraction of
    them the model's most likely byte gets right.
    """

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def byte_losses(self, source, target, training=False):
        """``(losses, weights, right)``, each ``[batch, target_length]``."""
        logits = self((source, teacher_forcing(target)), training=training)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=logits)
        right = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), target), tf.float32)
        return losses, target_weights(target), right

    def _track(self, losses, weights, right):
        self.loss_tracker.update_state(losses, sample_weight=weights)
        self.accuracy_tracker.update_state(right, sample_weight=weights)
        return {"loss": self.loss_tracker.result(), "byte_accuracy": self.accuracy_tracker.result()}

    def train_step(self, data):
        source, target = data["source"], data["target"]
        with tf.GradientTape() as tape:
            losses, weights, right = self.byte_losses(source, target, training=True)
            # the scored bytes' sum over a fixed count per row (not over this replica's own count of scored
            # bytes), so that N replicas' gradients add up to one device's exactly
            rows = tf.cast(tf.shape(target)[0], tf.float32)
            loss = tf.reduce_sum(losses * weights) / (rows * BYTES_PER_ROW)
            scaled = distribute.scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_variables)
        gradients = distribute.clip_by_global_norm(gradients, GRADIENT_CLIP_NORM)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._track(losses, weights, right)

    def test_step(self, data):
        return self._track(*self.byte_losses(data["source"], data["target"]))
