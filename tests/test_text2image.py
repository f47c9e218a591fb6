"""What is special to text-to-image (the shared checks are in test_every_model.py)."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import shadow_the_zoo
from zoo.core.runtime import utf8
from zoo.core.runtime.runners import SavedModelModel
from zoo.core.recipes.commands import load as load_exported
from zoo.core.runtime.errors import BadInputError
from zoo.core.recipes.registry import get_recipe
from zoo.core.recipes.spec import get_spec

RECIPE = get_recipe("text2image")


def _inputs(prompts, guidance, seed=0):
    noise = np.random.default_rng(seed).standard_normal((len(prompts), 28, 28, 1)).astype(np.float32)
    return utf8.encode_texts(prompts), noise, np.full(len(prompts), guidance, np.float32)


def test_guidance_zero_is_the_unconditional_model():
    model = get_spec(RECIPE.name).make_test_model(RECIPE)
    text, noise, guidance = _inputs(["a bold seven", "一个细体的三", ""], 0.0)
    same_noise = np.repeat(noise[:1], 3, axis=0)
    images = model.generate(text, same_noise, guidance, steps=3)["images"].numpy()
    np.testing.assert_allclose(images[0], images[2], atol=1e-5)  # any prompt = the empty prompt at guidance 0
    np.testing.assert_allclose(images[1], images[2], atol=1e-5)
    guided = model.generate(text, same_noise, np.full(3, 3.0, np.float32), steps=3)["images"].numpy()
    assert np.abs(guided[0] - guided[2]).max() > 1e-3  # with guidance the prompt matters


def test_the_text_encoder_is_frozen_and_the_unet_learns(synthetic_data_dir):
    import keras

    from tests.conftest import data_dir_set
    from zoo.core.data import captions

    model = RECIPE.create_model("tiny", seed=0)
    encoder_before = [w.numpy().copy() for w in model.text_encoder.weights]
    unet_before = [w.numpy().copy() for w in model.unet.trainable_weights]
    with data_dir_set(synthetic_data_dir):
        batch = next(iter(captions.captioned_dataset("train", batch_size=8, limit=16, value_range=(-1.0, 1.0))))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.train_step(batch)
    assert not model.text_encoder.trainable_weights
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(encoder_before, model.text_encoder.weights))
    assert sum(not np.allclose(a, w.numpy()) for a, w in zip(unet_before, model.unet.trainable_weights)) > 0


def test_base_preset_without_an_exported_clip_says_what_to_do(tmp_path, monkeypatch):
    from zoo.core.runtime import paths

    monkeypatch.setattr(paths, "EXPORTED_DIR", str(tmp_path))  # an empty exported/ folder
    with pytest.raises(Exception, match="python -m zoo export"):
        RECIPE.create_model("base")


@pytest.mark.slow
def test_text_checks_and_the_string_signature(tiny_export):
    _, exported = tiny_export("text2image")
    text, noise, guidance = _inputs(["一个粗体的七", "a thin three"], 2.0)
    cut = text.copy()
    cut[0, 17] = 0
    for runtime in ("tflite", "savedmodel", "keras"):
        with pytest.raises(BadInputError, match="not valid UTF-8"):
            load_exported(exported, runtime=runtime)("serving_default", text=cut, noise=noise, guidance=guidance)
    saved = load_exported(exported, runtime="savedmodel")
    with pytest.raises(BadInputError, match="not valid UTF-8"):
        SavedModelModel.run(saved, "serving_default", {"text": cut, "noise": noise, "guidance": guidance})
    with pytest.raises(BadInputError, match="longer than 64 bytes"):
        SavedModelModel.run(saved, "serving_strings", {"text": np.array(["七" * 22, "x"], object), "noise": noise,
                                                       "guidance": guidance})
    from_strings = saved("serving_strings", text=np.array(["一个粗体的七", "a thin three"], object), noise=noise,
                         guidance=guidance)["images"]
    from_rows = saved("serving_default", text=text, noise=noise, guidance=guidance)["images"]
    np.testing.assert_allclose(from_strings, from_rows, atol=1e-6)


@pytest.mark.slow
def test_app_loop_reproduces_the_in_graph_loop_without_the_zoo(tiny_export, tmp_path):
    """The app's NumPy DDIM over ``encode_text`` + ``denoise_step`` = ``serving_default``, run as an app runs it."""
    _, exported = tiny_export("text2image")
    app = tmp_path / "app"
    app.mkdir()
    for name in ("text2image.tflite", "manifest.json"):
        shutil.copy(os.path.join(exported, name), app / name)
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "zoo", "text2image", "tflite_sample.py"), app)
    for shared in ("ddim.py", "png.py", "text_rows.py", "manifest.py"):  # shared with the diffusion and seq2seq apps
        shutil.copy(os.path.join(os.path.dirname(__file__), "..", "zoo", "core", "apps", shared), app)
    shadow_the_zoo(str(app))
    script = (
        "import numpy as np, tflite_sample as t\n"
        "m = t.TextToImage('text2image.tflite')\n"
        "prompts = ['一个粗体的七', 'a thin three']\n"
        "noise = np.random.default_rng(0).standard_normal((2, 28, 28, 1)).astype(np.float32)\n"
        "g = np.array([3.0, 0.5], np.float32)\n"
        "a, b = m.ddim(prompts, noise, g), m.generate(prompts, noise, g)\n"
        "print('max difference', float(np.abs(a - b).max()))\n"
        "assert np.abs(a - b).max() < 1e-4\n"
        "try:\n"
        "    t.prompt_bytes(['七' * 22])\n"
        "except ValueError as e:\n"
        "    print('refused:', e)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=str(app), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refused: the prompt is 66 bytes" in result.stdout
    code = subprocess.run([sys.executable, "tflite_sample.py", "text2image.tflite", "--prompt", "数字五", "--num", "2",
                           "--output", "out.png"], cwd=str(app), capture_output=True, text=True, timeout=300)
    assert code.returncode == 0, code.stderr[-2000:]
    assert (app / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = subprocess.run([sys.executable, "tflite_sample.py", "text2image.tflite", "--prompt", "七" * 22],
                             cwd=str(app), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "at most 64" in refused.stderr
