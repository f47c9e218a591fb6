"""What the shared tests and benchmarks need to know about the GPT (see ``zoo.core.recipes.spec``)."""

import numpy as np

from zoo.core.recipes.spec import ModelSpec, Reproduce, Target, text_test_inputs
from zoo.core.runtime.serving import example_inputs


def test_model(recipe):
    """The tiny GPT with its token embedding scaled up, so its logits spread over several nats: with the
    initial 0.02-scale weights all 256 logits lie within ~0.01 of each other, and greedy decoding would
    compare near-ties across runtimes."""
    gpt = recipe.create_model("tiny", seed=0)
    gpt.token_embedding.embeddings.assign(gpt.token_embedding.embeddings * 40.0)
    return gpt


def parity_scale(expected):
    # logits reach ~|20| here; the tolerances are for outputs of order 1
    scale = float(max(np.abs(expected["logits"]["logits"]).max(), np.abs(expected["decode_step"]["cache"]).max()))
    return {"logits": scale, "cache": scale, "keys": scale, "values": scale}


def test_inputs(signature, manifest_entry, batch, seed):
    inputs = example_inputs(manifest_entry, batch=batch, seed=seed)
    context = manifest_entry["inputs"]["cache"]["shape"][2] if "cache" in manifest_entry["inputs"] else 8
    return text_test_inputs(inputs, batch, seed, context_length=context)


def scored_all_of_the_last_tenth(manifest, model_dir):
    assert all(m["validation_bytes"] > 100_000 for m in manifest["metrics"].values())


def writes_english_from_the_cli(output):
    """The sample the committed-artifact test draws: the prompt, slid past the 128-byte context, in English."""
    text = open(output, encoding="utf-8").read()
    assert text.startswith("ROMEO:") and len(text.encode("utf-8")) >= 300
    common = {"the", "and", "i", "to", "of", "my", "you", "a", "that", "thee", "thy", "is", "in", "not", "it", "be",
              "he", "his", "me", "so", "with", "what", "if", "o", "shall", "would", "when", "more", "for", "your"}
    assert sum(w.strip(",.:;!?'").lower() in common for w in text.split()) >= 10  # a trained model writes English


SPEC = ModelSpec(
    test_model=test_model, test_inputs=test_inputs, parity_scale=parity_scale,
    quick_options={"export": {"max_windows": 2}, "evaluate": {"max_windows": 2}, "sample": {"max_new_tokens": 5}},
    benchmark_signature="decode_step",  # one byte through the key/value cache: what an app calls per byte
    benchmark_options={"max_windows": None},
    study="benchmarks/gpt.py (against nanoGPT; cache speed)",
    targets=(Target("validation_loss", at_most=1.60, why="the GPT issue's target, nats per byte"),),
    reproduce=Reproduce("tflite", "int8", {"max_windows": None}, data=("tinyshakespeare",)),
    cli_sample=("--prompt", "ROMEO:", "--max-new-tokens", "300"),
    checks=(scored_all_of_the_last_tenth,),
    sample_check=writes_english_from_the_cli,
)
