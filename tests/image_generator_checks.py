"""The checks every noise -> images model in the zoo must pass.

A model's test file calls these with its model class and preset; adding a model
costs a few lines of tests (see test_image_generators.py).
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.core import export as core_export
from tests import export_checks
from zoo.core.artifacts import TFLiteModel, read_manifest
from zoo.core.errors import BadInputError
from zoo.gan.export import image_generator_signature


def noise(latent_dim, batch=4, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, latent_dim)).astype(np.float32)


def check_generate_shapes(model):
    images = np.asarray(model.generate(noise(model.latent_dim, batch=3)))
    assert images.shape == (3, 28, 28, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0


def check_config_round_trip(model, tmp_path):
    config = model.get_config()
    rebuilt = model.__class__.from_config(config)
    assert json.dumps(rebuilt.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert isinstance(loaded, model.__class__)
    z = noise(model.latent_dim)
    np.testing.assert_allclose(np.asarray(loaded.generate(z)), np.asarray(model.generate(z)), atol=1e-6)


def check_fit_changes_weights(model):
    model.compile()
    before = [w.numpy().copy() for w in model.generator.trainable_weights + model.discriminator.trainable_weights]
    ema_before = [w.numpy().copy() for w in model.ema_generator.weights]
    images = np.random.default_rng(0).uniform(-1, 1, (16, 28, 28, 1)).astype(np.float32)
    history = model.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=2, verbose=0)
    for name in ("generator_loss", "discriminator_loss"):
        assert all(np.isfinite(history.history[name])), name
    after = model.generator.trainable_weights + model.discriminator.trainable_weights
    assert all(not np.allclose(b, a.numpy()) for b, a in zip(before, after)), "some weights did not change"
    assert any(not np.allclose(b, a.numpy()) for b, a in zip(ema_before, model.ema_generator.weights))


def export_tiny(model, name, tmp_path):
    """Export ``model`` (untrained is fine for parity) without the slow metrics."""
    return core_export.export_model(name, signatures=[image_generator_signature(model)],
                                    keras_model=model.sampling_generator,
                                    keras_loader="zoo.gan.export:KerasImageGenerator",
                                    output_dir=str(tmp_path))


def check_saved_model_stores_each_weight_once(model, exported_dir):
    manifest = read_manifest(exported_dir)
    reader = tf.train.load_checkpoint(os.path.join(exported_dir, manifest["savedmodel"]["path"], "variables", "variables"))
    stored = sum(int(np.prod(shape)) for name, shape in reader.get_variable_to_shape_map().items()
                 if name != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert stored == sum(int(np.prod(w.shape)) for w in model.sampling_generator.weights)


def _parity_case(model, batch, seed):
    z = noise(model.latent_dim, batch=batch, seed=seed)
    return {"serving_default": {"noise": z}}, {"serving_default": {"images": np.asarray(model.generate(z))}}


def check_parity(model, exported_dir):
    manifest = read_manifest(exported_dir)
    assert manifest["signatures"]["serving_default"]["inputs"]["noise"]["shape"] == [None, model.latent_dim]
    assert manifest["signatures"]["serving_default"]["outputs"]["images"]["shape"] == [None, 28, 28, 1]
    export_checks.check_parity(exported_dir, *_parity_case(model, batch=5, seed=1))


def check_tflite_builtin_only(exported_dir):
    export_checks.check_builtin_only(exported_dir)
    manifest = read_manifest(exported_dir)
    assert list(manifest["signatures"]) == ["serving_default"]


def check_loads_without_zoo(model, exported_dir, tmp_path):
    export_checks.check_loads_without_zoo(exported_dir, *_parity_case(model, batch=2, seed=2), tmp_path)


def check_bad_noise_rejected(model, exported_dir):
    manifest = read_manifest(exported_dir)
    runner = TFLiteModel(os.path.join(exported_dir, manifest["tflite"]["float32"]["path"]), manifest)
    with pytest.raises(BadInputError, match=r"shape \[batch, %d\]" % model.latent_dim):
        runner("serving_default", noise=np.zeros((2, model.latent_dim + 1), np.float32))
    with pytest.raises(BadInputError, match="float32"):
        runner("serving_default", noise=np.zeros((2, model.latent_dim), np.float64))
    with pytest.raises(BadInputError, match="takes inputs"):
        runner("serving_default", latents=np.zeros((2, model.latent_dim), np.float32))
    with pytest.raises(BadInputError, match="float32"):
        model.generate(np.zeros((2, model.latent_dim), np.int32))
    with pytest.raises(BadInputError, match="shape"):
        model.generate(np.zeros((2, 3, model.latent_dim), np.float32))
