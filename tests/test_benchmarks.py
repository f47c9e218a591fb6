"""The benchmark runs (quick mode) and writes what BENCHMARKS.md promises."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import needs_mnist
from zoo.core.paths import REPO_ROOT

pytestmark = pytest.mark.slow  # runs the benchmark script in a fresh process


@needs_mnist
def test_benchmark_quick_mode(tmp_path):
    output = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "benchmarks", "run.py"), "--quick", "--models", "gan",
         "--output", str(output), "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.load(open(tmp_path / "benchmarks.json"))
    rows = results["models"]["gan"]["runtimes"]
    assert list(rows) == ["keras", "savedmodel", "tflite_float32", "tflite_float16", "tflite_int8"]
    for key, row in rows.items():
        assert row["latency_ms_batch1"] > 0 and row["latency_ms_batch64"] > 0, key
        assert row["peak_rss_mb"] > 10 and row["bytes"] > 100_000, key
        assert row["classes_covered"] == 10, key
    # int8 weights are a quarter of float32's; the file shows it
    assert rows["tflite_int8"]["bytes"] < rows["tflite_float32"]["bytes"] / 3
    assert results["models"]["gan"]["training_examples_per_second"] > 0
    text = output.read_text()
    assert "| tflite_int8 |" in text and "python benchmarks/run.py --quick" in text
    assert (tmp_path / "benchmarks.png").stat().st_size > 10_000
