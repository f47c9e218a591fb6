"""What the shared tests and benchmarks need to know about the chorale model (see ``zoo.core.recipes.spec``)."""

import numpy as np

from zoo.core.recipes.spec import ModelSpec, Reproduce
from zoo.core.runtime.serving import example_inputs

SOPRANO_TEST_RANGE = (60, 79)


def test_model(recipe):
    """The tiny model with its output biases spread far apart: the sampler picks the same note in every
    float32 runtime, not a near-tie that rounding could flip, while the notes shown still move the logits."""
    model = recipe.create_model("tiny", seed=0)
    bias = np.random.default_rng(0).standard_normal(model.head.bias.shape).astype(np.float32)
    model.head.bias.assign(20.0 * bias)
    return model


def test_inputs(signature, manifest_entry, batch, seed):
    inputs = example_inputs(manifest_entry, batch=batch, seed=seed)
    rng = np.random.default_rng(seed)
    if "seed" in inputs:
        inputs["seed"] = rng.integers(0, 100000, batch).astype(np.int32)
        inputs["temperature"] = np.where(np.arange(batch) % 2 == 0, 0.0, 1.0).astype(np.float32)
    if "soprano" in inputs:
        inputs["soprano"] = np.repeat(rng.integers(*SOPRANO_TEST_RANGE, (batch, 16)), 4, axis=1).astype(np.int32)
    if "voices" in inputs:  # a real-looking score, a third of it masked
        from zoo.core.data.chorales import RANGES, VOICES

        voices = np.stack([rng.integers(*RANGES[v], (batch, 16)) for v in VOICES], axis=1).repeat(4, axis=2)
        inputs["voices"] = np.where(rng.random(voices.shape) < 0.33, -1, voices).astype(np.int32)
    return inputs


def closer_to_bach_than_the_baselines(manifest, model_dir):
    import os

    metrics = manifest["metrics"]["tflite_float32"]
    assert metrics["harmonization_accuracy"] > max(metrics["harmonization_accuracy_tonic_triad_baseline"],
                                                   metrics["harmonization_accuracy_common_note_baseline"])
    assert metrics["closer_to_bach_than_baselines"] == "5 of 5", metrics["closer_to_bach_than_baselines"]
    assert metrics["model_parallel_fifths_per_100_moves"] <= 2 * metrics["bach_parallel_fifths_per_100_moves"]
    assert metrics["model_parallel_octaves_per_100_moves"] <= 2 * metrics["bach_parallel_octaves_per_100_moves"]
    assert os.path.isfile(os.path.join(model_dir, "samples.png"))


def a_midi_file(output):
    with open(output, "rb") as f:
        data = f.read()
    assert data[:4] == b"MThd" and data.count(b"MTrk") == 5 and data.count(b"\x90") >= 4


SPEC = ModelSpec(
    test_model=test_model, test_inputs=test_inputs,
    exact_integer_runtimes=("keras", "savedmodel", "tflite_float32"),
    parity_scale=lambda expected: {"log_probs": 20.0},  # biases of +-60: log-probabilities of that size
    quick_options={"export": {"num_eval_composed": 2, "chorale_files": 12},
                   "evaluate": {"num_composed": 2, "chorale_files": 12}, "sample": {}},
    benchmark_signature="harmonize",  # a whole four-bar harmonization: 96 Gibbs steps in the graph
    benchmark_options={"num_composed": 100},
    reproduce=Reproduce("tflite", "float32", {"num_composed": 100}, keys=("harmonization_accuracy",), data=()),
    cli_sample=("--melody", "G4 G4 D5 B4 A4 G4 A4 B4 C5:2 B4:2 A4:2 G4:2"),
    checks=(closer_to_bach_than_the_baselines,),
    sample_check=a_midi_file,
    in_training="~/zoo-runs/music (outside the work tree, which each session lays anew), started 2026-12-03 with "
                "`python -m zoo train music --run-dir ~/zoo-runs/music` (100 epochs of 3,224 windows, about an "
                "hour on this 2-core CPU); the same command resumes it",
)
