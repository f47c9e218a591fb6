"""The video model's recipe: Moving MNIST drawn on the fly, prediction and generation, MSE/SSIM and digit identity.

    python -m zoo train video                       # 10 epochs of 60,000 new clips each
    python -m zoo export video
    python -m zoo sample video --digits 3 7 --output clip.gif
    python -m zoo sample video --context my_frames.npy --output next.gif   # predict from your 10 frames
    python -m zoo evaluate video

Signatures (every runtime): ``serving_default`` (digits + noise -> a 20-frame clip), ``predict``
(10 frames -> the next 10), and for an app that draws frame by frame: ``start`` (digits + noise ->
state), ``track`` (10 frames -> the state at frame 10) and ``step`` (state -> a frame + the next
state). The state is each digit's 28 x 28 glyph, its top-left corner and its velocity.
"""

import os

import numpy as np

from zoo.core import export as core_export
from zoo.core.data.datasets import TrainingData
from zoo.core.data.moving_mnist import (CANVAS, CONTEXT, DIGIT, FRAMES, SLOTS, SPEED, TEST_CLIPS, TEST_SEED,
                                        make_clips, mnist_digits, test_clips)
from zoo.core.recipes.finetuning import FINE_TUNE_FROM, fine_tune_config, start_from
from zoo.core.recipes.recipe import Option, Recipe
from zoo.core.recipes.registry import register
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.files import atomic_file
from zoo.core.runtime.progress import progress_bar
from zoo.core.training.optimizers import CosineDecayAdam
from zoo.video.model import HIGH, NUM_CLASSES, PRESETS, VideoModel

ONE_DIGIT_FRACTION = 0.2  # training clips with one digit, so the model knows an empty slot
VALIDATION_CLIPS = 500
FUTURE = FRAMES - CONTEXT
KEYS = ("frames", "labels", "glyphs", "positions", "velocities")


def epoch_order(num_digits, seed, epoch):
    """The order in which an epoch's clips take their first digit: every training digit once."""
    return np.random.default_rng([seed, epoch]).permutation(num_digits)


def training_batch(images, labels, order, seed, epoch, index, batch_size):
    """Batch ``index`` of ``epoch``: first digits ``order[index * batch_size:]``, the rest drawn from
    ``default_rng([seed, epoch, index])`` alone (exact resume)."""
    first = order[index * batch_size : (index + 1) * batch_size]
    clips = make_clips(images, labels, np.random.default_rng([seed, epoch, index]), batch_size,
                       one_digit_fraction=ONE_DIGIT_FRACTION, first=first)
    return tuple(clips[key] for key in KEYS)


def clip_dataset(make_batch, batches):
    """A ``tf.data.Dataset`` of ``batches`` dict batches; ``make_batch(i)`` returns the :data:`KEYS` arrays."""
    import tensorflow as tf

    dtypes = (tf.float32, tf.int32, tf.float32, tf.float32, tf.float32)

    def load(index):
        arrays = tf.numpy_function(lambda i: make_batch(int(i)), [index], dtypes)
        shapes = ([None, FRAMES, CANVAS, CANVAS, 1], [None, SLOTS], [None, SLOTS, DIGIT, DIGIT],
                  [None, FRAMES, SLOTS, 2], [None, FRAMES, SLOTS, 2])
        for array, shape in zip(arrays, shapes):
            array.set_shape(shape)
        return dict(zip(KEYS, arrays))

    return tf.data.Dataset.range(batches).map(load).prefetch(2)


def video_signatures(model):
    import tensorflow as tf

    noise_size = SLOTS * model.noise_per_slot
    frames_in = {"frames": (tf.TensorSpec([None, CONTEXT, CANVAS, CANVAS, 1], tf.float32),
                            f"{CONTEXT} context frames, float32 in [0, 1] (0 = black)")}
    generate_in = {
        "digits": (tf.TensorSpec([None, SLOTS], tf.int32), "the two digits to draw, 0-9, or -1 for no digit"),
        "noise": (tf.TensorSpec([None, noise_size], tf.float32),
                  f"standard-normal noise: per digit {model.latent_dim} for its shape, then its start y, start x, "
                  "direction and speed"),
    }
    state_meanings = {
        "glyphs": f"each digit's 28 x 28 picture, float32 [batch, {SLOTS}, 28, 28] in [0, 1] (zeros: no digit)",
        "corners": f"each digit's top-left corner (y, x) in pixels, float32 [batch, {SLOTS}, 2] in [0, {HIGH:g}]",
        "velocities": f"each digit's velocity (y, x) in pixels a frame, float32 [batch, {SLOTS}, 2]",
    }
    state_in = {
        "glyphs": (tf.TensorSpec([None, SLOTS, DIGIT, DIGIT], tf.float32), state_meanings["glyphs"]),
        "corners": (tf.TensorSpec([None, SLOTS, 2], tf.float32), state_meanings["corners"]),
        "velocities": (tf.TensorSpec([None, SLOTS, 2], tf.float32), state_meanings["velocities"]),
    }
    state_ranges = {"glyphs": (0.0, 1.0), "corners": (0.0, HIGH), "velocities": (-SPEED[1], SPEED[1])}

    def checked_frames(frames):
        message = "frames must be in [0, 1]"
        with tf.control_dependencies([tf.debugging.assert_greater_equal(frames, 0.0, message=message),
                                      tf.debugging.assert_less_equal(frames, 1.0, message=message)]):
            return tf.identity(frames)

    def checked_generation(digits, noise):
        message = "digits must be 0-9, or -1 for no digit"
        with tf.control_dependencies([tf.debugging.assert_greater_equal(digits, -1, message=message),
                                      tf.debugging.assert_less_equal(digits, NUM_CLASSES - 1, message=message),
                                      tf.debugging.assert_all_finite(noise, "noise must be finite numbers")]):
            return tf.identity(digits), tf.identity(noise)

    def generate(digits, noise):
        return {"video": model.generate(*checked_generation(digits, noise))}

    def predict(frames):
        return {"frames": model.predict_frames(checked_frames(frames))}

    def start(digits, noise):
        return dict(zip(("glyphs", "corners", "velocities"), model.start(*checked_generation(digits, noise))))

    def track(frames):
        _, glyphs, corners, velocities = model.track(checked_frames(frames))
        return {"glyphs": glyphs, "corners": corners, "velocities": velocities}

    def step(glyphs, corners, velocities):
        checks = []
        for name, value in (("glyphs", glyphs), ("corners", corners), ("velocities", velocities)):
            low, high = state_ranges[name]
            message = f"{name} must be in [{low:g}, {high:g}]"
            checks += [tf.debugging.assert_greater_equal(value, low, message=message),
                       tf.debugging.assert_less_equal(value, high, message=message)]
        with tf.control_dependencies(checks):
            frame, corners, velocities = model.step(tf.identity(glyphs), tf.identity(corners), tf.identity(velocities))
        return {"frame": frame, "corners": corners, "velocities": velocities}

    video = f"float32 [batch, {FRAMES}, 64, 64, 1] in [0, 1]: the clip, frame by frame"
    digits_range = {"digits": (-1, NUM_CLASSES - 1)}
    return [
        core_export.Signature("serving_default", generate, generate_in, {"video": video}, ranges=digits_range,
                              example={"digits": [3, 7]}),
        core_export.Signature("predict", predict, frames_in, {
            "frames": f"float32 [batch, {FUTURE}, 64, 64, 1] in [0, 1]: the next {FUTURE} frames"},
            ranges={"frames": (0.0, 1.0)}),
        core_export.Signature("start", start, generate_in, {
            **state_meanings, "corners": state_meanings["corners"] + " at frame 0"}, ranges=digits_range,
            example={"digits": [3, 7]}),
        core_export.Signature("track", track, frames_in, {
            key: meaning + f" at frame {CONTEXT} (the first to predict)" for key, meaning in state_meanings.items()},
            ranges={"frames": (0.0, 1.0)}),
        core_export.Signature("step", step, state_in, {
            "frame": "float32 [batch, 64, 64, 1] in [0, 1]: the frame the state shows",
            "corners": "the corners one frame later (after the move and any bounce)",
            "velocities": "the velocities one frame later (a bounce flips a component)"},
            ranges=state_ranges),
    ]


# === Measurements (through any runtime's runner) ===
def predict_clips(runner, context, batch_size=100, progress=True):
    """``predict`` on ``context`` ``[n, 10, 64, 64, 1]`` in batches."""
    bar = progress_bar(len(context), unit_name="clip") if progress else None
    out = []
    for start in range(0, len(context), batch_size):
        out.append(runner("predict", frames=context[start : start + batch_size])["frames"])
        if bar:
            bar.add(len(out[-1]))
    return np.concatenate(out)


def frame_mse(predicted, truth):
    """The standard protocol: squared error summed over a frame's 64 x 64 pixels, averaged over frames and clips."""
    return float(np.mean(np.sum(np.square(predicted - truth), axis=(2, 3, 4))))


def frame_ssim(predicted, truth):
    """Mean SSIM (Wang et al. 2004; tf.image.ssim, 11 x 11 Gaussian window) over frames and clips."""
    import tensorflow as tf

    flat = lambda x: tf.constant(x.reshape(-1, CANVAS, CANVAS, 1))  # noqa: E731
    return float(tf.reduce_mean(tf.image.ssim(flat(predicted), flat(truth), max_val=1.0)))


def prediction_quality(runner, num_clips, progress=True, chunk=500):
    """MSE and SSIM of ``predict`` on the first ``num_clips`` evaluation clips, beside the trivial baselines
    (``chunk`` clips at a time: 10,000 clips of 20 frames would hold 3.3 GB at once)."""
    sums = dict.fromkeys(("frame_mse", "ssim", "mse_all_zero_frames", "mse_copy_last_frame", "ssim_copy_last_frame"),
                         0.0)
    bar = progress_bar(num_clips, unit_name="clip") if progress else None
    for start in range(0, num_clips, chunk):
        count = min(chunk, num_clips - start)
        frames = test_clips(count, start=start)["frames"]
        context, future = frames[:, :CONTEXT], frames[:, CONTEXT:]
        predicted = predict_clips(runner, context, progress=False)
        last = np.repeat(context[:, -1:], FUTURE, axis=1)
        for key, value in (("frame_mse", frame_mse(predicted, future)), ("ssim", frame_ssim(predicted, future)),
                           ("mse_all_zero_frames", frame_mse(np.zeros_like(future), future)),
                           ("mse_copy_last_frame", frame_mse(last, future)),
                           ("ssim_copy_last_frame", frame_ssim(last, future))):
            sums[key] += value * count
        if bar:
            bar.add(count)
    digits = {"ssim": 4, "ssim_copy_last_frame": 4}
    return {**{key: round(value / num_clips, digits.get(key, 2)) for key, value in sums.items()},
            "prediction_clips": int(num_clips)}


def generation_noise(runner, num, seed):
    size = runner.signatures["serving_default"]["inputs"]["noise"]["shape"][1]
    return np.random.default_rng(seed).standard_normal((num, size)).astype(np.float32)


def generate_clips(runner, digits, seed, batch_size=100, progress=True):
    """Clips ``[n, 20, 64, 64, 1]`` of ``digits`` ``[n, 2]`` with noise from ``seed``."""
    digits = np.asarray(digits, np.int32)
    noise = generation_noise(runner, len(digits), seed)
    bar = progress_bar(len(digits), unit_name="clip") if progress else None
    out = []
    for start in range(0, len(digits), batch_size):
        out.append(runner("serving_default", digits=digits[start : start + batch_size],
                          noise=noise[start : start + batch_size])["video"])
        if bar:
            bar.add(len(out[-1]))
    return np.concatenate(out)


def ink_centroids(frames):
    """Each frame's ink centroid (y, x) ``[..., 2]``, from frames ``[..., 64, 64, 1]``."""
    ink = frames[..., 0]
    total = np.maximum(ink.sum(axis=(-2, -1)), 1e-6)
    grid = np.arange(CANVAS, dtype=np.float64)
    return np.stack([(ink.sum(axis=-1) * grid).sum(axis=-1) / total, (ink.sum(axis=-2) * grid).sum(axis=-1) / total],
                    axis=-1)


def centred_crops(frames, centroids):
    """The 28 x 28 window around each frame's ink centroid (clamped inside the canvas): ``[..., 28, 28, 1]``."""
    flat, where = frames.reshape(-1, CANVAS, CANVAS, 1), centroids.reshape(-1, 2)
    corners = np.clip(np.rint(where - DIGIT / 2), 0, CANVAS - DIGIT).astype(int)
    crops = np.stack([frame[y : y + DIGIT, x : x + DIGIT] for frame, (y, x) in zip(flat, corners)])
    return crops.reshape(*frames.shape[:-3], DIGIT, DIGIT, 1)


def straightness(centroids):
    """How far a digit's ink centroid strays from constant velocity between bounces: the RMS, in pixels, of
    the centroid's second difference over every three frames where no velocity component changed sign."""
    velocity = np.diff(centroids, axis=1)  # [n, t - 1, 2]
    acceleration = np.diff(velocity, axis=1)  # [n, t - 2, 2]
    same_direction = np.all(np.sign(velocity[:, 1:]) == np.sign(velocity[:, :-1]), axis=-1)
    kept = acceleration[same_direction]
    return float(np.sqrt(np.mean(np.square(kept)))) if len(kept) else float("nan")


def generation_quality(runner, num_clips, seed, quality=None, progress=True):
    """One-digit clips of each digit in turn: how often the classifier reads the asked digit in the window
    around the ink (every frame), and how straight the ink moves; the real test clips' straightness beside it."""
    from zoo.core.metrics.mnist import MnistQuality

    quality = quality or MnistQuality()
    asked = np.arange(num_clips) % NUM_CLASSES
    digits = np.stack([asked, -np.ones_like(asked)], axis=1)
    clips = generate_clips(runner, digits, seed, progress=progress)
    centroids = ink_centroids(clips)
    crops = centred_crops(clips, centroids)
    _, classes = quality.features_and_classes(crops.reshape(-1, DIGIT, DIGIT, 1))
    read = classes.reshape(num_clips, FRAMES) == asked[:, None]
    real = test_clips(min(num_clips, 1000), one_digit_fraction=1.0)["frames"]  # the floor: real clips, moved alike
    return {"digit_accuracy": round(float(read.mean()), 4),
            "clips_read_in_every_frame": round(float(read.all(axis=1).mean()), 4),
            "centroid_acceleration_rms": round(straightness(centroids), 3),
            "real_centroid_acceleration_rms": round(straightness(ink_centroids(real)), 3),
            "generated_clips": int(num_clips)}


def frame_strip(clips, columns=FRAMES):
    """Clips ``[n, t, 64, 64, 1]`` -> one picture ``[n * 65 - 1, t * 65 - 1]``, a row per clip, 1-pixel grey gaps."""
    n, t = clips.shape[:2]
    picture = np.full((n * (CANVAS + 1) - 1, t * (CANVAS + 1) - 1), 0.35, np.float32)
    for i in range(n):
        for j in range(t):
            picture[i * (CANVAS + 1) : i * (CANVAS + 1) + CANVAS, j * (CANVAS + 1) : j * (CANVAS + 1) + CANVAS] = \
                clips[i, j, ..., 0]
    return picture


def save_gif(clips, path, milliseconds=100, scale=2):
    """An animated GIF of clips ``[n, t, 64, 64, 1]`` side by side (Pillow: matplotlib's own dependency)."""
    from PIL import Image

    clips = np.clip(np.asarray(clips), 0.0, 1.0)
    n, t = clips.shape[:2]
    frames = []
    for j in range(t):
        row = np.concatenate([np.pad(clips[i, j, ..., 0], ((0, 0), (0, 2 if i < n - 1 else 0)), constant_values=0.35)
                              for i in range(n)], axis=1)
        image = Image.fromarray((row * 255).round().astype(np.uint8), mode="L")
        frames.append(image.resize((image.width * scale, image.height * scale), Image.NEAREST))
    with atomic_file(path) as temporary:
        frames[0].save(temporary, format="GIF", save_all=True, append_images=frames[1:], duration=milliseconds,
                       loop=0)
    return path


def save_strip(clips, path, title):
    """Clips as a PNG frame strip (a row per clip), with a title."""
    from zoo.core.data.plotting import save_image_grid

    return save_image_grid(frame_strip(clips)[None, ..., None], path, columns=1, scale=2, title=title)


def load_context(path):
    """The user's context: an .npy of ``[10, 64, 64]``, ``[10, 64, 64, 1]`` or a batch of them, values in [0, 1]
    (uint8 0-255 is scaled)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise BadInputError(f"--context {path}: not a NumPy .npy array ({error})") from None
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    if not np.issubdtype(array.dtype, np.number):
        raise BadInputError(f"--context {path}: numbers expected, got dtype {array.dtype}")
    array = array.astype(np.float32)
    if array.ndim in (3, 4) and array.shape[0] == CONTEXT:
        array = array[None]
    if array.ndim == 4:
        array = array[..., None]
    if array.ndim != 5 or array.shape[1:] != (CONTEXT, CANVAS, CANVAS, 1):
        raise BadInputError(f"--context {path}: expected {CONTEXT} frames of {CANVAS} x {CANVAS} "
                            f"([{CONTEXT}, {CANVAS}, {CANVAS}] or [batch, {CONTEXT}, {CANVAS}, {CANVAS}, 1]), "
                            f"got shape {list(array.shape)}")
    if not np.all(np.isfinite(array)) or array.min() < 0.0 or array.max() > 1.0:
        raise BadInputError(f"--context {path}: values must be in [0, 1] (or uint8 0-255), got "
                            f"[{np.nanmin(array):g}, {np.nanmax(array):g}]")
    return array


@register
class VideoRecipe(CosineDecayAdam, Recipe):
    name = "video"
    summary = ("Moving MNIST video: 10 frames -> the next 10 (predict), digits [batch, 2] + noise -> a 20-frame clip "
               "[batch, 20, 64, 64, 1]")
    paper = ("Srivastava, Mansimov & Salakhutdinov (2015), Unsupervised Learning of Video Representations using "
             "LSTMs, arXiv:1502.04681; Hsieh et al. (2018), Learning to Decompose and Disentangle Representations "
             "for Video Prediction (DDPAE), arXiv:1806.04166")
    model_class = VideoModel
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 10, "batch_size": 32, "learning_rate": 1e-3}
    sample_suffix = ".gif"
    sample_help = ("Generate a clip of the asked digits (--digits 3 7; -1 for none), or predict the next 10 frames "
                   "after yours (--context FILE.npy), with the exported model (sha256-checked first); write an "
                   "animated GIF and a PNG frame strip beside it.")
    evaluate_help = ("Prediction MSE (per frame, summed over pixels) and SSIM on the 10,000 test clips, beside the "
                     "all-zero and copy-last-frame baselines; generated one-digit clips read by the MNIST classifier "
                     "in every frame, and how straight their ink moves.")
    metrics = ["frame_mse", "ssim", "digit_accuracy"]

    options = (
        FINE_TUNE_FROM,  # to train a trained model further, at a new schedule (e.g. exported/video)
        Option("digits", int, [3, 7], "the two digits of the clip, -1 for none", commands=("sample",),
               minimum=-1, maximum=NUM_CLASSES - 1, nargs=SLOTS),
        Option("context", str, None, "an .npy of 10 frames [10, 64, 64] in [0, 1] to predict from (default: "
                                     "generate)", commands=("sample",)),
        Option("num", int, 1, "clips side by side", commands=("sample",), minimum=1, maximum=16),
        Option("num_clips", int, TEST_CLIPS, "test clips whose prediction is scored", commands=("evaluate",),
               minimum=1, maximum=TEST_CLIPS),
        Option("num_generated", int, 1000, "one-digit clips generated and read by the classifier",
               commands=("evaluate",), minimum=1),
        Option("num_eval_clips", int, 2000, "test clips scored per runtime and variant", commands=("export",),
               minimum=1, maximum=TEST_CLIPS),
        Option("headline_clips", int, TEST_CLIPS, "test clips of the SavedModel's headline prediction scores",
               commands=("export",), minimum=1, maximum=TEST_CLIPS),
        Option("num_eval_generated", int, 1000, "generated clips scored per runtime and variant",
               commands=("export",), minimum=1),
    )

    # === Training ===
    def create_training_model(self, preset, seed, fine_tune_from):
        return start_from(self, preset, seed, fine_tune_from)

    def training_config(self, model, data, *, epochs, total_steps, max_steps=None, fine_tune_from):
        return {**super().training_config(model, data, epochs=epochs, total_steps=total_steps, max_steps=max_steps),
                **fine_tune_config(fine_tune_from, model)}

    def training_data(self, model, *, batch_size, seed, limit):
        images, labels = mnist_digits("train", limit)
        clips = len(images)  # an epoch: a clip per training digit, each digit first in one of them
        batches = clips // batch_size

        def dataset_fn(epoch):
            order = epoch_order(clips, seed, epoch)
            return clip_dataset(lambda i: training_batch(images, labels, order, seed, epoch, i, batch_size), batches)

        num_validation = VALIDATION_CLIPS if limit is None else max(1, min(VALIDATION_CLIPS, limit // 6))
        validation = test_clips(num_validation, one_digit_fraction=0.0)
        validation_batch = min(100, num_validation)

        def validation_batch_arrays(i):
            part = slice(i * validation_batch, (i + 1) * validation_batch)
            return tuple(validation[key][part] for key in KEYS)

        return TrainingData(
            dataset_fn,
            f"Moving MNIST drawn on the fly from the {clips} MNIST training digits: an epoch of {clips} new clips, "
            f"each digit first in one, "
            f"({FRAMES} frames of {CANVAS} x {CANVAS}, 2 digits, {ONE_DIGIT_FRACTION:.0%} with one), "
            f"default_rng([seed, epoch, batch])",
            validation=clip_dataset(validation_batch_arrays, -(-num_validation // validation_batch)),
            config={"train_examples": clips, "one_digit_fraction": ONE_DIGIT_FRACTION})

    def epoch_samples(self, model, seed):
        clips = test_clips(4)
        digits = np.array([[3, 7], [0, -1]], np.int32)
        noise = np.random.default_rng(seed).standard_normal((2, SLOTS * model.noise_per_slot)).astype(np.float32)

        def sample(m):
            predicted = m.predict_frames(clips["frames"][:2, :CONTEXT]).numpy()
            truth = clips["frames"][:2, CONTEXT:]
            generated = m.generate(digits, noise).numpy()[:, ::2]
            # rows: 2 test clips' frames 11-20, their prediction, 2 generated clips (every other frame)
            return frame_strip(np.concatenate([truth, predicted, generated]))[None, ..., None]

        return sample

    # === Export ===
    def signatures(self, model):
        return video_signatures(model)

    def export_plan(self, model, training, num_eval_clips, num_eval_generated, headline_clips):
        from zoo.core.metrics.mnist import MnistQuality

        keras_model = self.keras_model(model)
        quality = MnistQuality()

        def evaluate(runner):
            return {**prediction_quality(runner, num_eval_clips),
                    **generation_quality(runner, num_eval_generated, self.eval_seed, quality)}

        def samples(runner, path):
            save_sample_picture(runner, path, f"{self.name}.tflite (LiteRT)")

        return core_export.ExportPlan(
            name=self.name,
            signatures=self.signatures(keras_model),
            description="Object-centric Moving MNIST model: predicts the next 10 frames of a clip and generates "
                        "clips of chosen digits, frame by frame if an app wants.",
            paper=self.paper,
            training=training,
            keras_model=keras_model,
            evaluate=evaluate,
            detailed_evaluate=lambda runner: prediction_quality(runner, headline_clips),
            samples=samples,
            primary_metric=self.metrics[0],
            metric_summary=self.metrics,
            notes={"metric_definitions": {
                "frame_mse": "squared error summed over a frame's 64 x 64 pixels, averaged over the 10 predicted "
                             "frames and the clips (the standard Moving MNIST protocol), lower is better",
                "ssim": "mean SSIM of the predicted frames (tf.image.ssim, max_val 1), higher is better",
                "mse_all_zero_frames": "frame_mse of predicting black frames (a baseline)",
                "mse_copy_last_frame": "frame_mse of repeating the last context frame (a baseline)",
                "prediction_clips": f"the first N of the 10,000 evaluation clips: MNIST test digits, "
                                    f"default_rng([{TEST_SEED}, i]) for clip i, two digits each",
                "digit_accuracy": "generated one-digit clips (digits cycling 0-9): the fraction of frames whose "
                                  "28 x 28 window around the ink centroid the zoo's MNIST classifier reads as the "
                                  "asked digit",
                "clips_read_in_every_frame": "the fraction of those clips read as the asked digit in all 20 frames",
                "centroid_acceleration_rms": "RMS of the ink centroid's second difference (pixels a frame^2) over "
                                             "frames with no bounce: 0 is constant velocity; whole-pixel drawing "
                                             "makes the real clips' own value (real_...) the floor",
                "generated_clips": f"noise numpy default_rng({self.eval_seed})",
                "detailed": f"savedmodel_detailed: prediction scored on {headline_clips} test clips (the card's "
                            "headline); each runtime's entry: the first num_eval_clips of them",
            }},
        )

    # === Use ===
    def sample(self, runner, *, output, seed, digits, context, num):
        from zoo.core.recipes.images import runtime_label

        if context:
            frames = load_context(context)
            predicted = predict_clips(runner, frames, progress=False)
            clips = np.concatenate([frames, predicted], axis=1)
            what = f"the next {FUTURE} frames after the {CONTEXT} of {context} ({len(frames)} clip(s))"
        else:
            clips = generate_clips(runner, np.tile(np.asarray(digits, np.int32), (num, 1)), seed, progress=False)
            shown = " and ".join(str(d) for d in digits if d >= 0) or "no digit"
            what = f"{num} clip(s) of {shown}"
        save_gif(clips, output)
        strip = os.path.splitext(output)[0] + ".png"
        save_strip(clips, strip, title=f"{self.name}: {what}, {runtime_label(runner)}, seed {seed}")
        return f"Wrote {what} to {output} (animated) and {strip} (frame strip)"

    def evaluate(self, runner, *, seed, num_clips, num_generated):
        return {**prediction_quality(runner, num_clips), **generation_quality(runner, num_generated, seed)}


def save_sample_picture(runner, path, label):
    """The card's picture: two test clips with their predictions, and generated clips, as frame strips."""
    clips = test_clips(2)
    predicted = predict_clips(runner, clips["frames"][:, :CONTEXT], progress=False)
    generated = generate_clips(runner, np.array([[3, 7], [5, -1]], np.int32), 0, progress=False)
    rows = np.concatenate([clips["frames"][:, CONTEXT:], predicted, generated[:, CONTEXT:]])
    save_strip(rows, path, title=f"video: rows 1-2 test clips' frames 11-20, rows 3-4 predicted from "
                                                f"frames 1-10; rows 5-6 generated (3 and 7; 5), {label}")
