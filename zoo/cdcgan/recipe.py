"""The class-conditional DCGAN's recipe: labelled MNIST, noise + labels -> images, FD and label accuracy.

    python -m zoo train cdcgan --epochs 20
    python -m zoo export cdcgan
    python -m zoo sample cdcgan --digit 7

``serving_default``: ``noise float32 [batch, 64]`` (standard normal), ``labels int32 [batch]``
(0-9) -> ``images float32 [batch, 28, 28, 1]`` in [0, 1]. A label outside 0-9 is refused by
an in-graph assert in the SavedModel, by every zoo runner (the manifest's range) and by
LiteRT's own gather in a bare TFLite interpreter.
"""

import numpy as np

from zoo.cdcgan.model import NUM_CLASSES, PRESETS, CDCGAN
from zoo.core import export as core_export
from zoo.core.nn.adversarial import generate_images
from zoo.core.recipes.images import (FD_DEFINITIONS, ImageGeneratorRecipe, asked_digits, noise_calibration,
                                       runtime_label, save_asked_digits)
from zoo.core.data.plotting import save_image_grid
from zoo.core.runtime.progress import progress_bar
from zoo.core.recipes.recipe import Option
from zoo.core.recipes.registry import register

LABELS_MEANING = f"the digit to draw, 0-{NUM_CLASSES - 1}"


def conditional_signature(generator):
    """``serving_default``: noise and labels -> images, labels checked in the graph (TF Serving's clients)."""
    import tensorflow as tf

    message = f"labels must be digits 0-{NUM_CLASSES - 1}"

    def draw_digits(noise, labels):
        with tf.control_dependencies([tf.debugging.assert_non_negative(labels, message=message),
                                      tf.debugging.assert_less(labels, NUM_CLASSES, message=message)]):
            labels = tf.identity(labels)
        return {"images": generate_images(generator, noise, labels)}

    return core_export.Signature(
        name="serving_default",
        function=draw_digits,
        inputs={"noise": (tf.TensorSpec([None, generator.latent_dim], tf.float32),
                          "standard-normal noise, one row per image"),
                "labels": (tf.TensorSpec([None], tf.int32), LABELS_MEANING)},
        outputs={"images": "generated digits, float32 in [0, 1] (0 = black background)"},
        ranges={"labels": (0, NUM_CLASSES - 1)},
        example={"labels": 7},
    )


def labelled_samples(runner, num_samples, seed, batch_size=500, labels=None):
    """``(images, labels)``: ``num_samples`` digits, labels cycling 0-9 unless given, noise from ``seed``."""
    latent_dim = runner.signatures["serving_default"]["inputs"]["noise"]["shape"][1]
    labels = (np.arange(num_samples) % NUM_CLASSES if labels is None else np.asarray(labels)).astype(np.int32)
    noise = np.random.default_rng(seed).standard_normal((num_samples, latent_dim)).astype(np.float32)
    bar = progress_bar(num_samples, unit_name="image")
    images = []
    for i in range(0, num_samples, batch_size):
        images.append(runner("serving_default", noise=noise[i : i + batch_size],
                             labels=labels[i : i + batch_size])["images"])
        if bar:
            bar.add(len(images[-1]))
    return np.concatenate(images), labels


def labelled_quality(runner, quality, num_samples, seed):
    """FD and coverage of digits drawn with labels cycling 0-9, and how often the classifier reads the asked digit."""
    images, labels = labelled_samples(runner, num_samples, seed)
    features, classes = quality.features_and_classes(images)  # once: the FD and the accuracy share them
    metrics = quality.evaluate_features(features, classes)
    metrics["label_accuracy"] = round(float(np.mean(classes == labels)), 4)
    return metrics


def digit_rows(runner, seed=0, per_digit=10):
    """A row per digit, ``per_digit`` columns: what the sample pictures show."""
    labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.int32), per_digit)
    return labelled_samples(runner, len(labels), seed, labels=labels)[0]


@register
class CDCGANRecipe(ImageGeneratorRecipe):
    name = "cdcgan"
    summary = "class-conditional DCGAN on MNIST: noise [batch, 64] + digit labels [batch] -> digits [batch, 28, 28, 1]"
    paper = ("Mirza & Osindero (2014), Conditional Generative Adversarial Nets, arXiv:1411.1784; "
             "Miyato & Koyama (2018), cGANs with Projection Discriminator, arXiv:1802.05637")
    model_class = CDCGAN
    presets = PRESETS
    # SN-GAN / SAGAN's recipe: hinge loss and spectral norm (the presets), two time-scale rates.
    defaults = {**ImageGeneratorRecipe.defaults, "epochs": 20, "learning_rate": 1e-4,
                "discriminator_learning_rate": 4e-4}
    sample_help = ("Draw chosen digits (--digit) or a row per digit with the exported generator (sha256-checked "
                   "first) and write a PNG grid.")
    evaluate_help = ("Classifier Fréchet distance, digit coverage and label accuracy of the exported generator's "
                     "samples (10,000 samples, labels cycling 0-9: about a minute in float32 on 2 CPU cores; the int8 "
                     "file draws slower, several minutes: a progress bar shows the rest).")
    metrics = ["frechet_distance", "classes_covered", "label_accuracy"]

    @property
    def options(self):
        return (Option("digit", int, None, "draw only this digit (default: a row per digit)", commands=("sample",),
                       minimum=0, maximum=NUM_CLASSES - 1),
                Option("num", int, None, "how many digits (default 16 of --digit, else 100)", commands=("sample",),
                       minimum=1),
                *(o for o in super().options if o.commands != ("sample",)))

    def epoch_samples(self, model, seed):
        noise = np.random.default_rng(seed).standard_normal((100, model.latent_dim)).astype("float32")
        labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.int32), 10)
        return lambda m: m.generate(noise, labels)

    # === Export ===
    def signatures(self, model):
        return [conditional_signature(self.keras_model(model))]

    def export_plan(self, model, training, num_eval_samples):
        from zoo.core.metrics.mnist import MnistQuality

        generator = self.keras_model(model)
        quality = MnistQuality()

        def samples(runner, path):
            save_image_grid(digit_rows(runner), path, columns=10,
                            title=f"{self.name}: a row per digit 0-9, {self.name}.tflite (LiteRT), noise seed 0")

        representative, representative_data = noise_calibration(generator.latent_dim, with_labels=True)
        return core_export.ExportPlan(
            name=self.name,
            signatures=self.signatures(generator),
            description="Class-conditional DCGAN trained on MNIST; draws the digit each label asks for.",
            paper=self.paper,
            training=training,
            keras_model=generator,
            evaluate=lambda runner: labelled_quality(runner, quality, num_eval_samples, self.eval_seed),
            samples=samples,
            primary_metric=self.metrics[0],
            metric_summary=self.metrics,
            representative_inputs=representative,
            representative_data=representative_data,
            notes={
                "metric_definitions": {
                    **FD_DEFINITIONS,
                    "label_accuracy": "fraction of samples the zoo's MNIST classifier reads as the digit asked for",
                    "num_samples": f"labels cycling 0-9, standard-normal noise numpy default_rng({self.eval_seed})",
                },
                "reference_metrics": {"real_train_vs_real_test": quality.real_data_floor(num_eval_samples)},
            },
        )

    # === Use ===
    def sample(self, runner, *, output, seed, digit, num):
        labels, what = asked_digits(digit, num, NUM_CLASSES)
        images, _ = labelled_samples(runner, len(labels), seed, labels=labels)
        save_asked_digits(images, output, digit, f"{self.name}: {what}, {runtime_label(runner)}, noise seed {seed}")
        return f"Wrote {len(labels)} digits ({what}) to {output}"

    def evaluate(self, runner, *, seed, num_samples):
        from zoo.core.metrics.mnist import MnistQuality

        return labelled_quality(runner, MnistQuality(), num_samples, seed)
