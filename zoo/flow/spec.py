"""What the shared tests and benchmarks need to know about the flow (see ``zoo.core.recipes.spec``)."""

import numpy as np

from zoo.core.recipes.spec import ModelSpec, Reproduce, Target, every_runtime
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


def never_decodes_to_nan(manifest, model_dir):
    """The flow's own prior never decodes to NaN: 100,000 standard-normal rows (seed 7), a third each at
    temperatures 1.0, 1.1 and 1.2, through flow.tflite, and the issue's 1,000 rows at temperature 1.2 (13 of
    them were NaN at 1.0 before the inverse was bounded) through every other runtime."""
    every = every_runtime(model_dir)
    noise = np.random.default_rng(7).standard_normal((100_000, 784)).astype(np.float32)
    temperatures = np.repeat(np.array([1.0, 1.1, 1.2], np.float32), [33_334, 33_333, 33_333])
    for start in range(0, len(noise), 5000):
        rows = slice(start, start + 5000)
        images = every["tflite_float32"]("decode", noise=temperatures[rows, None] * noise[rows])["images"]
        bad = int((~np.isfinite(images)).reshape(len(images), -1).any(axis=1).sum())
        assert bad == 0, f"{bad} non-finite images in rows {start}..{start + 4999}"
    for key, runner in every.items():
        images = runner("serving_default", noise=1.2 * noise[:1000])["images"]
        assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1, key


def log_prob_is_finite_on_the_whole_cube(manifest, model_dir):
    """Any input in [0, 1], digit or not, gets a finite log-density in every runtime: the corners (all 0,
    all 1, random 0/1), uniform noise, and values a float's width from the edges."""
    rng = np.random.default_rng(0)
    shape = (8, *IMAGE_SHAPE)
    inputs = np.concatenate([np.zeros(shape), np.ones(shape), rng.integers(0, 2, shape), rng.uniform(size=shape),
                             np.full(shape, 1e-30), np.full(shape, np.nextafter(1.0, 0.0, dtype=np.float32))])
    for key, runner in every_runtime(model_dir).items():
        log_density = runner("log_prob", images=inputs.astype(np.float32))["log_density"]
        assert np.isfinite(log_density).all(), (key, log_density)


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
    checks=(float16_within_one_percent, never_decodes_to_nan, log_prob_is_finite_on_the_whole_cube),
)
