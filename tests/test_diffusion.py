"""The diffusion model: forward noising, training, guidance, the samplers and the step loop, its app script and
its own input checks (export, parity and generic bad input: test_every_model.py)."""

import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import shadow_the_zoo
from zoo.core import export as core_export
from zoo.core.recipes.commands import load as load_exported
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.runners import read_manifest
from zoo.core.runtime.paths import REPO_ROOT
from zoo.core.recipes.registry import get_recipe
from zoo.core.recipes.spec import get_spec
from zoo.diffusion import recipe as diffusion_recipe
from zoo.diffusion import tflite_sample
from zoo.core.nn.unet import cosine_alpha_bars, randomize_ema_unet
from zoo.diffusion.model import NULL_LABEL, PRESETS, Diffusion

STEPS = diffusion_recipe.GENERATE_STEPS  # DDIM steps of the exported loop


@pytest.fixture(scope="module")
def model():
    return get_spec("diffusion").make_test_model(get_recipe("diffusion"))


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export("diffusion")[1]


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


@pytest.mark.slow  # trains
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
    looped = diffusion_recipe.reference_loop(
        lambda x, t, l, w: runner("denoise_step", images_t=x, timestep=t, labels=l, guidance=w)["predicted_noise"],
        model.alpha_bars.numpy(), noise, labels, guidance, steps=STEPS)
    generated = runner("generate", noise=noise, labels=labels, guidance=guidance)["images"]
    np.testing.assert_allclose(looped, generated, atol=1e-5)
    assert 0 <= generated.min() and generated.max() <= 1


def gaussian_denoiser(alpha_bars, data_std):
    """The exact noise predictor E[eps | x_t] for data ~ N(0, data_std^2), independently per pixel."""

    def denoise_step(x, t, labels, guidance):
        alpha_bar = alpha_bars[t][:, None, None, None]
        return np.sqrt(1 - alpha_bar) * x / (alpha_bar * data_std**2 + 1 - alpha_bar)

    return denoise_step


def ancestral_std(alpha_bars, data_std, steps):
    """The spread respaced ancestral DDPM gives Gaussian data, by a scalar recursion on the variance.

    x_prev = k x_t + sqrt(v) z with the exact E[x0 | x_t]: Var_prev = k^2 Var_t + v. With coarse
    steps the posterior variance v leaves out the uncertainty of x0, so samples come out too narrow.
    """
    schedule = list(tflite_sample.timesteps(len(alpha_bars), steps)) + [-1]
    variance = 1.0
    for t, previous in zip(schedule[:-1], schedule[1:]):
        a, a_prev = float(alpha_bars[t]), (float(alpha_bars[previous]) if previous >= 0 else 1.0)
        beta = 1 - a / a_prev
        x0_gain = np.sqrt(a) * data_std**2 / (a * data_std**2 + 1 - a)
        k = np.sqrt(a_prev) * beta / (1 - a) * x0_gain + np.sqrt(1 - beta) * (1 - a_prev) / (1 - a)
        variance = k * k * variance + (beta * (1 - a_prev) / (1 - a) if previous >= 0 else 0.0)
    return float(np.sqrt(variance))


@pytest.mark.parametrize("sampler, steps", [("ddim", 50), ("ddpm", 1000), ("ddpm", 50)])
def test_samplers_with_the_exact_denoiser_draw_the_data_distribution(sampler, steps):
    """With the true score of Gaussian data, DDIM (50 steps) and ancestral DDPM (all 1000) sample that
    Gaussian; respaced DDPM (50) gives the narrower spread its recursion predicts. An error in any
    posterior coefficient or variance changes the spread."""
    alpha_bars = cosine_alpha_bars(1000)
    data_std, batch = 0.3, 8  # 6,272 independent pixels: the std is measured to about 1%
    noise = np.random.default_rng(6).standard_normal((batch, 28, 28, 1)).astype(np.float32)
    loop = tflite_sample.ddim_loop if sampler == "ddim" else tflite_sample.ddpm_loop
    images = loop(gaussian_denoiser(alpha_bars, data_std), alpha_bars, noise, np.zeros(batch, np.int32),
                  np.zeros(batch, np.float32), steps=steps)
    pixels = images * 2 - 1
    assert abs(pixels.mean()) < 0.02
    if sampler == "ddim" or steps == 1000:
        assert pixels.std() == pytest.approx(data_std, rel=0.05)
    if sampler == "ddpm":
        expected = ancestral_std(alpha_bars, data_std, steps)
        assert pixels.std() == pytest.approx(expected, rel=0.03)
        assert steps == 1000 or expected < 0.95 * data_std
        # ancestral sampling draws its own noise: another seed, other images
        again = loop(gaussian_denoiser(alpha_bars, data_std), alpha_bars, noise, np.zeros(batch, np.int32),
                     np.zeros(batch, np.float32), steps=steps, seed=1)
        assert np.abs(again - images).max() > 0.1


@pytest.mark.slow
def test_the_tflite_sampler_script_runs_without_zoo(model, exported, tmp_path):
    """``tflite_sample.py`` copied next to the TFLite file and manifest reproduces ``generate`` with no zoo."""
    for name in ("diffusion.tflite", "manifest.json"):
        shutil.copy(os.path.join(exported, name), tmp_path)
    shutil.copy(os.path.join(REPO_ROOT, "zoo", "diffusion", "tflite_sample.py"), tmp_path)
    for shared in ("ddim.py", "png.py", "manifest.py"):  # the app loops it shares with text2image, the sha256 check
        shutil.copy(os.path.join(REPO_ROOT, "zoo", "core", "apps", shared), tmp_path)
    shadow_the_zoo(str(tmp_path))
    noise, labels, guidance = inputs(3, seed=7)
    np.savez(tmp_path / "inputs.npz", noise=noise, labels=labels, guidance=guidance)
    script = f"""
import sys, numpy as np, tflite_sample
data = np.load("inputs.npz")
denoiser = tflite_sample.TFLiteDenoiser("diffusion.tflite")
looped = tflite_sample.ddim_loop(denoiser, denoiser.alpha_bars, data["noise"], data["labels"], data["guidance"],
                                 steps={STEPS})
np.savez("out.npz", looped=looped, generated=denoiser.generate(data["noise"], data["labels"], data["guidance"]))
assert "zoo" not in sys.modules
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(out["looped"], out["generated"], atol=1e-5)
    expected = load_exported(exported, runtime="savedmodel")("generate", noise=noise, labels=labels, guidance=guidance)
    np.testing.assert_allclose(out["generated"], expected["images"], atol=1e-3)  # float32 kernels' rounding over 50 DDIM steps
    # its command line writes a PNG, and refuses a bad digit with a message, not a traceback
    ok = subprocess.run([sys.executable, "tflite_sample.py", "diffusion.tflite", "--digit", "3", "--num", "4",
                         "--steps", "3", "--sampler", "ddpm", "--threads", "2", "--output", "three.png"], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (tmp_path / "three.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([sys.executable, "tflite_sample.py", "diffusion.tflite", "--digit", "12"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--digit must be 0-9" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run([sys.executable, "tflite_sample.py", "diffusion.tflite", "--threads", "0"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--threads must be at least 1" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("runtime", ["tflite", "savedmodel", "keras"])
def test_bad_labels_timesteps_and_guidance_are_clear_errors(model, exported, runtime):
    runner = load_exported(exported, runtime=runtime)
    noise, labels, guidance = inputs()
    with pytest.raises(BadInputError, match=r"shape \[batch, 28, 28, 1\]"):
        runner("generate", noise=noise[:, :, :, 0], labels=labels, guidance=guidance)
    with pytest.raises(BadInputError, match=r"'labels' must be in \[0, 10\]"):
        runner("generate", noise=noise, labels=np.array([1, 11, 2], np.int32), guidance=guidance)
    with pytest.raises(BadInputError, match=r"'labels' must be in \[0, 10\]"):
        runner("denoise_step", images_t=noise, timestep=np.zeros(3, np.int32), labels=np.array([-1, 1, 2], np.int32),
               guidance=guidance)
    with pytest.raises(BadInputError, match=r"'timestep' must be in \[0, 99\]"):
        runner("denoise_step", images_t=noise, timestep=np.array([0, 100, 5], np.int32), labels=labels,
               guidance=guidance)
    with pytest.raises(BadInputError, match="NaN or infinity"):
        runner("generate", noise=noise, labels=labels, guidance=np.array([1.0, np.nan, 2.0], np.float32))
    with pytest.raises(BadInputError, match="must be int32"):
        runner("generate", noise=noise, labels=labels.astype(np.float32), guidance=guidance)


def test_the_saved_model_itself_refuses_bad_labels_and_timesteps(exported):
    """What a TF Serving client sees: the graph's own checks, with a message that says what is wrong."""
    loaded = tf.saved_model.load(os.path.join(exported, "1"))
    noise, labels, guidance = inputs()
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be digits 0-9 or 10"):
        loaded.signatures["serving_default"](noise=tf.constant(noise), labels=tf.constant([1, 11, 2]),
                                             guidance=tf.constant(guidance))
    with pytest.raises(tf.errors.InvalidArgumentError, match="timestep must be in 0..99"):
        loaded.signatures["denoise_step"](images_t=tf.constant(noise), timestep=tf.constant([0, 100, 5]),
                                          labels=tf.constant(labels), guidance=tf.constant(guidance))


def test_sampling_loops_refuse_bad_settings(model):
    noise, labels, guidance = inputs()
    with pytest.raises(BadInputError, match="labels must be digits 0-9 or 10"):
        diffusion_recipe.reference_loop(lambda *a: a[0], model.alpha_bars.numpy(), noise,
                                        np.array([1, 11, 2], np.int32), guidance, steps=2)
    for sampler in ("ddim", "ddpm"):
        with pytest.raises(BadInputError, match="at least 1"):
            diffusion_recipe.reference_loop(lambda *a: a[0], model.alpha_bars.numpy(), noise, labels, guidance,
                                            steps=-3, sampler=sampler)
    with pytest.raises(BadInputError, match="unknown sampler 'euler'"):
        diffusion_recipe.reference_loop(lambda *a: a[0], model.alpha_bars.numpy(), noise, labels, guidance,
                                        sampler="euler")
    with pytest.raises(BadInputError, match=r"noise must have shape \[batch, 28, 28, 1\]"):
        diffusion_recipe.reference_loop(lambda *a: a[0], model.alpha_bars.numpy(), noise[:, :27], labels, guidance,
                                        steps=2)


@pytest.mark.slow
def test_cli_sample_ddim_and_ddpm_and_its_errors(exported, tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    parent = os.path.dirname(exported)
    for sampler, steps in (("ddim", STEPS), ("ddpm", 3)):
        output = str(tmp_path / f"{sampler}.png")
        ok = subprocess.run([sys.executable, "-m", "zoo", "sample", "diffusion", "--exported-dir", parent, "--digit",
                             "7", "--guidance", "2.0", "--steps", str(steps), "--sampler", sampler, "--output", output],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert ok.returncode == 0, ok.stderr[-2000:]
        assert os.path.getsize(output) > 1000
    for options, message in ((["--steps", "-5"], "--steps: must be at least 1, got -5"),
                             (["--digit", "10"], "--digit: must be at most 9, got 10"),
                             (["--sampler", "euler"], "--sampler: must be one of ddim, ddpm, got 'euler'"),
                             (["--guidance", "-1"], "--guidance: must be at least 0.0, got -1.0")):
        bad = subprocess.run([sys.executable, "-m", "zoo", "sample", "diffusion", "--exported-dir", parent, *options],
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-2000:]


@pytest.mark.slow  # converts and samples a 1000-step model
def test_float16_tflite_generate_survives_the_full_1000_step_schedule(tmp_path):
    """The float16 converter stores every float constant in float16, the noise schedule included:
    abar_999 (2.4e-9) and 1 - abar_0 (4e-5) must not round to 0 there (they once did, and the
    in-graph DDIM divided by zero). The tiny preset has T = 100, where this cannot show, so T = 1000."""
    from ai_edge_litert.interpreter import Interpreter

    model = randomize_ema_unet(Diffusion(**{**PRESETS["tiny"], "num_timesteps": 1000}, seed=0))  # as the spec's test model
    steps = 4
    generate = [s for s in diffusion_recipe.diffusion_signatures(model, steps=steps) if s.name == "generate"]
    core_export.write_saved_model(str(tmp_path / "saved"), generate)
    noise, labels, guidance = inputs(4, seed=2)
    expected = np.asarray(model.generate(noise, labels, guidance, steps=steps)["images"])
    for variant in ("float32", "float16"):
        flatbuffer = core_export.convert_to_tflite(str(tmp_path / "saved"), ["generate"], variant)
        run = Interpreter(model_content=flatbuffer).get_signature_runner("generate")
        images = run(noise=noise, labels=labels, guidance=guidance)["images"]
        # float16 weights change the network by ~1e-3; a zero in the schedule changes images by ~1
        np.testing.assert_allclose(images, expected, atol=1e-4 if variant == "float32" else 0.05, err_msg=variant)


@pytest.mark.slow  # converts and runs 250 RePaint steps
def test_float16_tflite_inpaints_on_the_float32_schedule(tmp_path):
    """RePaint's noise level between two DDIM steps is 1 - (sqrt(abar_t) / sqrt(abar_prev))^2, near t = 0 the
    size of float16's rounding of either: the schedule is looked up as float32 bit patterns (integers, which
    the float16 converter leaves alone). With float16 tables the float16 file's completions ended 0.14 off
    float32's on average (0.135 for the committed model's file)."""
    from ai_edge_litert.interpreter import Interpreter

    from zoo.core.recipes import inpainting

    model = randomize_ema_unet(Diffusion(**{**PRESETS["tiny"], "num_timesteps": 1000}, seed=0))
    inpaint = [s for s in diffusion_recipe.diffusion_signatures(model) if s.name == "inpaint"]
    core_export.write_saved_model(str(tmp_path / "saved"), inpaint)
    noise, labels, guidance = inputs(4, seed=2)
    feed = inpainting.random_test_inputs({"noise": noise, "labels": labels, "guidance": guidance}, seed=3)
    expected = np.asarray(model.inpaint(feed["images"], feed["mask"], feed["noise"], labels, guidance,
                                        diffusion_recipe.INPAINT_STEPS, diffusion_recipe.INPAINT_RESAMPLE)["images"])
    flatbuffer = core_export.convert_to_tflite(str(tmp_path / "saved"), ["inpaint"], "float16")
    images = Interpreter(model_content=flatbuffer).get_signature_runner("inpaint")(**feed)["images"]
    assert np.abs(images - expected).mean() < 0.002


def test_litert_threads_change_speed_not_results(exported):
    noise, labels, guidance = inputs()
    one, two = (load_exported(exported, runtime="tflite", num_threads=n) for n in (1, 2))
    np.testing.assert_allclose(two("generate", noise=noise, labels=labels, guidance=guidance)["images"],
                               one("generate", noise=noise, labels=labels, guidance=guidance)["images"], atol=1e-5)


def test_the_int8_file_computes_the_products_in_int8_and_the_sampler_in_float(exported):
    """"integer-products": every convolution and matrix product (the U-Net's work) reads int8 activations
    (XNNPACK's integer kernels), while the loops' DDIM arithmetic stays float32: quantized whole, the division
    by sqrt(abar_t) (5e-5 at the first step) met a zero and the file could not run its own generate."""
    from tensorflow.lite.python.schema_py_generated import BuiltinOperator, TensorType
    from tensorflow.lite.tools import flatbuffer_utils

    manifest = read_manifest(exported)
    entry = manifest["tflite"]["int8"]
    assert entry["kind"] == "integer-products" and "calibrated" in entry["quantization"]
    model = flatbuffer_utils.read_model(os.path.join(exported, entry["path"]))
    products = {getattr(BuiltinOperator, name) for name in core_export.PRODUCT_OPS}
    seen = {"products": 0, "divisions": 0}
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            kind = max(code.builtinCode, code.deprecatedBuiltinCode)
            if kind in products:
                seen["products"] += 1
                activations = op.inputs[2 if kind == BuiltinOperator.TRANSPOSE_CONV else 0]  # after its output shape
                assert subgraph.tensors[activations].type == TensorType.INT8, subgraph.tensors[op.outputs[0]].name
            if kind == BuiltinOperator.DIV:
                seen["divisions"] += 1
                assert subgraph.tensors[op.outputs[0]].type == TensorType.FLOAT32
    assert seen["products"] > 0 and seen["divisions"] > 0


def test_while_loop_carrying_computes_what_a_capturing_loop_does():
    """The invariants reach every iteration unchanged (the added zero changes no value) and only the loop
    variables come back; the tiny export's full-integer calibration of every loop is the crash it avoids."""
    from zoo.core.nn.loops import while_loop_carrying

    x0, scale, offset = tf.constant([1.0, -2.0]), tf.constant([0.5, 3.0]), tf.constant([7], tf.int32)
    counter, x = while_loop_carrying(lambda i, x: i < 4, lambda i, x, s, o: (i + 1, x * s + tf.cast(o, tf.float32)),
                                     [tf.constant(0), x0], [scale, offset])
    _, want = tf.while_loop(lambda i, x: i < 4, lambda i, x: (i + 1, x * scale + 7.0), [tf.constant(0), x0])
    assert int(counter) == 4
    np.testing.assert_array_equal(x.numpy(), want.numpy())
