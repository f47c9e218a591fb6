"""Restoration: RePaint's loop (graph and app copy), the ``inpaint`` signatures of diffusion and text2image in
every runtime, their input checks and the CLI's ``--inpaint``."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.core.apps import ddim
from zoo.core.data import captions
from zoo.core.recipes import inpainting
from zoo.core.recipes.commands import load as load_exported
from zoo.core.recipes.registry import get_recipe
from zoo.core.recipes.spec import get_spec
from zoo.core.runtime import utf8
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.paths import REPO_ROOT
from zoo.core.nn.recognizer import visible_masks
from zoo.core.nn.unet import cosine_alpha_bars, randomize_ema_unet
from zoo.diffusion import recipe as diffusion_recipe
from zoo.diffusion.model import NULL_LABEL
from zoo.text2image import recipe as text2image_recipe


def mixture_denoiser(alpha_bars, references):
    """The exact E[eps | x_t] for data that is one of ``references`` (images in [-1, 1]) with equal odds."""
    flat = references.reshape(len(references), -1).astype(np.float64)

    def denoise(x, t):
        a = alpha_bars[t].astype(np.float64)[:, None]
        rows = x.reshape(len(x), -1).astype(np.float64)
        distances = ((rows[:, None, :] - np.sqrt(a)[:, :, None] * flat[None]) ** 2).sum(-1)  # [b, k]
        logits = -distances / (2 * (1 - a))
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        x0 = weights @ flat
        return ((rows - np.sqrt(a) * x0) / np.sqrt(1 - a)).reshape(x.shape).astype(np.float32)

    return denoise


@pytest.mark.parametrize("mask_name", ["bottom", "left", "random"])
def test_with_the_exact_denoiser_the_hidden_part_of_the_right_image_comes_back(mask_name):
    """Data is one of two images that share nothing; whichever one's known pixels are given, the completion
    must be that image (the filled pixels agree with the known ones), and the known pixels come back exactly.
    A loop that ignored the known pixels, or noised them to the wrong level, returns the other image half the
    time."""
    rng = np.random.default_rng(0)
    references = np.sign(rng.standard_normal((2, 28, 28, 1))).astype(np.float32)  # two random +-1 patterns
    alpha_bars = cosine_alpha_bars(100)
    denoise = mixture_denoiser(alpha_bars, references)
    images = (np.repeat(references, 4, axis=0) + 1) / 2  # [8]: four of each
    mask = inpainting.named_mask(mask_name, len(images), seed=3)
    noise = rng.standard_normal(images.shape).astype(np.float32)
    completed = ddim.inpaint_loop(denoise, alpha_bars, images, mask, noise, steps=10, resample=2)
    assert np.array_equal(completed[mask == 1], images[mask == 1])
    np.testing.assert_allclose(completed, images, atol=1e-3)


def test_the_graph_loop_and_the_app_loop_agree_and_keep_the_known_pixels():
    model = get_spec("diffusion").make_test_model(get_recipe("diffusion"))
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (3, 28, 28, 1)).astype(np.float32)
    mask = inpainting.named_mask("random", 3, seed=2)
    noise = rng.standard_normal(images.shape).astype(np.float32)
    labels, guidance = np.array([1, 7, NULL_LABEL], np.int32), np.array([2.0, 1.0, 0.0], np.float32)
    graph = model.inpaint(images, mask, noise, labels, guidance, steps=4, resample=3)["images"].numpy()
    app = ddim.inpaint_loop(lambda x, t: model.denoise_step(x, t, labels, guidance)["predicted_noise"].numpy(),
                            model.alpha_bars.numpy(), images, mask, noise, steps=4, resample=3)
    np.testing.assert_allclose(graph, app, atol=1e-5)
    assert np.array_equal(graph[mask == 1], images[mask == 1])
    assert 0 <= graph.min() and graph.max() <= 1
    # the filled pixels are the model's, not the input's: another noise gives others
    other = model.inpaint(images, mask, noise[::-1], labels, guidance, steps=4, resample=3)["images"].numpy()
    assert np.abs(other - graph)[mask == 0].max() > 1e-3


def test_the_recognizer_masks_are_0_or_1_of_every_kind_and_follow_their_seed():
    masks = visible_masks(1400, 5).numpy()
    assert set(np.unique(masks)) == {0.0, 1.0}
    np.testing.assert_array_equal(masks, visible_masks(1400, 5).numpy())  # an int seed: validation's fixed masks
    assert not np.array_equal(masks, visible_masks(1400, 6).numpy())
    generator = keras.random.SeedGenerator(0)  # a generator: training's new masks at every step
    assert not np.array_equal(visible_masks(8, generator).numpy(), visible_masks(8, generator).numpy())
    rows = masks[..., 0]
    whole = rows.reshape(len(rows), -1).all(axis=1)
    bottom_hidden = ~whole & rows[:, :10].all(axis=(1, 2)) & ~rows[:, 19:].any(axis=(1, 2))
    left_hidden = ~whole & rows[:, :, 19:].all(axis=(1, 2)) & ~rows[:, :, :10].any(axis=(1, 2))
    for kind, count in (("nothing hidden", whole.sum()), ("bottom hidden", bottom_hidden.sum()),
                        ("left hidden", left_hidden.sum())):
        assert 140 < count < 260, (kind, count)  # about 1 in 7 each
    assert 0.55 < rows.mean() < 0.85


def test_a_row_without_a_digit_is_completed_as_the_digit_the_recognizer_reads():
    """Label 10 (diffusion) or the empty prompt (text2image) with guidance above 0 is the read digit's completion,
    exactly; with guidance 0 the unconditional model's."""
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 1, (4, 28, 28, 1)).astype(np.float32)
    mask = inpainting.named_mask("bottom", 4)
    noise = rng.standard_normal(images.shape).astype(np.float32)
    guidance = np.full(4, 2.0, np.float32)
    model = get_spec("diffusion").make_test_model(get_recipe("diffusion"))
    read, probabilities = (a.numpy() for a in model.read_digits(images, mask))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(read, probabilities.argmax(axis=1))
    unlabelled = model.inpaint(images, mask, noise, np.full(4, NULL_LABEL, np.int32), guidance, 3, 2)["images"]
    as_read = model.inpaint(images, mask, noise, read, guidance, 3, 2)["images"]
    np.testing.assert_array_equal(unlabelled, as_read)
    other = model.inpaint(images, mask, noise, (read + 1) % 10, guidance, 3, 2)["images"]
    assert np.abs(other - as_read).max() > 1e-4  # the label matters, so the equality above is not vacuous

    model = get_spec("text2image").make_test_model(get_recipe("text2image"))
    read = model.read_digits(images, mask)[0].numpy()
    empty = model.inpaint(utf8.encode_texts([""] * 4), images, mask, noise, guidance, 3, 2)["images"]
    prompts = [captions.class_prompts("en")[d] for d in read]
    told = model.inpaint(utf8.encode_texts(prompts), images, mask, noise, guidance, 3, 2)["images"]
    np.testing.assert_allclose(empty, told, atol=1e-5)  # the prompts' embeddings, in a batch of 10 or of 4
    prompts = [captions.class_prompts("en")[(d + 1) % 10] for d in read]
    other = model.inpaint(utf8.encode_texts(prompts), images, mask, noise, guidance, 3, 2)["images"]
    assert np.abs(other - told).max() > 1e-3


def test_copying_a_model_without_a_recognizer_keeps_its_denoiser_and_adds_a_new_recognizer():
    """What ``train --recognizer-only --fine-tune-from`` does to a model exported before recognizers."""
    from zoo.diffusion.model import PRESETS, Diffusion

    old = randomize_ema_unet(Diffusion(**{**PRESETS["tiny"], "recognizer": False}), seed=1)
    new = Diffusion(**{**PRESETS["tiny"], "seed": 4})
    fresh_recognizer = [w.copy() for w in new.recognizer.get_weights()]
    new.copy_denoiser_from(old)
    for part in ("unet", "ema_unet"):
        for copied, source in zip(getattr(new, part).get_weights(), getattr(old, part).get_weights()):
            np.testing.assert_array_equal(copied, source)
    for kept, before in zip(new.recognizer.get_weights(), fresh_recognizer):
        np.testing.assert_array_equal(kept, before)
    with pytest.raises(ValueError, match="not of this model's size"):
        Diffusion(**{**PRESETS["tiny"], "base_channels": 16}).copy_denoiser_from(old)


@pytest.mark.slow  # two tiny trainings, 35 s
def test_recognizer_only_training_keeps_the_denoiser_and_trains_the_recognizer(tmp_path):
    from zoo.core.recipes.commands import load_run, train

    source, run = str(tmp_path / "source"), str(tmp_path / "recognizer")
    common = {"preset": "tiny", "batch_size": 32, "limit": 256, "verbose": 0, "samples": False}
    train("diffusion", steps=2, run_dir=source, **common)
    state = train("diffusion", steps=4, run_dir=run, fine_tune_from=source, recognizer_only=True, **common)
    assert np.isfinite(state["metrics"]["recognizer_loss"]) and "loss" not in state["metrics"]
    before, after = load_run("diffusion", source)[0], load_run("diffusion", run)[0]
    for part in ("unet", "ema_unet"):
        for trained, original in zip(getattr(after, part).get_weights(), getattr(before, part).get_weights()):
            np.testing.assert_array_equal(trained, original)
    assert any(np.abs(a - b).max() > 1e-6 for a, b in zip(after.recognizer.get_weights(),
                                                            before.recognizer.get_weights()))
    with pytest.raises(BadInputError, match="--recognizer-only trains the recognizer of a trained model"):
        train("diffusion", steps=1, run_dir=str(tmp_path / "none"), recognizer_only=True, **common)


def test_the_fresh_noise_is_a_permutation_without_fixed_points():
    permutation = ddim.noise_permutation(784)
    assert sorted(permutation) == list(range(784))
    assert not np.any(permutation == np.arange(784))


@pytest.fixture(scope="module")
def exported(tiny_export):
    """``exported(name)``: the tiny export, made on first use (per test worker: each export is a minute or two)."""
    return lambda name: tiny_export(name)[1]


def call_inpaint(runner, name, images, mask, noise):
    extra = ({"labels": np.full(len(images), NULL_LABEL, np.int32)} if name == "diffusion"
             else {"text": utf8.encode_texts(["a seven"] * len(images))})
    return runner("inpaint", images=images, mask=mask, noise=noise,
                  guidance=np.zeros(len(images), np.float32), **extra)["images"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["diffusion", "text2image"])
def test_the_committed_float16_file_inpaints_as_the_float32_file(name):
    """The float16 file once rounded the noise schedule, and RePaint's noise levels with it: its completions
    ended 0.18 (diffusion) and 0.19 (text2image) off the float32 file's on average (tests/test_diffusion.py has
    the mechanism)."""
    rng = np.random.default_rng(5)
    images = rng.uniform(0, 1, (2, 28, 28, 1)).astype(np.float32)
    mask = inpainting.named_mask("bottom", 2)
    noise = rng.standard_normal(images.shape).astype(np.float32)
    float32, float16 = (call_inpaint(load_exported(name, runtime="tflite", variant=v), name, images, mask, noise)
                        for v in ("float32", "float16"))
    assert np.abs(float16 - float32).mean() < 0.01


@pytest.mark.parametrize("reading", [False, True], ids=["given", "read_digit"])
@pytest.mark.parametrize("name", ["diffusion", "text2image"])
def test_the_tflite_inpaint_is_the_app_loop_over_denoise_step(exported, name, reading):
    """What a phone app gets from the exported loop is what its own NumPy loop over ``denoise_step`` gives; for
    a row without a digit (label 10 or the empty prompt, guidance above 0) too: ``read_digit``, then its own loop
    as that digit."""
    runner = load_exported(exported(name), runtime="tflite")
    rng = np.random.default_rng(6 if reading else 4)
    images = rng.uniform(0, 1, (2, 28, 28, 1)).astype(np.float32)
    mask = inpainting.named_mask("left" if reading else "bottom", 2)
    noise = rng.standard_normal(images.shape).astype(np.float32)
    guidance = np.full(2, 2.0 if reading else 0.0, np.float32)
    if reading:
        read = runner("read_digit", images=images, mask=mask)
        digits = read["digits"]
        assert digits.dtype == np.int32 and np.array_equal(digits, read["digit_probabilities"].argmax(axis=1))
    inputs = {"images": images, "mask": mask, "noise": noise, "guidance": guidance}
    if name == "diffusion":
        labels = np.full(2, NULL_LABEL, np.int32)
        in_graph = runner("inpaint", **inputs, labels=labels)["images"]
        step_labels = digits if reading else labels
        step = lambda x, t: runner("denoise_step", images_t=x, timestep=t, labels=step_labels,
                                   guidance=guidance)["predicted_noise"]
        recipe = diffusion_recipe
    else:
        prompts = ["", ""] if reading else ["a seven"] * 2
        in_graph = runner("inpaint", **inputs, text=utf8.encode_texts(prompts))["images"]
        step_prompts = [captions.class_prompts("en")[d] for d in digits] if reading else prompts
        embedding = runner("encode_text", text=utf8.encode_texts(step_prompts))["text_embedding"]
        step = lambda x, t: runner("denoise_step", images_t=x, timestep=t, text_embedding=embedding,
                                   guidance=guidance)["predicted_noise"]
        recipe = text2image_recipe
    steps, resample = recipe.INPAINT_STEPS, recipe.INPAINT_RESAMPLE
    app = ddim.inpaint_loop(step, np.asarray(runner.manifest["alpha_bars"], np.float32), images, mask, noise,
                            steps, resample)
    np.testing.assert_allclose(in_graph, app, atol=1e-4)
    assert np.array_equal(in_graph[mask == 1], images[mask == 1])
    assert runner.manifest["inpaint_steps"] == steps and runner.manifest["inpaint_resample"] == resample


@pytest.mark.parametrize("runtime", ["tflite", "savedmodel", "keras"])
@pytest.mark.parametrize("name", ["diffusion", "text2image"])
def test_bad_masks_and_shapes_are_clear_errors(exported, name, runtime):
    runner = load_exported(exported(name), runtime=runtime)
    images = np.full((2, 28, 28, 1), 0.5, np.float32)
    mask, noise = inpainting.named_mask("left", 2), np.zeros((2, 28, 28, 1), np.float32)
    with pytest.raises(BadInputError, match=r"'mask' must be 0 or 1"):
        call_inpaint(runner, name, images, np.full_like(mask, 0.5), noise)
    with pytest.raises(BadInputError, match=r"'images' must be in \[0.0, 1.0\]"):
        call_inpaint(runner, name, images * 3, mask, noise)
    with pytest.raises(BadInputError, match="disagree on the batch size"):
        call_inpaint(runner, name, images, mask[:1], noise)
    with pytest.raises(BadInputError, match=r"'mask' must have shape \[batch, 28, 28, 1\]"):
        call_inpaint(runner, name, images, mask[:, :14], noise)
    with pytest.raises(BadInputError, match=r"'mask' must be 0 or 1"):
        runner("read_digit", images=images, mask=np.full_like(mask, 0.5))
    with pytest.raises(BadInputError, match="disagree on the batch size"):
        runner("read_digit", images=images, mask=mask[:1])


@pytest.mark.xdist_group("diffusion")  # beside the other tests of its tiny export
def test_the_saved_model_itself_refuses_a_mask_that_is_not_0_or_1(exported):
    """What a TF Serving client sees: the graph's own check."""
    loaded = tf.saved_model.load(os.path.join(exported("diffusion"), "1"))
    images = tf.fill([2, 28, 28, 1], 0.5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask must be 0 .fill. or 1 .known."):
        loaded.signatures["inpaint"](images=images, mask=tf.fill([2, 28, 28, 1], 0.3), noise=tf.zeros([2, 28, 28, 1]),
                                     labels=tf.constant([1, 2]), guidance=tf.constant([0.0, 0.0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="images and mask must have the same shape"):
        loaded.signatures["inpaint"](images=images, mask=tf.ones([1, 28, 28, 1]), noise=tf.zeros([2, 28, 28, 1]),
                                     labels=tf.constant([1, 2]), guidance=tf.constant([0.0, 0.0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask must be 0 .fill. or 1 .known."):
        loaded.signatures["read_digit"](images=images, mask=tf.fill([2, 28, 28, 1], 0.3))


def test_the_app_loop_checks_its_inputs():
    images, mask, noise = np.zeros((1, 28, 28, 1)), np.ones((1, 28, 28, 1)), np.zeros((1, 28, 28, 1))
    with pytest.raises(BadInputError, match="mask must be 0 .fill. or 1 .known. at every pixel, got 0.25"):
        inpainting.check_inputs(images, mask * 0.25, noise)
    with pytest.raises(BadInputError, match="the same shape"):
        inpainting.check_inputs(images, np.ones((2, 28, 28, 1)), noise)
    with pytest.raises(BadInputError, match=r"images must be in \[0, 1\]"):
        inpainting.check_inputs(images - 1, mask, noise)
    with pytest.raises(BadInputError, match="unknown mask 'middle'"):
        inpainting.mask_for("middle", 1)


@pytest.mark.slow
@pytest.mark.xdist_group("diffusion")  # beside the other tests of its tiny export
def test_cli_inpaint_writes_completions_and_refuses_bad_files(exported, tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    digit = tmp_path / "digit.npy"
    np.save(digit, np.random.default_rng(0).uniform(0, 1, (28, 28)).astype(np.float32))
    wrong_size = tmp_path / "big.npy"
    np.save(wrong_size, np.zeros((32, 32), np.float32))
    parent = os.path.dirname(exported("diffusion"))

    def sample(*options):
        return subprocess.run([sys.executable, "-m", "zoo", "sample", "diffusion", "--exported-dir", parent,
                               *options], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)

    import matplotlib.image

    picture = tmp_path / "digit.png"  # RGBA, 8 bits: what an image editor saves
    matplotlib.image.imsave(picture, np.load(digit), cmap="gray", vmin=0, vmax=1)
    np.testing.assert_allclose(inpainting.read_image(str(picture), "x")[..., 0], np.load(digit), atol=0.01)
    output = tmp_path / "completions.png"
    for source in (digit, picture):
        ok = sample("--inpaint", str(source), "--mask", "left", "--num", "2", "--output", str(output))
        assert ok.returncode == 0, ok.stderr[-2000:]
        assert os.path.getsize(output) > 1000 and "2 completions" in ok.stdout
    for options, message in (([str(wrong_size)], "is 32 x 32; the model takes 28 x 28"),
                             ([str(digit), "--mask", "middle"], "unknown mask 'middle'"),
                             ([str(tmp_path / "missing.png")], "does not exist")):
        bad = sample("--inpaint", *options)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-2000:]


@pytest.mark.xdist_group("diffusion")  # beside the other tests of its tiny export
def test_the_phone_app_inpaints_from_the_tflite_file(exported, tmp_path, capsys):
    from zoo.diffusion import tflite_sample

    digit, output = tmp_path / "digit.npy", tmp_path / "app.png"
    np.save(digit, np.random.default_rng(0).uniform(0, 1, (28, 28)).astype(np.float32))
    tflite = os.path.join(exported("diffusion"), "diffusion.tflite")
    assert tflite_sample.main([tflite, "--inpaint", str(digit), "--mask", "top", "--num", "2",
                               "--output", str(output)]) == 0
    assert os.path.getsize(output) > 200
    assert "the known pixels read as a " in capsys.readouterr().err  # no --digit: read_digit chose it
    assert tflite_sample.main([tflite, "--inpaint", str(digit), "--mask", "middle", "--num", "2",
                               "--output", str(output)]) == 2
    assert "unknown mask 'middle': choose from bottom, top, left, right, random" in capsys.readouterr().err
