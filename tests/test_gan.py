import pytest

from tests import image_generator_checks as checks
from zoo.gan.model import GAN, PRESETS


@pytest.fixture(scope="module")
def model():
    return GAN(**PRESETS["tiny"])


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return checks.export_tiny(model, "gan", tmp_path_factory.mktemp("export"))


def test_generate_shapes(model):
    checks.check_generate_shapes(model)


def test_config_round_trip(model, tmp_path):
    checks.check_config_round_trip(model, tmp_path)


def test_fit_changes_weights():
    checks.check_fit_changes_weights(GAN(**PRESETS["tiny"]))


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
