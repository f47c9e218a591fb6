"""The flow's recipe: dequantized MNIST by maximum likelihood, ``log_prob``/``encode``/``decode``, bits/dim.

    python -m zoo train flow --epochs 40
    python -m zoo export flow
    python -m zoo sample flow --temperature 0.7
    python -m zoo evaluate flow          # test bits/dim (exported log_prob), FD at temperatures 0.7 and 1.0

Signatures (SavedModel and TFLite, builtin ops only):
- ``serving_default`` / ``decode``: ``noise [b, 784]`` standard normal (times a temperature) -> ``images`` in [0, 1];
- ``log_prob``: ``images [b, 28, 28, 1]``, dequantized by the caller as (x + u) / 256 -> ``log_density [b]``
  (nats, density on [0, 1]^784); bits/dim = 8 - mean(log_density) / (784 ln 2);
- ``encode``: ``images`` -> ``noise [b, 784]``, the exact inverse of ``decode``.

The learning rate follows a cosine decay over the whole run (to 10%), so
``--epochs`` is part of the run's config.
"""

import math

import numpy as np

from zoo.core import export as core_export
from zoo.core.data.datasets import mnist_training_data
from zoo.core.recipes.images import FD_DEFINITIONS, runtime_label, serving_input
from zoo.core.training.optimizers import CosineDecayAdam
from zoo.core.data.plotting import save_image_grid
from zoo.core.runtime.progress import progress_bar
from zoo.core.recipes.recipe import EVAL_SEED, Option, Recipe
from zoo.core.recipes.registry import register
from zoo.flow.model import PRESETS, FlowModel

TEMPERATURES = (0.7, 1.0)


def flow_signatures(model):
    import tensorflow as tf

    images = {"images": (tf.TensorSpec([None, *model.image_shape], tf.float32),
                         "dequantized digits (pixel + u) / 256, u ~ U[0, 1), float32 in [0, 1]")}
    noise = {"noise": (tf.TensorSpec([None, model.dimensions], tf.float32),
                       "standard-normal noise, one row per image; multiply by a temperature (e.g. 0.7) "
                       "for cleaner samples")}
    decoded = {"images": "generated digits, float32 in [0, 1] (0 = black background)"}

    def checked(images):
        """In-graph checks so TF Serving clients get a clear error (TFLite drops them; the zoo's
        runners check the manifest's range instead)."""
        message = "images must be in [0, 1]: dequantize 8-bit pixels as (pixel + u) / 256"
        checks = [tf.debugging.assert_greater_equal(images, 0.0, message=message),
                  tf.debugging.assert_less_equal(images, 1.0, message=message)]
        with tf.control_dependencies(checks):
            return tf.identity(images)

    def log_prob_images(images):
        return model.log_prob(checked(images))

    def encode_images(images):
        return model.encode(checked(images))

    def decode_noise(noise):
        return model.decode(noise)

    pixel_range = {"images": (0.0, 1.0)}
    return [
        core_export.Signature("serving_default", decode_noise, noise, decoded),
        core_export.Signature("decode", decode_noise, noise, decoded),
        core_export.Signature("log_prob", log_prob_images, images, {
            "log_density": "natural log of the model's density on [0, 1]^784 at each image (nats); "
                           "bits/dim = 8 - log_density / (784 ln 2)"}, ranges=pixel_range),
        core_export.Signature("encode", encode_images, images, {
            "noise": "the image's noise z = f(x), [batch, 784]; decode(encode(x)) = x"}, ranges=pixel_range),
    ]


def dequantized(images, seed):
    """MNIST pixels k / 255 -> (k + u) / 256, u ~ U[0, 1) from numpy default_rng(seed): the evaluation protocol."""
    pixels = np.round(np.asarray(images, np.float32) * 255.0)
    return ((pixels + np.random.default_rng(seed).uniform(size=pixels.shape)) / 256.0).astype(np.float32)


def bits_per_dim(runner, images, *, seed=EVAL_SEED, batch_size=500, progress=True):
    """Mean bits/dim of MNIST ``images`` (k / 255) through ``runner``'s ``log_prob``, with fixed dequantization."""
    x = dequantized(images, seed)
    dimensions = int(np.prod(x.shape[1:]))
    bar = progress_bar(len(x), unit_name="image") if progress else None
    densities = []
    for start in range(0, len(x), batch_size):
        densities.append(runner("log_prob", images=x[start : start + batch_size])["log_density"])
        if bar:
            bar.add(len(densities[-1]))
    return per_image_bits(np.concatenate(densities), dimensions)


def per_image_bits(log_density, dimensions=784):
    return 8.0 - np.asarray(log_density, np.float64) / (dimensions * math.log(2.0))


def temperature_samples(runner, num_samples, temperature, seed, batch_size=500):
    noise = core_export.noise_batches(serving_input(runner)[1]["shape"][1], num_samples, seed, batch_size)
    return np.concatenate([runner("decode", noise=temperature * n)["images"] for n in noise])


def temperature_key(temperature):
    return f"frechet_distance_t{temperature:g}".replace(".", "")


@register
class FlowRecipe(CosineDecayAdam, Recipe):
    name = "flow"
    summary = "multi-scale normalizing flow on MNIST: exact log_prob [batch], encode <-> decode noise [batch, 784]"
    paper = ("Dinh et al. (2017), Density estimation using Real NVP, arXiv:1605.08803; Kingma & Dhariwal (2018), "
             "Glow, arXiv:1807.03039")
    model_class = FlowModel
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 40, "batch_size": 128, "learning_rate": 1e-3}
    sample_help = ("Decode standard-normal noise times a temperature with the exported flow (sha256-checked "
                   "first) and write a PNG grid.")
    evaluate_help = ("Test bits/dim of the 10,000 MNIST test digits through the exported log_prob, and the FD of "
                     "samples at temperatures 0.7 and 1.0.")
    metrics = ["bits_per_dim", temperature_key(0.7), temperature_key(1.0)]

    options = (
        Option("num", int, 64, "how many digits", commands=("sample",), minimum=1),
        Option("temperature", float, 0.7, "scale of the standard-normal noise (1.0 is the model's own density)",
               commands=("sample",), above=0.0),
        Option("num_samples", int, 10000, "test digits scored and samples drawn per temperature",
               commands=("evaluate",), minimum=1),
        Option("num_eval_samples", int, 10000, "samples scored (FD) per temperature, runtime and variant",
               commands=("export",), minimum=1),
        Option("num_test_images", int, 10000, "test digits whose bits/dim each runtime and variant measures",
               commands=("export",), minimum=1),
    )

    # === Model ===
    def create_training_model(self, preset, seed):
        """A fresh flow whose ActNorms are initialised from 512 training digits (Glow's data-dependent init)."""
        from zoo.core.data.datasets import mnist_images

        model = self.create_model(preset, seed)
        images, _ = mnist_images("train", limit=512)
        model.initialize_actnorm(dequantized(images, seed))
        return model

    # === Training ===
    def training_data(self, model, *, batch_size, seed, limit):
        # Test bits/dim (fresh dequantization) is logged as val_loss for monitoring; the headline is the export's.
        return mnist_training_data(batch_size=batch_size, seed=seed, limit=limit,
                                   how="dequantized afresh each step as (pixel + u) / 256")

    def epoch_samples(self, model, seed):
        fixed_noise = 0.7 * np.random.default_rng(seed).standard_normal((64, model.dimensions)).astype("float32")
        return lambda m: m.generate(fixed_noise)

    # === Export ===
    def signatures(self, model):
        return flow_signatures(model)

    def export_plan(self, model, training, num_eval_samples, num_test_images):
        """Each runtime gets the test bits/dim of ``num_test_images`` digits through ``log_prob`` and the FD of
        ``num_eval_samples`` samples at each temperature through ``decode``."""
        from zoo.core.data.datasets import mnist_images
        from zoo.core.metrics.mnist import MnistQuality

        quality = MnistQuality()
        test_images, _ = mnist_images("test", limit=num_test_images)

        def evaluate(runner):
            return self._metrics(runner, test_images, num_eval_samples, EVAL_SEED, quality)

        def samples(runner, path):
            noise = core_export.noise_batches(model.dimensions, 100, 0)[0]
            save_image_grid(runner("decode", noise=0.7 * noise)["images"], path, columns=10,
                            title="flow: 100 samples at temperature 0.7 from flow.tflite (LiteRT), noise seed 0")

        return core_export.ExportPlan(
            name=self.name,
            signatures=self.signatures(model),
            description="Multi-scale normalizing flow (Glow-style) on dequantized MNIST: exact log-densities "
                        "(log_prob), encode to noise and decode noise to digits.",
            paper=self.paper,
            training=training,
            keras_model=self.keras_model(model),
            evaluate=evaluate,
            samples=samples,
            primary_metric=self.metrics[0],
            metric_summary=self.metrics,
            notes={"metric_definitions": {
                "bits_per_dim": f"8 - mean(log_density) / (784 ln 2) over {len(test_images)} MNIST test digits, "
                                f"dequantized once as (pixel + u) / 256 with numpy default_rng({EVAL_SEED}); "
                                "lower is better (RealNVP 1.06, Glow 1.05; independent pixels about 1.69)",
                **{temperature_key(t): f"classifier FD of {num_eval_samples} samples decoded from standard-normal "
                                       f"noise (default_rng({EVAL_SEED})) times {t}" for t in TEMPERATURES},
                "frechet_distance": FD_DEFINITIONS["frechet_distance"],
            }},
        )

    def _metrics(self, runner, test_images, num_samples, seed, quality):
        bits = bits_per_dim(runner, test_images, seed=seed)
        metrics = {"bits_per_dim": round(float(bits.mean()), 4), "num_test_images": int(len(bits))}
        for temperature in TEMPERATURES:
            scores = quality.evaluate(temperature_samples(runner, num_samples, temperature, seed))
            metrics[temperature_key(temperature)] = scores["frechet_distance"]
        return metrics

    # === Use ===
    def sample(self, runner, *, output, seed, num, temperature):
        images = temperature_samples(runner, num, temperature, seed)
        save_image_grid(images, output, title=f"flow: {num} samples at temperature {temperature:g}, "
                                              f"{runtime_label(runner)}, noise seed {seed}")
        return f"Wrote {num} digits (temperature {temperature:g}) to {output}"

    def evaluate(self, runner, *, seed, num_samples):
        """Test bits/dim through ``log_prob`` and the FD of samples at temperatures 0.7 and 1.0."""
        from zoo.core.data.datasets import mnist_images
        from zoo.core.metrics.mnist import MnistQuality

        test_images, _ = mnist_images("test", limit=num_samples)
        return self._metrics(runner, test_images, num_samples, seed, MnistQuality())
