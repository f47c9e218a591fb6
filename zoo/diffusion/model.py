"""Class-conditional DDPM on MNIST with a small U-Net, DDIM sampling and classifier-free guidance.

Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models"; Song, Meng &
Ermon (2021), "Denoising Diffusion Implicit Models"; Ho & Salimans (2022),
"Classifier-Free Diffusion Guidance"; cosine schedule of Nichol & Dhariwal (2021).

Images live in [-1, 1] inside the model. ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``
with t in 0..T-1 (index t is the paper's step t + 1); the U-Net predicts eps from x_t,
t and a label (0-9, or NULL_LABEL = 10 for "no label", trained by dropping labels).
"""

import keras
import tensorflow as tf

from zoo.core.nn.unet import IMAGE_SHAPE, NUM_LABELS, DDIMSampling, UNet, ddim_timesteps, guided_noise  # noqa: F401

NUM_CLASSES = NUM_LABELS - 1
NULL_LABEL = NUM_CLASSES  # "no label": the unconditional model

PRESETS = {
    "tiny": {"base_channels": 8, "channel_multipliers": (1, 2), "attention_resolutions": (), "num_timesteps": 100,
             "recognizer": True},
    "base": {"base_channels": 48, "channel_multipliers": (1, 2, 2), "attention_resolutions": (7,),
             "num_timesteps": 1000, "recognizer": True},
}


@keras.saving.register_keras_serializable(package="zoo")
class Diffusion(DDIMSampling, keras.Model):
    """DDPM training of a :class:`UNet`, an EMA copy for sampling, DDIM and guidance.

    Args:
        label_dropout: fraction of training labels replaced by NULL_LABEL, so one
            network is both the conditional and the unconditional model.
        ema_decay: decay of the sampling network's weight average.
        seed: seeds the weights, timesteps, noise and label dropout.
        recognizer: also train a :class:`~zoo.core.nn.recognizer.VisibleDigitRecognizer`, with which
            ``inpaint`` reads the digit of a row labelled NULL_LABEL (False: a model saved before it had one).
        **unet_config: the :class:`UNet`'s arguments.
    """

    def __init__(self, label_dropout=0.1, ema_decay=0.999, seed=0, recognizer=False, **unet_config):
        keras_kwargs = {k: unet_config.pop(k) for k in ("name", "trainable", "dtype") if k in unet_config}
        super().__init__(**keras_kwargs)
        self.label_dropout, self.ema_decay, self.seed = float(label_dropout), float(ema_decay), int(seed)
        # lists, not tuples: the config must read back the same from a checkpoint's JSON
        self.unet_config = {k: list(v) if isinstance(v, tuple) else v for k, v in unet_config.items()}
        self.build_unets(unet_config, condition=tf.zeros([1], tf.int32), recognizer=recognizer)

    def train_step(self, data):
        images, digits = data  # images in [-1, 1], labels 0..9 (NULL_LABEL: your unlabelled images)
        digits = tf.cast(digits, tf.int32)
        noise, timestep, uniform = self.training_draws(tf.shape(images)[0])
        labels = tf.where(uniform < self.label_dropout, NULL_LABEL, digits)
        return self.noise_prediction_step(images, timestep, noise, labels, digits=digits)

    def test_step(self, data):
        images, labels = data
        labels = tf.cast(labels, tf.int32)
        return self.validation_step(images, labels, digits=labels)

    def denoise_step(self, images_t, timestep, labels, guidance):
        """Guided noise prediction: ``eps(x, none) + guidance * (eps(x, label) - eps(x, none))``.

        Guidance 0 is the unconditional model, 1 the conditional one; more pushes
        samples towards the label. Both predictions run as one batch.
        """
        return {"predicted_noise": guided_noise(self.ema_unet, images_t, timestep, labels,
                                                tf.fill(tf.shape(labels), NULL_LABEL), guidance)}

    def generate(self, noise, labels, guidance, steps=50):
        """DDIM with ``steps`` steps in a ``tf.while_loop``: images ``[batch, 28, 28, 1]`` in [0, 1]."""
        return self.ddim_loop(self._predicted_noise, noise, steps, conditioning=(labels, guidance))

    def inpaint(self, images, mask, noise, labels, guidance, steps, resample):
        """Fill the pixels of ``images`` (in [0, 1]) where ``mask`` is 0, keeping the others exactly:
        RePaint with ``steps`` steps, each resampled ``resample`` times (``DDIMSampling.inpaint_loop``). A row
        labelled NULL_LABEL is completed as the digit the recognizer reads from its known pixels (guidance 0
        still draws from the unconditional model)."""
        if self.recognizer is not None:
            labels = tf.where(labels == NULL_LABEL, self.read_digits(images, mask)[0], labels)
        return self.inpaint_loop(self._predicted_noise, images, mask, noise, steps, resample,
                                 conditioning=(labels, guidance))

    def _predicted_noise(self, images_t, timestep, labels, guidance):
        return self.denoise_step(images_t, timestep, labels, guidance)["predicted_noise"]

    def get_config(self):
        return {**super().get_config(), "label_dropout": self.label_dropout, "ema_decay": self.ema_decay,
                "seed": self.seed, "recognizer": self.recognizer is not None, **self.unet_config}
