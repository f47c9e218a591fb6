"""The GAN family's shared parts in the core: generate, a few training steps with the EMA generator, noise checks."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.core.errors import BadInputError
from zoo.core.registry import get_recipe

ADVERSARIAL = ["gan", "dcgan"]


def noise(latent_dim, batch=4, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, latent_dim)).astype(np.float32)


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_generate_gives_images_in_the_unit_range(name):
    model = get_recipe(name).create_model("tiny")
    images = np.asarray(model.generate(noise(model.latent_dim, batch=3)))
    assert images.shape == (3, 28, 28, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_fit_moves_both_networks_and_the_moving_average(name):
    model = get_recipe(name).create_model("tiny")
    model.compile()
    before = [w.numpy().copy() for w in model.generator.trainable_weights + model.discriminator.trainable_weights]
    ema_before = [w.numpy().copy() for w in model.ema_generator.weights]
    images = np.random.default_rng(0).uniform(-1, 1, (16, 28, 28, 1)).astype(np.float32)
    history = model.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=2, verbose=0)
    for loss in ("generator_loss", "discriminator_loss"):
        assert all(np.isfinite(history.history[loss])), loss
    after = model.generator.trainable_weights + model.discriminator.trainable_weights
    assert all(not np.allclose(b, a.numpy()) for b, a in zip(before, after)), "some weights did not change"
    assert any(not np.allclose(b, a.numpy()) for b, a in zip(ema_before, model.ema_generator.weights))


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_generate_refuses_bad_noise(name):
    model = get_recipe(name).create_model("tiny")
    with pytest.raises(BadInputError, match="float32"):
        model.generate(np.zeros((2, model.latent_dim), np.int32))
    with pytest.raises(BadInputError, match="shape"):
        model.generate(np.zeros((2, 3, model.latent_dim), np.float32))
