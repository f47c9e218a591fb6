"""The user's path through the CLI on a tiny model: train, resume, export, sample, evaluate, and
the clear errors on the way (corrupt file, bad noise file)."""

import json
import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trains and exports through the CLI, in fresh processes

from tests.conftest import needs_mnist
from tests.test_core import run_cli


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    run_dir, exported = str(root / "run"), str(root / "exported")
    train = ["train", "gan", "--preset", "tiny", "--limit", "256", "--batch-size", "64", "--run-dir", run_dir]
    first = run_cli(*train, "--epochs", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = run_cli(*train, "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming from" in resumed.stdout and "Trained 2 epochs (8 steps" in resumed.stdout
    done = run_cli(*train, "--epochs", "2")  # a finished run: no "Resuming", one line that says so
    assert done.returncode == 0 and "Resuming" not in done.stdout
    assert "Already trained for 2 epochs (asked for 2): nothing to do" in done.stdout
    assert os.path.isfile(os.path.join(run_dir, "samples", "epoch-0002.png"))
    assert os.listdir(os.path.join(run_dir, "logs", "train"))  # TensorBoard events
    result = run_cli("export", "gan", "--run-dir", run_dir, "--output-dir", exported, "--num-eval-samples", "300")
    assert result.returncode == 0, result.stderr[-2000:]
    # the export ends with what it measured, a row per runtime
    assert "frechet_distance" in result.stdout and "tflite_int8" in result.stdout.split("done:")[-1]
    return root, os.path.join(exported, "gan")


@needs_mnist
def test_export_writes_the_contract(tiny_export):
    _, model_dir = tiny_export
    for name in ("1/saved_model.pb", "gan.keras", "gan.tflite", "gan.fp16.tflite", "gan.int8.tflite", "samples.png"):
        assert os.path.isfile(os.path.join(model_dir, name)), name
    manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
    assert set(manifest["metrics"]) == {"keras", "savedmodel", "tflite_float32", "tflite_float16", "tflite_int8"}
    assert all(m["num_samples"] == 300 for m in manifest["metrics"].values())
    assert manifest["training"]["command"].startswith("python -m zoo train gan --preset tiny")
    assert manifest["training"]["epochs"] == 2 and manifest["training"]["seed"] == 0
    assert {"float16", "int8"} == set(manifest["quantization_check"])
    listed = {e["path"] for e in manifest["files"]}
    assert {"gan.tflite", "1/saved_model.pb", "samples.png"} <= listed


@needs_mnist
def test_sample_and_evaluate(tiny_export):
    root, model_dir = tiny_export
    exported = os.path.dirname(model_dir)
    output = str(root / "grid.png")
    result = run_cli("sample", "gan", "--exported-dir", exported, "--num", "16", "--output", output)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Wrote 16 digits to {output}" in result.stdout
    assert result.stderr == "", result.stderr  # no start-up chatter from TensorFlow or LiteRT
    with open(output, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    result = run_cli("evaluate", "gan", "--exported-dir", exported, "--variant", "int8", "--num-samples", "200",
                     "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout[result.stdout.index("{"):])["num_samples"] == 200
    table = run_cli("evaluate", "gan", "--exported-dir", exported, "--num-samples", "200")
    assert table.returncode == 0 and "gan (tflite float32)" in table.stdout
    assert [line.split()[:1] for line in table.stdout.splitlines() if line.startswith("num_samples")] == [["num_samples"]]


@needs_mnist
def test_bad_noise_file_is_a_clear_error(tiny_export):
    root, model_dir = tiny_export
    noise = str(root / "noise.npy")
    np.save(noise, np.zeros((3, 5), np.float32))  # the tiny GAN's latent size is 8
    result = run_cli("sample", "gan", "--exported-dir", os.path.dirname(model_dir), "--noise", noise)
    assert result.returncode == 2
    assert "input 'noise' must have shape [batch, 8], got [3, 5]" in result.stderr
    np.save(noise, np.zeros((3, 8), np.float64))
    result = run_cli("sample", "gan", "--exported-dir", os.path.dirname(model_dir), "--noise", noise)
    assert result.returncode == 2 and "must be float32, got float64" in result.stderr
    assert "Traceback" not in result.stderr


@needs_mnist
def test_corrupted_export_is_refused(tiny_export):
    root, model_dir = tiny_export
    path = os.path.join(model_dir, "gan.int8.tflite")
    original = open(path, "rb").read()
    try:
        with open(path, "wb") as f:
            f.write(original[:-1] + bytes([original[-1] ^ 0x01]))
        result = run_cli("sample", "gan", "--exported-dir", os.path.dirname(model_dir), "--output",
                         str(root / "never.png"))
        assert result.returncode == 2
        assert "gan.int8.tflite does not match its sha256" in result.stderr
        assert not os.path.exists(root / "never.png")
    finally:
        with open(path, "wb") as f:
            f.write(original)


@needs_mnist
def test_train_under_mirrored_strategy_and_clear_strategy_errors(tmp_path):
    train = ["train", "vae", "--preset", "tiny", "--limit", "128", "--batch-size", "64", "--epochs", "1",
             "--run-dir", str(tmp_path / "run")]
    result = run_cli(*train, "--strategy", "mirrored")  # every local GPU; here, the CPU
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Trained 1 epoch (2 steps" in result.stdout
    result = run_cli(*train, "--strategy", "multiworker", "--fresh")  # no TF_CONFIG in the test environment
    assert result.returncode == 2 and "needs TF_CONFIG" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(*train, "--batch-size", "0", "--fresh")
    assert result.returncode == 2 and "--batch-size: must be at least 1, got 0" in result.stderr
