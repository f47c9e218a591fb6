"""``python -m zoo convert keras-hub``: a random-weight GPT-2 preset (nothing downloads) to the export contract.

Parity with KerasHub (greedy tokens and text), the pure-Python tokenizer against KerasHub's, the shared
export checks (builtin ops, names, every runtime, loads without zoo) and the errors; then
``python -m zoo finetune keras-hub`` of the conversion: the merged export computes the adapted model in every
runtime, and keeps the tokenizer, the signatures and the app loop.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests import export_checks
from zoo.convert import bpe
from zoo.convert import keras_hub as converter
from zoo.convert import tflite_generate
from zoo.core.apps import text_sampling
from zoo.core.runtime.runners import SavedModelModel, TFLiteModel, read_manifest
from zoo.core.recipes.commands import load as load_exported
from zoo.core.nn.decoder import decoder_signatures
from zoo.core.recipes import registry
from zoo.core.recipes.commands import finetune, load_run
from zoo.core.runtime.errors import BadInputError, ZooError
from zoo.core.runtime.paths import REPO_ROOT

pytestmark = pytest.mark.xdist_group("keras_hub")

CONTEXT = 48
TRAINING_TEXT = (
    "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. First Citizen: You are all "
    "resolved rather to die than to famish? All: Resolved. resolved. First Citizen: First, you know Caius Marcius "
    "is chief enemy to the people. The zoo is a place where people come to see the animals; it's 2024 and they'll "
    "pay 12 or 12345 dollars. ") * 3
PROMPTS = ["The zoo", "First Citizen:\nYou are", "it's 2024, people", "日本語 café"]
TRICKY = ["", " ", "   ", "\n\n\n", "a  b", "trailing  ", " leading", "Hello world!", "x<|endoftext|>y",
          "it'S 'll ''", "a\u00a0b \u3000c", "naïve café ४५ ² ½", "tab\there\r\nnew", "\u2009thin\u202fspace",
          "ROMEO: What, ho!  \n\n  It's", "emoji 🙂🙂 ok", "don't stop 'til you'd've"]


def _merges():
    return converter.learn_merges(TRAINING_TEXT, 120)


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("keras_hub") / "tiny_gpt2")
    # embedding_scale: random GPT-2 logits are nearly flat; larger ones keep greedy picks clear of rounding ties
    converter.random_preset(folder, merges=_merges(), hidden_dim=32, max_sequence_length=64, embedding_scale=4.0)
    return folder


@pytest.fixture(scope="module")
def causal_lm(preset):
    return converter.load_causal_lm(preset)


@pytest.fixture(scope="module")
def tokenizer(causal_lm, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tokenizer"))
    converter.tokenizer_files(causal_lm, folder)
    return bpe.BytePairTokenizer.from_folder(folder)


@pytest.fixture(scope="module")
def exported(preset, tmp_path_factory):
    """Converted through the command line, as a user would."""
    output = str(tmp_path_factory.mktemp("converted") / "tiny-gpt2")
    result = subprocess.run([sys.executable, "-m", "zoo", "convert", "keras-hub", preset, "--output", output,
                             "--context-length", str(CONTEXT)], capture_output=True, text=True, cwd=REPO_ROOT,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Exported to {output}" in result.stdout
    return output


def keras_graph_tokens(causal_lm, texts):
    """KerasHub's tokenizer in a TF graph: the path its SavedModel and tf.data use."""
    import tensorflow as tf

    tokenize = tf.function(lambda x: causal_lm.preprocessor.tokenizer(x))
    return tokenize(tf.constant(texts)).to_list()


def random_texts(count, seed):
    pool = list("abcXYZ019 \n\t'.,!?-") + ["'s", "'ll", " 2024", "\u00a0", "\u3000", "日", "é", "४", "²", "🙂",
                                          "<|endoftext|>", "  ", "\r\n"]
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(pool, rng.integers(0, 25))) for _ in range(count)]


# --- the tokenizer ------------------------------------------------------------------------------

def test_python_tokenizer_gives_keras_hub_tokens_exactly(causal_lm, tokenizer):
    texts = TRICKY + PROMPTS + random_texts(300, seed=0)
    want = keras_graph_tokens(causal_lm, texts)
    got = [tokenizer.tokenize(t) for t in texts]
    mismatches = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
    assert not mismatches, mismatches[:5]
    # and KerasHub's eager (Python) path, on text without 4-digit runs where its Llama-3 split differs
    for text in TRICKY + ["The zoo", "First Citizen:\nYou are"]:
        assert tokenizer.tokenize(text) == [int(i) for i in causal_lm.preprocessor.tokenizer(text)], text
    # decoding gives back the bytes, and KerasHub's detokenized text
    for text in texts[:60]:
        assert tokenizer.decode(tokenizer.tokenize(text)) == text
    assert tokenizer.encode("The zoo")[0] == causal_lm.preprocessor.tokenizer.start_token_id


def test_tokenizer_needs_no_tensorflow(tokenizer, tmp_path):
    """bpe.py alone, in a process where TensorFlow, NumPy and regex cannot be imported."""
    shutil.copy(os.path.join(REPO_ROOT, "zoo", "convert", "bpe.py"), tmp_path)
    folder = str(tmp_path / "tok")
    os.makedirs(folder)
    with open(os.path.join(folder, bpe.VOCABULARY_FILE), "w", encoding="utf-8") as f:
        json.dump(tokenizer.vocabulary, f)
    with open(os.path.join(folder, bpe.MERGES_FILE), "w", encoding="utf-8") as f:
        f.write("\n".join(m for m, _ in sorted(tokenizer.ranks.items(), key=lambda item: item[1])) + "\n")
    with open(os.path.join(folder, bpe.CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump({"special_tokens": tokenizer.special_tokens, "start_token": tokenizer.start_token}, f)
    script = ("import sys\nfor m in ('tensorflow', 'numpy', 'regex'): sys.modules[m] = None\n"
              "from bpe import BytePairTokenizer\nt = BytePairTokenizer.from_folder(sys.argv[1])\n"
              "print(t.encode(sys.argv[2]))")
    result = subprocess.run([sys.executable, "-c", script, folder, "The zoo"], capture_output=True, text=True,
                            cwd=str(tmp_path), env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == tokenizer.encode("The zoo")


# --- the network ---------------------------------------------------------------------------------

@pytest.mark.parametrize("architecture", ["GPT2", "OPT"])
def test_the_zoo_decoder_reproduces_keras_hub_greedy_generation(architecture, tmp_path):
    """The weights copied into DecoderLM: its in-graph generate gives KerasHub's greedy tokens (both covered
    architectures), and its logits KerasHub's."""
    folder = str(tmp_path / architecture)
    converter.random_preset(folder, merges=_merges(), architecture=architecture, hidden_dim=32,
                            max_sequence_length=64, embedding_scale=4.0, seed=1)
    causal_lm = converter.load_causal_lm(folder)
    model = converter.decoder_from_keras_hub(causal_lm, CONTEXT)
    functions = {s.name: s.function for s in decoder_signatures(model, None, unit="token")[1:]}

    def run(signature, **inputs):  # inputs in the signature's order, as runner_greedy passes them
        return {k: np.asarray(v) for k, v in functions[signature](*inputs.values()).items()}

    tokens = np.random.default_rng(0).integers(0, model.vocabulary_size, (2, 20)).astype(np.int32)
    want = causal_lm({"token_ids": tokens, "padding_mask": np.ones_like(tokens)})
    np.testing.assert_allclose(run("logits", tokens=tokens)["logits"], np.asarray(want), atol=1e-4)
    start = causal_lm.preprocessor.tokenizer.start_token_id
    for prompt in PROMPTS[:3]:
        ids = [start] + [int(i) for i in causal_lm.preprocessor.tokenizer(prompt)]
        expected = converter.keras_hub_greedy(causal_lm, ids, 20)
        assert len(expected) > 0
        assert converter.runner_greedy(run, ids, 20, CONTEXT) == expected, (architecture, prompt)


# --- the export ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_greedy_tokens_and_text_equal_keras_hub_in_every_runtime(exported, causal_lm, tokenizer):
    manifest = read_manifest(exported)
    saved = SavedModelModel(os.path.join(exported, "1"), manifest)
    lite = TFLiteModel(os.path.join(exported, manifest["tflite"]["float32"]["path"]), manifest)
    app = text_sampling.TFLiteDecoder(os.path.join(exported, manifest["tflite"]["float32"]["path"]))
    stop = tflite_generate.stop_token_of(exported)
    assert stop == causal_lm.preprocessor.tokenizer.end_token_id
    for prompt in PROMPTS:
        ids = tokenizer.encode(prompt)
        want = converter.keras_hub_greedy(causal_lm, ids, 24)
        assert want, prompt
        assert converter.runner_greedy(saved, ids, 24, CONTEXT) == want, ("savedmodel", prompt)
        assert converter.runner_greedy(lite, ids, 24, CONTEXT) == want, ("tflite generate", prompt)
        assert text_sampling.generate_tokens(app, ids, 24, slide=False, stop_token=stop) == want, ("app loop", prompt)
        # text in, text out: the SavedModel's serving_default against KerasHub's own generate
        out = saved("serving_default", prompt=np.array([prompt], object), max_new_tokens=np.array([24], np.int32),
                    temperature=np.zeros(1, np.float32), top_k=np.zeros(1, np.int32), top_p=np.ones(1, np.float32),
                    seed=np.zeros(1, np.int32))["text"][0]
        text = out.decode("utf-8") if isinstance(out, bytes) else out
        keras_hub_text = causal_lm.generate(prompt, max_length=len(ids) + 24)
        assert prompt + text == keras_hub_text, prompt
        assert tflite_generate.generate_text(app, tokenizer, prompt, max_new_tokens=24, temperature=0,
                                             stop_token=stop) == text
    metrics = manifest["metrics"]
    assert metrics["tflite_float32"]["greedy_agreement_with_keras_hub"] == 1.0
    assert metrics["savedmodel"]["greedy_agreement_with_keras_hub"] == 1.0
    assert manifest["training"]["source"]["keras_hub_class"] == "GPT2CausalLM"
    for name in (bpe.VOCABULARY_FILE, bpe.MERGES_FILE, bpe.CONFIG_FILE):
        assert name in [f["path"] for f in manifest["files"]]


@pytest.mark.slow
def test_shared_export_checks(exported, causal_lm, tmp_path):
    """Builtin ops only, the same signatures and names in SavedModel and TFLite, every runtime against the
    in-memory model, and the SavedModel and TFLite files without zoo."""
    export_checks.check_builtin_only(exported)
    manifest = read_manifest(exported)
    assert set(manifest["signatures"]) == {"serving_default", "logits", "prefill", "decode_step", "decode_step_kv", "generate"}
    gpt = read_manifest(os.path.join(REPO_ROOT, "exported", "gpt"))
    def kinds(names):  # keys_0, keys_1, ... : one per layer, and the two models' depths differ
        return sorted({re.sub(r"_\d+$", "_i", name) for name in names})

    for name, signature in manifest["signatures"].items():  # one app loop drives both
        assert kinds(signature["inputs"]) == kinds(gpt["signatures"][name]["inputs"]), name
        assert sorted(signature["outputs"]) == sorted(gpt["signatures"][name]["outputs"]), name
    model = converter.decoder_from_keras_hub(causal_lm, CONTEXT)
    functions = {s.name: s.function for s in decoder_signatures(model, None, unit="token")[1:]}
    rng = np.random.default_rng(0)
    prompt_tokens = rng.integers(0, model.vocabulary_size, (2, 10)).astype(np.int32)
    filled = functions["prefill"](prompt_tokens, np.array([10, 7], np.int32))["cache"]
    inputs = {
        "logits": {"tokens": prompt_tokens},
        "prefill": {"tokens": prompt_tokens, "lengths": np.array([10, 7], np.int32)},
        "decode_step": {"token": prompt_tokens[:, 0].copy(), "position": np.array([10, 7], np.int32),
                        "cache": np.asarray(filled)},
        "decode_step_kv": {"token": prompt_tokens[:, 0].copy(), "position": np.array([10, 7], np.int32),
                           **{f"{kind}_{i}": np.asarray(filled)[:, (2 * i + j) * model.num_heads:
                                                                (2 * i + j + 1) * model.num_heads]
                              for i in range(model.num_layers) for j, kind in enumerate(("keys", "values"))}},
        "generate": {"tokens": prompt_tokens, "lengths": np.array([10, 7], np.int32),
                     "max_new_tokens": np.array([6, 6], np.int32), "temperature": np.array([0.0, 0.0], np.float32),
                     "top_k": np.array([0, 0], np.int32), "top_p": np.array([1.0, 1.0], np.float32),
                     "noise": rng.uniform(size=(2, CONTEXT)).astype(np.float32)},
        "serving_default": {"prompt": np.array(["The zoo", "it's"], object),
                            "max_new_tokens": np.array([5, 5], np.int32),
                            "temperature": np.array([0.0, 0.0], np.float32), "top_k": np.array([0, 0], np.int32),
                            "top_p": np.array([1.0, 1.0], np.float32), "seed": np.array([0, 1], np.int32)},
    }
    expected = {name: {k: np.asarray(v) for k, v in functions[name](*inputs[name].values()).items()}
                for name in inputs if name != "serving_default"}
    saved = SavedModelModel(os.path.join(exported, "1"), manifest)
    expected["serving_default"] = saved("serving_default", **inputs["serving_default"])
    # quantized weights of a 32-wide random model can move a greedy pick: their generated tokens are
    # measured by the manifest's agreement metric instead of asserted equal
    export_checks.check_parity(exported, inputs, expected, integer_runtimes=("savedmodel", "tflite_float32"))
    export_checks.check_loads_without_zoo(exported, inputs, expected, tmp_path)


@pytest.mark.slow
def test_bad_prompts_are_clear_errors_in_every_runtime(exported, tokenizer):
    manifest = read_manifest(exported)
    saved = SavedModelModel(os.path.join(exported, "1"), manifest)
    row = dict(max_new_tokens=np.array([5], np.int32), temperature=np.zeros(1, np.float32),
               top_k=np.zeros(1, np.int32), top_p=np.ones(1, np.float32), seed=np.zeros(1, np.int32))
    long_prompt = "people " * CONTEXT
    for prompt, message in (("", "prompt is empty"), (long_prompt, f"longer than the model's context of {CONTEXT}")):
        with pytest.raises(BadInputError, match=message):
            saved("serving_default", prompt=np.array([prompt], object), **row)
    # the TF Serving path: the graph itself refuses (no zoo runner in front)
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the tokenizer's ops; the manifest lists it under savedmodel.imports)

    assert manifest["savedmodel"]["imports"] == ["tensorflow_text"]
    loaded = tf.saved_model.load(os.path.join(exported, "1"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="prompt is longer than the model.*context of 48"):
        loaded.signatures["serving_default"](prompt=tf.constant([long_prompt]),
                                             **{k: tf.constant(v) for k, v in row.items()})
    app = text_sampling.TFLiteDecoder(os.path.join(exported, manifest["tflite"]["float32"]["path"]))
    for prompt, message in (("", "empty"), (long_prompt, "longer than the model's context")):
        with pytest.raises(ValueError, match=message):
            tflite_generate.generate_text(app, tokenizer, prompt)
    lite = load_exported(exported, runtime="tflite")
    with pytest.raises(BadInputError, match="more than the 48"):
        lite("prefill", tokens=np.zeros((1, CONTEXT + 1), np.int32), lengths=np.array([3], np.int32))
    with pytest.raises(BadInputError, match="must be in"):
        lite("decode_step", token=np.array([10 ** 6], np.int32), position=np.array([0], np.int32),
             cache=np.zeros([1, *manifest["signatures"]["decode_step"]["inputs"]["cache"]["shape"][1:]], np.float32))
    with pytest.raises(ValueError, match="token id"):
        app.decode_step(10 ** 6, 0, np.zeros([1, *manifest["signatures"]["decode_step"]["inputs"]["cache"]["shape"][1:]],
                                             np.float32))
    # the app's command line: exit 2 with the message
    result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "zoo", "convert", "tflite_generate.py"),
                             os.path.join(exported, manifest["tflite"]["float32"]["path"]), "--prompt", long_prompt],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "longer than the model's context" in result.stderr


@pytest.mark.slow
def test_app_loop_cli_runs_from_a_copy_without_zoo(exported, tmp_path):
    app_dir = tmp_path / "app"
    shutil.copytree(exported, app_dir / "model")
    for path in ("zoo/convert/tflite_generate.py", "zoo/convert/bpe.py", "zoo/core/apps/text_sampling.py",
                 "zoo/core/apps/manifest.py"):
        shutil.copy(os.path.join(REPO_ROOT, path), app_dir)
    name = read_manifest(exported)["tflite"]["int8"]["path"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "tflite_generate.py", os.path.join("model", name), "--prompt", "The zoo",
                             "--max-new-tokens", "8"], capture_output=True, text=True, cwd=str(app_dir), env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("The zoo")


def test_presets_that_cannot_convert_get_clear_errors(preset, tmp_path):
    missing = tmp_path / "missing"
    shutil.copytree(preset, missing)
    os.remove(missing / "model.weights.h5")
    with pytest.raises(ZooError, match="missing model.weights.h5"):
        converter.load_causal_lm(str(missing))
    for task, what in (("GPT2TextClassifier", "not a causal LM"), ("LlamaCausalLM", "a causal LM")):
        other = tmp_path / task
        shutil.copytree(preset, other)
        with open(other / "task.json") as f:
            config = json.load(f)
        config["class_name"] = task
        with open(other / "task.json", "w") as f:
            json.dump(config, f)
        with pytest.raises(BadInputError, match=f"{what}.*covers GPT2CausalLM, OPTCausalLM"):
            converter.load_causal_lm(str(other))
    with pytest.raises(ZooError, match="no preset folder"):
        converter.load_causal_lm(str(tmp_path / "nowhere"))
    with pytest.raises(BadInputError, match="context-length must be in 2..64"):
        converter.decoder_from_keras_hub(converter.load_causal_lm(preset), 65)
    # the command line says it in one line and exits 2
    result = subprocess.run([sys.executable, "-m", "zoo", "convert", "keras-hub", str(tmp_path / "LlamaCausalLM"),
                             "--output", str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 2 and "covers GPT2CausalLM, OPTCausalLM" in result.stderr
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.slow
def test_the_cpp_loader_runs_the_converted_model_with_tensorflow_texts_ops_linked(exported):
    """What TF Serving needs for a converted model: its string signatures use TensorFlow Text's regex split,
    which a plain C++ TensorFlow does not have ("Op type not registered"); with the op libraries linked, as
    TF Serving's model server links them, every SavedModel signature runs and matches Python."""
    from zoo.core.runtime import cpp_loader
    from zoo.core.runtime.serving import example_inputs

    if cpp_loader.compiler() is None:
        pytest.skip(cpp_loader.INSTALL_HINT)
    binary = cpp_loader.build()
    manifest = read_manifest(exported)
    assert manifest["savedmodel"]["imports"] == ["tensorflow_text"]
    saved_model = os.path.join(exported, manifest["savedmodel"]["path"])
    requests = {name: example_inputs(entry, batch=2, seed=1) for name, entry in manifest["signatures"].items()
                if "savedmodel" in entry.get("runtimes", ["savedmodel"])}
    string_signatures = {name for name, entry in manifest["signatures"].items()
                         if any(spec["dtype"] == "string" for spec in entry["inputs"].values())}
    assert string_signatures
    with pytest.raises(ZooError, match="Op type not registered 'RegexSplitWithOffsets'"):
        cpp_loader.run_signatures(saved_model, {name: requests[name] for name in string_signatures}, binary)
    in_cpp = cpp_loader.run_signatures(saved_model, requests, binary,
                                       libraries=cpp_loader.op_libraries(manifest["savedmodel"]["imports"]))
    python = load_exported(exported, runtime="savedmodel")
    for signature, inputs in requests.items():
        expected = python(signature, **inputs)
        for output, value in expected.items():
            got = in_cpp[signature][output]
            if value.dtype.kind in "iubOS":
                assert got.tolist() == value.tolist(), (signature, output)
            else:
                np.testing.assert_allclose(got, value, rtol=1e-4, atol=1e-4, err_msg=f"{signature} {output}")


# --- fine-tuning the conversion --------------------------------------------------------------------

CODE_TEXT = "".join(f"def read_{i}(path):\n    with open(path) as f:\n        return f.read()[{i}:]\n\n"
                    for i in range(60))


@pytest.fixture(scope="module")
def finetuned(exported, tmp_path_factory):
    """The conversion fine-tuned on Python-like text through the command line: rank-2 adapters, 4 steps."""
    folder = tmp_path_factory.mktemp("finetune-keras-hub")
    data = folder / "code.txt"
    data.write_text(CODE_TEXT, encoding="utf-8")
    output = str(folder / "tiny-gpt2-code")
    result = subprocess.run([sys.executable, "-m", "zoo", "finetune", "keras-hub", "--base", exported, "--data",
                             str(data), "--output", output, "--lora-rank", "2", "--steps", "4", "--batch-size", "4",
                             "--learning-rate", "1e-2"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Exported to {output}" in result.stdout and "(base) ->" in result.stdout
    return output


@pytest.mark.slow
def test_the_fine_tuned_conversion_computes_the_adapted_model_in_every_runtime(exported, finetuned, tokenizer):
    adapted, run, state = load_run(registry.recipe_for_converted("keras-hub", exported), finetuned + ".run")
    assert run["config"]["lora"]["rank"] == 2 and run["config"]["lora"]["trained_in_full"] == ["_norm"]
    tokens = np.random.default_rng(5).integers(0, adapted.vocabulary_size, (3, 20)).astype(np.int32)
    expected = adapted(tokens).numpy()
    before = load_exported(exported, runtime="keras")("logits", tokens=tokens)["logits"]
    assert np.abs(expected - before).max() > 1e-3  # the fine-tune changed the model
    for runtime, tolerance in (("keras", 2e-5), ("savedmodel", 1e-4), ("tflite", 1e-4)):
        got = load_exported(finetuned, runtime=runtime)("logits", tokens=tokens)["logits"]
        np.testing.assert_allclose(got, expected, atol=tolerance, err_msg=runtime)
    manifest, base = read_manifest(finetuned), read_manifest(exported)
    assert set(manifest["signatures"]) == set(base["signatures"])
    base_files = {f["path"]: f["sha256"] for f in base["files"]}
    files = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert "tiny-gpt2-code.keras" in files and "tiny-gpt2-code.int8.tflite" in files
    for name in (bpe.VOCABULARY_FILE, bpe.MERGES_FILE, bpe.CONFIG_FILE):  # the base's tokenizer, unchanged
        assert files[name] == base_files[name], name
    training = manifest["training"]
    assert training["fine_tuned_from"]["keras_sha256"] == base_files["tiny-gpt2.keras"]
    assert training["source"]["keras_hub_class"] == "GPT2CausalLM"
    before_loss, after_loss = training["losses_before_training"]["val_loss"], training["final_losses"]["val_loss"]
    assert after_loss < before_loss
    assert manifest["metrics"]["tflite_float32"]["validation_loss"] == pytest.approx(after_loss, abs=1e-3)
    # text in, text out: the SavedModel's tokenizer and the app loop's Python one give the same greedy text
    saved = load_exported(finetuned, runtime="savedmodel")
    app = text_sampling.TFLiteDecoder(os.path.join(finetuned, manifest["tflite"]["float32"]["path"]))
    for prompt in ("def read", "The zoo"):
        out = saved("serving_default", prompt=np.array([prompt], object), max_new_tokens=np.array([12], np.int32),
                    temperature=np.zeros(1, np.float32), top_k=np.zeros(1, np.int32), top_p=np.ones(1, np.float32),
                    seed=np.zeros(1, np.int32))["text"][0]
        text = out.decode("utf-8") if isinstance(out, bytes) else out
        assert tflite_generate.generate_text(app, tokenizer, prompt, max_new_tokens=12, temperature=0,
                                             stop_token=tflite_generate.stop_token_of(finetuned)) == text, prompt


@pytest.mark.slow
def test_finetune_keras_hub_refuses_what_is_not_a_conversion_before_training(exported, tmp_path):
    data = tmp_path / "code.txt"
    data.write_text(CODE_TEXT, encoding="utf-8")
    no_keras = tmp_path / "no-keras"
    shutil.copytree(exported, no_keras)
    with open(no_keras / "manifest.json") as f:
        manifest = json.load(f)
    del manifest["keras"]
    with open(no_keras / "manifest.json", "w") as f:
        json.dump(manifest, f)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(exported, corrupt)
    with open(corrupt / "tiny-gpt2.keras", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    output = tmp_path / "out"
    cases = [
        (None, "--base is required"),
        (str(tmp_path), "not an exported model"),
        (os.path.join(REPO_ROOT, "exported", "gpt"), "is the zoo's gpt, not a KerasHub conversion"),
        (str(no_keras), "has no .keras file"),
        (str(corrupt), "sha256"),
    ]
    for base, message in cases:
        with pytest.raises(ZooError, match=message):
            finetune("keras-hub", base=base, data=str(data), output=str(output), steps=2, batch_size=4, verbose=0)
        assert not os.path.exists(output) and not os.path.exists(str(output) + ".run"), base
