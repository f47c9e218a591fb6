"""Data loading, metrics, atomic writes, the registry and the CLI's errors."""

import gzip
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import needs_mnist
from zoo.core.data import datasets as data
from zoo.core.metrics import mnist as metrics
from zoo.core.recipes import registry
from zoo.core.runtime.errors import DataNotFoundError, UnknownModelError
from zoo.core.runtime.files import atomic_directory


def write_idx(path, array):
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,)))
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    return tmp_path


def test_mnist_reads_idx_files_from_data_dir(fake_data_dir):
    images, labels = data.load_mnist("train")
    assert images.shape == (6, 28, 28) and images.dtype == np.uint8 and labels.shape == (6,)
    scaled, _ = data.mnist_images("test")
    assert scaled.shape == (4, 28, 28, 1) and scaled.dtype == np.float32
    assert 0.0 <= scaled.min() and scaled.max() <= 1.0
    np.testing.assert_allclose(scaled[..., 0] * 255, data.load_mnist("test")[0], atol=1e-4)


def test_truncated_idx_file_is_reported(fake_data_dir):
    path = fake_data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        content = f.read()
    with gzip.open(path, "wb") as f:
        f.write(content[:-100])
    with pytest.raises(DataNotFoundError, match="truncated"):
        data.load_mnist("train")


def test_missing_data_dir_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="ZOO_DATA_DIR.*is not a directory"):
        data.load_mnist("train")


def test_relative_data_dir_resolves_against_the_directory_it_was_set_from(fake_data_dir, tmp_path):
    """A notebook kernel (or any subprocess) runs in another folder but inherits the shell's PWD and the variable."""
    import subprocess
    import sys

    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    parent = fake_data_dir.parent
    env = {**os.environ, data.DATA_DIR_ENV: os.path.relpath(fake_data_dir, parent), "PWD": str(parent)}
    code = "from zoo.core.data import datasets; print(datasets.load_mnist('train')[0].shape); import os; print(os.environ['ZOO_DATA_DIR'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    shape, resolved = out.stdout.strip().splitlines()[-2:]
    assert shape == "(6, 28, 28)"
    assert resolved == str(fake_data_dir)  # made absolute at import: the kernel's own children see it too


def test_offline_without_data_names_the_variable(monkeypatch, tmp_path):
    import keras

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))  # exists, but holds no mnist/
    with pytest.raises(DataNotFoundError, match="ZOO_DATA_DIR.*no mnist/.*network is unreachable"):
        data.load_mnist("train")
    monkeypatch.delenv(data.DATA_DIR_ENV)
    with pytest.raises(DataNotFoundError, match="ZOO_DATA_DIR is not set"):
        data.load_mnist("test")


def test_frechet_distance_matches_closed_form():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 5))
    mean, cov = a.mean(0), np.cov(a, rowvar=False)
    assert abs(metrics.frechet_distance(mean, cov, mean, cov)) < 1e-8
    # diagonal covariances: |mu_a - mu_b|^2 + sum (sqrt(var_a) - sqrt(var_b))^2
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    mu_a, mu_b = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expected = 5.0 + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert metrics.frechet_distance(mu_a, np.diag(var_a), mu_b, np.diag(var_b)) == pytest.approx(expected)


@needs_mnist
def test_mnist_quality_separates_real_digits_from_junk():
    quality = metrics.MnistQuality()
    real = quality.real_data_floor(num_samples=2000)
    assert real["classes_covered"] == 10
    junk = quality.evaluate(np.full((2000, 28, 28, 1), 0.5, np.float32))
    assert junk["classes_covered"] <= 1
    assert real["frechet_distance"] * 10 < junk["frechet_distance"]


def test_atomic_directory_keeps_old_tree_on_failure(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(str(target)) as tmp:
        open(os.path.join(tmp, "a.txt"), "w").write("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(str(target)) as tmp:
            open(os.path.join(tmp, "a.txt"), "w").write("half-written")
            raise RuntimeError("crash mid-export")
    assert (target / "a.txt").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no temporary left behind


def test_registry_lists_models_and_rejects_unknown_names():
    assert {"gan", "dcgan"} <= set(registry.model_names())
    with pytest.raises(UnknownModelError, match="unknown model 'gpt5'.*dcgan"):
        registry.get_recipe("gpt5")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=300)


def test_cli_unknown_model_is_a_clear_error():
    result = run_cli("sample", "gpt5")
    assert result.returncode == 2
    assert "error: unknown model 'gpt5'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_help_explains_each_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("list", "train", "export", "sample", "evaluate"):
        assert f"  {command}" in result.stdout


@pytest.mark.slow  # spawns the CLI
@pytest.mark.parametrize("options, message", [
    (["--epochs", "0"], "--epochs: must be at least 1, got 0"),
    (["--batch-size", "-4"], "--batch-size: must be at least 1, got -4"),
    (["--preset", "huge"], "--preset: must be one of tiny, base, got 'huge'"),
    (["--steps", "1.5"], "--steps: must be an integer, got '1.5'"),
])
def test_cli_bad_training_options_are_clear_errors(options, message, tmp_path):
    result = run_cli("train", "dcgan", "--run-dir", str(tmp_path), *options)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # spawns the CLI
def test_cli_help_describes_each_models_own_sample_and_refuses_options_it_has_not():
    from zoo.__main__ import build_parser, parse

    helps = {name: run_cli("sample", name, "--help").stdout for name in ("gan", "gpt", "diffusion")}
    assert "PNG" in helps["gan"] and "--num" in helps["gan"] and "--prompt" not in helps["gan"]
    assert "--prompt" in helps["gpt"] and "--num" not in helps["gpt"] and "PNG" not in helps["gpt"]
    assert "16 of digit D" in helps["diffusion"] and "--digit" in helps["diffusion"]
    refused = run_cli("sample", "gpt", "--num", "3")  # an option another model has is an error, not ignored
    assert refused.returncode == 2 and "gpt has no option --num 3 for sample" in refused.stderr
    assert parse(build_parser(), ["sample", "gan", "--num", "3"]).num == 3


@pytest.mark.slow  # spawns the CLI
def test_cli_train_help_gives_the_models_presets_and_defaults():
    result = run_cli("train", "gpt", "--help")
    text = " ".join(result.stdout.split())
    assert "Presets of gpt: tiny, nanogpt_cpu, base." in text
    assert "counting resumed ones (default 25)" in text  # the GPT's, not the core's 10


@pytest.mark.slow  # spawns the CLI
def test_cli_sample_without_export_says_how_to_make_one(tmp_path):
    result = run_cli("sample", "gan", "--exported-dir", str(tmp_path))
    assert result.returncode == 2
    assert "no exported model at" in result.stderr and "python -m zoo export" in result.stderr


@pytest.mark.slow  # spawns the CLI
def test_serve_request_body_matches_the_saved_model_signature(tmp_path):
    """The REST body `serve` prints must be accepted by the SavedModel's serving_default."""
    import tensorflow as tf

    from zoo.core.runtime.runners import read_manifest
    from zoo.core.runtime.paths import EXPORTED_DIR

    output = str(tmp_path / "request.json")
    result = run_cli("serve", "dcgan", "--output", output, "--print-only")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "docker run --rm -p 8501:8501" in result.stdout and "tensorflow/serving" in result.stdout
    assert f"-d @{output} http://localhost:8501/v1/models/dcgan:predict" in result.stdout
    body = json.load(open(output))
    manifest = read_manifest(os.path.join(EXPORTED_DIR, "dcgan"))
    signature = tf.saved_model.load(os.path.join(EXPORTED_DIR, "dcgan", manifest["savedmodel"]["path"])) \
        .signatures[body["signature_name"]]
    _, expected = signature.structured_input_signature
    assert set(body["inputs"]) == set(expected)
    for name, spec in expected.items():
        value = tf.constant(body["inputs"][name], dtype=spec.dtype)
        assert spec.is_compatible_with(value), (name, spec, value.shape)
    outputs = signature(**{n: tf.constant(v, dtype=expected[n].dtype) for n, v in body["inputs"].items()})
    assert set(outputs) == set(manifest["signatures"]["serving_default"]["outputs"])


def test_call_times_warms_up_untimed_and_returns_the_last_result():
    from benchmarks.timing import best_time, call_times

    calls = []

    def function():
        calls.append(len(calls))
        time.sleep(0.3 if len(calls) == 1 else 0.001)  # the first call is slow, as a compilation is
        return len(calls)

    times, last = call_times(function, repeats=3, warmup=1)
    assert len(calls) == 4 and last == 4 and len(times) == 3
    assert all(0.0005 < t < 0.2 for t in times)  # the slow first call was not timed
    calls.clear()
    assert best_time(function, repeats=2, warmup=0) < 0.2 and len(calls) == 2  # the slow one timed, not the best


def test_litert_uses_every_core_unless_told():
    """The zoo's runners run LiteRT on every core by default (LiteRT's own default is one); --threads chooses."""
    from zoo.core.recipes.commands import load
    from zoo.core.recipes.options import CORE_OPTIONS

    assert load("gan", runtime="tflite").num_threads == os.cpu_count()
    assert load("gan", runtime="tflite", num_threads=1).num_threads == 1
    threads = next(o for o in CORE_OPTIONS if o.name == "threads")
    assert threads.default is None and threads.minimum == 1
