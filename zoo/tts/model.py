"""Speech from digit strings: a FastSpeech-style acoustic model voiced by the zoo's WaveNet vocoder.

Ren et al. (2019), "FastSpeech: Fast, Robust and Controllable Text to Speech", arXiv:1905.09263;
Shen et al. (2018), Tacotron 2, arXiv:1712.05884 (a WaveNet on predicted mel spectrograms).

- *Encoder*: each digit (and -1 padding) an embedding, plus its position and the speaker's
  embedding; two Transformer encoder blocks (the core's ``TransformerBlock``, not causal).
- *Durations*: per digit, the frames it is spoken for and the pause after it (log-frames,
  regression). Training uses the real durations (teacher forcing, as FastSpeech does);
  generation rounds the predicted ones. Durations give the alignment outright: no
  attention to fail, and the ``boundaries`` output (where each digit starts) for free.
- *Length regulator*: every 10 ms frame looks up the digit whose segment holds it
  (comparisons against the cumulative durations: builtin ops) and where in it it is: a
  phase in [0, 1) through the spoken part, with sines and cosines of it, or "pause".
- *Decoder*: residual 1-D convolutions over the frames -> the normalised log-mel frame
  (the WaveNet's normalisation: what its conditioning network reads).
- *Vocoder*: the zoo's WaveNet without its own mel predictor (:meth:`WaveNet.vocoder`,
  frozen), through its public ``conditioning``, ``step`` and ``vocode``.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo.core.data.audio import HOP_LENGTH, LOG_OFFSET, MEL_BINS
from zoo.core.nn import distribute
from zoo.core.nn.decoder import TransformerBlock

MAX_DIGITS = 8
MAX_FRAMES = 800  # 8 seconds at 100 frames a second
MAX_SAMPLES = MAX_FRAMES * HOP_LENGTH  # 64,000 at 8 kHz
PADDING = -1
BOUNDARIES = MAX_DIGITS + 1
MAX_SPEECH_FRAMES, MAX_PAUSE_FRAMES = 150, 100  # what generation allows one digit (FSDD's longest: 1 s)
GRADIENT_CLIP_NORM = 1.0

PRESETS = {
    "tiny": {"vocoder_preset": "tiny", "hidden_dim": 16, "num_heads": 2, "encoder_layers": 1, "decoder_channels": 16,
             "decoder_layers": 1, "harmonics": 2},
    "base": {"vocoder_preset": "exported", "hidden_dim": 128, "num_heads": 4, "encoder_layers": 2,
             "decoder_channels": 128, "decoder_layers": 3, "harmonics": 8},
}


def _init(seed, k):
    return keras.initializers.GlorotUniform(seed=seed * 1000 + k)


@keras.saving.register_keras_serializable(package="zoo")
class TextToSpeech(keras.Model):
    """Digits and a speaker -> log-mel frames and durations -> (with the WaveNet vocoder) 8 kHz audio.

    Args:
        vocoder: a WaveNet without its mel predictor (``WaveNet.vocoder()``), frozen here; or its
            serialized config (from a saved file).
        num_speakers: the voices (the WaveNet's speaker order).
        hidden_dim, num_heads, encoder_layers: the digit encoder.
        decoder_channels, decoder_layers, kernel_size: the frame decoder's residual convolutions.
        harmonics: sines and cosines of the phase through a spoken digit (1..harmonics half-periods).
        seed: initial weights.

    Example:
        >>> model = get_recipe("tts").create_model("tiny")
        >>> model.synthesize(np.array([[1, 2, 3, -1, -1, -1, -1, -1]], "int32"), np.array([0], "int32"))["mel"].shape
        TensorShape([1, 800, 40])
    """

    def __init__(self, vocoder, num_speakers=6, hidden_dim=128, num_heads=4, encoder_layers=2, decoder_channels=128,
                 decoder_layers=3, kernel_size=5, harmonics=8, seed=0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(vocoder, dict):
            vocoder = keras.saving.deserialize_keras_object(vocoder)
        self.vocoder = vocoder
        self.vocoder.trainable = False
        self.num_speakers = int(num_speakers)
        self.hidden_dim, self.num_heads, self.encoder_layers = int(hidden_dim), int(num_heads), int(encoder_layers)
        self.decoder_channels, self.decoder_layers = int(decoder_channels), int(decoder_layers)
        self.kernel_size, self.harmonics, self.seed = int(kernel_size), int(harmonics), int(seed)
        H, C = self.hidden_dim, self.decoder_channels
        # === Encoder ===
        self.digit_embedding = layers.Embedding(11, H, name="digit_embedding",  # 10: padding
                                                embeddings_initializer=keras.initializers.RandomNormal(seed=seed))
        self.position_embedding = layers.Embedding(MAX_DIGITS, H, name="position_embedding",
                                                   embeddings_initializer=keras.initializers.RandomNormal(seed=seed + 1))
        self.speaker_embedding = layers.Embedding(self.num_speakers, H, name="speaker_embedding",
                                                  embeddings_initializer=keras.initializers.RandomNormal(seed=seed + 2))
        self.encoder_blocks = [TransformerBlock(H, self.num_heads, seed=seed + 10 + i, intermediate_dim=2 * H,
                                                causal=False, name=f"encoder_block{i}")
                               for i in range(self.encoder_layers)]
        self.encoder_norm = layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")
        # === Durations: log frames of speech, log(1 + frames of pause) ===
        self.duration_hidden = layers.Dense(H, name="duration_hidden", kernel_initializer=_init(seed, 20))
        self.duration_output = layers.Dense(2, name="duration_output", kernel_initializer=_init(seed, 21))
        # === Decoder ===
        self.token_projection = layers.Dense(C, name="token_projection", kernel_initializer=_init(seed, 30))
        self.phase_projection = layers.Dense(C, name="phase_projection", kernel_initializer=_init(seed, 31))
        self.decoder_norms = [layers.LayerNormalization(epsilon=1e-5, name=f"decoder_norm{i}")
                              for i in range(self.decoder_layers)]
        self.decoder_convs = [layers.Conv1D(2 * C, self.kernel_size, padding="same", name=f"decoder_conv{i}",
                                            kernel_initializer=_init(seed, 40 + i)) for i in range(self.decoder_layers)]
        self.decoder_mixes = [layers.Dense(C, name=f"decoder_mix{i}", kernel_initializer=_init(seed, 60 + i))
                              for i in range(self.decoder_layers)]
        self.mel_output = layers.Dense(MEL_BINS, name="mel_output", kernel_initializer=_init(seed, 80))
        self._build_all()
        self.silence = float(self.vocoder.normalize_mel(np.log(LOG_OFFSET)))  # the normalised log-mel of zeros
        # === Metrics ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mel_loss_tracker = keras.metrics.Mean(name="mel_loss")
        self.duration_loss_tracker = keras.metrics.Mean(name="duration_loss")

    @property
    def phase_features(self):
        return 4 + 2 * self.harmonics

    def _build_all(self):
        H, C = self.hidden_dim, self.decoder_channels
        for embedding in (self.digit_embedding, self.position_embedding, self.speaker_embedding):
            embedding.build((None,))
        for block in self.encoder_blocks:
            block.build((None, None, H))
        self.encoder_norm.build((None, None, H))
        self.duration_hidden.build((None, None, H))
        self.duration_output.build((None, None, H))
        self.token_projection.build((None, None, H))
        self.phase_projection.build((None, None, self.phase_features))
        for norm, conv, mix in zip(self.decoder_norms, self.decoder_convs, self.decoder_mixes):
            norm.build((None, None, C))
            conv.build((None, None, C))
            mix.build((None, None, 2 * C))
        self.mel_output.build((None, None, C))
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.mel_loss_tracker, self.duration_loss_tracker]

    # --- encoder and durations ---------------------------------------------------------------------

    def encode(self, digits, speaker):
        """``digits int32 [batch, 8]`` (-1 after the last), ``speaker [batch]`` -> ``[batch, 8, H]``."""
        index = tf.where(digits < 0, 10, digits)
        x = (self.digit_embedding(index) + self.position_embedding(tf.range(MAX_DIGITS))[None]
             + self.speaker_embedding(speaker)[:, None, :])
        for block in self.encoder_blocks:
            x = block(x)[0]
        return self.encoder_norm(x)

    def log_durations(self, encoded):
        """``[batch, 8, 2]``: log frames of each digit's speech, log(1 + frames of the pause after it)."""
        return self.duration_output(tf.maximum(self.duration_hidden(encoded), 0.0))

    @staticmethod
    def round_durations(log_durations, digits):
        """Whole frames ``(speech, pause) int32 [batch, 8]``: 0 for padding, no pause after the last digit."""
        real = digits >= 0
        is_last = tf.logical_and(real, tf.concat([~real[:, 1:], tf.ones_like(real[:, :1])], axis=1))
        speech = tf.clip_by_value(tf.round(tf.exp(log_durations[..., 0])), 1.0, float(MAX_SPEECH_FRAMES))
        pause = tf.clip_by_value(tf.round(tf.exp(log_durations[..., 1]) - 1.0), 0.0, float(MAX_PAUSE_FRAMES))
        speech = tf.where(real, tf.cast(speech, tf.int32), 0)
        pause = tf.where(tf.logical_and(real, ~is_last), tf.cast(pause, tf.int32), 0)
        return speech, pause

    # --- length regulator and decoder ------------------------------------------------------------

    def frame_layout(self, speech, pause, num_frames):
        """Which digit each frame belongs to and where in it: ``(inside [batch, frames, 8], phase features
        [batch, frames, F])``. Segments are laid end to end from frame 0 (a digit's speech, then its pause)."""
        speech, pause = tf.cast(speech, tf.float32), tf.cast(pause, tf.float32)
        ends = tf.cumsum(speech + pause, axis=1)
        starts = ends - speech - pause
        t = tf.cast(tf.range(num_frames), tf.float32)[None, :, None]
        inside = tf.cast(tf.logical_and(t >= starts[:, None, :], t < ends[:, None, :]), tf.float32)
        offset = tf.reduce_sum(inside * (t - starts[:, None, :]), axis=-1)  # frames since the segment began
        length = tf.reduce_sum(inside * speech[:, None, :], axis=-1)
        segment = tf.reduce_sum(inside, axis=-1)  # 1 inside the utterance, 0 after it
        speaking = segment * tf.cast(offset < length, tf.float32)
        phase = speaking * offset / tf.maximum(length, 1.0)
        angles = np.pi * phase[..., None] * tf.range(1, self.harmonics + 1, dtype=tf.float32)
        features = tf.concat([
            speaking[..., None], (segment - speaking)[..., None], phase[..., None], (speaking * length / 100.0)[..., None],
            speaking[..., None] * tf.sin(angles), speaking[..., None] * tf.cos(angles)], axis=-1)
        return inside, features

    def decode(self, encoded, speech, pause, num_frames):
        """Normalised log-mel ``[batch, num_frames, 40]``; frames after the utterance are silence."""
        inside, features = self.frame_layout(speech, pause, num_frames)
        x = tf.matmul(inside, self.token_projection(encoded)) + self.phase_projection(features)
        for norm, conv, mix in zip(self.decoder_norms, self.decoder_convs, self.decoder_mixes):
            x = x + mix(tf.maximum(conv(norm(x)), 0.0))
        mel = self.mel_output(x)
        in_utterance = tf.reduce_sum(inside, axis=-1, keepdims=True) > 0
        return tf.where(in_utterance, mel, self.silence)

    # --- generation ----------------------------------------------------------------------------

    def synthesize(self, digits, speaker):
        """Signature ``mel``: ``{"mel", "conditioning", "boundaries"}`` for ``digits [batch, 8]``, ``speaker``.

        ``mel``: log-mel ``[batch, 800, 40]`` (zoo.core.data.audio.log_mel's features); ``conditioning``:
        the vocoder's ``[batch, 800, 2RL]`` (row t // 80 for sample t); ``boundaries [batch, 9]``: the
        sample where each digit starts, then where the last ends (-1 for padding).
        """
        encoded = self.encode(digits, speaker)
        speech, pause = self.round_durations(self.log_durations(encoded), digits)
        mel = self.decode(encoded, speech, pause, MAX_FRAMES)
        return {"mel": self.vocoder.denormalize_mel(mel), "conditioning": self.vocoder.conditioning(mel),
                "boundaries": boundaries(digits, speech, pause)}

    def speak(self, digits, speaker, noise):
        """Signature ``serving_default``: ``{"audio" [batch, 64000], "boundaries" [batch, 9]}``; the vocoder's
        loop stops after the longest utterance's last frame (the samples after an utterance's end are 0)."""
        return self.voice(self.synthesize(digits, speaker), noise)

    def voice(self, frames, noise):
        """:meth:`speak` from :meth:`synthesize`'s ``frames`` (an export traces the two apart and shares them)."""
        ends = tf.reduce_max(frames["boundaries"], axis=1)
        audio = self.vocoder.vocode(frames["conditioning"], noise, (tf.reduce_max(ends) + HOP_LENGTH - 1) // HOP_LENGTH)
        return {"audio": audio * samples_before(ends), "boundaries": frames["boundaries"]}

    def step(self, conditioning, sample, noise, state):
        """Signature ``step``: the vocoder's one sample (see ``WaveNet.step``)."""
        return self.vocoder.step(conditioning, sample, noise, state)

    # --- training ---------------------------------------------------------------------------------

    def losses_of(self, data):
        """``(mel L1, duration MSE)`` with the real durations (teacher forcing).

        ``data``: digits [b, 8], speaker [b], speech and pause [b, 8] (frames), mel [b, frames, 40] (log-mel
        of the utterance, silence after it)."""
        digits, speech, pause = data["digits"], data["speech"], data["pause"]
        encoded = self.encode(digits, data["speaker"])
        predicted = self.decode(encoded, speech, pause, tf.shape(data["mel"])[1])
        mel_loss = tf.reduce_mean(tf.abs(predicted - self.vocoder.normalize_mel(data["mel"])))
        log_durations = self.log_durations(encoded)
        real = tf.cast(digits >= 0, tf.float32)
        has_pause = real * tf.concat([real[:, 1:], tf.zeros_like(real[:, :1])], axis=1)  # not the last digit
        speech_error = tf.square(log_durations[..., 0] - tf.math.log(tf.maximum(tf.cast(speech, tf.float32), 1.0)))
        pause_error = tf.square(log_durations[..., 1] - tf.math.log1p(tf.cast(pause, tf.float32)))
        duration_loss = distribute.mean_over_global_batch(tf.reduce_sum(real * speech_error + has_pause * pause_error),
                                                          tf.reduce_sum(real + has_pause))
        return mel_loss, duration_loss

    def train_step(self, data):
        with tf.GradientTape() as tape:
            mel_loss, duration_loss = self.losses_of(data)
            loss = mel_loss + duration_loss
            scaled = distribute.scale_loss(loss)
        gradients = distribute.clip_by_global_norm(tape.gradient(scaled, self.trainable_variables),
                                                   GRADIENT_CLIP_NORM)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._track(loss, mel_loss, duration_loss)

    def test_step(self, data):
        mel_loss, duration_loss = self.losses_of(data)
        return self._track(mel_loss + duration_loss, mel_loss, duration_loss)

    def _track(self, loss, mel_loss, duration_loss):
        self.loss_tracker.update_state(loss)
        self.mel_loss_tracker.update_state(mel_loss)
        self.duration_loss_tracker.update_state(duration_loss)
        return {m.name: m.result() for m in self.metrics}

    def call(self, inputs, training=False):
        return self.synthesize(inputs["digits"], inputs["speaker"])["mel"]

    def get_config(self):
        return {**super().get_config(), "vocoder": keras.saving.serialize_keras_object(self.vocoder),
                "num_speakers": self.num_speakers, "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "encoder_layers": self.encoder_layers, "decoder_channels": self.decoder_channels,
                "decoder_layers": self.decoder_layers, "kernel_size": self.kernel_size, "harmonics": self.harmonics,
                "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def samples_before(ends):
    """float32 ``[batch, 64000]``: 1 where the sample index is below the row's ``ends`` (int32 [batch]), else 0.

    Compared frame by frame (frame f, sample o in it: ``f * 80 + o < end``): a ``tf.range(64000)`` compared
    directly is folded by the TFLite converter into a 256 KB constant in each of the three files."""
    frame = tf.range(MAX_FRAMES)[None, :, None]
    offset = tf.range(HOP_LENGTH)[None, None, :]
    end_frame, end_offset = (ends // HOP_LENGTH)[:, None, None], (ends % HOP_LENGTH)[:, None, None]
    before = tf.logical_or(frame < end_frame, tf.logical_and(frame == end_frame, offset < end_offset))
    return tf.reshape(tf.cast(before, tf.float32), [-1, MAX_SAMPLES])


def boundaries(digits, speech, pause):
    """``int32 [batch, 9]``: the sample where each digit's speech starts, then where the last one ends (at most
    64,000); -1 after that."""
    speech, pause = tf.cast(speech, tf.int32), tf.cast(pause, tf.int32)
    ends = tf.cumsum(speech + pause, axis=1)
    starts = ends - speech - pause
    count = tf.reduce_sum(tf.cast(digits >= 0, tf.int32), axis=1)
    total = tf.reduce_max(ends, axis=1)  # no pause after the last digit: where its speech ends
    index = tf.range(BOUNDARIES)[None, :]
    starts = tf.concat([starts, tf.zeros_like(starts[:, :1])], axis=1)
    marks = tf.where(index < count[:, None], starts, tf.where(index == count[:, None], total[:, None], -1))
    return tf.where(marks >= 0, tf.minimum(marks * HOP_LENGTH, MAX_SAMPLES), -1)
