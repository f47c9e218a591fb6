"""WaveNet that speaks a digit in a speaker's voice: a mel predictor plus a locally conditioned WaveNet vocoder.

van den Oord et al. (2016), "WaveNet: A Generative Model for Raw Audio", arXiv:1609.03499;
Paine et al. (2016), "Fast Wavenet Generation Algorithm", arXiv:1611.09482;
Shen et al. (2018), "Natural TTS Synthesis by Conditioning WaveNet on Mel Spectrogram
Predictions" (Tacotron 2), arXiv:1712.05884.

Two networks in one model, trained together:

- the *mel predictor*: digit and speaker embeddings -> an MLP -> a coarse log-mel
  spectrogram of the whole second ``[100 frames, 40 bands]`` (what Tacotron 2 does from
  text, here from a digit), trained with an L1 loss against the real clips' features;
- the *WaveNet*: causal dilated convolutions (kernel 2), gated tanh x sigmoid units,
  residual and skip connections, a 256-way mu-law softmax, conditioned locally on the
  log-mel frames (each frame's projection added in every layer for its 80 samples).
  Teacher-forced on real clips' features (with a little noise, so it tolerates the
  predictor's smoother ones).

Generation (:meth:`WaveNet.generate`): the predictor's frames condition the WaveNet,
which draws one sample at a time by inverse-CDF sampling of its softmax with one
uniform number per sample. The fast-WaveNet cache keeps, for a layer of dilation d,
a queue of its last d inputs, so a sample costs one matrix product per layer instead
of the whole receptive field; :meth:`WaveNet.step` takes and returns the queues as one
``state [batch, S]`` tensor (S = residual channels x the sum of the dilations).
"""

import keras
import tensorflow as tf
from keras import layers

from zoo.core.nn import distribute
from zoo.core.data.audio import CLIP_SAMPLES, HOP_LENGTH, MEL_BINS, MEL_FRAMES, MU_LAW_CHANNELS, mu_law_decode, mu_law_encode
from zoo.core.nn.inputs import check_float_input

GRADIENT_CLIP_NORM = 1.0
MEL_CENTER, MEL_SCALE = -4.0, 3.0  # log-mel features of FSDD: mean -4.1, std 2.9

PRESETS = {
    "tiny": {"num_speakers": 6, "residual_channels": 4, "skip_channels": 8, "dilations": [1, 2, 4, 1, 2, 4],
             "condition_channels": 8, "predictor_units": 16, "crop": 320},
    "base": {"num_speakers": 6, "residual_channels": 32, "skip_channels": 64,
             "dilations": [1, 2, 4, 8, 16, 32, 64, 128] * 2, "condition_channels": 64, "predictor_units": 256,
             "crop": 2400, "mel_noise": 0.1},
}


def _init(seed, k):
    return keras.initializers.GlorotUniform(seed=seed * 1000 + k)


@keras.saving.register_keras_serializable(package="zoo")
class WaveNet(keras.Model):
    """Mel predictor (digit, speaker -> log-mel) and mu-law WaveNet vocoder (log-mel -> 8 kHz audio).

    Args:
        num_speakers: speakers the embedding knows (the dataset's, sorted by name).
        residual_channels: R, the width of the residual stream (and of each queue entry).
        skip_channels: the width of the skip connections and the output head.
        dilations: one causal kernel-2 convolution per entry; the receptive field is 1 + sum.
        condition_channels: hidden width of the per-frame conditioning network.
        predictor_units: hidden width of the mel predictor's MLP.
        crop: training window in samples (a multiple of 80): one random crop per clip and epoch.
        mel_noise: standard deviation of the noise added to the normalised teacher features.
        temperature: the sampling temperature of generation (1: the model's own distribution).
        seed: initial weights and training noise.

    Example:
        >>> model = WaveNet(**PRESETS["tiny"])
        >>> model.generate(np.array([7], "int32"), np.array([1], "int32"), np.random.rand(1, 8000)).shape
        TensorShape([1, 8000])
    """

    def __init__(self, num_speakers=6, residual_channels=32, skip_channels=64, dilations=(1, 2, 4, 8, 16, 32, 64, 128),
                 condition_channels=64, predictor_units=256, crop=2400, mel_noise=0.0, temperature=1.0, seed=0,
                 **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.num_speakers = int(num_speakers)
        self.residual_channels = int(residual_channels)
        self.skip_channels = int(skip_channels)
        self.dilations = [int(d) for d in dilations]
        self.condition_channels = int(condition_channels)
        self.predictor_units = int(predictor_units)
        self.crop = int(crop)
        self.mel_noise = float(mel_noise)
        self.temperature = float(temperature)
        self.seed = int(seed)
        if self.crop % HOP_LENGTH or not 0 < self.crop <= CLIP_SAMPLES:
            raise ValueError(f"crop must be a multiple of {HOP_LENGTH} samples up to {CLIP_SAMPLES}, got {crop}")
        R, S, L = self.residual_channels, self.skip_channels, len(self.dilations)
        self.receptive_field = 1 + sum(self.dilations)
        self.state_size = R * sum(self.dilations)
        self.conditioning_size = 2 * R * L
        # the arithmetic of one generated sample: input, every layer's two taps and 1x1, the output head
        self.step_multiply_adds = R + L * (2 * R * 2 * R + R * (R + S)) + S * S + S * MU_LAW_CHANNELS
        # === Mel predictor ===
        self.digit_embedding = layers.Embedding(10, 32, name="digit_embedding",
                                                embeddings_initializer=keras.initializers.RandomNormal(seed=seed))
        self.speaker_embedding = layers.Embedding(self.num_speakers, 16, name="speaker_embedding",
                                                  embeddings_initializer=keras.initializers.RandomNormal(seed=seed + 1))
        # ReLU applied after the layer, as a Maximum op: TF 2.21's oneDNN fusion of a 2-D MatMul + BiasAdd + Relu
        # reads the kernel one step late inside a training tf.function (a weight set between two steps is not seen
        # by the next one; tested by the shared NaN test).
        # predictor_units=0: the vocoder alone (see :meth:`vocoder`)
        self.predictor_hidden = [layers.Dense(self.predictor_units, name=f"predictor_hidden{i}",
                                              kernel_initializer=_init(seed, 10 + i))
                                 for i in range(2 if self.predictor_units else 0)]
        self.predictor_output = layers.Dense(MEL_FRAMES * MEL_BINS, name="predictor_output",
                                             kernel_initializer=_init(seed, 12)) if self.predictor_units else None
        # === Conditioning: each log-mel frame -> every layer's gate bias for its 80 samples ===
        self.condition_hidden = layers.Dense(self.condition_channels, activation="relu", name="condition_hidden",
                                             kernel_initializer=_init(seed, 20))
        self.condition_output = layers.Dense(self.conditioning_size, name="condition_output",
                                             kernel_initializer=_init(seed, 21))
        # === WaveNet ===
        self.input_projection = layers.Dense(R, name="input_projection", kernel_initializer=_init(seed, 30))
        self.dilated_convs = [layers.Conv1D(2 * R, 2, dilation_rate=d, padding="causal", name=f"dilated_conv{i}",
                                            kernel_initializer=_init(seed, 100 + i))
                              for i, d in enumerate(self.dilations)]
        self.residual_skip = [layers.Dense(R + S, name=f"residual_skip{i}", kernel_initializer=_init(seed, 200 + i))
                              for i in range(L)]
        self.output_hidden = layers.Dense(S, activation="relu", name="output_hidden", kernel_initializer=_init(seed, 40))
        self.output_logits = layers.Dense(MU_LAW_CHANNELS, name="output_logits", kernel_initializer=_init(seed, 41))
        self.noise_generator = keras.random.SeedGenerator(seed + 7)
        self._build_all()
        # === Metrics ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.audio_loss_tracker = keras.metrics.Mean(name="audio_loss")
        self.mel_loss_tracker = keras.metrics.Mean(name="mel_loss")

    def _build_all(self):
        R, S = self.residual_channels, self.skip_channels
        self.digit_embedding.build((None,))
        self.speaker_embedding.build((None,))
        units = 48
        for layer in self.predictor_hidden:
            layer.build((None, units))
            units = self.predictor_units
        if self.predictor_output is not None:
            self.predictor_output.build((None, units))
        self.condition_hidden.build((None, None, MEL_BINS))
        self.condition_output.build((None, None, self.condition_channels))
        self.input_projection.build((None, None, 1))
        for conv, dense in zip(self.dilated_convs, self.residual_skip):
            conv.build((None, None, R))
            dense.build((None, None, R))
        self.output_hidden.build((None, None, S))
        self.output_logits.build((None, None, S))
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.audio_loss_tracker, self.mel_loss_tracker]

    # --- mel predictor and conditioning ----------------------------------------------------------

    def predict_mel(self, digit, speaker):
        """``digit, speaker int32 [batch]`` -> normalised log-mel ``[batch, 100, 40]``."""
        if self.predictor_output is None:
            raise ValueError("this WaveNet is a vocoder alone (predictor_units=0): it has no mel predictor")
        x = tf.concat([self.digit_embedding(digit), self.speaker_embedding(speaker)], axis=-1)
        for layer in self.predictor_hidden:
            x = tf.maximum(layer(x), 0.0)
        return tf.reshape(self.predictor_output(x), [-1, MEL_FRAMES, MEL_BINS])

    @staticmethod
    def normalize_mel(features):
        return (features - MEL_CENTER) / MEL_SCALE

    @staticmethod
    def denormalize_mel(mel):
        return mel * MEL_SCALE + MEL_CENTER

    def vocoder(self):
        """A copy without the mel predictor (``predictor_units=0``), sharing nothing: what a text-to-speech model
        that predicts its own spectrograms embeds (the predictor is 1.1 M of the base preset's 1.3 M weights)."""
        config = {k: v for k, v in self.get_config().items() if k not in ("name", "trainable", "dtype")}
        copy = WaveNet(**{**config, "predictor_units": 0}, name="vocoder")
        own = {w.path: w for w in self.weights}
        for weight in copy.weights:
            weight.assign(own[weight.path])
        return copy

    def conditioning(self, mel):
        """Normalised log-mel ``[batch, frames, 40]`` -> every layer's gate bias per frame ``[batch, frames, 2RL]``."""
        return self.condition_output(self.condition_hidden(mel))

    def condition(self, digit, speaker):
        """Signature ``condition``: the predicted ``mel`` (log-mel, as :func:`zoo.core.data.audio.log_mel`) and
        ``conditioning [batch, 100, 2RL]``, whose row ``t // 80`` the ``step`` of sample t takes."""
        mel = self.predict_mel(digit, speaker)
        return {"mel": self.denormalize_mel(mel), "conditioning": self.conditioning(mel)}

    # --- the convolutional forward pass (training, teacher forcing) --------------------------------

    def forward(self, previous, conditioning):
        """Logits ``[batch, time, 256]`` of each sample given the samples before it.

        Args:
            previous: ``[batch, time]`` the audio shifted right by one (sample t-1 at t; 0 at t = 0),
                mu-law quantised as generation feeds it back.
            conditioning: ``[batch, time // 80, 2RL]`` from :meth:`conditioning`.
        """
        R = self.residual_channels
        condition = tf.repeat(conditioning, HOP_LENGTH, axis=1)
        x = self.input_projection(previous[..., None])
        skips = 0.0
        for i, (conv, dense) in enumerate(zip(self.dilated_convs, self.residual_skip)):
            z = conv(x) + condition[..., 2 * R * i : 2 * R * (i + 1)]
            z = tf.tanh(z[..., :R]) * tf.sigmoid(z[..., R:])
            residual_skip = dense(z)
            x = x + residual_skip[..., :R]
            skips = skips + residual_skip[..., R:]
        return self.output_logits(self.output_hidden(tf.nn.relu(skips)))

    def call(self, inputs, training=False):
        """``{"audio": [batch, time], "mel": normalised [batch, time // 80, 40]}`` -> logits (teacher forcing)."""
        return self.forward(shift_right(quantize(inputs["audio"])), self.conditioning(inputs["mel"]))

    # --- training ----------------------------------------------------------------------------------

    def _audio_and_mel_losses(self, data, training):
        mel_target = self.normalize_mel(data["mel"])
        mel_loss = tf.reduce_mean(tf.abs(self.predict_mel(data["digit"], data["speaker"]) - mel_target))
        crop_mel = self.normalize_mel(data["crop_mel"])
        if training and self.mel_noise > 0:
            shape = tf.shape(crop_mel)
            crop_mel += distribute.draw_for_global_batch(
                lambda n: keras.random.normal((n, shape[1], shape[2]), stddev=self.mel_noise,
                                              seed=self.noise_generator), shape[0])
        audio = data["audio"]
        logits = self.forward(shift_right(quantize(audio)), self.conditioning(crop_mel))
        audio_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=mu_law_encode(audio), logits=logits))
        return audio_loss, mel_loss

    def train_step(self, data):
        with tf.GradientTape() as tape:
            audio_loss, mel_loss = self._audio_and_mel_losses(data, training=True)
            loss = audio_loss + mel_loss
            scaled = distribute.scale_loss(loss)
        gradients = distribute.clip_by_global_norm(tape.gradient(scaled, self.trainable_variables),
                                                   GRADIENT_CLIP_NORM)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._track(loss, audio_loss, mel_loss)

    def test_step(self, data):
        audio_loss, mel_loss = self._audio_and_mel_losses(data, training=False)
        return self._track(audio_loss + mel_loss, audio_loss, mel_loss)

    def _track(self, loss, audio_loss, mel_loss):
        self.loss_tracker.update_state(loss)
        self.audio_loss_tracker.update_state(audio_loss)
        self.mel_loss_tracker.update_state(mel_loss)
        return {m.name: m.result() for m in self.metrics}

    # --- generation: one sample at a time with the fast-WaveNet queues -----------------------------

    def check_state(self, state):
        return check_float_input(state, "state", (None, self.state_size))

    def zero_state(self, batch):
        return tf.zeros([batch, self.state_size])

    def step(self, conditioning, sample, noise, state):
        """Signature ``step``: one new sample from the previous one, the frame's conditioning and the queues.

        Args:
            conditioning: ``[batch, 2RL]``: row ``t // 80`` of :meth:`condition`'s ``conditioning``.
            sample: ``[batch]`` the previous output sample in [-1, 1] (0 for the first).
            noise: ``[batch]`` uniform in [0, 1): the draw for this sample.
            state: ``[batch, S]``: every layer's queue of its last d inputs, oldest first, layer by
                layer (zeros at the start of a clip: the silence before it).

        Returns:
            ``audio [batch]`` (a mu-law level in [-1, 1]) and the updated ``state``.
        """
        logits, state = self.step_logits(conditioning, sample, state)
        return {"audio": mu_law_decode(sample_level(logits / self.temperature, noise)), "state": state}

    def step_logits(self, conditioning, sample, state):
        """The next sample's ``logits [batch, 256]`` and the new ``state`` (see :meth:`step`)."""
        R = self.residual_channels
        x = self.input_projection(sample[:, None])
        skips = 0.0
        queues = tf.split(state, [R * d for d in self.dilations], axis=1)
        new_queues = []
        for i, (conv, dense, queue) in enumerate(zip(self.dilated_convs, self.residual_skip, queues)):
            # the queue of a dilation-d layer holds its inputs at t-d .. t-1: the oldest is the kernel's first tap
            kernel = tf.reshape(conv.kernel, [2 * R, 2 * R])
            z = tf.matmul(tf.concat([queue[:, :R], x], axis=1), kernel) + conv.bias
            z = z + conditioning[:, 2 * R * i : 2 * R * (i + 1)]
            new_queues += [queue[:, R:], x]
            z = tf.tanh(z[:, :R]) * tf.sigmoid(z[:, R:])
            residual_skip = dense(z)
            x = x + residual_skip[:, :R]
            skips = skips + residual_skip[:, R:]
        logits = self.output_logits(self.output_hidden(tf.nn.relu(skips)))
        return logits, tf.concat(new_queues, axis=1)

    def generate(self, digit, speaker, noise):
        """Signature ``serving_default``: ``digit``, ``speaker [batch]``, ``noise [batch, 8000]`` -> ``audio``."""
        return self.vocode(self.condition(digit, speaker)["conditioning"], noise)

    def vocode(self, conditioning, noise, num_frames=None):
        """Audio ``[batch, frames x 80]`` from ``conditioning [batch, frames, 2RL]`` and ``noise [batch, frames x 80]``.

        An in-graph loop (builtin ``WHILE`` in TFLite): for each frame, 80 :meth:`step` calls; the
        frame's 80 samples go into the output once per frame. ``num_frames`` (a scalar, optional) stops
        the loop early: the samples of the frames after it are zeros (a text-to-speech model's
        utterance shorter than its buffer).
        """
        batch, frames = tf.shape(conditioning)[0], tf.shape(conditioning)[1]
        num_frames = frames if num_frames is None else tf.minimum(tf.cast(num_frames, tf.int32), frames)
        noise = tf.reshape(noise, [batch, frames, HOP_LENGTH])
        sample_one_hot = tf.eye(HOP_LENGTH)

        def frame_body(f, sample, state, output):
            frame_conditioning = tf.gather(conditioning, f, axis=1)
            frame_noise = tf.gather(noise, f, axis=1)

            def sample_body(i, sample, state, chunk):
                out = self.step(frame_conditioning, sample, tf.gather(frame_noise, i, axis=1), state)
                chunk = chunk + out["audio"][:, None] * tf.gather(sample_one_hot, i)[None, :]
                return i + 1, out["audio"], out["state"], chunk

            _, sample, state, chunk = tf.while_loop(
                lambda i, *_: i < HOP_LENGTH, sample_body,
                [tf.constant(0), sample, state, tf.zeros_like(frame_noise)])  # not a FILL: loop_run_time_shapes
            frame_one_hot = tf.cast(tf.equal(tf.range(frames), f), tf.float32)
            output = output + frame_one_hot[None, :, None] * chunk[:, None, :]
            return f + 1, sample, state, output

        _, _, _, output = tf.while_loop(
            lambda f, *_: f < num_frames, frame_body,
            [tf.constant(0), tf.zeros([batch]), self.zero_state(batch), tf.zeros([batch, frames, HOP_LENGTH])])
        return tf.reshape(output, [batch, frames * HOP_LENGTH])

    def get_config(self):
        return {**super().get_config(), "num_speakers": self.num_speakers,
                "residual_channels": self.residual_channels, "skip_channels": self.skip_channels,
                "dilations": list(self.dilations), "condition_channels": self.condition_channels,
                "predictor_units": self.predictor_units, "crop": self.crop, "mel_noise": self.mel_noise,
                "temperature": self.temperature, "seed": self.seed}


def quantize(audio):
    """Audio rounded to its mu-law level: what the model feeds back to itself when it generates."""
    return mu_law_decode(mu_law_encode(audio))


def shift_right(audio):
    """``[batch, time]`` -> the sample before each one (0 before the first)."""
    return tf.pad(audio, [[0, 0], [1, 0]])[:, :-1]


def sample_level(logits, noise):
    """Inverse-CDF sampling: the first mu-law level whose cumulative probability exceeds ``noise`` (builtin ops)."""
    cumulative = tf.cumsum(tf.nn.softmax(logits, axis=-1), axis=-1)
    level = tf.reduce_sum(tf.cast(cumulative <= noise[:, None], tf.int32), axis=-1)
    return tf.minimum(level, MU_LAW_CHANNELS - 1)

