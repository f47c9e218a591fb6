"""The shared checks (image_generator_checks.py) on every noise -> images model."""

import pytest

from tests import image_generator_checks as checks
from zoo.dcgan.model import DCGAN
from zoo.dcgan.model import PRESETS as DCGAN_PRESETS
from zoo.gan.model import GAN
from zoo.gan.model import PRESETS as GAN_PRESETS

MODELS = {"gan": (GAN, GAN_PRESETS), "dcgan": (DCGAN, DCGAN_PRESETS)}


def tiny(name):
    model_class, presets = MODELS[name]
    return model_class(**presets["tiny"])


@pytest.fixture(scope="module", params=sorted(MODELS))
def name(request):
    return request.param


@pytest.fixture(scope="module")
def model(name):
    return tiny(name)


@pytest.fixture(scope="module")
def exported(model, name, tmp_path_factory):
    return checks.export_tiny(model, name, tmp_path_factory.mktemp("export"))


def test_generate_shapes(model):
    checks.check_generate_shapes(model)


def test_config_round_trip(model, tmp_path):
    checks.check_config_round_trip(model, tmp_path)


def test_fit_changes_weights(name):
    checks.check_fit_changes_weights(tiny(name))


def test_parity_keras_savedmodel_tflite(model, exported):
    checks.check_parity(model, exported)


def test_saved_model_stores_each_weight_once(model, exported):
    checks.check_saved_model_stores_each_weight_once(model, exported)


def test_tflite_builtin_only(exported):
    checks.check_tflite_builtin_only(exported)


def test_loads_without_zoo(model, exported, tmp_path):
    checks.check_loads_without_zoo(model, exported, tmp_path)


def test_bad_noise_rejected(model, exported):
    checks.check_bad_noise_rejected(model, exported)
