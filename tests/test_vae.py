"""The VAE: its bounds, training step and binarization (export, parity and bad input: test_every_model.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.core.runtime.runners import ModelRunner
from zoo.core.runtime.errors import BadInputError
from zoo.core.recipes.registry import get_recipe
from zoo.vae.model import PRESETS, VAE, binarize_fixed, iwae_bound, log_importance_weights
from zoo.vae.recipe import likelihood_bounds


def digits(batch=6, seed=0):
    """Blurry synthetic 'digits' in [0, 1]: enough to exercise the model without MNIST."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.uniform(-0.5, 1.0, (batch, 28, 28, 1)), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return VAE(**PRESETS["tiny"])


def test_shapes_and_ranges(model):
    images = digits(3)
    posterior = model.encode(images)
    assert posterior["mean"].shape == posterior["log_variance"].shape == (3, model.latent_dim)
    decoded = model.decode(np.zeros((3, model.latent_dim), np.float32))
    assert decoded["images"].shape == decoded["logits"].shape == (3, 28, 28, 1)
    np.testing.assert_allclose(decoded["images"], tf.sigmoid(decoded["logits"]), atol=1e-6)
    reconstruction = np.asarray(model.reconstruct(images)["images"])
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1


def test_elbo_is_above_iwae_and_both_finite():
    """On a small batch: -ELBO >= IWAE NLL (k = 64) per image, both finite (Burda et al., Theorem 1)."""
    model = VAE(**PRESETS["tiny"], seed=1)
    # A fresh decoder barely depends on z, which makes every bound equal; sharpen it.
    for weight in model.decoder.weights:
        weight.assign(weight * 4.0)
    binary = binarize_fixed(digits(4), seed=0)
    posterior = model.encode(binary)
    mean, log_variance = np.asarray(posterior["mean"]), np.asarray(posterior["log_variance"])
    eps = np.random.default_rng(1).standard_normal((64, 4, model.latent_dim)).astype(np.float32)
    latents = mean + np.exp(0.5 * log_variance) * eps
    logits = np.asarray(model.decode(latents.reshape(-1, model.latent_dim))["logits"]).reshape(64, 4, 28, 28, 1)
    log_weights = np.asarray(log_importance_weights(binary, mean, log_variance, latents, logits))
    negative_elbo = -log_weights.mean(axis=0)
    iwae_nll = -np.asarray(iwae_bound(log_weights))
    assert np.all(np.isfinite(negative_elbo)) and np.all(np.isfinite(iwae_nll))
    assert np.all(iwae_nll <= negative_elbo + 1e-4)
    # ...and strictly tighter somewhere: the bound is not just the ELBO renamed
    assert np.any(iwae_nll < negative_elbo - 1e-3)
    # k = 1 is exactly the ELBO of that sample
    np.testing.assert_allclose(-np.asarray(iwae_bound(log_weights[:1])), -log_weights[0], rtol=1e-6)


def test_likelihood_bounds_through_a_runner(model):
    runner = ModelRunner(get_recipe("vae"), model)
    bounds = likelihood_bounds(runner, digits(5), num_samples=50, progress=False)
    assert np.isfinite(bounds["iwae_nll"]) and bounds["iwae_nll"] <= bounds["negative_elbo"]
    assert bounds["kl_loss"] >= 0
    assert bounds["reconstruction_loss"] == pytest.approx(bounds["negative_elbo"] - bounds["kl_loss"], abs=2e-3)
    with pytest.raises(BadInputError, match="at least 1"):
        likelihood_bounds(runner, digits(2), num_samples=0, progress=False)


def test_training_lowers_the_loss_and_reports_its_parts():
    keras.utils.set_random_seed(0)
    model = VAE(**PRESETS["tiny"])
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    data = tf.data.Dataset.from_tensor_slices(digits(32, seed=3)).batch(8)
    history = model.fit(data, epochs=6, verbose=0).history
    assert set(history) >= {"loss", "reconstruction_loss", "kl_loss"}
    np.testing.assert_allclose(history["loss"], np.add(history["reconstruction_loss"], history["kl_loss"]), rtol=1e-4)
    assert history["loss"][-1] < history["loss"][0]
    assert all(k >= 0 for k in history["kl_loss"])


def test_binarization_is_dynamic_and_unbiased(model):
    grey = np.full((4, 28, 28, 1), 0.3, np.float32)
    first, second = np.asarray(model.binarize(grey)), np.asarray(model.binarize(grey))
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert not np.array_equal(first, second), "each batch must be binarized afresh"
    assert abs(first.mean() - 0.3) < 0.03


def test_model_methods_refuse_bad_input(model):
    with pytest.raises(BadInputError, match=r"latents must have shape \[batch, %d\]" % model.latent_dim):
        model.decode(np.zeros((2, model.latent_dim + 1), np.float32))
    with pytest.raises(BadInputError, match="float32"):
        model.encode(np.zeros((2, 28, 28, 1), np.uint8))
