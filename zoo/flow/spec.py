"""What the shared tests and benchmarks need to know about the flow (see ``zoo.core.recipes.spec``)."""

import numpy as np

from zoo.core.recipes.spec import ModelSpec, Reproduce, Target
from zoo.core.runtime.serving import example_inputs
from zoo.flow.model import IMAGE_SHAPE


def test_model(recipe):
    model = recipe.create_model("tiny", seed=0)
    rng = np.random.default_rng(0)
    model.initialize_actnorm(rng.uniform(size=(16, *IMAGE_SHAPE)).astype("float32"))
    return model


def test_inputs(signature, manifest_entry, batch, seed):
    rng = np.random.default_rng(seed)
    if signature in ("log_prob", "encode"):
        return {"images": rng.uniform(size=(batch, *IMAGE_SHAPE)).astype(np.float32)}
    return example_inputs(manifest_entry, batch=batch, seed=seed)


def test_bits_per_dim(runner):
    """The manifest's protocol: all 10,000 test digits, dequantized with the same fixed noise (the FD of
    samples, which evaluate also measures, is left out: 20,000 decodes)."""
    from zoo.core.data.datasets import mnist_images
    from zoo.core.recipes.recipe import EVAL_SEED
    from zoo.flow.recipe import bits_per_dim

    images, _ = mnist_images("test")
    return {"bits_per_dim": round(float(bits_per_dim(runner, images, seed=EVAL_SEED, progress=False).mean()), 4)}


def float16_within_one_percent(manifest, model_dir):
    bits = {key: metrics["bits_per_dim"] for key, metrics in manifest["metrics"].items()}
    assert abs(bits["tflite_float16"] - bits["tflite_float32"]) <= 0.01 * bits["tflite_float32"]


SPEC = ModelSpec(
    test_model=test_model, test_inputs=test_inputs,
    # log-densities are sums over 784 pixels, of order 10^3 nats; noise is of order 1..10
    parity_scale=lambda expected: {"log_density": 1000.0, "noise": 10.0},
    quick_options={"export": {"num_eval_samples": 20, "num_test_images": 20},
                   "evaluate": {"num_samples": 20}, "sample": {"num": 4}},
    benchmark_signature="log_prob",
    benchmark_options={"num_samples": 2000},
    targets=(Target("bits_per_dim", at_most=1.30, runtimes=("keras", "savedmodel", "tflite_float32", "tflite_float16"),
                    why="the flow issue's target"),
             Target("num_test_images", at_least=10000, at_most=10000, why="all 10,000 test digits")),
    reproduce=Reproduce("tflite", "float32", keys=("bits_per_dim",), measure=test_bits_per_dim),
    cli_sample=("--num", "16"),
    checks=(float16_within_one_percent,),
)
