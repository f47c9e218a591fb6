"""Fine-tuning (``python -m zoo finetune``): low-rank adapters on any model's dense kernels, merged back into
plain kernels for export; the merged export computes what the adapted model computes in every runtime; bad
input is refused before any training, with nothing written."""

import json
import os
import shutil

import numpy as np
import pytest

import zoo
from tests.conftest import synthetic_text
from zoo.core.nn import lora
from zoo.core.recipes.commands import load_run
from zoo.core.recipes.registry import get_recipe
from zoo.core.recipes.spec import get_spec
from zoo.core.runtime.runners import ModelRunner
from zoo.core.runtime.errors import ZooError
from zoo.gpt.model import GPT, PRESETS
from zoo.core.training.optimizers import adamw_with_warmup


def tokens(batch, length, seed):
    return np.random.default_rng(seed).integers(0, 256, (batch, length)).astype(np.int32)


def test_adapters_train_alone_and_merge_into_the_same_function():
    model = GPT(**PRESETS["tiny"], seed=0)
    base = {v.path: v.numpy().copy() for v in model.weights}
    x = tokens(2, 16, seed=1)
    before = model(x).numpy()
    lora.enable(model, rank=4, seed=0)
    np.testing.assert_array_equal(model(x).numpy(), before)  # B starts at zero: the adapted model is the base
    trainable, base_count, adapter_count = lora.parameter_counts(model)
    assert trainable == adapter_count == sum(4 * sum(layer._kernel.shape) for layer in lora.adaptable_layers(model))
    assert trainable < 0.15 * base_count
    adamw_with_warmup(model, {"learning_rate": 1e-2, "warmup_steps": 1, "decay_steps": 10})
    for step in range(3):
        model.train_step((x[:, :-1], x[:, 1:]))
    for variable in model.weights:  # only the adapters moved
        if lora.is_adapter(variable):
            continue
        np.testing.assert_array_equal(variable.numpy(), base[variable.path], err_msg=variable.path)
    adapted = model(x).numpy()
    assert np.abs(adapted - before).max() > 1e-3
    merged = lora.merged(model)
    assert not any(lora.is_adapter(v) for v in merged.weights) and len(merged.weights) == len(base)
    np.testing.assert_allclose(merged(x).numpy(), adapted, atol=2e-5)


def test_weights_named_to_train_in_full_train_beside_the_adapters_and_merge_as_they_are():
    model = GPT(**PRESETS["tiny"], seed=0)
    base = {v.path: v.numpy().copy() for v in model.weights}
    lora.enable(model, rank=2, seed=0, train_in_full=("token_embedding", "_norm"))
    in_full = {v.path for v in model.trainable_variables if not lora.is_adapter(v)}
    assert in_full and all("token_embedding" in p or "_norm" in p for p in in_full)
    assert any("final_norm" in p for p in in_full) and not any("position_embedding" in p for p in in_full)
    x = tokens(2, 16, seed=1)
    adamw_with_warmup(model, {"learning_rate": 1e-2, "warmup_steps": 1, "decay_steps": 10})
    for step in range(3):
        model.train_step((x[:, :-1], x[:, 1:]))
    for variable in model.weights:
        if lora.is_adapter(variable):
            continue
        moved = not np.array_equal(variable.numpy(), base[variable.path])
        assert moved == (variable.path in in_full), variable.path
    merged = lora.merged(model)
    np.testing.assert_allclose(merged(x).numpy(), model(x).numpy(), atol=2e-5)
    with pytest.raises(ValueError, match="no weight whose path contains 'embedings'"):
        lora.enable(GPT(**PRESETS["tiny"], seed=0), rank=2, train_in_full=("embedings",))


def test_embedding_adapters_train_the_table_and_the_tied_head_and_merge_into_it():
    model = GPT(**PRESETS["tiny"], seed=0)
    table = model.token_embedding.embeddings.numpy().copy()
    lora.enable(model, rank=2, seed=0, train_in_full=("_norm",), embedding_ranks={"token_embedding": 4})
    trainable, _, adapters = lora.parameter_counts(model)
    assert adapters == sum(2 * sum(layer._kernel.shape) for layer in lora.adaptable_layers(model)) + 4 * (256 + 32)
    x = tokens(2, 16, seed=1)
    adamw_with_warmup(model, {"learning_rate": 1e-2, "warmup_steps": 1, "decay_steps": 10})
    for step in range(3):
        model.train_step((x[:, :-1], x[:, 1:]))
    np.testing.assert_array_equal(model.token_embedding._embeddings.numpy(), table)  # frozen; its adapter moved
    assert np.abs(model.token_embedding.embeddings.numpy() - table).max() > 1e-4
    merged = lora.merged(model)
    assert not merged.token_embedding.lora_enabled
    np.testing.assert_allclose(merged.token_embedding.embeddings.numpy(), model.token_embedding.embeddings.numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(merged(x).numpy(), model(x).numpy(), atol=2e-5)
    with pytest.raises(ValueError, match="no Embedding layer whose path contains 'word_embedding'"):
        lora.enable(GPT(**PRESETS["tiny"], seed=0), rank=2, embedding_ranks={"word_embedding": 4})
    with pytest.raises(ZooError, match="must be in 1...32"):
        lora.enable(GPT(**PRESETS["tiny"], seed=0), rank=2, embedding_ranks={"token_embedding": 64})


def test_embedding_rows_train_only_the_tokens_named_and_merge_into_the_table_and_head():
    model = GPT(**PRESETS["tiny"], seed=0)
    table = model.token_embedding.embeddings.numpy().copy()
    seen = np.array([3, 7, 7, 40, 200])  # repeats count once
    lora.enable(model, rank=2, seed=0, train_in_full=("_norm",), embedding_rows={"token_embedding": seen})
    trainable, _, adapters = lora.parameter_counts(model)
    kernels = sum(2 * sum(layer._kernel.shape) for layer in lora.adaptable_layers(model))
    assert adapters == kernels + 4 * 32  # four rows of width 32; the fixed one-hot choice is not trained
    x = np.random.default_rng(1).choice(np.unique(seen), (2, 16)).astype(np.int32)
    adamw_with_warmup(model, {"learning_rate": 1e-2, "warmup_steps": 1, "decay_steps": 10})
    for step in range(3):
        model.train_step((x[:, :-1], x[:, 1:]))
    np.testing.assert_array_equal(model.token_embedding._embeddings.numpy(), table)
    changed = np.abs(model.token_embedding.embeddings.numpy() - table).max(axis=1) > 1e-5
    assert sorted(np.flatnonzero(changed)) == [3, 7, 40, 200]  # those rows moved, every other stayed exactly
    merged = lora.merged(model)
    np.testing.assert_array_equal(merged.token_embedding.embeddings.numpy()[~changed], table[~changed])
    np.testing.assert_allclose(merged(x).numpy(), model(x).numpy(), atol=2e-5)  # the tied head too
    with pytest.raises(ZooError, match="token ids in 0...255"):
        lora.enable(GPT(**PRESETS["tiny"], seed=0), rank=2, embedding_rows={"token_embedding": [5, 256]})
    with pytest.raises(ValueError, match="either a low-rank adapter or trained rows"):
        lora.enable(GPT(**PRESETS["tiny"], seed=0), rank=2, embedding_rows={"token_embedding": [5]},
                    embedding_ranks={"token_embedding": 4})


def test_a_fine_tune_copies_the_base_with_its_recipes_config_changes():
    from zoo.core.recipes.commands import with_config

    model = GPT(**{**PRESETS["tiny"], "dropout": 0.3}, seed=0)
    copy = with_config(model, **get_recipe("gpt").finetune_model_config)
    assert copy.dropout == 0.0 and model.dropout == 0.3 and type(copy) is GPT
    for a, b in zip(copy.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = tokens(2, 16, seed=1)
    np.testing.assert_allclose(copy(x).numpy(), model(x).numpy(), atol=1e-6)
    assert not np.allclose(model(x, training=True).numpy(), model(x).numpy())  # the base's dropout, off in the copy
    np.testing.assert_allclose(copy(x, training=True).numpy(), model(x).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="no dropuot"):
        with_config(model, dropuot=0.0)


@pytest.mark.parametrize("rank, message", [(0, "positive"), (-2, "positive"), (33, "at most 32")])
def test_a_rank_no_layer_can_take_is_refused(rank, message):
    with pytest.raises(ZooError, match=message):
        lora.enable(GPT(**PRESETS["tiny"], seed=0), rank)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("finetune-data") / "mine.txt"
    path.write_bytes(synthetic_text(6000, seed=9))
    return str(path)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    """40 thick strokes: images the tiny diffusion model has never seen."""
    images = np.zeros((40, 28, 28), np.float32)
    rng = np.random.default_rng(3)
    for image in images:
        row = rng.integers(4, 20)
        image[row : row + 5, 4:24] = 1.0
    path = tmp_path_factory.mktemp("finetune-images") / "strokes.npy"
    np.save(path, images)
    return str(path)


# what each fine-tunable model is checked on: its data, the signature compared, the finetune options
CASES = {
    "charrnn": ("text_file", "step", {"batch_size": 8}),
    "gpt": ("text_file", "logits", {"batch_size": 8}),
    "diffusion": ("image_file", "denoise_step", {"batch_size": 8, "num_eval_samples": 2, "num_detailed_samples": 2}),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def finetuned(request, tiny_export, tmp_path_factory):
    """A tiny export fine-tuned with rank-2 adapters for 4 steps; ``(name, base folder, output, run dir)``."""
    name = request.param
    data_fixture, _, options = CASES[name]
    base = tiny_export(name)[1]
    output = str(tmp_path_factory.mktemp("finetuned") / name)
    folder = zoo.finetune(name, data=request.getfixturevalue(data_fixture), output=output, base=base, lora_rank=2,
                          steps=4, learning_rate=1e-2, verbose=0, **options)
    assert folder == output
    return name, base, output, output + ".run"


def test_the_merged_export_computes_what_the_adapted_model_computes_in_every_runtime(finetuned):
    name, base, output, run_dir = finetuned
    signature = CASES[name][1]
    adapted, run, state = load_run(name, run_dir)
    assert run["config"]["lora"]["rank"] == 2
    exported = zoo.load(output, runtime="savedmodel")
    inputs = get_spec(name).inputs(signature, exported.signatures[signature], batch=3, seed=4)
    expected = ModelRunner(get_recipe(name), adapted)(signature, **inputs)
    before = zoo.load(base, runtime="keras")(signature, **inputs)
    assert any(np.abs(expected[k] - before[k]).max() > 1e-4 for k in expected)  # the fine-tune changed the model
    for runtime, tolerance in (("keras", 2e-5), ("savedmodel", 1e-4), ("tflite", 1e-4)):
        got = zoo.load(output, runtime=runtime)(signature, **inputs)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], atol=tolerance, err_msg=f"{runtime} {key}")


def test_the_manifest_records_the_base_the_adapters_and_the_losses_before_and_after(finetuned):
    name, base, output, _ = finetuned
    with open(os.path.join(output, "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(base, "manifest.json")) as f:
        base_manifest = json.load(f)
    training = manifest["training"]
    keras_file = next(f for f in base_manifest["files"] if f["path"].endswith(".keras"))
    assert training["fine_tuned_from"]["keras_sha256"] == keras_file["sha256"]
    # how the kept weights were trained stays in the record (the learning curve left out)
    assert training["config"]["fine_tune_from"]["source_training"] == {
        k: v for k, v in base_manifest["training"].items() if k != "learning_curve"}
    adapters = training["config"]["lora"]
    # the adapters are a small part of the model; what trains in full beside them (the recipe's
    # lora_trains_in_full) is counted in trainable_parameters, which a tiny model's embedding can dominate
    assert 0 < adapters["adapter_parameters"] < 0.2 * adapters["base_parameters"]
    assert adapters["adapter_parameters"] <= adapters["trainable_parameters"] < adapters["base_parameters"]
    assert (adapters["trainable_parameters"] > adapters["adapter_parameters"]) == bool(adapters["trained_in_full"])
    assert training["steps"] == 4
    if get_recipe(name).lora_embedding_rows:  # the rows of the bytes the text's training part (90%) holds
        text = np.frombuffer(synthetic_text(6000, seed=9), np.uint8)
        rows = adapters["embedding_rows"]["token_embedding"]
        assert rows == sorted(set(text[: int(len(text) * 0.9)].tolist())) and len(rows) == 34
    before, after = training["losses_before_training"], training["final_losses"]
    assert before and set(before) <= set(after) and before != {k: after[k] for k in before}
    assert os.path.isfile(os.path.join(output, f"{name}.tflite")) and os.path.isdir(os.path.join(output, "1"))


def test_bad_input_is_refused_before_training_and_nothing_is_written(tiny_export, text_file, tmp_path):
    base = tiny_export("gpt")[1]
    empty, latin1, short = tmp_path / "empty.txt", tmp_path / "latin1.txt", tmp_path / "short.txt"
    empty.write_bytes(b"")
    latin1.write_bytes(b"caf\xe9 au lait\n" * 200)
    short.write_bytes(b"too short\n")
    corrupt = tmp_path / "corrupt-base"
    shutil.copytree(base, corrupt)
    with open(corrupt / "gpt.keras", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    output = tmp_path / "out"
    cases = [
        (dict(data=str(empty)), "empty"),
        (dict(data=str(latin1)), "not UTF-8: byte 3 \\(line 1\\)"),
        (dict(data=str(short)), "at least"),
        (dict(data=str(tmp_path / "missing.txt")), "not found"),
        (dict(data=text_file, base=str(tmp_path)), "not an exported model"),
        (dict(data=text_file, base=str(corrupt)), "sha256"),
        (dict(data=text_file, lora_rank=0), "at least 1"),
        (dict(data=text_file, lora_rank=1000), "at most 32"),
        (dict(data=text_file, steps=0), "at least 1"),
    ]
    for given, message in cases:
        options = {"output": str(output), "base": base, "steps": 2, "batch_size": 4, **given}
        with pytest.raises(ZooError, match=message):
            zoo.finetune("gpt", verbose=0, **options)
        assert not os.path.exists(output) and not os.path.exists(str(output) + ".run"), given
    with pytest.raises(ZooError, match="cannot be fine-tuned yet; these can: charrnn, diffusion, gpt"):
        zoo.finetune("vae", data=text_file, output=str(output))


@pytest.mark.xdist_group("diffusion")  # the diffusion tiny export its worker has made (2 minutes elsewhere)
def test_bad_images_are_refused_before_training_and_nothing_is_written(tiny_export, image_file, tmp_path):
    import matplotlib.image

    base = tiny_export("diffusion")[1]
    wrong_size, colour, few, empty = (tmp_path / n for n in ("wrong-size.npy", "colour", "few.npy", "empty"))
    np.save(wrong_size, np.zeros((20, 32, 32), np.float32))
    colour.mkdir()
    picture = np.zeros((28, 28, 3), np.float32)
    picture[..., 0] = 1.0
    matplotlib.image.imsave(colour / "red.png", picture)
    np.save(few, np.zeros((5, 28, 28), np.float32))
    empty.mkdir()
    output = tmp_path / "out"
    cases = [
        (wrong_size, "shape \\[20, 32, 32\\]"),
        (colour, "in colour"),
        (few, "holds 5 images"),
        (empty, "no .png files"),
        (tmp_path / "missing.npy", "does not exist"),
    ]
    for data, message in cases:
        with pytest.raises(ZooError, match=message):
            zoo.finetune("diffusion", data=str(data), output=str(output), base=base, steps=2, batch_size=8,
                         verbose=0)
        assert not os.path.exists(output) and not os.path.exists(str(output) + ".run"), data
