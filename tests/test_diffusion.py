"""The diffusion model: forward noising, training, guidance, the step loop, export parity and bad input."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import export_checks
from zoo.core import export as core_export
from zoo.core.artifacts import load_exported
from zoo.core.errors import BadInputError
from zoo.diffusion import export as diffusion_export
from zoo.diffusion.model import NULL_LABEL, PRESETS, Diffusion, cosine_alpha_bars

STEPS = 4  # DDIM steps of the exported test model


@pytest.fixture(scope="module")
def model():
    """A tiny model with random (not zero-initialised) output layers, so every path is exercised."""
    diffusion = Diffusion(**PRESETS["tiny"], seed=0)
    rng = np.random.default_rng(0)
    for weight in diffusion.ema_unet.weights:
        weight.assign(rng.normal(0, 0.1, weight.shape).astype("float32"))
    return diffusion


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return core_export.export_model("diffusion", signatures=diffusion_export.signatures(model, steps=STEPS),
                                    keras_model=model, keras_loader="zoo.diffusion.export:KerasDiffusion",
                                    output_dir=str(tmp_path_factory.mktemp("export")),
                                    notes={"alpha_bars": [float(a) for a in model.alpha_bars.numpy()],
                                           "generate_steps": STEPS})


def inputs(batch=3, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, 28, 28, 1)).astype(np.float32),
            np.array([1, 7, NULL_LABEL, 3][:batch], np.int32), np.array([2.0, 1.0, 0.0, 0.5][:batch], np.float32))


def test_forward_noising_matches_the_closed_form(model):
    alpha_bars = cosine_alpha_bars(model.num_timesteps)
    assert np.all(np.diff(alpha_bars) < 0) and 0 < alpha_bars[-1] < 1e-3 and alpha_bars[0] > 0.99
    rng = np.random.default_rng(2)
    images = rng.uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)
    noise = rng.standard_normal((4, 28, 28, 1)).astype(np.float32)
    timestep = np.array([0, 10, 50, model.num_timesteps - 1], np.int32)
    expected = (np.sqrt(alpha_bars[timestep])[:, None, None, None] * images
                + np.sqrt(1 - alpha_bars[timestep])[:, None, None, None] * noise)
    np.testing.assert_allclose(model.add_noise(images, timestep, noise), expected, atol=1e-6)


def test_training_steps_lower_the_loss_on_a_fixed_batch():
    diffusion = Diffusion(**PRESETS["tiny"], seed=0)
    diffusion.compile(optimizer=keras.optimizers.Adam(3e-3))
    rng = np.random.default_rng(3)
    batch = (tf.constant(rng.uniform(-1, 1, (32, 28, 28, 1)).astype(np.float32)),
             tf.constant(rng.integers(0, 10, 32).astype(np.int32)))
    step = tf.function(diffusion.train_step)
    losses = []
    for _ in range(30):
        diffusion.loss_tracker.reset_state()
        losses.append(float(step(batch)["loss"]))
    assert np.isfinite(losses).all() and np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


def test_guidance_zero_is_the_unconditional_prediction_and_one_the_conditional(model):
    noise, labels, _ = inputs()
    timestep = np.array([5, 50, 90], np.int32)
    unconditional = model.ema_unet((noise, timestep, np.full(3, NULL_LABEL, np.int32)))
    conditional = model.ema_unet((noise, timestep, labels))
    np.testing.assert_allclose(model.denoise_step(noise, timestep, labels, np.zeros(3, np.float32))["predicted_noise"],
                               unconditional, atol=1e-5)
    np.testing.assert_allclose(model.denoise_step(noise, timestep, labels, np.ones(3, np.float32))["predicted_noise"],
                               conditional, atol=1e-5)
    assert np.abs(np.asarray(conditional) - np.asarray(unconditional))[:2].max() > 1e-4  # the label matters


def test_the_step_loop_over_denoise_step_equals_generate(model, exported):
    noise, labels, guidance = inputs()
    runner = load_exported(exported, runtime="tflite")
    looped = diffusion_export.reference_loop(
        lambda x, t, l, w: runner("denoise_step", images_t=x, timestep=t, labels=l, guidance=w)["predicted_noise"],
        model.alpha_bars.numpy(), noise, labels, guidance, steps=STEPS)
    generated = runner("generate", noise=noise, labels=labels, guidance=guidance)["images"]
    np.testing.assert_allclose(looped, generated, atol=1e-5)
    assert 0 <= generated.min() and generated.max() <= 1


def parity_case(model, seed):
    noise, labels, guidance = inputs(3, seed)
    timestep = np.array([3, 40, 99], np.int32)
    generated = {"images": np.asarray(model.generate(noise, labels, guidance, steps=STEPS)["images"])}
    return ({"serving_default": {"noise": noise, "labels": labels, "guidance": guidance},
             "generate": {"noise": noise, "labels": labels, "guidance": guidance},
             "denoise_step": {"images_t": noise, "timestep": timestep, "labels": labels, "guidance": guidance}},
            {"serving_default": generated, "generate": generated,
             "denoise_step": {k: np.asarray(v) for k, v in model.denoise_step(noise, timestep, labels, guidance).items()}})


# Rounding differences between runtimes compound over the DDIM steps (each step divides by
# sqrt(abar_t), up to 30 at the first step): images get 10 times the tolerance of one network
# call, and the int8 network's images are checked within 0.3.
IMAGE_SCALE = {"images": 10.0}


def test_parity_every_signature_every_runtime(model, exported):
    export_checks.check_parity(exported, *parity_case(model, seed=4), tolerances={"tflite_int8": 0.3},
                               scale=IMAGE_SCALE)


def test_tflite_builtin_only_with_the_same_names(exported):
    export_checks.check_builtin_only(exported)
    manifest = json.load(open(os.path.join(exported, "manifest.json")))
    assert sorted(manifest["signatures"]) == ["denoise_step", "generate", "serving_default"]


def test_loads_without_zoo(model, exported, tmp_path):
    export_checks.check_loads_without_zoo(exported, *parity_case(model, seed=5), tmp_path, scale=IMAGE_SCALE)


def test_bad_input_is_a_clear_error(model, exported):
    runner = load_exported(exported, runtime="tflite")
    noise, labels, guidance = inputs()
    with pytest.raises(BadInputError, match=r"shape \[batch, 28, 28, 1\]"):
        runner("generate", noise=noise[:, :, :, 0], labels=labels, guidance=guidance)
    with pytest.raises(BadInputError, match="labels must be digits 0-9 or 10"):
        diffusion_export.reference_loop(lambda *a: a[0], model.alpha_bars.numpy(), noise,
                                        np.array([1, 11, 2], np.int32), guidance, steps=2)
    with pytest.raises(BadInputError, match="at least 1"):
        diffusion_export.reference_loop(lambda *a: a[0], model.alpha_bars.numpy(), noise, labels, guidance, steps=0)
