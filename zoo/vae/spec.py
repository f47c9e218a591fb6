"""What the shared tests and benchmarks need to know about the VAE (see ``zoo.core.recipes.spec``)."""

import numpy as np

from zoo.core.recipes.spec import ModelSpec, Reproduce, Target
from zoo.core.runtime.serving import example_inputs


def test_inputs(signature, manifest_entry, batch, seed):
    """Example inputs, with digits shaped like the VAE's data: binary pixels, about 15% of them on (binarized
    MNIST's share). The int8 file is full-integer, calibrated on binarized digits: uniform grey noise would
    drive its activations outside the calibrated ranges, which no input the model is for does."""
    inputs = example_inputs(manifest_entry, batch=batch, seed=seed)
    if "images" in inputs:
        inputs["images"] = (np.random.default_rng(seed).uniform(size=inputs["images"].shape) < 0.15).astype(np.float32)
    return inputs


def headline_meets_the_iwae_paper(manifest, model_dir):
    headline = manifest["metrics"]["savedmodel_detailed"]
    assert headline["iwae_samples"] >= 1000 and headline["num_images"] == 10000
    assert headline["iwae_nll"] <= headline["negative_elbo"]
    # Burda et al. 2016, one-stochastic-layer VAE on dynamically binarized MNIST: 86.76 nats
    assert headline["iwae_nll"] < 86.76


SPEC = ModelSpec(
    test_inputs=test_inputs,
    quick_options={"export": {"num_eval_samples": 50, "variant_test_images": 4, "variant_iwae_samples": 3,
                              "headline_test_images": 4, "headline_iwae_samples": 3},
                   "evaluate": {"num_samples": 4, "iwae_samples": 3}, "sample": {"num": 4}},
    # the export's per-runtime protocol: the first 1,000 test digits, k = 100 (FD on 1,000 prior samples)
    benchmark_options={"num_samples": 1000, "iwae_samples": 100},
    parity_scale=lambda expected: {"logits": 20.0},  # Bernoulli logits reach ~|20|; tolerances are for order 1
    targets=(Target("num_samples", at_least=10000, at_most=10000, why="FD on 10,000 prior samples"),),
    # the per-runtime bounds: the first 1,000 test digits, k = 100 (the FD of evaluate's 1,000 samples is not compared)
    reproduce=Reproduce("savedmodel", options={"num_samples": 1000, "iwae_samples": 100},
                        keys=("negative_elbo", "kl_loss", "iwae_nll"), tolerance=2e-3),
    cli_sample=("--num", "64"),
    checks=(headline_meets_the_iwae_paper,),
)
