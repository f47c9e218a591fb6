"""Export, sample and evaluate the diffusion model.

    python -m zoo export diffusion
    python -m zoo sample diffusion --digit 7 --guidance 2.0 --steps 50

Signatures (SavedModel and TFLite, builtin ops only):
- ``serving_default`` / ``generate``: ``noise [b, 28, 28, 1]``, ``labels int32 [b]`` (NULL_LABEL = 10 for
  unconditional), ``guidance float32 [b]`` -> ``images`` in [0, 1], DDIM with GENERATE_STEPS steps in the graph;
- ``denoise_step``: ``images_t``, ``timestep int32 [b]``, ``labels``, ``guidance`` -> ``predicted_noise``, for an
  app's own loop (``reference_loop`` below, in NumPy, reproduces ``generate``).
"""

import numpy as np

from zoo.core import export as core_export
from zoo.core.artifacts import KerasFileModel
from zoo.core.errors import BadInputError
from zoo.core.paths import EXPORTED_DIR
from zoo.diffusion import tflite_sample
from zoo.diffusion.model import IMAGE_SHAPE, NULL_LABEL, NUM_CLASSES, ddim_timesteps

NAME = "diffusion"
GENERATE_STEPS = 50
EVAL_SEED = 12345


def signatures(model, steps=GENERATE_STEPS):
    import tensorflow as tf

    batch = [None]
    last_timestep = model.num_timesteps - 1
    noise = (tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32), "standard-normal starting noise x_T")
    labels = (tf.TensorSpec(batch, tf.int32), f"digit 0-9, or {NULL_LABEL} for no label (unconditional)")
    guidance = (tf.TensorSpec(batch, tf.float32), "classifier-free guidance weight: 0 unconditional, 1 conditional")
    ranges = {"labels": (0, NULL_LABEL)}

    def checked(labels, guidance, timestep=None):
        """The inputs, after asserts that give TF Serving clients a clear error (TFLite drops them;
        the zoo's runners check the manifest's ranges instead)."""
        checks = [
            tf.debugging.assert_non_negative(labels, message=f"labels must be digits 0-9 or {NULL_LABEL} (no label)"),
            tf.debugging.assert_less_equal(labels, NULL_LABEL,
                                           message=f"labels must be digits 0-9 or {NULL_LABEL} (no label)"),
            tf.debugging.assert_all_finite(guidance, message="guidance must be finite"),
        ]
        if timestep is not None:
            checks += [tf.debugging.assert_non_negative(timestep, message=f"timestep must be in 0..{last_timestep}"),
                       tf.debugging.assert_less_equal(timestep, last_timestep,
                                                      message=f"timestep must be in 0..{last_timestep}")]
        with tf.control_dependencies(checks):
            return [tf.identity(labels), tf.identity(guidance)] + ([tf.identity(timestep)] if timestep is not None
                                                                    else [])

    def generate(noise, labels, guidance):
        labels, guidance = checked(labels, guidance)
        return model.generate(noise, labels, guidance, steps=steps)

    def denoise_step(images_t, timestep, labels, guidance):
        labels, guidance, timestep = checked(labels, guidance, timestep)
        return model.denoise_step(images_t, timestep, labels, guidance)

    generated = {"images": "digits, float32 [batch, 28, 28, 1] in [0, 1]"}
    inputs = {"noise": noise, "labels": labels, "guidance": guidance}
    example = {"labels": 7, "guidance": 2.0}
    return [
        core_export.Signature("serving_default", generate, inputs, generated, ranges=ranges, example=example),
        core_export.Signature("generate", generate, inputs, generated, ranges=ranges, example=example),
        core_export.Signature("denoise_step", denoise_step, {
            "images_t": (tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32), "the noisy images x_t, in [-1, 1] scale"),
            "timestep": (tf.TensorSpec(batch, tf.int32), f"t, 0..{last_timestep}"),
            "labels": labels, "guidance": guidance,
        }, {"predicted_noise": "guided noise estimate eps, [batch, 28, 28, 1]"},
            ranges={**ranges, "timestep": (0, last_timestep)}, example={**example, "timestep": 500}),
    ]


def check_labels_and_guidance(labels, guidance):
    labels, guidance = np.asarray(labels), np.asarray(guidance)
    if labels.size and (labels.min() < 0 or labels.max() > NULL_LABEL):
        raise BadInputError(f"labels must be digits 0-{NUM_CLASSES - 1} or {NULL_LABEL} (no label), "
                            f"got values from {labels.min()} to {labels.max()}")
    if not np.all(np.isfinite(guidance)):
        raise BadInputError("guidance must be finite")


SAMPLERS = {"ddim": tflite_sample.ddim_loop, "ddpm": tflite_sample.ddpm_loop}


def reference_loop(denoise_step, alpha_bars, noise, labels, guidance, steps=GENERATE_STEPS, on_step=None,
                   sampler="ddim", seed=0):
    """A sampler of ``tflite_sample`` over a ``denoise_step(images_t, timestep, labels, guidance) -> eps`` callable.

    What an app does with the ``denoise_step`` signature: "ddim" with the same
    noise reproduces ``generate``; "ddpm" is ancestral sampling (``seed`` draws its
    per-step noise). ``on_step(i, x0_estimate, images)`` can show progress.
    """
    if sampler not in SAMPLERS:
        raise BadInputError(f"unknown sampler {sampler!r}; choose from {sorted(SAMPLERS)}")
    check_labels_and_guidance(labels, guidance)
    ddim_timesteps(len(alpha_bars), steps)  # refuses steps < 1 with a BadInputError
    extra = {"seed": seed} if sampler == "ddpm" else {}
    try:
        return SAMPLERS[sampler](denoise_step, alpha_bars, noise, labels, guidance, steps=steps, on_step=on_step,
                                 **extra)
    except ValueError as error:
        raise BadInputError(str(error)) from None


class KerasDiffusion(KerasFileModel):
    """Runs the signatures from ``diffusion.keras``, as graphs (eager calls would dominate a 50-step loop)."""

    def run(self, signature, inputs):
        import tensorflow as tf

        if not hasattr(self, "_functions"):
            model, steps = self.model, self.manifest.get("generate_steps", GENERATE_STEPS)  # what the files bake in
            image, batch = tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32), tf.TensorSpec([None], tf.int32)
            weights = tf.TensorSpec([None], tf.float32)
            generate = tf.function(lambda noise, labels, guidance: model.generate(noise, labels, guidance, steps=steps),
                                   input_signature=[image, batch, weights])
            self._functions = {"serving_default": generate, "generate": generate,
                               "denoise_step": tf.function(model.denoise_step, input_signature=[image, batch, batch,
                                                                                                 weights])}
        return {k: np.asarray(v) for k, v in self._functions[signature](*inputs.values()).items()}


def guided_samples(runner, num_samples, guidance=2.0, seed=EVAL_SEED, batch_size=100, progress=True, steps=None,
                   sampler="ddim", in_graph=True):
    """``num_samples`` digits with labels 0, 1, ..., 9, 0, ... and one guidance weight.

    DDIM with the exported step count runs the in-graph ``generate`` (unless
    ``in_graph`` is False); other step counts and DDPM run the loop over ``denoise_step``.
    """
    import keras

    generate_steps = runner.manifest.get("generate_steps", GENERATE_STEPS)
    steps = steps or generate_steps
    rng = np.random.default_rng(seed)
    labels = (np.arange(num_samples) % NUM_CLASSES).astype(np.int32)
    images = []
    bar = keras.utils.Progbar(num_samples, unit_name="image") if progress else None
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        noise = rng.standard_normal((n, *IMAGE_SHAPE)).astype(np.float32)
        weights = np.full(n, guidance, np.float32)
        if in_graph and sampler == "ddim" and steps == generate_steps:
            images.append(runner("generate", noise=noise, labels=labels[start : start + n], guidance=weights)["images"])
        else:
            images.append(reference_loop(
                lambda x, t, l, w: runner("denoise_step", images_t=x, timestep=t, labels=l, guidance=w)[
                    "predicted_noise"], _alpha_bars(runner), noise, labels[start : start + n], weights, steps=steps,
                sampler=sampler, seed=seed + start))
        if bar:
            bar.add(n)
    return np.concatenate(images), labels


def quality_of(runner, quality, num_samples, guidance=2.0, seed=EVAL_SEED, steps=None, sampler="ddim", **options):
    """Classifier FD and coverage of guided samples, and how often the classifier reads the asked-for digit."""
    steps = steps or runner.manifest.get("generate_steps", GENERATE_STEPS)
    images, labels = guided_samples(runner, num_samples, guidance, seed, steps=steps, sampler=sampler, **options)
    metrics = quality.evaluate(images)
    _, classes = quality.features_and_classes(images)
    metrics["guided_accuracy"] = round(float(np.mean(classes == labels)), 4)
    metrics["guidance"] = guidance
    metrics["sampler"] = sampler
    metrics["steps"] = steps
    return metrics


def export(*, run_dir=None, output_dir=EXPORTED_DIR, version=1, num_eval_samples=200, num_detailed_samples=2000):
    """Export the newest checkpoint of a diffusion run; FD, coverage and guided accuracy of every runtime.

    A 50-step sample costs 100 network calls (two per step, for guidance), so each
    runtime is measured on ``num_eval_samples`` (the same noise for all, so they
    compare), and the SavedModel once more on ``num_detailed_samples`` for the headline.
    """
    import os

    from zoo.core.metrics import MnistQuality
    from zoo.core.plotting import save_image_grid
    from zoo.diffusion.train import load_trained

    run_dir = run_dir or os.path.join("runs", NAME)
    model, run, state = load_trained(run_dir)
    quality = MnistQuality()

    def samples_fn(runner, path):
        rng = np.random.default_rng(0)
        noise = rng.standard_normal((100, *IMAGE_SHAPE)).astype(np.float32)
        labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.int32), 10)
        images = runner("generate", noise=noise, labels=labels, guidance=np.full(100, 2.0, np.float32))["images"]
        save_image_grid(images, path, columns=10,
                        title=f"diffusion: a row per digit, guidance 2, {GENERATE_STEPS} DDIM steps, diffusion.tflite")

    return core_export.export_model(
        NAME, signatures=signatures(model), output_dir=output_dir, version=version,
        description="Class-conditional DDPM on MNIST; DDIM sampling with classifier-free guidance.",
        paper=_paper(), training=core_export.training_record(run, state),
        keras_model=core_export.inference_copy(model), keras_loader="zoo.diffusion.export:KerasDiffusion",
        evaluate_fn=lambda runner: quality_of(runner, quality, num_eval_samples),
        detailed_evaluate_fn=lambda runner: quality_of(runner, quality, num_detailed_samples),
        samples_fn=samples_fn, primary_metric="frechet_distance",
        notes={"alpha_bars": [float(a) for a in model.alpha_bars.numpy()],
               "null_label": NULL_LABEL, "generate_steps": GENERATE_STEPS,
               "metric_definitions": {
                   "frechet_distance": f"classifier FD of num_samples guided samples (labels cycling 0-9, guidance "
                                       f"2, {GENERATE_STEPS} DDIM steps, noise default_rng({EVAL_SEED})) to the MNIST "
                                       "test digits; fewer samples than 10,000 bias it upwards",
                   "guided_accuracy": "fraction of samples the zoo's MNIST classifier reads as the digit asked for"}},
    )


def _paper():
    from zoo.core.registry import get_model

    return get_model(NAME).paper


def _alpha_bars(runner):
    return np.asarray(runner.manifest["alpha_bars"], np.float32)


def sample(*, digit=None, guidance=2.0, steps=GENERATE_STEPS, sampler="ddim", num=None, seed=0, output=None,
           runtime="tflite", variant="float32", exported_dir=EXPORTED_DIR, noise=None):
    """A grid of digits (``digit``: one digit; default: a row per digit) and write a PNG; returns its path.

    DDIM with the exported step count runs the in-graph ``generate``; any other step
    count, or ancestral DDPM sampling, runs the app's loop over ``denoise_step``.
    """
    import os

    from zoo.core.artifacts import load_exported
    from zoo.core.plotting import save_image_grid

    if noise is not None:
        raise BadInputError("--noise is not supported for the diffusion model; use --seed")
    if digit is not None and not 0 <= digit < NUM_CLASSES:
        raise BadInputError(f"--digit must be 0-{NUM_CLASSES - 1}, got {digit}")
    if sampler not in SAMPLERS:
        raise BadInputError(f"unknown sampler {sampler!r}; choose from {sorted(SAMPLERS)}")
    if steps < 1:
        raise BadInputError(f"--steps must be at least 1, got {steps}")
    runner = load_exported(NAME, runtime=runtime, variant=variant, exported_dir=exported_dir)
    num = num or (16 if digit is not None else 100)
    labels = (np.full(num, digit) if digit is not None else np.arange(num) * NUM_CLASSES // num).astype(np.int32)
    start = np.random.default_rng(seed).standard_normal((num, *IMAGE_SHAPE)).astype(np.float32)
    weights = np.full(num, guidance, np.float32)
    check_labels_and_guidance(labels, weights)
    generate_steps = runner.manifest.get("generate_steps", GENERATE_STEPS)
    if sampler == "ddim" and steps == generate_steps:
        images = runner("generate", noise=start, labels=labels, guidance=weights)["images"]
    else:
        import keras

        bar = keras.utils.Progbar(steps, unit_name="step")
        images = reference_loop(
            lambda x, t, l, w: runner("denoise_step", images_t=x, timestep=t, labels=l, guidance=w)["predicted_noise"],
            _alpha_bars(runner), start, labels, weights, steps=steps, sampler=sampler, seed=seed,
            on_step=lambda i, *_: bar.update(i + 1))
    output = output or os.path.join("samples", f"{NAME}.png")
    what = f"digit {digit}" if digit is not None else "a row per digit"
    save_image_grid(images, output, columns=int(np.ceil(np.sqrt(num))) if digit is not None else 10,
                    title=f"diffusion: {what}, guidance {guidance}, {steps} {sampler.upper()} steps ({runtime})")
    return output


def evaluate(*, runtime="tflite", variant="float32", num_samples=1000, guidance=2.0, steps=None, sampler="ddim",
             seed=None, exported_dir=EXPORTED_DIR):
    """FD, coverage and guided accuracy of the exported model's guided samples."""
    import json

    from zoo.core.artifacts import load_exported
    from zoo.core.metrics import MnistQuality

    if sampler not in SAMPLERS:
        raise BadInputError(f"unknown sampler {sampler!r}; choose from {sorted(SAMPLERS)}")
    if steps is not None and steps < 1:
        raise BadInputError(f"--steps must be at least 1, got {steps}")
    runner = load_exported(NAME, runtime=runtime, variant=variant, exported_dir=exported_dir)
    metrics = quality_of(runner, MnistQuality(), num_samples, guidance, EVAL_SEED if seed is None else seed,
                         steps=steps, sampler=sampler)
    print(json.dumps({"model": NAME, "runtime": runtime, "variant": variant, **metrics}, indent=2))
    return metrics
