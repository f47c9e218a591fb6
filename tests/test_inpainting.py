"""Restoration: RePaint's loop (graph and app copy), the ``inpaint`` signatures of diffusion and text2image in
every runtime, their input checks and the CLI's ``--inpaint``."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from zoo.core.apps import ddim
from zoo.core.recipes import inpainting
from zoo.core.recipes.commands import load as load_exported
from zoo.core.recipes.registry import get_recipe
from zoo.core.recipes.spec import get_spec
from zoo.core.runtime import utf8
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.paths import REPO_ROOT
from zoo.core.nn.unet import cosine_alpha_bars
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


@pytest.mark.parametrize("name", ["diffusion", "text2image"])
def test_the_tflite_inpaint_is_the_app_loop_over_denoise_step(exported, name):
    """What a phone app gets from the exported loop is what its own NumPy loop over ``denoise_step`` gives."""
    runner = load_exported(exported(name), runtime="tflite")
    rng = np.random.default_rng(4)
    images = rng.uniform(0, 1, (2, 28, 28, 1)).astype(np.float32)
    mask = inpainting.named_mask("bottom", 2)
    noise = rng.standard_normal(images.shape).astype(np.float32)
    in_graph = call_inpaint(runner, name, images, mask, noise)
    if name == "diffusion":
        step = lambda x, t: runner("denoise_step", images_t=x, timestep=t, labels=np.full(2, NULL_LABEL, np.int32),
                                   guidance=np.zeros(2, np.float32))["predicted_noise"]
        steps, resample = diffusion_recipe.INPAINT_STEPS, diffusion_recipe.INPAINT_RESAMPLE
    else:
        embedding = runner("encode_text", text=utf8.encode_texts(["a seven"] * 2))["text_embedding"]
        step = lambda x, t: runner("denoise_step", images_t=x, timestep=t, text_embedding=embedding,
                                   guidance=np.zeros(2, np.float32))["predicted_noise"]
        steps, resample = text2image_recipe.INPAINT_STEPS, text2image_recipe.INPAINT_RESAMPLE
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
    assert tflite_sample.main([tflite, "--inpaint", str(digit), "--mask", "middle", "--num", "2",
                               "--output", str(output)]) == 2
    assert "unknown mask 'middle': choose from bottom, top, left, right, random" in capsys.readouterr().err
