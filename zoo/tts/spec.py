"""What the shared tests and benchmarks need to know about the TTS model (see ``zoo.core.recipes.spec``)."""

import numpy as np

from zoo.core.recipes.spec import (ModelSpec, Reproduce, Target, fits_the_export_budget, speech_test_inputs,
                                   spread_biases)
from zoo.core.runtime.serving import example_inputs
from zoo.core.recipes.speech import SPEAKERS

DURATION_FRAMES = (3.0, 2.0)  # the test model's speech and pause frames per digit, far from a rounding edge


def test_model(recipe):
    """The tiny model with its vocoder's output biases spread far apart (sampling picks the same level in every
    runtime, quantized ones too) and fixed durations (3 frames of speech, 2 of pause: no rounding edge that
    float16 weights could cross), while the digits and speaker still move the spectrogram."""
    model = recipe.create_model("tiny", seed=0)
    spread_biases(model.vocoder.output_logits, 40.0)
    model.duration_output.kernel.assign(model.duration_output.kernel * 0.01)
    model.duration_output.bias.assign(np.log([DURATION_FRAMES[0], 1.0 + DURATION_FRAMES[1]]).astype(np.float32))
    return model


def digit_rows(rng, batch):
    lengths = rng.integers(1, 9, batch)
    rows = np.full((batch, 8), -1, np.int32)
    for row, length in zip(rows, lengths):
        row[:length] = rng.integers(0, 10, length)
    return rows


def test_inputs(signature, manifest_entry, batch, seed):
    inputs = example_inputs(manifest_entry, batch=batch, seed=seed)
    rng = np.random.default_rng(seed)
    if "digits" in inputs:
        inputs["digits"] = digit_rows(rng, batch)
        inputs["speaker"] = rng.integers(0, len(SPEAKERS), batch).astype(np.int32)
    return speech_test_inputs(inputs, batch, seed + 1)


def boundaries_start_at_zero_and_rise(manifest, model_dir):
    """Every runtime's boundaries of the committed export: the first digit at sample 0, strictly rising, on
    10 ms frames, within the 8-second buffer."""
    from zoo.core.recipes.spec import every_runtime

    rows = np.array([[5, 5, 5, 0, 1, 2, 3, -1], [7, -1, -1, -1, -1, -1, -1, -1]], np.int32)
    for key, runner in every_runtime(model_dir).items():
        marks = runner("mel", digits=rows, speaker=np.array([1, 4], np.int32))["boundaries"]
        for row, row_marks in zip(rows, marks):
            count = int((row >= 0).sum())
            real = row_marks[: count + 1]
            assert real[0] == 0 and np.all(np.diff(real) > 0) and np.all(real % 80 == 0), (key, row_marks)
            assert real[-1] <= 64000 and np.all(row_marks[count + 1 :] == -1), (key, row_marks)


def a_wav_of_speech(output):
    from zoo.core.data.audio import read_wav

    audio = read_wav(output)
    assert 0.3 * 8000 < len(audio) <= 64000 and np.abs(audio).max() > 0.05


SPEC = ModelSpec(
    test_model=test_model, test_inputs=test_inputs,
    quick_options={"export": {"num_strings": 7}, "evaluate": {"num_strings": 7}, "sample": {"digits": "12"}},
    benchmark_signature="mel",  # the acoustic model's one call; the vocoder's step is the WaveNet's row
    benchmark_options={"num_strings": 70},
    study="benchmarks/tts.py (real-time factor in LiteRT, the app loop's time to first sound)",
    targets=(Target("num_strings", at_least=300, at_most=300, why="the issue's 300 held-out strings"),
             Target("digit_error_rate", at_most=0.05, runtimes=("savedmodel", "tflite_float32"),
                    why="issue 42: digit error rate <= 5%"),
             Target("speaker_accuracy", at_least=0.95, runtimes=("savedmodel", "tflite_float32"),
                    why="issue 42: speaker accuracy >= 95%")),
    reproduce=Reproduce("tflite", "float32", {"num_strings": 300}, data=("fsdd",),
                        in_test_suite=False),  # 3 minutes
    cli_sample=("--digits", "5550123", "--speaker", "jackson"),
    checks=(boundaries_start_at_zero_and_rise, fits_the_export_budget),
    sample_check=a_wav_of_speech,
)
