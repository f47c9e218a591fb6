"""What the shared tests and benchmarks need to know about the character LSTM (see ``zoo.core.recipes.spec``)."""

import numpy as np

from zoo.core.nn.text_generation import VOCAB_SIZE
from zoo.core.recipes.spec import ModelSpec, Reproduce, Target, text_test_inputs
from zoo.core.runtime.serving import example_inputs


def test_model(recipe):
    """The tiny model with its head scaled up, so greedy decoding compares clear winners, not near-ties."""
    model = recipe.create_model("tiny", seed=0)
    # a head bias that separates the bytes' logits by several nats: int8's rounding must not flip a choice
    model.head.kernel.assign(model.head.kernel * 20.0)
    model.head.bias.assign(8.0 * np.random.default_rng(0).standard_normal(VOCAB_SIZE).astype(np.float32))
    return model


def test_inputs(signature, manifest_entry, batch, seed):
    inputs = text_test_inputs(example_inputs(manifest_entry, batch=batch, seed=seed), batch, seed)
    if "state" in inputs:  # a state as one mid-text: values of order 1, not the standard normal's tails
        inputs["state"] = np.tanh(inputs["state"]).astype(np.float32)
    return inputs


def scored_all_of_the_last_tenth(manifest, model_dir):
    assert all(m["validation_bytes"] == 111_539 for m in manifest["metrics"].values())
    assert manifest["state_size"] == manifest["signatures"]["step"]["inputs"]["state"]["shape"][1]


SPEC = ModelSpec(
    test_model=test_model, test_inputs=test_inputs,
    parity_scale=lambda expected: {"logits": float(max(np.abs(expected["step"]["logits"]).max(), 1.0))},
    quick_options={"export": {"max_bytes": 50}, "evaluate": {"max_bytes": 50}, "sample": {"max_new_tokens": 5}},
    benchmark_signature="step",
    benchmark_options={"max_bytes": 20000},  # the first 20,000 validation bytes streamed (all: evaluate)
    study="benchmarks/charrnn.py (against the GPT: loss at equal training time, generation speed, memory)",
    targets=(Target("validation_loss", at_most=1.60, why="the LSTM issue's target, nats per byte"),),
    reproduce=Reproduce("tflite", "int8", {"max_bytes": None}, data=("tinyshakespeare",)),
    cli_sample=("--prompt", "ROMEO:", "--max-new-tokens", "200"),
    checks=(scored_all_of_the_last_tenth,),
)
