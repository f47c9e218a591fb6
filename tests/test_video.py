"""The video model: Moving MNIST's physics, the renderer against the data's, the frame-by-frame loop against the
in-graph clip, its app script, the sample command (export, parity and generic bad input: test_every_model.py)."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import needs_mnist, shadow_the_zoo
from zoo.core.data import moving_mnist
from zoo.core.recipes.commands import load as load_exported
from zoo.core.recipes.registry import get_recipe
from zoo.core.recipes.spec import get_spec
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.paths import REPO_ROOT


@pytest.fixture(scope="module")
def model():
    return get_spec("video").make_test_model(get_recipe("video"))


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export("video")[1]


def synthetic_clips(num, seed=0, one_digit_fraction=0.0):
    rng = np.random.default_rng(seed)
    images = (rng.random((50, 28, 28)) > 0.7).astype(np.float32)
    labels = rng.integers(0, 10, 50)
    return moving_mnist.make_clips(images, labels, rng, num, one_digit_fraction=one_digit_fraction)


def test_digits_bounce_off_the_edges_at_constant_speed():
    rng = np.random.default_rng(3)
    positions, velocities = moving_mnist.trajectories(rng, 500)
    assert positions.min() >= 0.0 and positions.max() <= 36.0
    speed = np.linalg.norm(velocities, axis=-1)
    assert np.allclose(speed, speed[:, :1]) and speed.min() >= 2.0 and speed.max() <= 5.0
    flips = np.sign(velocities[:, 1:]) != np.sign(velocities[:, :-1])
    assert 0.05 < flips.mean() < 0.5  # digits do bounce, not every frame
    # between bounces the path is straight: each step moves by the velocity
    steps = np.diff(positions, axis=1)
    unbounced = ~flips
    np.testing.assert_allclose(steps[unbounced], velocities[:, :-1][unbounced], atol=1e-9)
    # at a bounce the position is mirrored back inside: moved = p + v, then -moved or 72 - moved
    moved = positions[:, :-1] + velocities[:, :-1]
    mirrored = np.where(moved < 0, -moved, np.where(moved > 36, 72 - moved, moved))
    np.testing.assert_allclose(positions[:, 1:], mirrored, atol=1e-9)


def test_clips_are_drawn_at_whole_pixels_by_max_and_depend_on_seed_and_index_only():
    clips = synthetic_clips(8, one_digit_fraction=0.5)
    frames, corners, glyphs = clips["frames"], clips["corners"], clips["glyphs"]
    assert frames.shape == (8, 20, 64, 64, 1) and frames.min() >= 0 and frames.max() <= 1
    np.testing.assert_array_equal(corners, np.rint(clips["positions"]))
    n, t = 2, 7
    expected = np.zeros((64, 64), np.float32)
    for k in range(2):
        y, x = corners[n, t, k]
        expected[y : y + 28, x : x + 28] = np.maximum(expected[y : y + 28, x : x + 28], glyphs[n, k])
    np.testing.assert_array_equal(frames[n, t, ..., 0], expected)
    empty = clips["labels"][:, 1] == -1
    assert empty.any() and not glyphs[empty, 1].any()


@needs_mnist
def test_a_clip_depends_on_its_seed_and_index_only():
    whole = moving_mnist.moving_mnist_clips("test", 6, seed=5)
    part = moving_mnist.moving_mnist_clips("test", 2, seed=5, start=3)
    for key in whole:
        np.testing.assert_array_equal(part[key], whole[key][3:5])
    assert not np.array_equal(moving_mnist.moving_mnist_clips("test", 1, seed=6)["frames"], whole["frames"][:1])


def test_the_models_renderer_draws_what_the_data_draws():
    import tensorflow as tf

    from zoo.video.model import draw

    clips = synthetic_clips(4, seed=1)
    for t in (0, 9, 19):
        drawn = draw(tf.constant(clips["glyphs"]), tf.constant(clips["positions"][:, t])).numpy()
        np.testing.assert_array_equal(drawn, clips["frames"][:, t, ..., 0])


def test_prediction_measures_the_motion_it_sees():
    """Snapping to the glyph and fitting the mirrored path recover the data's own corners and velocities: with
    the true glyphs, every corner is found to the pixel and the state at frame 9 to a fraction of one."""
    import tensorflow as tf

    from zoo.video.model import fit_paths, path_at, snap_corners

    clips = synthetic_clips(16, seed=4)
    slots_first = lambda array: np.transpose(array, (0, 2, 1, 3))  # noqa: E731
    true_corners = slots_first(clips["corners"][:, :10]).astype(np.float32)
    # the tracker's guesses, up to 2 pixels off: the snap finds the whole-pixel corner the glyph was drawn at
    guessed = np.clip(true_corners + np.random.default_rng(0).integers(-2, 3, true_corners.shape), 0, 36).astype(np.float32)
    snapped = snap_corners(tf.constant(clips["frames"][:, :10, ..., 0]), tf.constant(clips["glyphs"]),
                           tf.constant(guessed), radius=2).numpy()
    assert np.mean(snapped == true_corners) > 0.97
    start, velocity = fit_paths(tf.constant(true_corners))
    corners, velocities = path_at(start, velocity, 9.0)
    np.testing.assert_allclose(corners.numpy(), clips["positions"][:, 9], atol=0.5)
    assert np.abs(velocities.numpy() - clips["velocities"][:, 9]).mean() < 0.1
    # a missed corner in one frame (off by 10 pixels) does not bend the fitted path
    missed = true_corners.copy()
    missed[:, :, 4] += np.where(missed[:, :, 4] > 18, -10.0, 10.0)
    start, velocity = fit_paths(tf.constant(missed))
    assert np.abs(path_at(start, velocity, 9.0)[1].numpy() - clips["velocities"][:, 9]).mean() < 0.15


def test_step_by_step_is_the_in_graph_clip(model):
    rng = np.random.default_rng(0)
    digits = np.array([[3, 7], [0, -1], [-1, -1]], np.int32)
    noise = rng.standard_normal((3, 2 * model.noise_per_slot)).astype(np.float32)
    clip = model.generate(digits, noise).numpy()
    glyphs, corners, velocities = model.start(digits, noise)
    assert corners.numpy().min() >= 0 and corners.numpy().max() <= 36
    speed = np.linalg.norm(velocities.numpy(), axis=-1)
    assert speed.min() >= 2 - 1e-4 and speed.max() <= 5 + 1e-4
    frames = []
    for _ in range(20):
        frame, corners, velocities = model.step(glyphs, corners, velocities)
        frames.append(frame.numpy())
    np.testing.assert_allclose(np.stack(frames, axis=1), clip, atol=1e-6)
    assert not clip[2].any(), "-1 -1 asks for no digit: black frames"
    assert clip[0].max() > 0.1 and clip[1].max() > 0.1


def test_prediction_continues_the_tracked_state(model):
    frames = synthetic_clips(2, seed=2)["frames"]
    predicted = model.predict_frames(frames[:, :10]).numpy()
    _, glyphs, corners, velocities = model.track(frames[:, :10])
    stepped = []
    for _ in range(10):
        frame, corners, velocities = model.step(glyphs, corners, velocities)
        stepped.append(frame.numpy())
    np.testing.assert_allclose(np.stack(stepped, axis=1), predicted, atol=1e-6)


@pytest.mark.slow  # trains
def test_training_learns_to_track():
    """A hundred steps on one batch of synthetic clips: the heatmaps, the corners and the glyphs move towards the truth."""
    import keras
    import tensorflow as tf

    model = get_recipe("video").create_model("tiny", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    batch = {key: tf.constant(value) for key, value in synthetic_clips(16, seed=4).items() if key != "corners"}
    step = tf.function(model.train_step)
    before = {name: float(value) for name, value in model.losses_of(batch)[1].items()}
    for _ in range(100):
        step(batch)
    after = {name: float(value) for name, value in model.losses_of(batch)[1].items()}
    assert after["heatmap_loss"] < before["heatmap_loss"] - 0.5, (before, after)
    assert after["corner_error"] < 0.7 * before["corner_error"], (before, after)
    assert after["glyph_loss"] < 0.95 * before["glyph_loss"], (before, after)  # random-pixel "digits": slower


def test_the_app_script_draws_the_in_graph_clip_without_the_zoo(exported, tmp_path):
    for name in ("video.tflite", "manifest.json"):
        shutil.copy(os.path.join(exported, name), tmp_path)
    shutil.copy(os.path.join(REPO_ROOT, "zoo", "video", "tflite_sample.py"), tmp_path)
    for shared in ("png.py", "manifest.py"):
        shutil.copy(os.path.join(REPO_ROOT, "zoo", "core", "apps", shared), tmp_path)
    shadow_the_zoo(str(tmp_path))
    context = synthetic_clips(1, seed=6)["frames"][0, :10, ..., 0]
    np.save(tmp_path / "context.npy", context)
    script = """
import sys, numpy as np, tflite_sample
app = tflite_sample.TFLiteVideo("video.tflite")
digits = np.array([[4, 9]], np.int32)
noise = np.random.default_rng(1).standard_normal((1, app.noise_size)).astype(np.float32)
drawn = app.frames(app.start(digits, noise), 20)
predicted = app.frames(app.track(np.load("context.npy")[None, ..., None]), 10)
np.savez("out.npz", drawn=drawn, noise=noise, predicted=predicted)
assert "zoo" not in sys.modules
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = np.load(tmp_path / "out.npz")
    runner = load_exported(exported, runtime="tflite")
    clip = runner("serving_default", digits=np.array([[4, 9]], np.int32), noise=out["noise"])["video"]
    np.testing.assert_allclose(out["drawn"], clip, atol=1e-5)
    predicted = runner("predict", frames=context[None, ..., None])["frames"]
    np.testing.assert_allclose(out["predicted"], predicted, atol=1e-5)
    # its command line writes a PNG strip, and refuses a bad digit with a message, not a traceback
    done = subprocess.run([sys.executable, "tflite_sample.py", "video.tflite", "--digits", "2", "-1", "--output",
                           "two.png"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "two.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    done = subprocess.run([sys.executable, "tflite_sample.py", "video.tflite", "--digits", "12", "3"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "digits must be" in done.stderr and "Traceback" not in done.stderr


def test_sample_predicts_from_the_users_frames_and_refuses_bad_ones(exported, tmp_path):
    recipe = get_recipe("video")
    runner = load_exported(exported, runtime="tflite")
    context = synthetic_clips(1, seed=8)["frames"][0, :10, ..., 0]
    np.save(tmp_path / "mine.npy", (context * 255).astype(np.uint8))  # uint8 frames are scaled
    output = str(tmp_path / "next.gif")
    said = recipe.sample(runner, output=output, seed=0, digits=[3, 7], context=str(tmp_path / "mine.npy"), num=1)
    assert "next 10 frames" in said and os.path.isfile(output) and os.path.isfile(str(tmp_path / "next.png"))
    from PIL import Image

    with Image.open(output) as gif:
        assert gif.n_frames == 20  # the user's 10, then the 10 predicted
    np.save(tmp_path / "short.npy", context[:4])
    with pytest.raises(BadInputError, match="expected 10 frames"):
        recipe.sample(runner, output=output, seed=0, digits=[3, 7], context=str(tmp_path / "short.npy"), num=1)
    np.save(tmp_path / "bright.npy", context * 3)
    with pytest.raises(BadInputError, match=r"values must be in \[0, 1\]"):
        recipe.sample(runner, output=output, seed=0, digits=[3, 7], context=str(tmp_path / "bright.npy"), num=1)


def test_the_cli_takes_two_digits_and_refuses_others():
    from zoo.core.recipes.options import resolve

    recipe = get_recipe("video")
    assert resolve(recipe, "sample", {"digits": [4, -1]})["digits"] == [4, -1]
    for bad, message in (([4], "takes 2 values"), ([3, 10], "at most 9"), ([-2, 3], "at least -1")):
        with pytest.raises(BadInputError, match=message):
            resolve(recipe, "sample", {"digits": bad})


@pytest.mark.slow
@needs_mnist
def test_training_continues_from_a_trained_model(tmp_path):
    """``train video --fine-tune-from``: a new run (its own schedule) that starts from another run's weights."""
    import zoo

    options = dict(steps=2, limit=64, batch_size=8, verbose=0, samples=False)
    zoo.train("video", preset="tiny", run_dir=str(tmp_path / "base"), **options)
    source, _, _ = zoo.load_run("video", str(tmp_path / "base"))
    zoo.train("video", learning_rate=1e-5, run_dir=str(tmp_path / "more"), fine_tune_from=str(tmp_path / "base"),
              **options)
    continued, run, _ = zoo.load_run("video", str(tmp_path / "more"))
    assert run["config"]["fine_tune_from"]["source"] == f"run {tmp_path / 'base'} at step 2"
    changes = [np.abs(a - b).max() for a, b in zip(continued.get_weights(), source.get_weights())]
    assert 0 < max(changes) < 1e-3  # started from the source, moved a little (lr 1e-5, 2 steps)
    fresh = get_recipe("video").create_model("tiny", seed=0)
    assert max(np.abs(a - b).max() for a, b in zip(continued.get_weights(), fresh.get_weights())) > 1e-3
