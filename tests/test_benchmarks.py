"""The benchmark runs (quick mode, on the model whose timed signature is not serving_default) and writes
what BENCHMARKS.md promises."""

import json
import subprocess
import sys

import numpy as np

import pytest

from tests.conftest import needs_mnist
from zoo.core.runtime.paths import REPO_ROOT

pytestmark = pytest.mark.slow  # runs the benchmark script in a fresh process


@needs_mnist
def test_benchmark_quick_mode(tmp_path):
    output = tmp_path / "BENCHMARKS.md"
    # a study's hand-written section survives the rewrite; the model's own old section does not
    output.write_text("# Benchmarks\n\n## gpt\n\nstale gpt table\n\n## int8 against float32, every model\n\n"
                      "stale int8 table\n\n## A study\n\nits own table\n")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--models", "gpt",
         "--output", str(output), "--results-dir", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.load(open(tmp_path / "benchmarks.json"))
    for name, signature, metric in (("gpt", "decode_step", "validation_loss"),):
        model = results["models"][name]
        rows = model["runtimes"]
        assert list(rows) == ["keras", "savedmodel", "tflite_float32", "tflite_float16", "tflite_int8"]
        assert model["signature"] == signature and model["training"]["examples_per_second"] > 0
        for key, row in rows.items():
            assert row["latency_ms_batch1"] > 0 and row["latency_ms_batch64"] > 0, key
            assert row["peak_rss_mb"] > 10 and row["bytes"] > 100_000, key
            assert np.isfinite(row["quality"][metric]), key
        # int8 weights are a quarter of float32's; the file shows it (less than that: the GPT ties its
        # output projection to the embedding, which the dynamic-range converter leaves in float32)
        assert rows["tflite_int8"]["bytes"] < rows["tflite_float32"]["bytes"] / 2
    text = output.read_text()
    assert "| tflite_int8 |" in text and "python -m benchmarks.run --quick --models gpt" in text
    assert "validation_loss" in text and "`decode_step`" in text
    assert "## A study\n\nits own table" in text and "stale gpt table" not in text
    # the int8-against-float32 table is written afresh, once, with the file's kind and the thread count
    assert text.count("## int8 against float32, every model") == 1 and "stale int8 table" not in text
    int8_row = next(line for line in text.splitlines() if line.startswith("| gpt | `decode_step` |"))
    assert "| dynamic-range | 1 |" in int8_row and int8_row.split("|")[10].strip() in ("yes", "**no**")
    # the two files timed call for call in one process: both medians and the share of rounds int8 won, per batch
    pair = results["models"]["gpt"]["int8_pair"]
    for batch in (1, 64):
        row = pair[f"batch{batch}"]
        assert row["float32_ms"] > 0 and row["int8_ms"] > 0 and 0 <= row["int8_faster_share"] <= 1
        assert row["rounds"] >= 5
    cells = [c.strip() for c in int8_row.split("|")]
    from benchmarks.run import _milliseconds as ms

    assert cells[5] == ms(pair["batch1"]["float32_ms"]) and cells[6] == ms(pair["batch1"]["int8_ms"])
    assert cells[9] == f"{pair['batch1']['int8_faster_share']:.2f} / {pair['batch64']['int8_faster_share']:.2f}"
    assert (cells[10] == "yes") == (pair["batch1"]["int8_ms"] < pair["batch1"]["float32_ms"]
                                    and pair["batch64"]["int8_ms"] < pair["batch64"]["float32_ms"])
    assert "| threads |" in text
    assert (tmp_path / "benchmarks.png").stat().st_size > 10_000
