"""Restoration: what the diffusion models' ``inpaint`` signatures share (masks, checks, the CLI's files, the score).

An ``inpaint`` signature takes ``images [b, 28, 28, 1]`` in [0, 1], ``mask [b, 28, 28, 1]`` (1: a known
pixel, kept exactly; 0: a pixel to fill), ``noise [b, 28, 28, 1]`` standard normal, and the model's usual
conditioning, and returns ``images``. The loop is RePaint's (``zoo.core.nn.unet.DDIMSampling.inpaint_loop``,
the app's copy ``zoo.core.apps.ddim.inpaint_loop``).

Scored as the issue asks: the zoo's MNIST classifier reads completions of test digits whose bottom half,
left half or a random half of the pixels is hidden, beside filling the hole with the mean training digit.
"""

import os

import numpy as np

from zoo.core.apps import ddim as ddim_app
from zoo.core.apps.ddim import MASKS
from zoo.core.nn.unet import IMAGE_SHAPE
from zoo.core.recipes.options import Option
from zoo.core.runtime.errors import BadInputError

SCORED_MASKS = ("bottom", "left", "random")


def named_mask(name, num, seed=0):
    """``float32 [num, 28, 28, 1]``: the app's :func:`zoo.core.apps.ddim.named_mask`, its error the CLI's."""
    try:
        return ddim_app.named_mask(name, num, seed, IMAGE_SHAPE)
    except ValueError as error:
        raise BadInputError(f"{error}, or give a 28 x 28 PNG or .npy file (white or 1: known pixel)") from None


RECOGNIZER_ONLY = Option(
    "recognizer_only", bool, False, "with --fine-tune-from: train only the digit recognizer that inpaint reads "
                                    "an unlabelled digit with, every other weight kept as it is (adds one to a "
                                    "model trained without it)", commands=("train",))


def recognizer_training_model(recipe, seed, fine_tune_from):
    """``train --recognizer-only``: the model at ``fine_tune_from`` with a recognizer (a new one where it had
    none), its denoiser frozen (``zoo.core.nn.unet.DDIMSampling.freeze_denoiser``)."""
    from zoo.core.recipes.finetuning import source_model

    if fine_tune_from is None:
        raise BadInputError("--recognizer-only trains the recognizer of a trained model: give --fine-tune-from "
                            f"(e.g. exported/{recipe.name})")
    source = source_model(recipe.name, fine_tune_from)
    model = type(source).from_config({**source.get_config(), "seed": seed, "recognizer": True})
    model.copy_denoiser_from(source)
    model.freeze_denoiser()
    return model


def create_training_model(recipe, preset, seed, fine_tune_from, recognizer_only):
    """``create_training_model`` of a recipe with :data:`RECOGNIZER_ONLY` among its options:
    :func:`recognizer_training_model` for ``--recognizer-only``, else
    :func:`zoo.core.recipes.finetuning.start_from`."""
    from zoo.core.recipes.finetuning import start_from

    if recognizer_only:
        return recognizer_training_model(recipe, seed, fine_tune_from)
    return start_from(recipe, preset, seed, fine_tune_from)


def read_digit_outputs(model, images, mask):
    """The ``read_digit`` signature's outputs, after the input checks the SavedModel gives a TF Serving client."""
    import tensorflow as tf

    with tf.control_dependencies(graph_checks(images, mask)):
        digits, probabilities = model.read_digits(tf.identity(images), tf.identity(mask))
    return {"digits": digits, "digit_probabilities": probabilities}


def read_digit_signature(read_digit):
    """``read_digit``: ``images`` and ``mask`` as ``inpaint`` takes them -> the digit its recognizer reads (what
    ``inpaint`` completes a row without a digit as) and the probability of each."""
    from zoo.core import export as core_export

    inputs, ranges, allowed = signature_inputs()
    del inputs["noise"]
    return core_export.Signature(
        "read_digit", read_digit, inputs,
        {"digits": "int32 [batch]: the likeliest digit 0-9 given the known pixels (what inpaint completes an "
                   "unlabelled row as)",
         "digit_probabilities": "float32 [batch, 10]: the recognizer's probability of each digit"},
        ranges=ranges, allowed=allowed)


def signature_inputs():
    """The inputs every ``inpaint`` signature starts with, their ``ranges`` and ``allowed`` manifest entries."""
    import tensorflow as tf

    image = tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32)
    inputs = {
        "images": (image, "the images to complete, [batch, 28, 28, 1] in [0, 1] (white digit on black); the "
                          "pixels under mask 0 are ignored"),
        "mask": (image, "1 where the pixel of images is known (returned exactly), 0 where it is to be filled"),
        "noise": (image, "standard-normal noise: the start and, permuted, every fresh draw of the loop"),
    }
    return inputs, {"images": (0.0, 1.0)}, {"mask": [(0, 0), (1, 1)]}


def graph_checks(images, mask, noise=None):
    """Asserts that give a TF Serving client a clear error for a bad ``inpaint`` (or, without ``noise``,
    ``read_digit``) call (TFLite drops them; the zoo's runners check the manifest's ranges first)."""
    import tensorflow as tf

    checks = [
        tf.debugging.assert_greater_equal(images, 0.0, message="images must be in [0, 1]"),
        tf.debugging.assert_less_equal(images, 1.0, message="images must be in [0, 1]"),
        tf.debugging.assert_equal(mask * (1.0 - mask), tf.zeros_like(mask),
                                  message="mask must be 0 (fill) or 1 (known) at every pixel"),
        tf.debugging.assert_equal(tf.shape(images), tf.shape(mask),
                                  message="images and mask must have the same shape [batch, 28, 28, 1]"),
    ]
    if noise is not None:
        checks += [tf.debugging.assert_all_finite(noise, message="noise must be finite"),
                   tf.debugging.assert_equal(tf.shape(images), tf.shape(noise),
                                             message="images and noise must have the same shape [batch, 28, 28, 1]")]
    return checks


def check_inputs(images, mask, noise):
    """The app loop's checks (``zoo.core.apps.ddim.check_inpaint_inputs``) as a :class:`BadInputError`."""
    from zoo.core.apps.ddim import check_inpaint_inputs

    try:
        check_inpaint_inputs(images, mask, noise)
    except ValueError as error:
        raise BadInputError(str(error)) from None


def read_image(path, what):
    """A 28 x 28 grey image from a PNG or ``.npy`` file (``zoo.core.data.datasets.read_image_file``), as float32
    ``[28, 28, 1]`` in [0, 1]."""
    from zoo.core.data.datasets import read_image_file

    image = read_image_file(path, what)
    if image.shape != IMAGE_SHAPE[:2]:
        raise BadInputError(f"{what} {path} is {' x '.join(map(str, image.shape))}; the model takes 28 x 28 "
                            "(an MNIST-sized digit, white on black)")
    return image[..., None]


def mask_for(spec, num, seed=0):
    """``--mask``: a name of :data:`MASKS`, or a file (:func:`read_image`, rounded to 0/1: white is known)."""
    if spec in MASKS or not os.path.exists(spec):  # an unknown name gets named_mask's error, listing the choices
        return named_mask(spec, num, seed)
    mask = read_image(spec, "mask").round()
    return np.repeat(mask[None], num, axis=0)


def completion_quality(complete, num_digits=200, seed=0, masks=SCORED_MASKS, quality=None, batch_size=100,
                       progress=True):
    """How often the zoo's classifier reads completions of the first ``num_digits`` MNIST test digits as the
    true digit, per mask, beside the mean training digit filled into the same hole.

    ``complete(images, mask, noise, labels) -> images`` runs the model (``labels`` are the true digits, for a
    caller that conditions on them). Returns ``{mask: {"accuracy", "mean_fill_accuracy"}}`` and the completions
    of the first rows, for a picture.
    """
    from zoo.core.data.datasets import mnist_images
    from zoo.core.metrics.mnist import MnistQuality
    from zoo.core.runtime.progress import progress_bar

    quality = quality or MnistQuality()
    images, labels = mnist_images("test", limit=num_digits)
    mean_digit = mnist_images("train")[0].mean(axis=0)
    results, pictures = {}, {}
    bar = progress_bar(len(masks) * len(images), unit_name="image") if progress else None
    for name in masks:
        mask = named_mask(name, len(images), seed)
        noise = np.random.default_rng(seed).standard_normal(images.shape).astype(np.float32)
        completed = []
        for start in range(0, len(images), batch_size):
            rows = slice(start, start + batch_size)
            completed.append(np.asarray(complete(images[rows], mask[rows], noise[rows], labels[rows])))
            if bar:
                bar.add(len(completed[-1]))
        completed = np.concatenate(completed)
        if not np.array_equal(completed[mask == 1], images[mask == 1]):
            raise AssertionError(f"the {name} completions changed known pixels")
        read = quality.features_and_classes(completed)[1]
        mean_filled = quality.features_and_classes(mask * images + (1 - mask) * mean_digit)[1]
        results[name] = {"accuracy": round(float(np.mean(read == labels)), 4),
                         "mean_fill_accuracy": round(float(np.mean(mean_filled == labels)), 4)}
        pictures[name] = (images[:10], (mask * images + (1 - mask) * 0.5)[:10], completed[:10])
    return results, pictures


def save_completions(pictures, path, title):
    """Rows of originals, the masked input (the hole grey) and the completions, per mask."""
    from zoo.core.data.plotting import save_image_grid

    rows = [row for name in pictures for row in pictures[name]]
    save_image_grid(np.concatenate(rows), path, columns=len(rows[0]), title=title)


def sample_options():
    """``sample``'s ``--inpaint FILE`` and ``--mask``, the same for every model with an ``inpaint`` signature."""
    return (Option("inpaint", str, None, "complete this 28 x 28 digit (PNG or .npy, white on black) instead of "
                                         "drawing new ones: --num completions from different noise",
                   commands=("sample",)),
            Option("mask", str, "bottom", f"with --inpaint, the pixels to fill: {', '.join(MASKS)} (half of the "
                                          "image, or a random half of the pixels), or a 28 x 28 PNG/.npy mask "
                                          "(white or 1: keep)", commands=("sample",)))


def sample_completions(inpaint, path, mask_spec, num, seed, output, title):
    """The CLI's ``--inpaint``: ``num`` completions of the image at ``path`` under ``mask_spec``, from noise
    drawn with ``seed``, written as a picture (the input, the masked input, the completions).
    ``inpaint(images, mask, noise) -> images`` runs the model."""
    image = read_image(path, "--inpaint image")
    images = np.repeat(image[None], num, axis=0)
    mask = mask_for(mask_spec, num, seed)
    noise = np.random.default_rng(seed).standard_normal(images.shape).astype(np.float32)
    check_inputs(images, mask, noise)
    completed = np.asarray(inpaint(images, mask, noise))
    from zoo.core.data.plotting import save_image_grid

    shown = np.concatenate([image[None], (mask[:1] * image + (1 - mask[:1]) * 0.5), completed])
    save_image_grid(shown, output, columns=min(len(shown), 10), title=title)
    return completed


def random_test_inputs(inputs, seed):
    """An ``inpaint`` (or ``read_digit``) call's ``inputs`` (a dict with ``noise`` for ``inpaint``, else at least
    ``images``, for the batch's shape) with random images in [0, 1] and a random 0/1 mask, both kinds of pixel in
    every row: what the shared tests run every runtime on."""
    rng = np.random.default_rng(seed)
    shape = (inputs["noise"] if "noise" in inputs else inputs["images"]).shape
    mask = (rng.random(shape) < 0.5).astype(np.float32)
    mask[:, 0, 0], mask[:, 0, 1] = 0, 1
    return {**inputs, "images": rng.uniform(0, 1, shape).astype(np.float32), "mask": mask,
            **({"noise": rng.standard_normal(shape).astype(np.float32)} if "noise" in inputs else {})}
