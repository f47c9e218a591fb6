"""What the shared tests and benchmarks need to know about the chorale model (see ``zoo.core.recipes.spec``)."""

import numpy as np

from zoo.core.recipes.spec import ModelSpec, Reproduce, fits_the_export_budget, spread_biases
from zoo.core.runtime.serving import example_inputs

SOPRANO_TEST_RANGE = (60, 79)


def test_model(recipe):
    """The tiny model with its output biases spread far apart: the sampler picks the same note in every
    float32 runtime, not a near-tie that rounding could flip, while the notes shown still move the logits."""
    model = recipe.create_model("tiny", seed=0)
    spread_biases(model.head, 20.0)
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


def beats_both_baselines_and_ships_its_picture(manifest, model_dir):
    """What the committed export meets: both baselines beaten, and parallels within 2x Bach's rate (the sampler's
    rule, ``sampler.forbid_parallels``)."""
    import os

    for runtime in ("savedmodel", "tflite_float32", "tflite_float16", "tflite_int8"):
        metrics = manifest["metrics"][runtime]
        assert metrics["test_windows"] == 105, runtime  # every test chorale's four-bar windows
        assert metrics["harmonization_accuracy"] > 1.5 * max(metrics["harmonization_accuracy_tonic_triad_baseline"],
                                                             metrics["harmonization_accuracy_common_note_baseline"])
        # fewer voice crossings than either baseline, closer to Bach's
        assert metrics["model_voice_crossings_per_100_steps"] < metrics["tonic_triad_voice_crossings_per_100_steps"]
        for kind in ("fifths", "octaves"):
            bach = metrics[f"bach_parallel_{kind}_per_100_moves"]
            for what in ("model", "composed"):
                assert metrics[f"{what}_parallel_{kind}_per_100_moves"] <= 2 * bach, (runtime, what, kind)
    assert manifest["sampler"]["forbid_parallels"] is True
    assert manifest["metrics"]["savedmodel_detailed"]["nll_windows"] == 118
    assert os.path.isfile(os.path.join(model_dir, "samples.png"))


def harmonizations_alone(runner):
    from zoo.core.recipes.recipe import EVAL_SEED
    from zoo.music.recipe import harmonization_quality

    return harmonization_quality(runner, EVAL_SEED, num_composed=0, baselines=False)  # the test chorales alone


def a_midi_file(output):
    with open(output, "rb") as f:
        data = f.read()
    assert data[:4] == b"MThd" and data.count(b"MTrk") == 5 and data.count(b"\x90") >= 4


SPEC = ModelSpec(
    test_model=test_model, test_inputs=test_inputs,
    exact_integer_runtimes=("keras", "savedmodel", "tflite_float32"),
    parity_scale=lambda expected: {"log_probs": 20.0},  # biases of +-60: log-probabilities of that size
    quick_options={"export": {"num_eval_composed": 2, "chorale_files": 12},
                   "evaluate": {"num_composed": 2, "chorale_files": 12, "nll_windows": 4}, "sample": {}},
    benchmark_signature="logits",  # one network call: a Gibbs step of the app loop (a chorale is 96 of them)
    benchmark_options={"num_composed": 20, "nll_windows": 0},  # the likelihood: the manifest's SavedModel entry
    # the harmonizations alone (the 105 test windows, 96 Gibbs steps in LiteRT): `evaluate` also composes 100
    # chorales and takes 22,656 logits calls for the likelihood, minutes on this CPU
    reproduce=Reproduce("tflite", "float32", tolerance=1e-3, data=(), measure=harmonizations_alone,
                        keys=("harmonization_accuracy", "model_parallel_fifths_per_100_moves",
                              "model_parallel_octaves_per_100_moves", "model_triad_or_seventh_fraction"),
                        in_test_suite=False),  # 1 minute
    cli_sample=("--melody", "G4 G4 D5 B4 A4 G4 A4 B4 C5:2 B4:2 A4:2 G4:2"),
    checks=(beats_both_baselines_and_ships_its_picture, fits_the_export_budget),
    sample_check=a_midi_file,
)
