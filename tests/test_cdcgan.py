"""The class-conditional DCGAN: its labels are checked in every runtime, and they decide the digit
(export, parity, and bad labels through every runner and the raw SavedModel: test_every_model.py, from the
manifest's range)."""

import os

import numpy as np
import pytest

from zoo.core.recipes import commands
from zoo.core.recipes.commands import load as load_exported
from zoo.core.runtime.errors import BadInputError
from zoo.core.recipes.registry import get_recipe
from zoo.core.recipes.spec import get_spec
from tests.conftest import data_dir_set


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export("cdcgan")[1]


def noise(batch=2, latent_dim=8, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, latent_dim)).astype(np.float32)


def test_the_keras_model_refuses_bad_or_missing_labels():
    model = get_spec("cdcgan").make_test_model(get_recipe("cdcgan"))
    for labels, message in ((np.array([1, 10], np.int32), "0-9"), (np.array([-1, 2], np.int32), "0-9"),
                            (np.array([1, 2]).astype(np.int64), "int32"), (np.array([1.0, 2.0], np.float32), "int32"),
                            (np.array([[1, 2]], np.int32), "shape")):
        with pytest.raises(BadInputError, match=message):
            model.generate(noise(), labels)
    with pytest.raises(BadInputError, match="class-conditional"):
        model.generate(noise())
    with pytest.raises(BadInputError, match="unconditional"):
        get_spec("dcgan").make_test_model(get_recipe("dcgan")).generate(noise(), np.array([1, 2], np.int32))


@pytest.mark.parametrize("file", ["cdcgan.tflite", "cdcgan.fp16.tflite", "cdcgan.int8.tflite"])
def test_a_bare_litert_interpreter_refuses_labels_outside_0_to_9(exported, file):
    """An app without the zoo's runner: the file itself must not draw something for label -1 or 10."""
    from ai_edge_litert.interpreter import Interpreter

    run = Interpreter(f"{exported}/{file}").get_signature_runner("serving_default")
    assert run(noise=noise(), labels=np.array([0, 9], np.int32))["images"].shape == (2, 28, 28, 1)
    for bad in ([3, 10], [-1, 3], [3, -100000]):
        with pytest.raises(RuntimeError, match="out of bounds"):
            run(noise=noise(), labels=np.array(bad, np.int32))


def test_the_label_decides_the_image():
    model = get_spec("cdcgan").make_test_model(get_recipe("cdcgan"))
    same_noise = np.repeat(noise(1), 10, axis=0)
    images = np.asarray(model.generate(same_noise, np.arange(10, dtype=np.int32)))
    assert all(np.abs(images[i] - images[0]).max() > 1e-4 for i in range(1, 10))
    again = np.asarray(model.generate(same_noise, np.arange(10, dtype=np.int32)))
    np.testing.assert_array_equal(images, again)


def test_the_projection_discriminator_scores_pairs():
    """With a non-zero label embedding the logit of one image depends on the label it is paired with."""
    discriminator = get_spec("cdcgan").make_test_model(get_recipe("cdcgan")).discriminator
    discriminator.label_projection.embeddings.assign(
        np.random.default_rng(0).standard_normal(discriminator.label_projection.embeddings.shape).astype(np.float32))
    image = np.repeat(np.random.default_rng(1).uniform(-1, 1, (1, 28, 28, 1)).astype(np.float32), 2, axis=0)
    logits = np.asarray(discriminator(image, labels=np.array([2, 5], np.int32)))
    assert abs(logits[0, 0] - logits[1, 0]) > 1e-3


def test_training_feeds_the_labels_to_both_networks(synthetic_data_dir, tmp_path):
    """(Resume, the NaN guard and reproducibility are tests/test_training.py's, for every model.)"""
    run_dir = str(tmp_path / "run")
    with data_dir_set(synthetic_data_dir):
        commands.train("cdcgan", preset="tiny", epochs=1, batch_size=32, limit=64, run_dir=run_dir, verbose=0,
                       samples=False)
    model, run, state = commands.load_run("cdcgan", run_dir)
    assert "with labels" in run["data"] and state["step"] == 2
    # both label embeddings trained: the projection's starts at zero, the generator's at random values
    assert np.abs(model.discriminator.label_projection.embeddings.numpy()).max() > 0
    initial = get_recipe("cdcgan").create_model("tiny").generator.label_embedding.embeddings.numpy()
    assert not np.allclose(model.generator.label_embedding.embeddings.numpy(), initial)


def test_cli_sample_draws_the_asked_digit_and_refuses_others(exported, tmp_path):
    from zoo.__main__ import main

    output = str(tmp_path / "sevens.png")
    assert main(["sample", "cdcgan", "--exported-dir", str(exported.rsplit("/", 1)[0]), "--digit", "7", "--num", "4",
                 "--output", output]) in (0, None)
    assert open(output, "rb").read(4) == b"\x89PNG"
    assert main(["sample", "cdcgan", "--exported-dir", str(exported.rsplit("/", 1)[0]), "--digit", "12",
                 "--output", output]) == 2


def generated_data_script():
    from benchmarks import generated_data

    return generated_data


def test_classification_accuracy_score_runs_end_to_end_on_tiny_settings(exported, synthetic_data_dir, tmp_path):
    """benchmarks/generated_data.py's pipeline: draw labelled digits (cached), train the classifier on them,
    score it on the (synthetic) test set; and the augmentation arms."""
    from zoo.core.data.datasets import mnist_images

    generated_data = generated_data_script()

    runner = load_exported(exported, runtime="savedmodel")
    cache = str(tmp_path / "cache")
    images, labels = generated_data.generated_digits(generated_data.digits_of("cdcgan").draw, runner, per_label=30, seed=0,
                                                     cache_dir=cache, chunk=128, progress=False)
    assert images.shape == (300, 28, 28, 1) and np.bincount(labels).tolist() == [30] * 10
    assert 0 <= images.min() and images.max() <= 1 and len(os.listdir(cache)) == 3
    again, _ = generated_data.generated_digits(None, runner, per_label=30, seed=0, cache_dir=cache, chunk=128,
                                               progress=False)  # every chunk from the cache: nothing is drawn
    np.testing.assert_array_equal(images, again)
    with data_dir_set(synthetic_data_dir):
        real_train, real_test = mnist_images("train"), mnist_images("test")
    scores = generated_data.classification_accuracy_score((images, labels), real_train, real_test, epochs=1)
    assert set(scores) == {"cas", "real_data_accuracy"}
    assert all(0.0 <= value <= 1.0 for value in scores.values())
    augmented = generated_data.augmentation((images, labels), real_train, real_test, seeds=range(2),
                                            real_per_label=2, extra_per_label=5, steps=3)
    for arm in ("real_only", "real_plus_generated"):
        assert len(augmented[arm]["per_seed"]) == 2 and 0.0 <= augmented[arm]["mean"] <= 1.0
    # the real-data arms depend on the settings alone: a later model with the same settings reuses them
    results = {"cdcgan": {"classifier_epochs": 1, **scores, "augmentation": augmented}}
    assert generated_data.real_arms_measured(results, 1, range(2), 2, 3) == ("cdcgan", results["cdcgan"])
    assert generated_data.real_arms_measured(results, 1, range(2), 2, 4) == (None, None)  # other steps
    reused = generated_data.classification_accuracy_score((images, labels), real_train, real_test, epochs=1,
                                                          real_data_accuracy=scores["real_data_accuracy"])
    assert reused["real_data_accuracy"] == scores["real_data_accuracy"] and 0.0 <= reused["cas"] <= 1.0
    again = generated_data.augmentation((images, labels), real_train, real_test, seeds=range(2), real_per_label=2,
                                        extra_per_label=5, steps=3)
    assert again["real_only"] == augmented["real_only"]  # why reusing it is sound: the same settings, the same run
    given = generated_data.augmentation((images, labels), real_train, real_test, seeds=range(2), real_per_label=2,
                                        extra_per_label=5, steps=3, real_only=[0.25, 0.75])
    assert given["real_only"]["per_seed"] == [0.25, 0.75] and given["real_only"]["mean"] == 0.5
    # the pool as an image model: FD of its first fd_samples digits, label accuracy over all of it
    from zoo.core.metrics.mnist import MnistQuality

    with data_dir_set(synthetic_data_dir):
        first = generated_data.pool_quality((images, labels), fd_samples=100)
        whole = generated_data.pool_quality((images, labels))
        read_as = MnistQuality().features_and_classes(images)[1]
        as_read = generated_data.pool_quality((images, read_as))
    assert (first["fd_samples"], whole["fd_samples"], whole["label_accuracy_samples"]) == (100, 300, 300)
    assert first["frechet_distance"] >= 0 and first["frechet_distance"] != whole["frechet_distance"]
    assert first["label_accuracy"] == whole["label_accuracy"] == round(float(np.mean(read_as == labels)), 4)
    assert as_read["label_accuracy"] == 1.0  # asked for exactly what the classifier reads


@pytest.mark.slow  # draws with the committed cdcgan
def test_generated_data_pool_only_run_keeps_what_other_runs_wrote(synthetic_data_dir, tmp_path):
    """``--pool-only`` with the committed cdcgan: the pool's FD and label accuracy are written beside the
    entries already in the results file (another model's run, or this model's CAS), not over them."""
    import json

    output = tmp_path / "generated_data.json"
    before = {"diffusion": {"cas": 0.5}, "cdcgan": {"cas": 0.25}}
    output.write_text(json.dumps(before))
    with data_dir_set(synthetic_data_dir):
        generated_data_script().main(["--models", "cdcgan", "--per-label", "5", "--pool-only", "--output",
                                      str(output), "--cache-dir", str(tmp_path / "cache")])
    after = json.loads(output.read_text())
    assert after["diffusion"] == before["diffusion"] and after["cdcgan"]["cas"] == 0.25
    pool = after["cdcgan"]["generated_pool"]
    assert (pool["fd_samples"], pool["label_accuracy_samples"]) == (50, 50) and 0 <= pool["label_accuracy"] <= 1
    assert "machine" in after and os.listdir(tmp_path / "cache" / "cdcgan")


def test_generated_data_picture_needs_every_models_pool(tmp_path):
    """The pools' picture shows every model side by side, or is not drawn (never a partial one)."""
    generated_data = generated_data_script()
    cache, picture = tmp_path / "cache", str(tmp_path / "generated_data.png")
    for index, name in enumerate(generated_data.digit_models()):
        assert generated_data.draw_pools(str(cache), picture) is None and not os.path.exists(picture)
        (cache / name).mkdir(parents=True)
        digits = np.full((1000, 28, 28, 1), 80 * index, np.uint8)  # each model its own grey
        np.save(generated_data.chunk_path(str(cache / name), 0), digits)
    assert generated_data.draw_pools(str(cache), picture, per_digit=2) == picture
    assert open(picture, "rb").read(4) == b"\x89PNG"
    pools = [np.arange(50, dtype=np.float32).reshape(50, 1, 1, 1) + 100 * index for index in range(3)]
    tiles, columns = generated_data.pool_tiles(pools, per_digit=2)
    assert (tiles.shape, columns) == ((2 * columns, 1, 1, 1), 32)
    # row 1, third pool, digit 3: that pool's second draw of a 3 (index 13); white between pools
    assert tiles[columns + 22 + 3, 0, 0, 0] == 213 and tiles[10, 0, 0, 0] == tiles[21, 0, 0, 0] == 1.0


def test_generated_data_finds_its_models_in_their_specs():
    """The study's models are the registry's that declare how they draw an asked digit (no list to keep)."""
    generated_data = generated_data_script()
    assert generated_data.digit_models() == ("cdcgan", "diffusion", "text2image")
    for name in generated_data.digit_models():
        digits = generated_data.digits_of(name)
        assert callable(digits.draw) and digits.how and digits.row_label


def test_generated_data_table_bolds_the_best_and_leaves_out_a_model_not_yet_scored():
    generated_data = generated_data_script()

    def entry(cas, mixed, fd, asked):
        arm = {"mean": mixed, "std": 0.001, "per_seed": [mixed]}
        return {"cas": cas, "real_data_accuracy": 0.99, "minutes": {"drawing": 1.0, "cas": 2.0, "augmentation": 3.0},
                "augmentation": {"real_only": {"mean": 0.9, "std": 0.002}, "real_plus_generated": arm},
                "generated_pool": {"frechet_distance": fd, "label_accuracy": asked}}

    results = {"cdcgan": entry(0.97, 0.96, 1.9149, 0.987), "text2image": entry(0.96, 0.95, 6.0, 0.990),
               "diffusion": {"generated_pool": {"frechet_distance": 6.0, "label_accuracy": 0.995}}}
    lines = generated_data.markdown_table(results).splitlines()
    assert len(lines) == 4 and not any(line.startswith("| diffusion") for line in lines)
    cdcgan, text2image = lines[2].split(" | "), lines[3].split(" | ")
    assert cdcgan[1] == "**0.97**" and text2image[1] == "0.96"  # CAS: higher is better
    assert cdcgan[4] == "**0.9600 ± 0.0010**" and cdcgan[3] == "0.9000 ± 0.0020"
    assert cdcgan[5] == "**1.91** / 98.7%" and text2image[5] == "6.00 / **99.0%**"  # FD: lower is better, always 2 places
    assert cdcgan[6] == "1.0 / 2.0 / 3.0 |"


def test_int8_is_full_integer_and_can_be_reconverted_alone(exported, synthetic_data_dir, tmp_path):
    """The generators' int8 file is full-integer (int8 activations: integer kernels, float32 at the signature), and
    ``export --from-exported --reconvert int8`` converts it again in place, measures it and leaves every other file
    byte for byte; so does ``--reconvert float16`` for the float16 file."""
    import json
    import shutil

    from ai_edge_litert.interpreter import Interpreter

    from zoo.core.runtime.runners import read_manifest

    manifest = read_manifest(exported)
    assert manifest["tflite"]["int8"]["kind"] == "full-integer"
    assert manifest["tflite"]["float32"].get("kind") is None
    interpreter = Interpreter(model_path=os.path.join(exported, manifest["tflite"]["int8"]["path"]))
    kinds = {d["dtype"].__name__ for d in interpreter.get_tensor_details()}
    assert "int8" in kinds  # activations, not only weights
    runner = interpreter.get_signature_runner("serving_default")
    details = runner.get_input_details()
    assert details["noise"]["dtype"] == np.float32 and runner.get_output_details()["images"]["dtype"] == np.float32

    folder = str(tmp_path / "cdcgan")
    shutil.copytree(exported, folder)
    manifest["tflite"]["int8"]["kind"] = "stale"  # a mark the re-conversion must replace
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    for variant, path in (("int8", "cdcgan.int8.tflite"), ("float16", "cdcgan.fp16.tflite")):
        before = {e["path"]: e["sha256"] for e in read_manifest(folder)["files"]}
        with data_dir_set(synthetic_data_dir):
            commands.export("cdcgan", from_exported=folder, reconvert=variant, num_eval_samples=50)
        after = read_manifest(folder)  # every sha256 checked
        changed = {p for p, digest in before.items() if {e["path"]: e["sha256"] for e in after["files"]}[p] != digest}
        assert changed <= {path} and after["tflite"]["int8"]["kind"] == "full-integer", variant
        assert after["metrics"][f"tflite_{variant}"]["num_samples"] == 50 and f"{variant}_reconverted" in after
    with pytest.raises(BadInputError, match="--reconvert updates an exported folder in place"):
        commands.export("cdcgan", reconvert="int8")
