"""Export, sample and evaluate the noise -> images models (GAN, DCGAN).

    python -m zoo export gan      # runs/gan -> exported/gan/
    python -m zoo sample gan      # exported/gan -> samples/gan.png
    python -m zoo evaluate gan --variant int8
"""

import functools
import json
import os

import numpy as np

from zoo.core import export as core_export
from zoo.core.artifacts import KerasFileModel, load_exported
from zoo.core.errors import BadInputError
from zoo.core.paths import EXPORTED_DIR
from zoo.core.plotting import save_image_grid
from zoo.gan.model import GAN, PRESETS, generate_images
from zoo.gan.train import load_trained_adversarial

EVAL_SEED = 12345  # noise seed of every quality measurement, so numbers compare


def image_generator_signature(model):
    """``serving_default``: noise [batch, latent_dim] -> images [batch, 28, 28, 1] in [0, 1]."""
    import tensorflow as tf

    # Only the sampling generator is exported: the discriminator, the raw generator
    # and the optimizers are training state, not part of the served function.
    generator = model.sampling_generator
    return core_export.Signature(
        name="serving_default",
        function=lambda noise: {"images": generate_images(generator, noise)},
        inputs={"noise": (tf.TensorSpec([None, model.latent_dim], tf.float32),
                          "standard-normal noise, one row per image")},
        outputs={"images": "generated digits, float32 in [0, 1] (0 = black background)"},
    )


class KerasImageGenerator(KerasFileModel):
    """Runs ``serving_default`` from the exported ``<model>.keras`` generator."""

    def run(self, signature, inputs):
        return {"images": np.asarray(generate_images(self.model, inputs["noise"]))}


def serving_input(runner):
    """``(name, spec)`` of ``serving_default``'s one input (the GANs' ``noise``, the VAE's ``latents``)."""
    (name, spec), = runner.signatures["serving_default"]["inputs"].items()
    return name, spec


def generate_from_runner(runner, noise_batches):
    name, _ = serving_input(runner)
    return np.concatenate([runner("serving_default", **{name: n})["images"] for n in noise_batches])


def export_adversarial(model_class, presets, name, *, run_dir=None, output_dir=EXPORTED_DIR, version=1,
                       num_eval_samples=10000):
    """Export the newest checkpoint of a GAN-family run, measuring every variant."""
    from zoo.core.metrics import MnistQuality

    run_dir = run_dir or os.path.join("runs", name)
    model, run, state = load_trained_adversarial(model_class, presets, run_dir)
    quality = MnistQuality()
    batches = core_export.noise_batches(model.latent_dim, num_eval_samples, EVAL_SEED)
    floor = quality.real_data_floor(num_eval_samples)

    def evaluate_fn(runner):
        return quality.evaluate(generate_from_runner(runner, batches))

    def samples_fn(runner, path):
        noise = core_export.noise_batches(model.latent_dim, 100, 0)[0]
        save_image_grid(runner("serving_default", noise=noise)["images"], path, columns=10,
                        title=f"{name}: 100 samples from {name}.tflite (LiteRT), noise seed 0")

    training = core_export.training_record(run, state)
    path = core_export.export_model(
        name,
        signatures=[image_generator_signature(model)],
        output_dir=output_dir,
        version=version,
        description=f"{model_class.__name__} trained on MNIST; sample by feeding standard-normal noise.",
        paper=_paper(name),
        training=training,
        keras_model=model.sampling_generator,
        keras_loader="zoo.gan.export:KerasImageGenerator",
        evaluate_fn=evaluate_fn,
        samples_fn=samples_fn,
        primary_metric="frechet_distance",
        notes={
            "metric_definitions": {
                "frechet_distance": "classifier Fréchet distance to the 10,000 MNIST test digits, features "
                                    "from exported/mnist_classifier (lower is better)",
                "classes_covered": "digits (of 10) that get at least 1% of the generated samples",
                "num_samples": f"generated from standard-normal noise, numpy default_rng({EVAL_SEED})",
            },
            "reference_metrics": {"real_train_vs_real_test": floor},
        },
    )
    return path


def _paper(name):
    from zoo.core.registry import get_model

    return get_model(name).paper


def sample(name, *, num=64, seed=0, noise=None, output=None, runtime="tflite", variant="float32",
           exported_dir=EXPORTED_DIR):
    """Generate images from ``serving_default`` of an exported model and write a PNG grid; return its path.

    Works for every model whose ``serving_default`` maps one standard-normal
    input ``[batch, dim]`` (the GANs' ``noise``, the VAE's ``latents``) to ``images``.

    Args:
        num: how many images (ignored when ``noise`` is given).
        seed: seed of the standard-normal noise.
        noise: a ``[batch, dim]`` float32 array, or the path of a ``.npy`` file.
    """
    runner = load_exported(name, runtime=runtime, variant=variant, exported_dir=exported_dir)
    input_name, spec = serving_input(runner)
    if noise is None:
        if num < 1:
            raise BadInputError(f"--num must be at least 1, got {num}")
        noise = np.random.default_rng(seed).standard_normal((num, spec["shape"][1])).astype(np.float32)
        source = f"{input_name} seed {seed}"
    else:
        if isinstance(noise, str):
            try:
                noise = np.load(noise, allow_pickle=False)
            except (OSError, ValueError) as error:
                raise BadInputError(f"cannot read noise from {noise}: {error}") from None
            source = f"{input_name} from file"
        else:
            source = f"given {input_name}"
    images = runner("serving_default", **{input_name: noise})["images"]
    output = output or os.path.join("samples", f"{name}.png")
    what = f"{variant} TFLite (LiteRT)" if runtime == "tflite" else ("SavedModel" if runtime == "savedmodel" else "Keras")
    save_image_grid(images, output, title=f"{name}: {len(images)} samples, {what}, {source}")
    return output


def evaluate(name, *, runtime="tflite", variant="float32", num_samples=10000, seed=EVAL_SEED,
             exported_dir=EXPORTED_DIR):
    """Classifier Fréchet distance and class coverage of an exported model's samples."""
    from zoo.core.metrics import MnistQuality

    runner = load_exported(name, runtime=runtime, variant=variant, exported_dir=exported_dir)
    latent_dim = runner.signatures["serving_default"]["inputs"]["noise"]["shape"][1]
    images = generate_from_runner(runner, core_export.noise_batches(latent_dim, num_samples, seed))
    metrics = MnistQuality().evaluate(images)
    print(json.dumps({"model": name, "runtime": runtime, "variant": variant, **metrics}, indent=2))
    return metrics


def export(**options):
    return export_adversarial(GAN, PRESETS, "gan", **options)


sample_gan = functools.partial(sample, "gan")
evaluate_gan = functools.partial(evaluate, "gan")
