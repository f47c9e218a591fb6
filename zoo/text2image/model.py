"""Text-to-image diffusion on MNIST: a U-Net conditioned, through FiLM, on CLIP's frozen text embedding.

The way Stable Diffusion reuses CLIP's text encoder (Rombach et al. 2022), at MNIST's
scale: the prompt's UTF-8 bytes go through the trained CLIP text encoder (frozen,
taken from the registry's exported ``clip``), the embedding conditions every
residual block of the U-Net (``zoo.core.nn.unet``, FiLM), and 10% of training captions
are replaced by the empty prompt, so one network is also the unconditional model
that classifier-free guidance (Ho & Salimans 2022) pushes away from. Sampling is
DDIM (Song et al. 2021) in a ``tf.while_loop``.
"""

import keras
import tensorflow as tf

from zoo.core.data import captions
from zoo.core.nn.unet import DDIMSampling, guided_noise
from zoo.core.runtime.utf8 import TEXT_BYTES, encode_texts

PRESETS = {
    "tiny": {"text_encoder_preset": "tiny", "base_channels": 8, "channel_multipliers": (1, 2),
             "attention_resolutions": (), "num_timesteps": 100, "generate_steps": 4, "recognizer": True},
    "base": {"text_encoder_preset": "exported", "base_channels": 32, "channel_multipliers": (1, 2, 2),
             "attention_resolutions": (7,), "num_timesteps": 1000, "generate_steps": 25, "recognizer": True},
}
# what `inpaint` conditions a row with an empty prompt on, once its recognizer has read the digit
READ_DIGIT_PROMPTS = tuple(captions.class_prompts("en"))  # "the digit 0", ...


@keras.saving.register_keras_serializable(package="zoo")
class TextToImage(DDIMSampling, keras.Model):
    """DDPM training of a text-conditioned :class:`zoo.core.nn.unet.UNet`, an EMA copy for sampling, DDIM and guidance.

    Args:
        text_encoder: a Keras model from UTF-8 rows ``int32 [batch, 64]`` to unit embeddings
            (CLIP's, frozen here), or its serialized config (from a saved file).
        condition_dropout: fraction of training captions replaced by the empty prompt.
        ema_decay: decay of the sampling network's weight average.
        seed: seeds the U-Net's weights, timesteps, noise and caption dropout.
        generate_steps: the DDIM steps of :meth:`generate` (the exported in-graph loop).
        recognizer: also train a :class:`~zoo.core.nn.recognizer.VisibleDigitRecognizer`, with which
            ``inpaint`` reads the digit of a row with an empty prompt (False: a model saved before it had one).
        **unet_config: the U-Net's arguments.
    """

    def __init__(self, text_encoder, condition_dropout=0.1, ema_decay=0.999, seed=0, generate_steps=25,
                 recognizer=False, **unet_config):
        keras_kwargs = {k: unet_config.pop(k) for k in ("name", "trainable", "dtype") if k in unet_config}
        super().__init__(**keras_kwargs)
        if isinstance(text_encoder, dict):
            # CLIP's Keras classes are registered: the recipe requires ("clip",), imported first
            text_encoder = keras.saving.deserialize_keras_object(text_encoder)
        self.text_encoder = text_encoder
        self.text_encoder.trainable = False
        self.condition_dropout, self.ema_decay, self.seed = float(condition_dropout), float(ema_decay), int(seed)
        self.generate_steps = int(generate_steps)
        self.unet_config = {k: list(v) if isinstance(v, tuple) else v for k, v in unet_config.items()}
        self.embedding_dim = int(self.text_encoder(tf.zeros([1, TEXT_BYTES], tf.int32)).shape[-1])
        self.build_unets({**unet_config, "condition_dim": self.embedding_dim, "film": True},
                         condition=tf.zeros([1, self.embedding_dim]), recognizer=recognizer)

    def encode_text(self, text):
        """CLIP's unit embedding of UTF-8 rows ``int32 [batch, 64]`` (the empty prompt: all zeros)."""
        return tf.stop_gradient(self.text_encoder(text))

    def null_embedding(self, batch):
        """The empty prompt's embedding, ``[batch, D]``: what guidance pushes away from."""
        return tf.tile(self.encode_text(tf.zeros([1, TEXT_BYTES], tf.int32)), [batch, 1])

    def train_step(self, data):
        images, text, *digits = data  # images in [-1, 1], captions as UTF-8 rows, the digits (the recognizer's)
        batch = tf.shape(images)[0]
        noise, timestep, uniform = self.training_draws(batch)
        dropped = uniform < self.condition_dropout  # these rows learn the empty prompt: the unconditional model
        condition = tf.where(dropped[:, None], self.null_embedding(batch), self.encode_text(text))
        return self.noise_prediction_step(images, timestep, noise, condition, digits=digits[0] if digits else None)

    def test_step(self, data):
        images, text, *digits = data
        return self.validation_step(images, self.encode_text(text), digits=digits[0] if digits else None)

    def denoise_step(self, images_t, timestep, text_embedding, guidance):
        """Guided noise prediction against the empty prompt; guidance 0 is the unconditional model."""
        return {"predicted_noise": guided_noise(self.ema_unet, images_t, timestep, text_embedding,
                                                self.null_embedding(tf.shape(images_t)[0]), guidance)}

    def generate(self, text, noise, guidance, steps=None):
        """The prompt's embedding, then DDIM with ``steps`` steps (default ``generate_steps``): images
        ``[batch, 28, 28, 1]`` in [0, 1]."""
        steps = steps or self.generate_steps
        embedding = self.encode_text(text)
        return self.ddim_loop(self._predicted_noise, noise, steps, conditioning=(embedding, guidance))

    def inpaint(self, text, images, mask, noise, guidance, steps, resample):
        """Fill the pixels of ``images`` (in [0, 1]) where ``mask`` is 0 as the prompt asks, keeping the others
        exactly: RePaint with ``steps`` steps, each resampled ``resample`` times (``DDIMSampling.inpaint_loop``).
        A row with the empty prompt is completed as the digit the recognizer reads from its known pixels
        (conditioned on "the digit D"; guidance 0 still draws from the unconditional model)."""
        embedding = self.encode_text(text)
        if self.recognizer is not None:
            empty = tf.reduce_all(tf.equal(text, 0), axis=-1, keepdims=True)
            read = tf.gather(self.encode_text(tf.constant(encode_texts(list(READ_DIGIT_PROMPTS)))),
                             self.read_digits(images, mask)[0])
            embedding = tf.where(empty, read, embedding)
        return self.inpaint_loop(self._predicted_noise, images, mask, noise, steps, resample,
                                 conditioning=(embedding, guidance))

    def _predicted_noise(self, images_t, timestep, text_embedding, guidance):
        return self.denoise_step(images_t, timestep, text_embedding, guidance)["predicted_noise"]

    def get_config(self):
        return {**super().get_config(), "text_encoder": keras.saving.serialize_keras_object(self.text_encoder),
                "condition_dropout": self.condition_dropout, "ema_decay": self.ema_decay, "seed": self.seed,
                "generate_steps": self.generate_steps, "recognizer": self.recognizer is not None,
                **self.unet_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
