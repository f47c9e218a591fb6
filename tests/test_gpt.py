"""The byte-level GPT: causality, the key/value cache, sampling, export parity and bad input."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import zoo
from tests.conftest import shadow_the_zoo, synthetic_text
from zoo.core.runtime.runners import ModelRunner
from zoo.core.recipes.commands import load as load_exported
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.paths import REPO_ROOT
from zoo.core.recipes.registry import get_recipe
from zoo.core.recipes.spec import get_spec
from zoo.gpt import recipe as gpt_recipe
from zoo.gpt import tflite_generate
from zoo.core.training.optimizers import adamw_with_warmup
from zoo.core.apps import text_sampling
from zoo.core.nn.text_generation import sample_token
from zoo.core.nn.text_generation import VOCAB_SIZE
from zoo.gpt.model import GPT, PRESETS

CONTEXT = PRESETS["tiny"]["context_length"]


@pytest.fixture(scope="module")
def model():
    return get_spec("gpt").make_test_model(get_recipe("gpt"))


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export("gpt")[1]


def prompts(batch, length, seed):
    """Right-padded random byte prompts with lengths 1..length."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB_SIZE, (batch, length)).astype(np.int32)
    lengths = rng.integers(1, length + 1, batch).astype(np.int32)
    lengths[0] = length
    return tokens, lengths


def sampling_inputs(batch, temperature, seed, max_new_tokens=CONTEXT):
    rng = np.random.default_rng(seed)
    return {"max_new_tokens": np.full(batch, max_new_tokens, np.int32),
            "temperature": np.full(batch, temperature, np.float32),
            "top_k": np.array([0, 5, 0][:batch] + [0] * max(batch - 3, 0), np.int32),
            "top_p": np.array([1.0, 1.0, 0.9][:batch] + [1.0] * max(batch - 3, 0), np.float32),
            "noise": rng.uniform(size=(batch, CONTEXT)).astype(np.float32)}


def test_causality_later_bytes_do_not_change_earlier_logits(model):
    tokens, _ = prompts(2, CONTEXT, seed=0)
    changed = tokens.copy()
    changed[:, 20] = (changed[:, 20] + 1) % VOCAB_SIZE
    before, after = np.asarray(model(tokens)), np.asarray(model(changed))
    np.testing.assert_array_equal(before[:, :20], after[:, :20])
    assert np.abs(before[:, 20:] - after[:, 20:]).max() > 1e-3  # and the change does reach later positions


def test_cache_gives_the_logits_of_the_full_forward_pass(model):
    tokens, lengths = prompts(3, 12, seed=1)
    full_tokens = np.random.default_rng(2).integers(0, VOCAB_SIZE, (3, CONTEXT)).astype(np.int32)
    for row in range(3):
        full_tokens[row, : lengths[row]] = tokens[row, : lengths[row]]
    reference = np.asarray(model(full_tokens))  # [batch, CONTEXT, 256]
    state = model.prefill(tokens, lengths)
    np.testing.assert_allclose(state["logits"], reference[np.arange(3), lengths - 1], atol=1e-4)
    cache = state["cache"]
    for step in range(8):  # each row continues from its own length, through the cache
        positions = lengths + step
        out = model.decode_step(full_tokens[np.arange(3), positions], positions, cache)
        np.testing.assert_allclose(out["logits"], reference[np.arange(3), positions], atol=1e-4)
        cache = out["cache"]


def test_kept_cache_step_reads_only_earlier_positions_and_gives_the_full_forward_logits(model):
    """decode_step_kv with the caller writing the returned keys and values into its own per-layer cache: the
    full forward pass's logits, whatever the cache holds at the positions not yet written."""
    tokens, lengths = prompts(3, 12, seed=1)
    full_tokens = np.random.default_rng(2).integers(0, VOCAB_SIZE, (3, CONTEXT)).astype(np.int32)
    for row in range(3):
        full_tokens[row, : lengths[row]] = tokens[row, : lengths[row]]
    reference = np.asarray(model(full_tokens))
    cache = np.asarray(model.prefill(tokens, lengths)["cache"])
    heads, rows = model.num_heads, np.arange(3)
    layer_caches = [cache[:, i * heads:(i + 1) * heads].copy() for i in range(2 * model.num_layers)]
    junk = np.random.default_rng(3).normal(0, 50, layer_caches[0].shape).astype(np.float32)
    for layer_cache in layer_caches:  # what prefill left past each prompt (padding) replaced by other numbers
        unwritten = np.arange(CONTEXT)[None, None, :, None] >= lengths[:, None, None, None]
        layer_cache[:] = np.where(unwritten, junk, layer_cache)
    for step in range(8):
        positions = lengths + step
        out = model.decode_step_kv(full_tokens[rows, positions], positions, *layer_caches)
        np.testing.assert_allclose(out["logits"], reference[rows, positions], atol=1e-4)
        for i in range(model.num_layers):
            layer_caches[2 * i][rows, :, positions] = np.asarray(out["keys"])[:, i]
            layer_caches[2 * i + 1][rows, :, positions] = np.asarray(out["values"])[:, i]


def test_generate_greedy_is_the_argmax_loop_and_stops_at_the_context(model):
    tokens, lengths = prompts(3, 10, seed=3)
    lengths[:] = [10, 4, 7]
    inputs = sampling_inputs(3, 0.0, seed=4, max_new_tokens=30)
    out = model.generate(tokens, lengths, **inputs)
    np.testing.assert_array_equal(out["num_tokens"], np.minimum(30, CONTEXT - lengths))  # context limit
    for row in range(3):
        text = list(tokens[row, : lengths[row]])
        for _ in range(int(out["num_tokens"][row])):
            text.append(int(np.argmax(np.asarray(model(np.array([text], np.int32)))[0, -1])))
        generated = np.asarray(out["tokens"][row])
        assert list(generated[: out["num_tokens"][row]]) == text[lengths[row]:]
        assert not generated[out["num_tokens"][row]:].any()


def test_numpy_sampler_picks_what_the_graph_picks():
    rng = np.random.default_rng(5)
    batch = 400
    logits = (rng.standard_normal((batch, VOCAB_SIZE)) * 3).astype(np.float32)
    temperature = rng.choice([0.0, 0.5, 1.0, 1.5], batch).astype(np.float32)
    top_k = rng.choice([0, 1, 5, 40], batch).astype(np.int32)
    top_p = rng.choice([1.0, 0.9, 0.5, 1e-6], batch).astype(np.float32)
    uniform = rng.uniform(size=batch).astype(np.float32)
    graph = np.asarray(sample_token(logits, temperature, top_k, top_p, uniform))
    numpy = [text_sampling.sample_token(logits[i], temperature[i], top_k[i], top_p[i], uniform[i])
             for i in range(batch)]
    np.testing.assert_array_equal(graph, numpy)
    greedy = np.argmax(logits, axis=-1)
    narrow = (temperature == 0) | (top_k == 1) | (top_p == np.float32(1e-6))
    np.testing.assert_array_equal(graph[narrow], greedy[narrow])  # greedy, top-1 and tiny top_p agree
    assert (graph[~narrow] != greedy[~narrow]).mean() > 0.2  # and sampling really samples


def test_training_lowers_the_loss():
    import tensorflow as tf

    gpt = GPT(**PRESETS["tiny"], seed=0)
    adamw_with_warmup(gpt, {"learning_rate": 3e-3, "warmup_steps": 10, "decay_steps": 100})
    text = np.frombuffer(b"to be or not to be, that is the question. " * 40, np.uint8).astype(np.int32)
    windows = np.stack([text[i : i + CONTEXT + 1] for i in range(0, 16 * 7, 7)])
    batch = (tf.constant(windows[:, :-1]), tf.constant(windows[:, 1:]))
    step = tf.function(gpt.train_step)
    first = float(step(batch)["loss"])
    for _ in range(40):
        gpt.loss_tracker.reset_state()
        last = float(step(batch)["loss"])
    assert np.isfinite(first) and last < first - 1.0, (first, last)


def test_greedy_text_is_identical_in_keras_savedmodel_tflite_and_the_reference_loop(model, exported):
    prompt, count = "ROMEO:", CONTEXT - len("ROMEO:")
    texts = {}
    for runtime in ("keras", "savedmodel", "tflite"):
        runner = load_exported(exported, runtime=runtime)
        texts[runtime] = gpt_recipe.generate_text(runner, prompt, max_new_tokens=count, temperature=0.0,
                                                  slide=False)
    served = load_exported(exported, runtime="savedmodel")(
        "serving_default", prompt=np.array([prompt]), max_new_tokens=np.array([count], np.int32),
        temperature=np.zeros(1, np.float32), top_k=np.zeros(1, np.int32), top_p=np.ones(1, np.float32),
        seed=np.zeros(1, np.int32))["text"][0]
    in_graph = load_exported(exported, runtime="tflite")(
        "generate", tokens=np.frombuffer(prompt.encode(), np.uint8).astype(np.int32)[None],
        lengths=np.array([len(prompt)], np.int32), **sampling_inputs(1, 0.0, 0, max_new_tokens=count))
    tflite_graph = bytes(in_graph["tokens"][0, : in_graph["num_tokens"][0]].astype(np.uint8))
    keras_graph = model.generate(np.frombuffer(prompt.encode(), np.uint8).astype(np.int32)[None],
                                 np.array([len(prompt)], np.int32), **sampling_inputs(1, 0.0, 0, count))
    keras_bytes = bytes(np.asarray(keras_graph["tokens"][0]).astype(np.uint8)[:count])
    assert len(tflite_graph) == count
    assert tflite_graph == keras_bytes
    for text in (*texts.values(), served.decode("utf-8")):
        assert text == keras_bytes.decode("utf-8", errors="replace")


def test_sampled_text_matches_between_the_graph_loop_and_the_reference_loop(exported):
    runner = load_exported(exported, runtime="tflite")
    prompt = np.frombuffer(b"JULIET:", np.uint8).astype(np.int32)
    inputs = sampling_inputs(1, 1.0, seed=8, max_new_tokens=CONTEXT)
    inputs["top_k"][:], inputs["top_p"][:] = 20, 0.9
    graph = runner("generate", tokens=prompt[None], lengths=np.array([len(prompt)], np.int32), **inputs)
    count = int(graph["num_tokens"][0])
    reference = tflite_generate.generate_bytes(
        tflite_generate.TFLiteGPT(os.path.join(exported, "gpt.tflite")), bytes(prompt.astype(np.uint8)), count,
        1.0, 20, 0.9, noise=inputs["noise"][0], slide=False)
    assert bytes(graph["tokens"][0, :count].astype(np.uint8)) == reference


def test_invalid_utf8_is_replaced_not_raised():
    # an untrained GPT samples nearly uniform bytes: invalid UTF-8 almost surely
    runner = ModelRunner(get_recipe("gpt"), GPT(**PRESETS["tiny"], seed=0))
    inputs = {"prompt": np.array([b"a"], dtype=object), "max_new_tokens": np.array([20], np.int32),
              "temperature": np.ones(1, np.float32), "top_k": np.zeros(1, np.int32), "top_p": np.ones(1, np.float32),
              "seed": np.array([3], np.int32)}
    text = runner("serving_default", **inputs)["text"][0].decode("utf-8")  # valid UTF-8, or this raises
    assert "\ufffd" in text  # the invalid sequences were replaced


def test_strings_only_in_the_saved_model(exported):
    manifest = json.load(open(os.path.join(exported, "manifest.json")))
    assert sorted(manifest["signatures"]) == ["decode_step", "decode_step_kv", "generate", "logits", "prefill", "serving_default"]
    assert manifest["signatures"]["serving_default"]["runtimes"] == ["savedmodel", "keras"]
    assert manifest["signatures"]["serving_default"]["inputs"]["prompt"]["dtype"] == "string"
    with pytest.raises(BadInputError, match="SavedModel-only"):
        load_exported(exported, runtime="tflite")("serving_default", prompt=np.array(["a"]),
                                                  max_new_tokens=np.ones(1, np.int32),
                                                  temperature=np.ones(1, np.float32), top_k=np.zeros(1, np.int32),
                                                  top_p=np.ones(1, np.float32), seed=np.zeros(1, np.int32))


def test_the_app_loop_runs_from_a_copy_without_zoo(exported, tmp_path):
    shutil.copy(os.path.join(REPO_ROOT, "zoo", "gpt", "tflite_generate.py"), tmp_path)
    for shared in ("text_sampling.py", "manifest.py"):  # the byte sampler it shares, the sha256 check
        shutil.copy(os.path.join(REPO_ROOT, "zoo", "core", "apps", shared), tmp_path)
    shadow_the_zoo(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "tflite_generate.py", os.path.join(exported, "gpt.tflite"),
                             "--prompt", "ROMEO:", "--max-new-tokens", "40", "--temperature", "0"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    runner = load_exported(exported, runtime="tflite")
    assert result.stdout.rstrip("\n") == "ROMEO:" + gpt_recipe.generate_text(runner, "ROMEO:", max_new_tokens=40,
                                                                           temperature=0.0)
    # a file that does not match its manifest is refused before LiteRT loads it; so is --threads 0
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(os.path.join(exported, "manifest.json"), model_dir)
    data = bytearray(open(os.path.join(exported, "gpt.tflite"), "rb").read())
    data[-1] ^= 1
    (model_dir / "gpt.tflite").write_bytes(bytes(data))
    for args, message in (([str(model_dir / "gpt.tflite")], "does not match the sha256"),
                          ([os.path.join(exported, "gpt.tflite"), "--threads", "0"], "--threads must be at least 1")):
        refused = subprocess.run([sys.executable, "tflite_generate.py", *args, "--max-new-tokens", "2"], cwd=tmp_path,
                                 env=env, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr, \
            refused.stderr[-2000:]


@pytest.mark.parametrize("options, message", [
    ({"prompt": ""}, "prompt is empty"),
    ({"prompt": "x" * (CONTEXT + 1)}, "longer than the model's context"),
    # the app loop's message, or the runners' (the manifest's range, checked before the graph's own)
    ({"top_p": 0.0}, r"top_p must be in \(0, 1\]|'top_p' must be in \[1e-06, 1.0\]"),
    ({"top_p": 1.5}, r"top_p must be in \(0, 1\]|'top_p' must be in \[1e-06, 1.0\]"),
    ({"temperature": -0.5}, r"temperature must be >= 0|'temperature' must be in \[0.0, inf\]"),
    ({"top_k": -1}, r"top_k must be >= 0|'top_k' must be in \[0, inf\]"),
    ({"max_new_tokens": -1}, r"max_new_tokens must be >= 0|'max_new_tokens' must be in \[0, inf\]"),
])
def test_bad_input_is_a_clear_error(exported, options, message):
    settings = {"prompt": "ROMEO:", "max_new_tokens": 5, "temperature": 0.8, "top_k": 0, "top_p": 0.9, **options}
    for runtime in ("tflite", "savedmodel"):  # the hosts' check (reference loop)
        with pytest.raises(BadInputError, match=message):
            gpt_recipe.generate_text(load_exported(exported, runtime=runtime), **settings)
    served = {"prompt": np.array([settings["prompt"]]), "max_new_tokens": np.array([settings["max_new_tokens"]], np.int32),
              "temperature": np.array([settings["temperature"]], np.float32),
              "top_k": np.array([settings["top_k"]], np.int32), "top_p": np.array([settings["top_p"]], np.float32),
              "seed": np.zeros(1, np.int32)}
    for runtime in ("savedmodel", "keras"):  # the graph's own check, as TF Serving runs it
        with pytest.raises(BadInputError, match=message):
            load_exported(exported, runtime=runtime)("serving_default", **served)


@pytest.mark.slow
def test_cli_sample_slides_past_the_context_and_its_errors(exported, tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    parent = os.path.dirname(exported)
    output = str(tmp_path / "out.txt")
    ok = subprocess.run([sys.executable, "-m", "zoo", "sample", "gpt", "--exported-dir", parent, "--prompt", "月",
                         "--max-new-tokens", "100", "--output", output], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    with open(output, encoding="utf-8") as f:
        written = f.read()
    assert written.startswith("月") and len(written.encode("utf-8")) > 60  # slid past the 32-byte context
    bad = subprocess.run([sys.executable, "-m", "zoo", "sample", "gpt", "--exported-dir", parent, "--top-p", "0"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--top-p: must be more than 0.0" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_fine_tune_from_a_run_on_your_own_text(tmp_path, monkeypatch):
    from zoo.core.data import datasets as data

    shakespeare = np.frombuffer(synthetic_text(6000, seed=1), np.uint8)
    monkeypatch.setattr(data, "tiny_shakespeare", lambda split="train": data.split_bytes(shakespeare, split))
    zoo.train("gpt", preset="tiny", epochs=1, batch_size=16, run_dir=str(tmp_path / "base"), verbose=0)
    source, _, _ = zoo.load_run("gpt", str(tmp_path / "base"))
    mine = tmp_path / "mine.txt"
    mine.write_text("我的文字。" * 400, encoding="utf-8")
    state = zoo.train("gpt", epochs=1, batch_size=16, learning_rate=1e-4, run_dir=str(tmp_path / "mine"), verbose=0,
                            text=str(mine), fine_tune_from=str(tmp_path / "base"))
    tuned, run, _ = zoo.load_run("gpt", str(tmp_path / "mine"))
    assert run["config"]["fine_tune_from"]["source"].startswith("run ")
    assert tuned.get_config()["hidden_dim"] == source.get_config()["hidden_dim"]
    changes = [np.abs(a - b).max() for a, b in zip(tuned.get_weights(), source.get_weights())]
    assert 0 < max(changes) < 0.05  # started from the source, moved a little (lr 1e-4, a few steps)
    assert np.isfinite(state["metrics"]["val_loss"])
    with pytest.raises(Exception, match="neither an exported gpt folder"):
        zoo.train("gpt", epochs=1, batch_size=16, run_dir=str(tmp_path / "x"), verbose=0, text=str(mine),
                        fine_tune_from=str(tmp_path / "nowhere"))


@pytest.mark.slow
def test_generation_speed_benchmark_runs_every_way_and_they_agree(exported):
    from benchmarks.gpt import generation_speed

    speeds = generation_speed(os.path.dirname(exported), new_bytes=10, repeats=1)  # asserts equal bytes inside
    for runtime in ("tflite", "savedmodel"):
        for way in ("with_cache", "without_cache", "in_graph_generate"):
            assert speeds[f"{runtime}_{way}_bytes_per_second"] > 0


def test_app_loop_and_runners_refuse_positions_outside_the_context(exported):
    """A raw LiteRT call with position >= context fails inside GATHER, and -1 runs silently wrong:
    the app loop and the zoo's runners check first, and the manifest states the range."""
    manifest = json.load(open(os.path.join(exported, "manifest.json")))
    assert manifest["signatures"]["decode_step"]["inputs"]["position"]["range"] == [0, CONTEXT - 1]
    app = tflite_generate.TFLiteGPT(os.path.join(exported, "gpt.tflite"))
    _, cache = app.prefill([1, 2, 3])
    for position in (CONTEXT, -1):
        with pytest.raises(ValueError, match=rf"position must be in 0\.\.{CONTEXT - 1}"):
            app.decode_step(5, position, cache)
    with pytest.raises(ValueError, match="token must be a byte"):
        app.decode_step(256, 3, cache)
    cache = np.zeros([1, *manifest["signatures"]["decode_step"]["inputs"]["cache"]["shape"][1:]], np.float32)
    for runtime in ("tflite", "savedmodel", "keras"):
        with pytest.raises(BadInputError, match=r"'position' must be in \[0, %d\]" % (CONTEXT - 1)):
            load_exported(exported, runtime=runtime)("decode_step", token=np.array([5], np.int32),
                                                     position=np.array([CONTEXT], np.int32), cache=cache)


def test_app_decoder_keeps_one_cache_in_litert_and_refuses_a_stale_handle(exported):
    """TFLiteDecoder keeps the cache in decode_step_kv's input buffers: its bytes are decode_step's (the cache
    passed in and out), a cache given as numbers is loaded, and a handle from before a later prefill is refused."""
    app = tflite_generate.TFLiteGPT(os.path.join(exported, "gpt.tflite"))
    runner = load_exported(exported, runtime="tflite")
    prompt = list(b"ROMEO:")
    first = runner("prefill", tokens=np.array([prompt], np.int32), lengths=np.array([len(prompt)], np.int32))
    logits, handle = app.prefill(prompt)
    assert isinstance(handle, text_sampling.KeptCache)
    np.testing.assert_allclose(logits, first["logits"][0], atol=1e-5)
    cache = first["cache"]
    for position, token in enumerate([7, 65, 200, 10], start=len(prompt)):
        step = runner("decode_step", token=np.array([token], np.int32), position=np.array([position], np.int32),
                      cache=cache)
        logits, handle = app.decode_step(token, position, handle)
        np.testing.assert_allclose(logits, step["logits"][0], atol=1e-4)
        cache = step["cache"]
    loaded, _ = app.decode_step(33, len(prompt) + 4, cache)  # numbers from elsewhere: loaded, then stepped
    step = runner("decode_step", token=np.array([33], np.int32), position=np.array([len(prompt) + 4], np.int32),
                  cache=cache)
    np.testing.assert_allclose(loaded, step["logits"][0], atol=1e-4)
    _, old = app.prefill(list(b"JULIET:"))
    app.prefill(list(b"ROMEO:"))
    with pytest.raises(ValueError, match="replaced by a later prefill"):
        app.decode_step(5, 7, old)


def test_model_card_shapes_are_the_committed_manifests():
    """Every ``[batch, ...]`` shape the GPT card gives for the cache is the manifest's (a phone app is written from it)."""
    card = open(os.path.join(REPO_ROOT, "zoo", "gpt", "README.md"), encoding="utf-8").read()
    manifest = json.load(open(os.path.join(REPO_ROOT, "exported", "gpt", "manifest.json")))
    cache = manifest["signatures"]["decode_step"]["inputs"]["cache"]["shape"]
    want = "[batch, " + ", ".join(str(d) for d in cache[1:]) + "]"
    found = re.findall(r"cache\W+\[(?:batch|1), (\d+), (\d+), (\d+)\]", card)
    assert found, "the card shows the cache shape"
    assert all(list(map(int, shape)) == cache[1:] for shape in found), (found, want)


def test_memory_benchmark_measures_litert_alone_in_both_apis(exported, tmp_path):
    """benchmarks/tflite_memory.py on the tiny export: each variant measured in a fresh process through the
    Interpreter and the CompiledModel, against a budget of twice the file plus 50 MB."""
    from benchmarks.tflite_memory import measure

    result = measure("gpt", exported, str(tmp_path))
    assert result["signature"] == "decode_step" and set(result["variants"]) == {"float32", "float16", "int8"}
    for row in result["variants"].values():
        assert row["signatures"] == 5
        assert row["budget_mb"] == round(2 * row["file_mb"] + 50, 1)
        for api in ("interpreter", "compiled"):
            assert 0 < row[api]["runtime_mb"] < row[api]["peak_mb"]
            assert row[api]["within_budget"] == (row[api]["runtime_mb"] <= row["budget_mb"])
