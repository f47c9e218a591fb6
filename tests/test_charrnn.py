"""The character LSTM: step = the training forward pass, the state carried across windows, greedy parity
down to the app loop, any language, and clear errors for bad input."""

import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import shadow_the_zoo
from tests.export_checks import runners
from zoo.charrnn import tflite_generate
from zoo.charrnn.model import PRESETS, CharRNN
from zoo.charrnn.recipe import generate_text
from zoo.core.runtime.runners import SavedModelModel
from zoo.core.recipes.commands import load as load_exported
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.paths import REPO_ROOT
from zoo.core.recipes.registry import get_recipe
from zoo.core.recipes.spec import get_spec


@pytest.fixture(scope="module")
def model():
    return get_spec("charrnn").make_test_model(get_recipe("charrnn"))


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export("charrnn")[1]


def test_step_over_a_sequence_is_the_training_forward_pass_with_the_state_carried(model):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 256, (3, 12)).astype(np.int32)
    start = np.tanh(rng.standard_normal((3, model.state_size))).astype(np.float32)
    logits, end = model.forward(tokens, start)
    state = start
    for t in range(tokens.shape[1]):
        out = model.step(tokens[:, t], state)
        np.testing.assert_allclose(out["logits"], logits[:, t], atol=1e-4)
        state = out["state"]
    np.testing.assert_allclose(state, end, atol=1e-5)


def test_training_carries_the_state_from_window_to_window():
    """With the learning rate at 0, train_step's loss is the loss of the whole example read in one pass; had
    the state been reset at each window boundary, it would be another number."""
    config = {**PRESETS["tiny"], "windows_per_example": 3, "window": 6}
    model = CharRNN(**config, seed=1)
    for weight in model.trainable_weights:  # beyond the initial near-uniform model: logits that depend on the state
        weight.assign(weight * 5.0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (4, 19)).astype(np.int32)
    inputs, targets = data[:, :-1], data[:, 1:]
    trained = float(model.train_step((tf.constant(inputs), tf.constant(targets)))["loss"])

    def mean_loss(pieces):
        losses = []
        for x, y in pieces:
            logits = model.forward(x, model.zero_state(len(x)))[0]
            losses.append(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        return float(tf.reduce_mean(tf.concat(losses, axis=1)))

    carried = mean_loss([(inputs, targets)])
    reset = mean_loss([(inputs[:, k : k + 6], targets[:, k : k + 6]) for k in (0, 6, 12)])
    assert abs(trained - carried) < 1e-4
    assert abs(carried - reset) > 1e-2


def greedy_inputs(prompt_bytes, steps):
    return {"tokens": np.array([list(prompt_bytes)], np.int32), "lengths": np.array([len(prompt_bytes)], np.int32),
            "max_new_tokens": np.array([steps], np.int32), "temperature": np.zeros(1, np.float32),
            "top_k": np.zeros(1, np.int32), "top_p": np.ones(1, np.float32),
            "noise": np.zeros((1, steps), np.float32)}


def test_greedy_text_is_the_same_in_keras_savedmodel_tflite_and_the_app_loop(model, exported):
    prompt = "ROMEO: 月".encode("utf-8")
    want = np.asarray(model.generate(**greedy_inputs(prompt, 40))["tokens"][0])
    found = runners(exported)
    for key in ("keras", "savedmodel", "tflite_float32"):
        got = found[key]("generate", **greedy_inputs(prompt, 40))["tokens"][0]
        np.testing.assert_array_equal(got, want, err_msg=key)
    app = tflite_generate.TFLiteCharRNN(os.path.join(exported, "charrnn.tflite"))
    app_bytes = tflite_generate.generate_bytes(app, prompt, 40, temperature=0.0)
    assert list(app_bytes) == list(want)
    # sampled too: the app's NumPy sampler picks what the graph picks with the same noise
    noise = np.random.default_rng(2).uniform(size=40).astype(np.float32)
    inputs = {**greedy_inputs(prompt, 40), "temperature": np.full(1, 0.8, np.float32),
              "top_p": np.full(1, 0.95, np.float32), "noise": noise[None]}
    graph = found["tflite_float32"]("generate", **inputs)["tokens"][0]
    app_sampled = tflite_generate.generate_bytes(app, prompt, 40, temperature=0.8, top_p=0.95, noise=noise)
    assert list(app_sampled) == list(graph)


def test_generation_length_is_not_bounded_by_a_context(exported):
    """The GPT's generate stops at its 128-byte context; this one goes as far as the noise."""
    runner = load_exported(exported, runtime="tflite")
    out = runner("generate", **greedy_inputs(b"a", 300))
    assert int(out["num_tokens"][0]) == 300


def test_a_chinese_prompt_round_trips(exported, tmp_path):
    from zoo.__main__ import main

    runner = load_exported(exported, runtime="savedmodel")
    served = runner("serving_default", prompt=np.array(["月光", "ROMEO:"], object),
                    max_new_tokens=np.array([5, 5], np.int32), temperature=np.zeros(2, np.float32),
                    top_k=np.zeros(2, np.int32), top_p=np.ones(2, np.float32), seed=np.zeros(2, np.int32))
    text = [t.decode("utf-8") for t in served["text"]]
    # the string signature feeds the same bytes as the integer one
    want = runner("generate", **greedy_inputs("月光".encode("utf-8"), 5))["tokens"][0]
    assert text[0] == bytes(want.astype(np.uint8)).decode("utf-8", errors="replace")
    output = str(tmp_path / "moon.txt")
    assert main(["sample", "charrnn", "--exported-dir", os.path.dirname(exported), "--prompt", "月光",
                 "--max-new-tokens", "5", "--output", output]) == 0
    with open(output, encoding="utf-8") as f:
        assert f.read().startswith("月光")


def test_bad_input_is_a_clear_error_in_every_runtime_the_app_and_the_cli(exported, capsys):
    from zoo.__main__ import main

    for key, runner in runners(exported).items():
        with pytest.raises(BadInputError, match="state"):
            runner("step", token=np.array([1], np.int32), state=np.zeros((1, 7), np.float32))
        with pytest.raises(BadInputError, match="token"):
            runner("step", token=np.array([256], np.int32), state=np.zeros((1, runner.signatures["step"]["inputs"]
                                                                             ["state"]["shape"][1]), np.float32))
        with pytest.raises(BadInputError, match="empty"):
            generate_text(runner, "")
    saved_model = load_exported(exported, runtime="savedmodel")
    with pytest.raises(BadInputError, match="prompt is empty"):
        SavedModelModel.run(saved_model, "serving_default", {
            "prompt": np.array([b""], object), "max_new_tokens": np.array([3], np.int32),
            "temperature": np.zeros(1, np.float32), "top_k": np.zeros(1, np.int32), "top_p": np.ones(1, np.float32),
            "seed": np.zeros(1, np.int32)})
    app = tflite_generate.TFLiteCharRNN(os.path.join(exported, "charrnn.tflite"))
    with pytest.raises(ValueError, match="state must have shape"):
        app.step(1, np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="token must be a byte"):
        app.step(300, app.zero_state())
    with pytest.raises(ValueError, match="prompt is empty"):
        tflite_generate.generate_bytes(app, b"", 5)
    assert main(["sample", "charrnn", "--exported-dir", os.path.dirname(exported), "--prompt", ""]) == 2
    assert "--prompt: is empty" in capsys.readouterr().err


@pytest.mark.slow
def test_the_app_loop_runs_as_a_copied_script_without_the_zoo(exported, tmp_path):
    shutil.copy(os.path.join(REPO_ROOT, "zoo", "charrnn", "tflite_generate.py"), tmp_path)
    for shared in ("text_sampling.py", "manifest.py"):
        shutil.copy(os.path.join(REPO_ROOT, "zoo", "core", "apps", shared), tmp_path)
    shadow_the_zoo(tmp_path)
    result = subprocess.run([sys.executable, "tflite_generate.py", os.path.join(exported, "charrnn.tflite"),
                             "--prompt", "月", "--max-new-tokens", "20", "--temperature", "0"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("月")
