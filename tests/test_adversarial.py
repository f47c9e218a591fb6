"""The GAN family's shared parts in the core: generate, a few training steps with the EMA generator, noise checks."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.core.runtime.errors import BadInputError
from zoo.core.recipes.registry import get_recipe

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


# === The stabilisers: spectral norm, hinge loss, R1, two time-scale rates ===
def test_spectral_norm_divides_by_the_largest_singular_value():
    from zoo.core.nn.gan_networks import SpectralConv2D, SpectralDense

    rng = np.random.default_rng(0)
    for layer, shape in ((SpectralDense(6), (None, 5)), (SpectralConv2D(4, 3, padding="same"), (None, 8, 8, 3))):
        layer.build(shape)
        layer.kernel.assign(rng.standard_normal(layer.kernel.shape).astype(np.float32) * 3)
        x = rng.standard_normal((2, *shape[1:])).astype(np.float32)
        for _ in range(30):  # one power iteration per training call converges to the top singular vector
            layer(x, training=True)
        matrix = layer.kernel.numpy().reshape(-1, layer.kernel.shape[-1])
        sigma = np.linalg.svd(matrix, compute_uv=False)[0]
        # the layer's output is that of a kernel divided by sigma
        if isinstance(layer, SpectralDense):
            expected = x @ (matrix / sigma) + layer.bias.numpy()
        else:
            expected = tf.nn.conv2d(x, layer.kernel.numpy() / sigma, 1, "SAME").numpy() + layer.bias.numpy()
        np.testing.assert_allclose(np.asarray(layer(x, training=False)), expected, rtol=1e-3, atol=1e-4)
        assert sigma > 2  # so the check above is not the identity


def test_spectral_norm_state_survives_a_checkpoint(synthetic_data_dir, tmp_path):
    from tests.conftest import data_dir_set
    from zoo.core.recipes import commands

    run_dir = str(tmp_path / "run")
    with data_dir_set(synthetic_data_dir):
        commands.train("dcgan", preset="tiny", epochs=1, batch_size=32, limit=64, run_dir=run_dir, verbose=0,
                       spectral_norm=True, loss="hinge", r1_gamma=1.0, discriminator_learning_rate=4e-4,
                       discriminator_filters=6)
    model, run, _ = commands.load_run("dcgan", run_dir)
    assert (model.loss, model.spectral_norm, model.r1_gamma) == ("hinge", True, 1.0)
    # the discriminator's own width (tiny: filters 4): its first convolution is 2 x 6 wide, the generator's unchanged
    assert model.discriminator.stack[0].filters == 12 and model.generator.filters == 4
    assert run["config"]["discriminator_learning_rate"] == 4e-4
    assert float(model.discriminator_optimizer.learning_rate) == pytest.approx(4e-4)
    vectors = [w for w in model.discriminator.weights if "singular_vector" in w.path]
    assert len(vectors) == 3 and all(np.abs(v.numpy()).max() > 0 for v in vectors)
    fresh = get_recipe("dcgan").model_class(**run["config"]["model_config"])
    initial = [w for w in fresh.discriminator.weights if "singular_vector" in w.path]
    assert all(not np.allclose(a.numpy(), b.numpy()) for a, b in zip(initial, vectors)), "restored, not re-initialised"


def test_hinge_and_bce_losses_follow_their_formulas():
    model = get_recipe("dcgan").model_class(**get_recipe("dcgan").presets["tiny"], loss="hinge")
    real, fake = np.array([[2.0], [0.5], [-1.0]], np.float32), np.array([[-3.0], [0.0], [0.5]], np.float32)
    hinge = np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake))
    assert float(model._discriminator_loss(real, fake)) == pytest.approx(hinge)
    assert float(model._generator_loss(fake)) == pytest.approx(-fake.mean())
    bce = get_recipe("dcgan").create_model("tiny")
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    assert float(bce._discriminator_loss(real, fake)) == pytest.approx(np.mean(softplus(-real)) + np.mean(softplus(fake)),
                                                                       rel=1e-5)
    assert float(bce._generator_loss(fake)) == pytest.approx(np.mean(softplus(-fake)), rel=1e-5)
    with pytest.raises(BadInputError, match="hinge"):
        get_recipe("dcgan").model_class(loss="wasserstein")


def test_the_r1_penalty_is_the_squared_input_gradient_on_real_images():
    model = get_recipe("dcgan").model_class(**get_recipe("dcgan").presets["tiny"], dropout=0.0, r1_gamma=10.0)
    model.compile()
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(model.discriminator(images, training=True))
    expected = float(tf.reduce_mean(tf.reduce_sum(tf.square(tape.gradient(total, images)), axis=[1, 2, 3])))
    logs = model.train_step(images)
    assert expected > 0 and float(logs["r1_penalty"]) == pytest.approx(expected, rel=1e-3)
