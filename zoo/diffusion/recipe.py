"""The diffusion model's recipe: labelled MNIST, a cosine schedule, ``generate`` and ``denoise_step``, guided FD.

    python -m zoo train diffusion --epochs 12
    python -m zoo export diffusion
    python -m zoo sample diffusion --digit 7 --guidance 2.0 --steps 50

Signatures (SavedModel and TFLite, builtin ops only):
- ``serving_default`` / ``generate``: ``noise [b, 28, 28, 1]``, ``labels int32 [b]`` (NULL_LABEL = 10 for
  unconditional), ``guidance float32 [b]`` -> ``images`` in [0, 1], DDIM with GENERATE_STEPS steps in the graph;
- ``denoise_step``: ``images_t``, ``timestep int32 [b]``, ``labels``, ``guidance`` -> ``predicted_noise``, for an
  app's own loop (``reference_loop`` below, over ``zoo.core.apps.ddim``, the phone app's NumPy samplers, reproduces ``generate``).

The learning rate follows a cosine decay over the whole run (to 10%), so
``--epochs`` is part of the run's config. Sampling uses the EMA network.
"""

import numpy as np

from zoo.core import export as core_export
from zoo.core.data.datasets import mnist_training_data
from zoo.core.runtime.errors import BadInputError
from zoo.core.recipes import inpainting
from zoo.core.recipes.images import asked_digits, denoiser_calibration, save_asked_digits
from zoo.core.training.optimizers import CosineDecayAdam
from zoo.core.data.plotting import save_image_grid
from zoo.core.runtime.progress import progress_bar
from zoo.core.recipes.finetuning import FINE_TUNE_FROM, fine_tune_config
from zoo.core.recipes.recipe import EVAL_SEED, Option, Recipe
from zoo.core.recipes.registry import register

from zoo.core.apps import ddim
from zoo.diffusion.model import IMAGE_SHAPE, NULL_LABEL, NUM_CLASSES, PRESETS, Diffusion, ddim_timesteps

GENERATE_STEPS = 50
# RePaint's loop for `inpaint`: 25 steps, each resampled 10 times (241 network calls, about 5x `generate`);
# fewer resamplings leave seams between the known and the filled half (benchmarks: the card's table)
INPAINT_STEPS, INPAINT_RESAMPLE = 25, 10


def diffusion_signatures(model, steps=GENERATE_STEPS):
    import tensorflow as tf

    batch = [None]
    last_timestep = model.num_timesteps - 1
    noise = (tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32), "standard-normal starting noise x_T")
    labels = (tf.TensorSpec(batch, tf.int32), f"digit 0-9, or {NULL_LABEL} for no label (unconditional)")
    guidance = (tf.TensorSpec(batch, tf.float32),
                "classifier-free guidance weight, at least 0: 0 unconditional, 1 conditional, more: stronger")
    ranges = {"labels": (0, NULL_LABEL), "guidance": (0.0, None)}

    def checked(labels, guidance, timestep=None):
        """The inputs, after asserts that give TF Serving clients a clear error (TFLite drops them;
        the zoo's runners check the manifest's ranges instead)."""
        checks = [
            tf.debugging.assert_non_negative(labels, message=f"labels must be digits 0-9 or {NULL_LABEL} (no label)"),
            tf.debugging.assert_less_equal(labels, NULL_LABEL,
                                           message=f"labels must be digits 0-9 or {NULL_LABEL} (no label)"),
            tf.debugging.assert_all_finite(guidance, message="guidance must be finite"),
            tf.debugging.assert_non_negative(guidance, message="guidance must be at least 0 (0: unconditional)"),
        ]
        if timestep is not None:
            checks += [tf.debugging.assert_non_negative(timestep, message=f"timestep must be in 0..{last_timestep}"),
                       tf.debugging.assert_less_equal(timestep, last_timestep,
                                                      message=f"timestep must be in 0..{last_timestep}")]
        with tf.control_dependencies(checks):
            return [tf.identity(labels), tf.identity(guidance)] + ([tf.identity(timestep)] if timestep is not None
                                                                    else [])

    # Named unlike the model's methods: autograph caches converted functions by name and once
    # confused this 3-argument closure with Diffusion.generate (self + 3) when both were traced.
    def generate_digits(noise, labels, guidance):
        labels, guidance = checked(labels, guidance)
        return model.generate(noise, labels, guidance, steps=steps)

    def guided_noise(images_t, timestep, labels, guidance):
        labels, guidance, timestep = checked(labels, guidance, timestep)
        return model.denoise_step(images_t, timestep, labels, guidance)

    def inpaint_digits(images, mask, noise, labels, guidance):
        # Every op of the completion (the recognizer's first) waits for the checks.
        with tf.control_dependencies(inpainting.graph_checks(images, mask, noise)):
            labels, guidance = checked(labels, guidance)
            return model.inpaint(tf.identity(images), tf.identity(mask), noise, labels, guidance, INPAINT_STEPS,
                                 INPAINT_RESAMPLE)

    def read_digit(images, mask):
        return inpainting.read_digit_outputs(model, images, mask)

    generated = {"images": "digits, float32 [batch, 28, 28, 1] in [0, 1]"}
    inpaint_inputs, inpaint_ranges, inpaint_allowed = inpainting.signature_inputs()
    inputs = {"noise": noise, "labels": labels, "guidance": guidance}
    example = {"labels": 7, "guidance": 2.0}
    return [
        core_export.Signature("serving_default", generate_digits, inputs, generated, ranges=ranges, example=example),
        core_export.Signature("generate", generate_digits, inputs, generated, ranges=ranges, example=example),
        core_export.Signature("denoise_step", guided_noise, {
            "images_t": (tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32), "the noisy images x_t, in [-1, 1] scale"),
            "timestep": (tf.TensorSpec(batch, tf.int32), f"t, 0..{last_timestep}"),
            "labels": labels, "guidance": guidance,
        }, {"predicted_noise": "guided noise estimate eps, [batch, 28, 28, 1]"},
            ranges={**ranges, "timestep": (0, last_timestep)}, example={**example, "timestep": min(500, last_timestep)}),
        core_export.Signature("inpaint", inpaint_digits, {
            **inpaint_inputs,
            "labels": (labels[0], f"the digit 0-9 to complete the image as, or {NULL_LABEL}: the digit the model "
                                  "reads from the known pixels (read_digit's likeliest; with guidance 0 the "
                                  "unconditional model fills the hole)"),
            "guidance": guidance},
            {"images": "the completed digits, [batch, 28, 28, 1] in [0, 1]: the known pixels exactly as given"},
            ranges={**ranges, **inpaint_ranges}, allowed=inpaint_allowed,
            example={"labels": NULL_LABEL, "guidance": 2.0}),
        *([inpainting.read_digit_signature(read_digit)] if model.recognizer is not None else []),
    ]


def check_labels_and_guidance(labels, guidance):
    labels, guidance = np.asarray(labels), np.asarray(guidance)
    if labels.size and (labels.min() < 0 or labels.max() > NULL_LABEL):
        raise BadInputError(f"labels must be digits 0-{NUM_CLASSES - 1} or {NULL_LABEL} (no label), "
                            f"got values from {labels.min()} to {labels.max()}")
    if not np.all(np.isfinite(guidance)):
        raise BadInputError("guidance must be finite")
    if guidance.size and guidance.min() < 0:
        raise BadInputError(f"guidance must be at least 0 (0: unconditional), got {guidance.min()}")


SAMPLERS = {"ddim": ddim.ddim_loop, "ddpm": ddim.ddpm_loop}


def reference_loop(denoise_step, alpha_bars, noise, labels, guidance, steps=GENERATE_STEPS, on_step=None,
                   sampler="ddim", seed=0):
    """A sampler of ``zoo.core.apps.ddim`` (the phone app's) over a ``denoise_step(images_t, timestep, labels,
    guidance) -> eps`` callable.

    What an app does with the ``denoise_step`` signature: "ddim" with the same
    noise reproduces ``generate``; "ddpm" is ancestral sampling (``seed`` draws its
    per-step noise). ``on_step(i, x0_estimate, images)`` can show progress.
    """
    if sampler not in SAMPLERS:
        raise BadInputError(f"unknown sampler {sampler!r}; choose from {sorted(SAMPLERS)}")
    check_labels_and_guidance(labels, guidance)
    noise = np.asarray(noise)
    if noise.ndim != 4 or noise.shape[1:] != tuple(IMAGE_SHAPE):
        raise BadInputError(f"noise must have shape [batch, 28, 28, 1], got {list(noise.shape)}")
    if np.shape(labels) != (len(noise),) or np.shape(guidance) != (len(noise),):
        raise BadInputError(f"labels and guidance must have shape [batch] = [{len(noise)}], got "
                            f"{list(np.shape(labels))} and {list(np.shape(guidance))}")
    ddim_timesteps(len(alpha_bars), steps)  # refuses steps < 1 with a BadInputError
    extra = {"seed": seed} if sampler == "ddpm" else {}
    labels, guidance = np.asarray(labels, np.int32), np.asarray(guidance, np.float32)
    try:
        return SAMPLERS[sampler](lambda x, t: denoise_step(x, t, labels, guidance), alpha_bars, noise, steps=steps,
                                 on_step=on_step, **extra)
    except ValueError as error:
        raise BadInputError(str(error)) from None


def guided_samples(runner, num_samples, guidance=2.0, seed=EVAL_SEED, batch_size=100, progress=True, steps=None,
                   sampler="ddim", in_graph=True):
    """``num_samples`` digits with labels 0, 1, ..., 9, 0, ... and one guidance weight.

    DDIM with the exported step count runs the in-graph ``generate`` (unless
    ``in_graph`` is False); other step counts and DDPM run the loop over ``denoise_step``.
    """
    generate_steps = runner.manifest.get("generate_steps", GENERATE_STEPS)
    steps = steps or generate_steps
    rng = np.random.default_rng(seed)
    labels = (np.arange(num_samples) % NUM_CLASSES).astype(np.int32)
    images = []
    bar = progress_bar(num_samples, unit_name="image") if progress else None
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
    features, classes = quality.features_and_classes(images)
    metrics = quality.evaluate_features(features, classes)
    metrics["guided_accuracy"] = round(float(np.mean(classes == labels)), 4)
    metrics["guidance"] = guidance
    metrics["sampler"] = sampler
    metrics["steps"] = steps
    return metrics


def _alpha_bars(runner):
    return np.asarray(runner.manifest["alpha_bars"], np.float32)


USE = ("sample", "evaluate")
OPTIONS = (
    Option("digit", int, None, "the digit to draw (default: a row each)", commands=("sample",), minimum=0,
           maximum=NUM_CLASSES - 1),
    Option("num", int, None, "how many digits (default: 16 with --digit, else 100, a row of 10 per digit)",
           commands=("sample",), minimum=1),
    Option("guidance", float, 2.0, "classifier-free guidance: 0 unconditional, 1 conditional, more: stronger",
           commands=USE, minimum=0.0),
    Option("steps", int, None, f"sampling steps (default: the exported in-graph loop's, {GENERATE_STEPS}; other "
                               "counts run the app's loop over denoise_step)", commands=USE, minimum=1),
    Option("sampler", str, "ddim", "ddim: deterministic; ddpm: ancestral, fresh noise at every step",
           commands=USE, choices=tuple(SAMPLERS)),
    *inpainting.sample_options(),
    inpainting.RECOGNIZER_ONLY,
    Option("num_samples", int, 1000, "guided samples to score (the manifest's headline used 2000)",
           commands=("evaluate",), minimum=1),
    Option("num_eval_samples", int, 200, "guided samples scored per runtime and variant, the same noise for all",
           commands=("export",), minimum=1),
    Option("num_detailed_samples", int, 2000, "samples of the SavedModel's headline measurement",
           commands=("export",), minimum=1),
    FINE_TUNE_FROM,
    Option("images", str, None, "train on your images instead of MNIST: a folder of 28 x 28 grey PNGs (white on "
                                "black) or an .npy array [n, 28, 28]; the last 10%% validate; no labels, so the "
                                "model learns them as its unconditional (label 10) images", commands=("train",)),
)


def your_images_training_data(path, *, batch_size, seed, limit):
    """``TrainingData`` of your images (``zoo.core.data.datasets.read_image_collection``) in [-1, 1], each with
    the unconditional label: the first 90% train (in the order of ``(seed, epoch)``), the last 10% validate."""
    import hashlib

    import tensorflow as tf

    from zoo.core.data.datasets import TRAIN_FRACTION, TrainingData, read_image_collection

    images = read_image_collection(path)[:limit] * 2.0 - 1.0
    cut = int(len(images) * TRAIN_FRACTION)
    train, validation = images[:cut], images[cut:]
    if len(validation) == 0 or len(train) < batch_size:
        raise BadInputError(f"--images {path} holds {len(images)} images: {len(train)} to train on (at least the "
                            f"batch, {batch_size}) and {len(validation)} to validate on (at least 1) are needed")

    def labelled(x):
        return tf.data.Dataset.from_tensor_slices((x, np.full(len(x), NULL_LABEL, np.int32)))

    def dataset_fn(epoch):
        order = labelled(train).shuffle(len(train), seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False)
        return order.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return TrainingData(
        dataset_fn, f"{path}: {len(train)} images to train on, {len(validation)} to validate on (the last 10%), "
                    "pixels in [-1, 1], unconditional label",
        validation=labelled(validation).batch(500),
        config={"train_examples": len(train), "images_sha256": hashlib.sha256(images.tobytes()).hexdigest()})


@register
class DiffusionRecipe(CosineDecayAdam, Recipe):
    name = "diffusion"
    summary = "class-conditional DDPM on MNIST: noise + digit label + guidance -> digits (DDIM)"
    paper = "Ho, Jain & Abbeel (2020), Denoising Diffusion Probabilistic Models, arXiv:2006.11239"
    model_class = Diffusion
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 30, "batch_size": 128, "learning_rate": 5e-4}
    sample_help = ("Draw digits with classifier-free guidance from the exported model (sha256-checked first) and "
                   "write a PNG: --digit D draws 16 of digit D (--num to change), without it a row of 10 per digit.")
    evaluate_help = ("FD, digit coverage and guided accuracy (the classifier reads the asked digit) of guided "
                     "samples, labels cycling 0-9. 1,000 samples at 50 steps take about 15 minutes in LiteRT float32 on "
                     "this 2-core CPU (92 s per 100 in benchmarks/run.py), half that with --runtime keras.")
    metrics = ["frechet_distance", "guided_accuracy", "classes_covered"]

    options = OPTIONS
    finetune_data_option = "images"

    # === Training ===
    def create_training_model(self, preset, seed, fine_tune_from, recognizer_only):
        return inpainting.create_training_model(self, preset, seed, fine_tune_from, recognizer_only)

    def training_data(self, model, *, batch_size, seed, limit, images):
        if images is not None:
            return your_images_training_data(images, batch_size=batch_size, seed=seed, limit=limit)
        return mnist_training_data(batch_size=batch_size, seed=seed, limit=limit, how="with labels, pixels in [-1, 1]",
                                   value_range=(-1.0, 1.0), with_labels=True)

    def training_config(self, model, data, *, epochs, total_steps, max_steps, fine_tune_from, recognizer_only):
        return {**super().training_config(model, data, epochs=epochs, total_steps=total_steps, max_steps=max_steps),
                **fine_tune_config(fine_tune_from, model), **({"recognizer_only": True} if recognizer_only else {})}

    def epoch_samples(self, model, seed):
        """A 10 x 10 grid, a row per digit, 25 DDIM steps with guidance 2."""
        if model.denoiser_frozen:  # --recognizer-only: the samples would not change
            return None
        rng = np.random.default_rng(seed)
        fixed_noise = rng.standard_normal((100, 28, 28, 1)).astype(np.float32)
        fixed_labels = np.repeat(np.arange(10, dtype=np.int32), 10)
        return lambda m: m.generate(fixed_noise, fixed_labels, np.full(100, 2.0, np.float32), steps=25)["images"]

    # === Export ===
    def signatures(self, model):
        return diffusion_signatures(model)

    def export_plan(self, model, training, num_eval_samples, num_detailed_samples):
        """FD, coverage and guided accuracy of every runtime.

        A 50-step sample costs 100 network calls (two per step, for guidance), so each
        runtime is measured on ``num_eval_samples`` (the same noise for all, so they
        compare), and the SavedModel once more on ``num_detailed_samples`` for the headline.
        """
        from zoo.core.metrics.mnist import MnistQuality

        quality = MnistQuality()

        def samples(runner, path):
            rng = np.random.default_rng(0)
            noise = rng.standard_normal((100, *IMAGE_SHAPE)).astype(np.float32)
            labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.int32), 10)
            images = runner("generate", noise=noise, labels=labels, guidance=np.full(100, 2.0, np.float32))["images"]
            save_image_grid(images, path, columns=10,
                            title=f"diffusion: a row per digit, guidance 2, {GENERATE_STEPS} DDIM steps, diffusion.tflite")

        def conditioning(signature, i):  # every label (10: none) and guidance 0-3 in turn
            return {"labels": np.array([i % (NUM_CLASSES + 1)], np.int32),
                    "guidance": np.array([i % 4], np.float32)}

        representative, representative_data = denoiser_calibration(model.alpha_bars.numpy(), conditioning)
        return core_export.ExportPlan(
            name=self.name, signatures=self.signatures(model),
            representative_inputs=representative, integer_products=True,
            representative_data=representative_data + "; labels 0-10 and guidance 0-3 in turn",
            description="Class-conditional DDPM on MNIST; DDIM sampling with classifier-free guidance.",
            paper=self.paper, training=training, keras_model=self.keras_model(model),
            evaluate=lambda runner: quality_of(runner, quality, num_eval_samples),
            detailed_evaluate=lambda runner: quality_of(runner, quality, num_detailed_samples),
            samples=samples, primary_metric=self.metrics[0], metric_summary=self.metrics,
            notes={"alpha_bars": [float(a) for a in model.alpha_bars.numpy()],
                   "null_label": NULL_LABEL, "generate_steps": GENERATE_STEPS,
                   "inpaint_steps": INPAINT_STEPS, "inpaint_resample": INPAINT_RESAMPLE,
                   "metric_definitions": {
                       "frechet_distance": f"classifier FD of num_samples guided samples (labels cycling 0-9, "
                                           f"guidance 2, {GENERATE_STEPS} DDIM steps, noise default_rng({EVAL_SEED})) "
                                           "to the MNIST test digits; fewer samples than 10,000 bias it upwards",
                       "guided_accuracy": "fraction of samples the zoo's MNIST classifier reads as the digit asked for"}},
        )

    # === Use ===
    def sample(self, runner, *, output, seed, digit, num, guidance, steps, sampler, inpaint, mask):
        """DDIM with the exported step count runs the in-graph ``generate``; any other step
        count, or ancestral DDPM sampling, runs the app's loop over ``denoise_step``. ``--inpaint FILE``
        completes that digit instead (``inpaint``: as ``--digit``, or else as the digit the model reads from the
        known pixels; ``--guidance 0``: unconditionally)."""
        if inpaint is not None:
            num = num or 9
            label = NULL_LABEL if digit is None else digit
            inpainting.sample_completions(
                lambda images, masks, noise: runner("inpaint", images=images, mask=masks, noise=noise,
                                                    labels=np.full(len(images), label, np.int32),
                                                    guidance=np.full(len(images), guidance, np.float32))["images"],
                inpaint, mask, num, seed, output,
                f"diffusion inpainting ({mask}): the digit, its known pixels, {num} completions"
                + (f" as a {digit}" if digit is not None else " as the digit the model reads" if guidance else
                   ", unconditional"))
            return f"Wrote {inpaint}, its {mask} mask and {num} completions to {output}"
        steps = steps or runner.manifest.get("generate_steps", GENERATE_STEPS)
        labels, what = asked_digits(digit, num, NUM_CLASSES)
        num = len(labels)
        start = np.random.default_rng(seed).standard_normal((num, *IMAGE_SHAPE)).astype(np.float32)
        weights = np.full(num, guidance, np.float32)
        check_labels_and_guidance(labels, weights)
        if sampler == "ddim" and steps == runner.manifest.get("generate_steps", GENERATE_STEPS):
            images = runner("generate", noise=start, labels=labels, guidance=weights)["images"]
        else:
            bar = progress_bar(steps, unit_name="step")
            images = reference_loop(
                lambda x, t, l, w: runner("denoise_step", images_t=x, timestep=t, labels=l, guidance=w)[
                    "predicted_noise"],
                _alpha_bars(runner), start, labels, weights, steps=steps, sampler=sampler, seed=seed,
                on_step=(lambda i, *_: bar.update(i + 1)) if bar else None)
        save_asked_digits(images, output, digit,
                          f"diffusion: {what}, guidance {guidance}, {steps} {sampler.upper()} steps")
        return f"Wrote {num} digits ({what}) to {output}"

    def evaluate(self, runner, *, seed, num_samples, guidance, steps, sampler):
        """FD, coverage and guided accuracy of the exported model's guided samples."""
        from zoo.core.metrics.mnist import MnistQuality

        return quality_of(runner, MnistQuality(), num_samples, guidance, seed, steps=steps, sampler=sampler)
