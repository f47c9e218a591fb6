"""The normalizing flow: exact log-determinants, exact inversion in every runtime, a density that integrates to 1."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.export_checks import runners
from zoo.core.recipes.registry import get_recipe
from zoo.flow.model import ActNorm, AffineCoupling, FlowModel, InvertibleConv1x1, log_sigmoid, logit_forward


def randomized(model_or_layer, seed, scale=0.3):
    """Every weight moved off its identity initialisation (zero-initialised couplings, unit actnorms),
    so the checks below see layers that actually transform."""
    rng = np.random.default_rng(seed)
    for weight in model_or_layer.trainable_weights:
        weight.assign(weight.numpy() + scale * rng.standard_normal(weight.shape).astype(np.float32))
    return model_or_layer


def jacobian_log_determinant(function, x):
    """log|det J| of ``function`` at each example of ``x`` [batch, ...], from TensorFlow's Jacobian (float64)."""
    x = tf.constant(x, tf.float64)
    results = []
    for row in range(x.shape[0]):
        point = x[row : row + 1]
        with tf.GradientTape() as tape:
            tape.watch(point)
            y = function(point)
        jacobian = tape.jacobian(y, point).numpy().reshape(int(np.prod(y.shape)), int(np.prod(point.shape)))
        results.append(np.linalg.slogdet(jacobian)[1])
    return np.array(results)


def as_float64(layer, shape):
    """A float64 copy of a layer (the Jacobian's log-determinant needs the precision)."""
    copy = type(layer).from_config({**layer.get_config(), "dtype": "float64"})
    copy.build(shape)
    copy.set_weights(layer.get_weights())
    return copy


@pytest.mark.parametrize("make_layer", [ActNorm, lambda: InvertibleConv1x1(seed=3), lambda: AffineCoupling(8)],
                         ids=["actnorm", "conv1x1", "coupling"])
def test_each_layer_log_determinant_is_the_jacobian_one(make_layer):
    shape = (2, 2, 3, 4)
    layer = make_layer()
    layer.build(shape)
    randomized(layer, seed=1)
    layer64 = as_float64(layer, shape)
    x = np.random.default_rng(2).standard_normal(shape)
    _, logdet = layer64.forward(tf.constant(x, tf.float64))
    numerical = jacobian_log_determinant(lambda p: layer64.forward(p)[0], x)
    np.testing.assert_allclose(np.broadcast_to(logdet.numpy(), numerical.shape), numerical, atol=1e-6)
    # the float32 layer agrees with its float64 twin, and inverse(forward(x)) = x
    y, logdet32 = layer.forward(tf.constant(x, tf.float32))
    np.testing.assert_allclose(np.broadcast_to(logdet32, numerical.shape), numerical, atol=1e-3)
    np.testing.assert_allclose(layer.inverse(y), x, atol=1e-4)


def test_logit_and_whole_flow_log_determinants_are_the_jacobian_ones():
    x = np.random.default_rng(3).uniform(0.05, 0.95, (2, 2, 2, 1))
    _, logdet = logit_forward(tf.constant(x, tf.float64))
    np.testing.assert_allclose(logdet, jacobian_log_determinant(lambda p: logit_forward(p)[0], x), atol=1e-6)

    flow = randomized(FlowModel(image_shape=(4, 4, 1), levels=2, steps_per_level=2, hidden_channels=8), seed=4)
    x = np.random.default_rng(5).uniform(0.05, 0.95, (2, 4, 4, 1)).astype(np.float32)
    _, logdet = flow.forward(tf.constant(x))
    numerical = jacobian_log_determinant(lambda p: flow.forward(tf.cast(p, tf.float32))[0], x)
    np.testing.assert_allclose(logdet, numerical, rtol=1e-3, atol=1e-2)


def test_the_density_of_a_2x2_flow_integrates_to_one():
    """Midpoint rule on a 36^4 grid of [0, 1]^4: the logit maps the cube onto R^4, so the mass is all there."""
    keras.utils.set_random_seed(6)  # the layers' own initialisers too, so the flow is the same flow every run
    flow = randomized(FlowModel(image_shape=(2, 2, 1), levels=1, steps_per_level=2, hidden_channels=8), seed=6,
                      scale=0.2)
    n = 36
    centers = (np.arange(n) + 0.5) / n
    grid = np.stack(np.meshgrid(centers, centers, centers, centers, indexing="ij"), -1).reshape(-1, 2, 2, 1)
    total = 0.0
    for start in range(0, len(grid), 200_000):
        total += float(np.exp(np.asarray(flow.log_density(grid[start : start + 200_000].astype(np.float32)),
                                         np.float64)).sum())
    integral = total / n ** 4
    assert abs(integral - 1.0) < 0.02, integral
    # and the mass is not there whatever the weights: the same flow before its weights were moved (same
    # initialisers, same seed) has another density, by far more than the 2% above, somewhere in the cube
    keras.utils.set_random_seed(6)
    plain = FlowModel(image_shape=(2, 2, 1), levels=1, steps_per_level=2, hidden_channels=8)
    some = grid[np.random.default_rng(8).choice(len(grid), 1000, replace=False)].astype(np.float32)
    assert np.max(np.abs(flow.log_density(some).numpy() - plain.log_density(some).numpy())) > 1.0


def test_log_sigmoid_is_the_usual_one_and_finite_where_that_is_not():
    x = np.linspace(-30, 30, 601).astype(np.float32)
    np.testing.assert_allclose(log_sigmoid(x), tf.math.log(tf.sigmoid(x)), rtol=1e-5, atol=1e-6)
    far = log_sigmoid(np.array([-1e4, -200.0, 200.0, 1e4], np.float32)).numpy()
    np.testing.assert_allclose(far, [-1e4, -200.0, 0.0, 0.0], rtol=1e-6)


def test_a_coupling_whose_scale_underflows_still_decodes_to_an_image_and_scores_finite():
    """The NaN of the committed flow at temperature 1 in miniature: a conditioner driven far off its data makes
    sigmoid(raw + 2) underflow to 0. Forward, log 0 was -inf; inverse, y / 0 fed the next coupling until inf - inf.
    Both directions must stay finite, and decode stays in [0, 1]."""
    flow = randomized(FlowModel(image_shape=(4, 4, 1), levels=2, steps_per_level=2, hidden_channels=8), seed=4)
    for layer in flow.flow_layers:
        if isinstance(layer, AffineCoupling):
            last = layer.net.layers[-1]
            kernel, bias = last.get_weights()
            bias[bias.shape[0] // 2 :] = -300.0  # raw + 2 = -298: sigmoid is 0 in float32
            last.set_weights([kernel, bias])
    noise = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    images = flow.decode(noise)["images"].numpy()
    assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    x = np.random.default_rng(1).uniform(size=(4, 4, 4, 1)).astype(np.float32)
    assert np.isfinite(flow.log_density(x).numpy()).all()
    # away from the bounds the inverse is still exact
    plain = randomized(FlowModel(image_shape=(4, 4, 1), levels=2, steps_per_level=2, hidden_channels=8), seed=4)
    x = np.random.default_rng(2).uniform(0.05, 0.95, (4, 4, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(plain.decode(plain.encode(x)["noise"])["images"], x, atol=1e-4)


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export("flow")[1]


def test_encode_and_decode_invert_each_other_in_every_runtime(exported):
    images = np.random.default_rng(7).uniform(0.02, 0.98, (3, 28, 28, 1)).astype(np.float32)
    noise = np.random.default_rng(8).standard_normal((3, 784)).astype(np.float32)
    for key, runner in runners(exported).items():
        if key == "tflite_int8":
            continue  # int8 weights: encode and decode are each approximated, no longer exact inverses
        decoded = runner("decode", noise=runner("encode", images=images)["noise"])["images"]
        np.testing.assert_allclose(decoded, images, atol=2e-3 if "float16" in key else 1e-4, err_msg=key)
        encoded = runner("encode", images=runner("decode", noise=noise)["images"])["noise"]
        # decode clips to [0, 1] and rounds near the edges, where the logit is steep: compare the typical value
        assert np.median(np.abs(encoded - noise)) < (2e-2 if "float16" in key else 1e-3), key


def test_bits_per_dim_of_noise_is_worse_than_of_digits_shaped_inputs(exported):
    """log_prob ranks: the tiny flow's own samples score better than uniform noise (the anomaly use case)."""
    recipe = get_recipe("flow")
    runner = runners(exported)["tflite_float32"]
    samples = runner("decode", noise=np.random.default_rng(9).standard_normal((8, 784)).astype(np.float32))["images"]
    uniform = np.random.default_rng(10).uniform(size=(8, 28, 28, 1)).astype(np.float32)
    from zoo.flow.recipe import per_image_bits

    own = per_image_bits(runner("log_prob", images=np.clip(samples, 0, 1))["log_density"])
    other = per_image_bits(runner("log_prob", images=uniform)["log_density"])
    assert own.mean() < other.mean(), (own.mean(), other.mean())
    assert recipe.metrics[0] == "bits_per_dim"
