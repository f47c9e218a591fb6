"""The GANs' building blocks: spectrally normalised layers and the DCGAN networks, with or without labels.

- :class:`SpectralConv2D` / :class:`SpectralDense` (Miyato et al. 2018, "Spectral Normalization
  for Generative Adversarial Networks", arXiv:1802.05957): the kernel is divided by its largest
  singular value, estimated by one power iteration per training call, so the discriminator is
  1-Lipschitz per layer. Unlike ``keras.layers.SpectralNormalization``, which overwrites the kernel
  with ``W / sigma`` on every training call, these keep ``W`` and normalise in the forward pass, so
  the gradient flows through ``sigma`` as in the paper.
- :class:`ConvGAN`: an :class:`~zoo.core.nn.adversarial.AdversarialModel` with them, what ``zoo.dcgan``'s
  DCGAN and ``zoo.cdcgan``'s CDCGAN are.
- :class:`ConvGenerator` / :class:`ConvDiscriminator`: the DCGAN networks (Radford et al. 2016).
  With ``num_classes`` the generator concatenates a label embedding to the noise (Mirza & Osindero
  2014) and the discriminator adds a projection term ``<embed(y), features>`` to its logit
  (Miyato & Koyama 2018, "cGANs with Projection Discriminator", arXiv:1802.05637).
"""

import keras
from keras import layers, ops

from zoo.core.nn.adversarial import MNIST_SHAPE, AdversarialModel


def _normalize(vector):
    return vector / (ops.sqrt(ops.sum(ops.square(vector))) + 1e-12)


def spectrally_normalized(kernel, singular_vector, training):
    """``kernel / sigma(kernel)``, sigma from one power iteration from ``singular_vector`` (updated when training)."""
    matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))  # [fan_in, units]
    v = ops.stop_gradient(_normalize(ops.matmul(singular_vector, ops.transpose(matrix))))  # [1, fan_in]
    u = ops.stop_gradient(_normalize(ops.matmul(v, matrix)))  # [1, units]
    if training:
        singular_vector.assign(u)
    sigma = ops.sum(ops.matmul(v, matrix) * u)
    return kernel / sigma


class _SpectralKernel:
    """Adds the power iteration's vector to a layer with a ``kernel`` whose last axis is the output."""

    def _add_singular_vector(self):
        self.singular_vector = self.add_weight(
            shape=(1, self.kernel.shape[-1]), initializer=keras.initializers.RandomNormal(seed=0),
            trainable=False, name="singular_vector",
            aggregation="mean")  # every replica computes the same vector; mean keeps mirrored copies equal

    # Keras' Conv2D and Dense save their kernel and bias only; the power iteration's vector is state too.
    def _own_variables(self):
        return [self._kernel] + ([self.bias] if self.use_bias else []) + [self.singular_vector]

    def save_own_variables(self, store):
        for i, variable in enumerate(self._own_variables()):
            store[str(i)] = variable

    def load_own_variables(self, store):
        variables = self._own_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(f"layer {self.name!r} expects {len(variables)} variables, the file has {len(store.keys())}")
        for i, variable in enumerate(variables):
            variable.assign(store[str(i)])


@keras.saving.register_keras_serializable(package="zoo")
class SpectralConv2D(_SpectralKernel, layers.Conv2D):
    """``Conv2D`` whose kernel is divided by its spectral norm (channels-last)."""

    def build(self, input_shape):
        super().build(input_shape)
        self._add_singular_vector()

    def call(self, inputs, training=False):
        outputs = self.convolution_op(inputs, spectrally_normalized(self.kernel, self.singular_vector, training))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="zoo")
class SpectralDense(_SpectralKernel, layers.Dense):
    """``Dense`` whose kernel is divided by its spectral norm."""

    def build(self, input_shape):
        super().build(input_shape)
        self._add_singular_vector()

    def call(self, inputs, training=False):
        outputs = ops.matmul(inputs, spectrally_normalized(self.kernel, self.singular_vector, training))
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


def dense(units, spectral_norm=False, **kwargs):
    """A ``Dense`` layer, spectrally normalised on request (discriminators)."""
    return (SpectralDense if spectral_norm else layers.Dense)(units, **kwargs)


def conv2d(filters, kernel_size, spectral_norm=False, **kwargs):
    """A ``Conv2D`` layer, spectrally normalised on request (discriminators)."""
    return (SpectralConv2D if spectral_norm else layers.Conv2D)(filters, kernel_size, **kwargs)


class SequentialNetwork(keras.Model):
    """A network that is a list of layers, built layer by layer from the input shape (no dummy call)."""

    def _build_stack(self, stack, shape):
        for layer in stack:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        return shape

    def _run_stack(self, stack, x, training):
        for layer in stack:
            x = layer(x, training=training)
        return x


@keras.saving.register_keras_serializable(package="zoo")
class ConvGenerator(SequentialNetwork):
    """Noise ``[batch, latent_dim]`` (and labels ``[batch]``) -> images ``[batch, 28, 28, 1]`` in [-1, 1].

    A dense projection to 7x7x(4f), then two stride-2 transposed convolutions
    (7 -> 14 -> 28), batch norm and ReLU between them, a 3x3 convolution and tanh
    at the end, as the DCGAN paper prescribes (no pooling, no dense hidden layers).
    With ``num_classes``, an embedding of the label (``latent_dim`` wide) is
    concatenated to the noise first.

    Args:
        latent_dim: size of the noise vector.
        filters: width f of the last hidden layer; earlier ones are 2f and 4f.
        num_classes: 0 for an unconditional generator, else the number of labels.
    """

    def __init__(self, latent_dim=64, filters=32, num_classes=0, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.latent_dim = int(latent_dim)
        self.filters = int(filters)
        self.num_classes = int(num_classes)
        f = self.filters
        # === Layers ===
        self.label_embedding = layers.Embedding(self.num_classes, self.latent_dim) if self.num_classes else None
        self.stack = [
            layers.Dense(7 * 7 * 4 * f, use_bias=False),
            layers.BatchNormalization(synchronized=True),  # global batch statistics under tf.distribute
            layers.ReLU(),
            layers.Reshape((7, 7, 4 * f)),
            layers.Conv2DTranspose(2 * f, 4, strides=2, padding="same", use_bias=False),  # 14x14
            layers.BatchNormalization(synchronized=True),
            layers.ReLU(),
            layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False),  # 28x28
            layers.BatchNormalization(synchronized=True),
            layers.ReLU(),
            layers.Conv2D(MNIST_SHAPE[-1], 3, padding="same", activation="tanh"),
        ]

    def build(self, input_shape):
        if self.label_embedding is not None:
            self.label_embedding.build((input_shape[0],))
            input_shape = (input_shape[0], 2 * self.latent_dim)
        self._build_stack(self.stack, input_shape)
        self.built = True

    def call(self, noise, labels=None, training=False):
        x = noise
        if self.label_embedding is not None:
            # A negative label is moved past the table, so a bare LiteRT interpreter's GATHER refuses it
            # ("gather index out of bounds") as it refuses one above the last class, instead of wrapping.
            labels = ops.where(labels < 0, self.num_classes, labels)
            x = ops.concatenate([noise, self.label_embedding(labels)], axis=-1)
        return self._run_stack(self.stack, x, training)

    def get_config(self):
        config = {**super().get_config(), "latent_dim": self.latent_dim, "filters": self.filters}
        return {**config, "num_classes": self.num_classes} if self.num_classes else config


@keras.saving.register_keras_serializable(package="zoo")
class ConvDiscriminator(SequentialNetwork):
    """Images ``[batch, 28, 28, 1]`` in [-1, 1] (and labels ``[batch]``) -> one real-vs-fake logit each.

    Two stride-2 convolutions (28 -> 14 -> 7) with LeakyReLU(0.2), as in DCGAN, and
    dropout instead of batch norm: the discriminator then sees real and fake
    batches separately without batch statistics leaking between them. With
    ``num_classes``, the logit gains the projection ``<embed(label), features>``.

    Args:
        filters: width of the first convolution is 2f, of the second 4f.
        dropout: dropout rate after each convolution.
        spectral_norm: divide every kernel by its spectral norm (SN-GAN).
        num_classes: 0 for an unconditional discriminator, else the number of labels.
    """

    def __init__(self, filters=32, dropout=0.3, spectral_norm=False, num_classes=0, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.dropout = float(dropout)
        self.spectral_norm = bool(spectral_norm)
        self.num_classes = int(num_classes)
        f, sn = self.filters, self.spectral_norm
        self.stack = [
            conv2d(2 * f, 4, sn, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Dropout(self.dropout),
            conv2d(4 * f, 4, sn, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Dropout(self.dropout),
            layers.Flatten(),
        ]
        self.to_logit = dense(1, sn)
        self.label_projection = (layers.Embedding(self.num_classes, 7 * 7 * 4 * f, embeddings_initializer="zeros")
                                 if self.num_classes else None)

    def build(self, input_shape):
        features = self._build_stack(self.stack, input_shape)
        self.to_logit.build(features)
        if self.label_projection is not None:
            self.label_projection.build((input_shape[0],))
        self.built = True

    def call(self, images, labels=None, training=False):
        features = self._run_stack(self.stack, images, training)
        logits = self.to_logit(features, training=training)
        if self.label_projection is not None:
            logits = logits + ops.sum(self.label_projection(labels) * features, axis=-1, keepdims=True)
        return logits

    def get_config(self):
        config = {**super().get_config(), "filters": self.filters, "dropout": self.dropout}
        if self.spectral_norm:
            config["spectral_norm"] = True
        return {**config, "num_classes": self.num_classes} if self.num_classes else config


class ConvGAN(AdversarialModel):
    """The DCGAN networks trained adversarially; class-conditional with ``num_classes``.

    Args:
        latent_dim: size of the noise vector.
        filters: base width of both networks.
        dropout: the discriminator's dropout rate.
        discriminator_filters: the discriminator's own base width (default ``filters``).
        **kwargs: ``ema_decay``, ``label_smoothing``, ``loss``, ``r1_gamma``, ``spectral_norm``,
            ``num_classes``, ``seed`` (see :class:`zoo.core.nn.adversarial.AdversarialModel`).
    """

    def __init__(self, latent_dim=64, filters=32, dropout=0.3, discriminator_filters=None, **kwargs):
        super().__init__(latent_dim=latent_dim, **kwargs)
        self.filters = int(filters)
        self.dropout = float(dropout)
        self.discriminator_filters = int(discriminator_filters or filters)
        self.set_networks(
            ConvGenerator(self.latent_dim, self.filters, self.num_classes, name="generator"),
            ConvDiscriminator(self.discriminator_filters, dropout=self.dropout, spectral_norm=self.spectral_norm,
                              num_classes=self.num_classes, name="discriminator"),
        )

    def get_config(self):
        config = {**super().get_config(), "filters": self.filters}
        if self.discriminator_filters != self.filters:
            config["discriminator_filters"] = self.discriminator_filters
        return {**config, "dropout": self.dropout} if self.dropout != 0.3 else config
