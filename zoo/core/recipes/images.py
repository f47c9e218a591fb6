"""The noise -> images family: the GANs' recipe, and the sampling and scoring every MNIST image model shares.

``serving_default``: ``noise [batch, latent_dim]`` (standard normal) -> ``images
[batch, 28, 28, 1]`` in [0, 1]. Quality is the classifier Fréchet distance and
class coverage of :class:`zoo.core.metrics.mnist.MnistQuality` on noise from a fixed seed.
"""

import os

import numpy as np

from zoo.core import export as core_export
from zoo.core.nn.adversarial import generate_images
from zoo.core.data.datasets import mnist_training_data
from zoo.core.runtime.errors import BadInputError
from zoo.core.data.plotting import save_image_grid
from zoo.core.runtime.progress import progress_bar
from zoo.core.recipes.recipe import Option, Recipe

FD_DEFINITIONS = {
    "frechet_distance": "classifier Fréchet distance to the 10,000 MNIST test digits, features "
                        "from exported/mnist_classifier (lower is better)",
    "classes_covered": "digits (of 10) that get at least 1% of the generated samples",
}


def serving_input(runner):
    """``(name, spec)`` of ``serving_default``'s one input (the GANs' ``noise``, the VAE's ``latents``)."""
    (name, spec), = runner.signatures["serving_default"]["inputs"].items()
    return name, spec


def generate_from_runner(runner, noise_batches, signature="serving_default"):
    """The images of every batch of noise (a progress bar on a terminal: int8 files draw slowly)."""
    name, _ = serving_input(runner)
    bar = progress_bar(sum(len(n) for n in noise_batches), unit_name="image")
    images = []
    for noise in noise_batches:
        images.append(runner(signature, **{name: noise})["images"])
        if bar:
            bar.add(len(noise))
    return np.concatenate(images)


def standard_normal_input(runner, num, noise, seed):
    """``(array, where it came from)``: ``noise`` (an array or a ``.npy`` path) or ``num`` rows drawn with ``seed``."""
    input_name, spec = serving_input(runner)
    if noise is None:
        if num < 1:
            raise BadInputError(f"--num must be at least 1, got {num}")
        return np.random.default_rng(seed).standard_normal((num, spec["shape"][1])).astype(np.float32), \
            f"{input_name} seed {seed}"
    if isinstance(noise, str):
        try:
            return np.load(noise, allow_pickle=False), f"{input_name} from {noise}"
        except (OSError, ValueError) as error:
            raise BadInputError(f"cannot read noise from {noise}: {error}") from None
    return noise, f"given {input_name}"


def sample_grid(runner, name, *, output, seed, num, noise):
    """Images from ``serving_default`` of any standard-normal -> images model, as a PNG grid."""
    values, source = standard_normal_input(runner, num, noise, seed)
    input_name, _ = serving_input(runner)
    images = runner("serving_default", **{input_name: values})["images"]
    save_image_grid(images, output, title=f"{name}: {len(images)} samples, {runtime_label(runner)}, {source}")
    return f"Wrote {len(images)} digits to {output}"


def asked_digits(digit, num, num_classes=10):
    """The int32 labels ``sample --digit D --num N`` asks a class-conditional model for: N copies of D
    (default 16), or without ``--digit`` a row per class (default 100), and the words for the picture."""
    if digit is not None and not 0 <= digit < num_classes:
        raise BadInputError(f"--digit must be 0-{num_classes - 1}, got {digit}")
    num = num or (16 if digit is not None else 100)
    if num < 1:
        raise BadInputError(f"--num must be at least 1, got {num}")
    labels = np.full(num, digit) if digit is not None else np.arange(num) * num_classes // num
    return labels.astype(np.int32), (f"digit {digit}" if digit is not None else "a row per digit")


def save_asked_digits(images, output, digit, title):
    """:func:`asked_digits`' images as a square grid of one digit, or ten columns of every digit."""
    columns = int(np.ceil(np.sqrt(len(images)))) if digit is not None else 10
    save_image_grid(images, output, columns=columns, title=title)


def standard_normal_sample_options(input_name):
    """``sample``'s options for a model drawn from a standard-normal input (``--num``, ``--noise``)."""
    return (Option("num", int, 64, "how many digits", commands=("sample",), minimum=1),
            Option("noise", str, None, f"a .npy file of float32 {input_name} [n, latent_dim] to use instead of "
                                       "--num/--seed", commands=("sample",)))


def runtime_label(runner):
    from zoo.core.runtime.runners import KerasFileModel, SavedModelModel

    if isinstance(runner, SavedModelModel):
        return "SavedModel"
    if isinstance(runner, KerasFileModel):
        return "Keras"
    return f"TFLite {os.path.basename(getattr(runner, 'path', ''))} (LiteRT)"


def image_generator_signature(generator, latent_dim):
    """``serving_default``: noise [batch, latent_dim] -> images [batch, 28, 28, 1] in [0, 1]."""
    import tensorflow as tf

    return core_export.Signature(
        name="serving_default",
        function=lambda noise: {"images": generate_images(generator, noise)},
        inputs={"noise": (tf.TensorSpec([None, latent_dim], tf.float32),
                          "standard-normal noise, one row per image")},
        outputs={"images": "generated digits, float32 in [0, 1] (0 = black background)"},
    )


def noise_calibration(latent_dim, with_labels=False, seed=1):
    """``(representative_inputs, description)`` for a noise -> image generator's full-integer int8 file: the
    noise it is sampled with (standard normal, seed 1: not the evaluation's) and, for a conditional one, every
    label in turn."""
    def representative(signature):
        rng = np.random.default_rng(seed)
        for i in range(core_export.REPRESENTATIVE_ROWS):
            row = {"noise": rng.standard_normal((1, latent_dim)).astype(np.float32)}
            if with_labels:
                row["labels"] = np.array([i % 10], np.int32)
            yield row

    return representative, (f"{core_export.REPRESENTATIVE_ROWS} rows of standard-normal noise (seed {seed})"
                            + (", labels 0-9 in turn" if with_labels else ""))


DENOISER_LOOP_SIGNATURES = ("serving_default", "generate", "inpaint")


def denoiser_calibration(alpha_bars, conditioning, seed=1):
    """``(representative_inputs, description)`` for a diffusion model's calibrated int8 file.

    ``denoise_step``: the first :data:`~zoo.core.export.REPRESENTATIVE_ROWS` MNIST training digits (in [-1, 1])
    noised to timesteps spread evenly over 0..T-1 (every noise level the samplers visit). The in-graph loops
    (``serving_default``, ``generate``, ``inpaint``) on :data:`~zoo.core.export.REPRESENTATIVE_LOOP_ROWS` rows
    each, since a row runs the whole loop
    (``inpaint``: the test masks bottom, left and random in turn). ``conditioning(signature, i) -> dict`` gives
    row ``i``'s other inputs (labels, text, guidance, ...); a signature not named here (``encode_text``) gets
    only those, on :data:`~zoo.core.export.REPRESENTATIVE_ROWS` rows."""
    from zoo.core.apps.ddim import MASKS, add_noise, named_mask
    from zoo.core.data.datasets import mnist_images

    rows = core_export.REPRESENTATIVE_ROWS
    loop_rows = core_export.REPRESENTATIVE_LOOP_ROWS
    alpha_bars = np.asarray(alpha_bars, np.float32)
    digits = []  # read once, when the first image signature is calibrated

    def representative(signature):
        rng = np.random.default_rng(seed)
        if signature in ("denoise_step", "inpaint", "read_digit") and not digits:
            digits.append(mnist_images("train", limit=rows)[0])
        if signature == "denoise_step":
            timesteps = rng.permutation(np.linspace(0, len(alpha_bars) - 1, rows).round().astype(np.int32))
            for i, t in enumerate(timesteps):
                clean = digits[0][i:i + 1] * 2.0 - 1.0
                noise = rng.standard_normal(clean.shape).astype(np.float32)
                yield {"images_t": add_noise(clean, noise, alpha_bars[t]).astype(np.float32), "timestep": np.array([t], np.int32),
                       **conditioning(signature, i)}
        elif signature == "inpaint":
            for i in range(loop_rows):
                mask = named_mask(("bottom", "left", "random")[i % 3], 1, seed + i, (28, 28, 1))
                yield {"images": digits[0][i:i + 1], "mask": mask,
                       "noise": rng.standard_normal((1, 28, 28, 1)).astype(np.float32), **conditioning(signature, i)}
        elif signature == "read_digit":  # every kind of mask, in turn
            for i in range(rows):
                mask = named_mask(MASKS[i % len(MASKS)], 1, seed + i, (28, 28, 1))
                yield {"images": digits[0][i:i + 1], "mask": mask}
        elif signature in DENOISER_LOOP_SIGNATURES:
            for i in range(loop_rows):
                yield {"noise": rng.standard_normal((1, 28, 28, 1)).astype(np.float32), **conditioning(signature, i)}
        else:
            for i in range(rows):
                yield conditioning(signature, i)

    return representative, (f"denoise_step: the first {rows} MNIST training digits noised to timesteps spread over "
                            f"0..{len(alpha_bars) - 1} (seed {seed}); the in-graph loops (generate, serving_default, "
                            f"inpaint): {loop_rows} rows each, standard-normal noise, inpaint on training digits with "
                            "the bottom, left and random masks; read_digit: the training digits under each "
                            "named mask in turn")


def gan_training_options(preset, discriminator_learning_rate=None, convolutional=False):
    """``train``'s options for the GAN techniques, each defaulting to what ``preset`` (the model's default) uses;
    ``convolutional`` adds the discriminator's width (the DCGAN networks')."""
    from zoo.core.nn.adversarial import LOSSES

    train = ("train",)
    width = (Option("discriminator_filters", int, None, "base width f of the discriminator, whose convolutions are "
                    f"2f and 4f wide (default {preset.get('filters')}, the generator's)", commands=train,
                    minimum=1),) if convolutional else ()
    return width + (
        Option("loss", str, None, f"GAN loss: bce (non-saturating) or hinge (default {preset.get('loss', 'bce')}, "
                                  "the preset's)", commands=train, choices=LOSSES),
        Option("spectral_norm", bool, None, "spectrally normalise the discriminator (default "
                                            f"{'on' if preset.get('spectral_norm') else 'off'}, the preset's)",
               commands=train),
        Option("r1_gamma", float, None, "weight of the R1 penalty on real images, 0 = off (default "
                                        f"{preset.get('r1_gamma', 0.0)}, the preset's)", commands=train,
               minimum=0.0),
        Option("discriminator_learning_rate", float, None, "the discriminator's Adam learning rate, for two "
                                                           "time-scale updates (default "
                                                           f"{discriminator_learning_rate or 'the --learning-rate'})",
               commands=train, above=0.0),
    )


class ImageGeneratorRecipe(Recipe):
    """The recipe of an :class:`zoo.core.nn.adversarial.AdversarialModel` on MNIST (GAN, DCGAN).

    Trains on the 60,000 MNIST training digits in [-1, 1] (the generator's tanh range)
    with Adam(lr, beta_1=0.5) for both networks, as DCGAN does; exports only the EMA
    generator (the discriminator and optimizers are training state); scores FD.
    """

    defaults = {"epochs": 30, "learning_rate": 2e-4}
    sample_help = ("Draw digits from standard-normal noise with the exported generator (sha256-checked first) "
                   "and write a PNG grid.")
    evaluate_help = ("Classifier Fréchet distance and digit coverage of the exported generator's samples "
                     "(10,000 samples: about a minute in float32 on 2 CPU cores; the DCGAN's int8 file draws slower, "
                     "about 6 minutes: a progress bar shows the rest).")
    metrics = ["frechet_distance", "classes_covered"]

    @property
    def options(self):
        preset = self.presets[self.train_default("preset")]
        return (
            *standard_normal_sample_options("noise"),
            Option("num_samples", int, 10000, "generated digits to score (the manifest's metrics used 10000)",
                   commands=("evaluate",), minimum=1),
            Option("num_eval_samples", int, 10000, "generated digits scored per runtime and variant",
                   commands=("export",), minimum=1),
            *gan_training_options(preset, self.defaults.get("discriminator_learning_rate"),
                                  convolutional="filters" in preset),
        )

    # === Training ===
    def create_training_model(self, preset, seed, loss=None, spectral_norm=None, r1_gamma=None,
                              discriminator_filters=None, **options):
        """The preset's model, with the GAN options given on the command line in place of its own."""
        model = self.create_model(preset, seed)
        given = {k: v for k, v in (("loss", loss), ("spectral_norm", spectral_norm), ("r1_gamma", r1_gamma),
                                   ("discriminator_filters", discriminator_filters)) if v is not None}
        if not given:
            return model
        return self.model_class(**{**self.presets[preset], **given}, seed=seed)

    def training_data(self, model, *, batch_size, seed, limit):
        conditional = getattr(model, "conditional", False)
        return mnist_training_data(batch_size=batch_size, seed=seed, limit=limit, validation=False,
                                   how=f"{'with labels, ' if conditional else ''}scaled to [-1, 1]",
                                   value_range=(-1.0, 1.0), with_labels=conditional)

    def training_config(self, model, data, *, epochs, discriminator_learning_rate=None):
        rate = discriminator_learning_rate or self.defaults.get("discriminator_learning_rate")
        return {"discriminator_learning_rate": rate} if rate else {}

    def compile(self, model, config):
        import keras

        model.compile(
            generator_optimizer=keras.optimizers.Adam(config["learning_rate"], beta_1=0.5),
            # Two time-scale update rule (Heusel et al. 2017) when the run sets a discriminator rate of its own.
            discriminator_optimizer=keras.optimizers.Adam(
                config.get("discriminator_learning_rate", config["learning_rate"]), beta_1=0.5),
        )

    def epoch_samples(self, model, seed):
        fixed_noise = np.random.default_rng(seed).standard_normal((64, model.latent_dim)).astype("float32")
        return lambda m: m.generate(fixed_noise)

    # === Export ===
    def signatures(self, model):
        # The exported Keras file is the sampling generator itself; a training model hands over its own.
        generator = getattr(model, "sampling_generator", model)
        return [image_generator_signature(generator, generator.latent_dim)]

    def keras_model(self, model):
        return getattr(model, "sampling_generator", model)

    def export_plan(self, model, training, num_eval_samples):
        from zoo.core.metrics.mnist import MnistQuality

        generator = self.keras_model(model)
        quality = MnistQuality()
        batches = core_export.noise_batches(generator.latent_dim, num_eval_samples, self.eval_seed)

        def samples(runner, path):
            noise = core_export.noise_batches(generator.latent_dim, 100, 0)[0]
            save_image_grid(runner("serving_default", noise=noise)["images"], path, columns=10,
                            title=f"{self.name}: 100 samples from {self.name}.tflite (LiteRT), noise seed 0")

        representative, representative_data = noise_calibration(generator.latent_dim)

        return core_export.ExportPlan(
            name=self.name,
            signatures=self.signatures(generator),
            description=f"{self.model_class.__name__} trained on MNIST; sample by feeding standard-normal noise.",
            paper=self.paper,
            training=training,
            keras_model=generator,
            evaluate=lambda runner: quality.evaluate(generate_from_runner(runner, batches)),
            samples=samples,
            primary_metric=self.metrics[0],
            metric_summary=self.metrics,
            representative_inputs=representative,
            representative_data=representative_data,
            notes={
                "metric_definitions": {
                    **FD_DEFINITIONS,
                    "num_samples": f"generated from standard-normal noise, numpy default_rng({self.eval_seed})",
                },
                "reference_metrics": {"real_train_vs_real_test": quality.real_data_floor(num_eval_samples)},
            },
        )

    # === Use ===
    def sample(self, runner, *, output, seed, num, noise):
        return sample_grid(runner, self.name, output=output, seed=seed, num=num, noise=noise)

    def evaluate(self, runner, *, seed, num_samples):
        from zoo.core.metrics.mnist import MnistQuality

        _, spec = serving_input(runner)
        batches = core_export.noise_batches(spec["shape"][1], num_samples, seed)
        return MnistQuality().evaluate(generate_from_runner(runner, batches))
