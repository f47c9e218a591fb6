"""The committed SavedModels load and run in TensorFlow's C++ loader (TF Serving's), matching Python's outputs."""

import os

import numpy as np
import pytest

from zoo.core.runtime import cpp_loader
from zoo.core.runtime.errors import ZooError
from zoo.core.runtime.paths import EXPORTED_DIR
from zoo.core.runtime.runners import read_manifest
from zoo.core.runtime.serving import example_inputs

pytestmark = pytest.mark.slow  # compiles a C++ program (half a minute, once per cache) and loads every model

# a hidden folder is an export's scratch copy (a crashed one's stays behind, gitignored), not a model
COMMITTED = sorted(name for name in os.listdir(EXPORTED_DIR)
                   if not name.startswith(".") and os.path.isfile(os.path.join(EXPORTED_DIR, name, "manifest.json"))
                   and read_manifest(os.path.join(EXPORTED_DIR, name), verify=False).get("savedmodel"))


@pytest.fixture(scope="module")
def binary():
    if cpp_loader.compiler() is None:
        pytest.skip(cpp_loader.INSTALL_HINT)
    return cpp_loader.build()


def savedmodel_signatures(manifest):
    return {name: entry for name, entry in manifest["signatures"].items()
            if "savedmodel" in entry.get("runtimes", ["savedmodel"])}


def sampled_audio(entry, output):
    """The audio a vocoder samples from a categorical with the caller's uniform noise (its state and every
    other output are compared as usual)."""
    noise = entry["inputs"].get("noise")
    return output == "audio" and noise is not None and noise.get("range") == [0.0, 1.0]


def assert_sampled_outputs_agree(got, expected, message):
    """The C++ session and Python's function round floats differently (logits agree to about 1e-6, not
    bitwise); where a uniform draw falls that close to a level's edge, the sample goes to the neighbouring level
    and the clip differs until the vocoder's receptive field has passed it, then agrees again (CI saw 1,870
    differing samples in one row of 64,000). So: most of every row equal, each stretch of disagreement short.
    A wrong graph disagrees everywhere."""
    equal = np.isclose(got, expected, rtol=1e-4, atol=1e-4)
    for row, row_equal in enumerate(equal.reshape(len(equal), -1)):
        assert row_equal.mean() >= 0.95, f"{message}: row {row} agrees on only {row_equal.mean():.1%} of samples"
        edges = np.flatnonzero(np.diff(np.concatenate([[1], row_equal.astype(np.int8), [1]])))
        longest = int((edges[1::2] - edges[::2]).max(initial=0))  # each stretch runs from a fall to a rise
        assert longest <= 2500, f"{message}: row {row} differs for {longest} samples in a row"


def test_every_model_is_committed_with_a_savedmodel():
    assert len(COMMITTED) >= 10


# one test per model, so that the test workers share them (the speech models' loops take a minute each)
@pytest.mark.parametrize("name", COMMITTED)
def test_every_committed_savedmodel_runs_every_signature_in_cpp_as_in_python(binary, name):
    from zoo.core.recipes.commands import load

    model_dir = os.path.join(EXPORTED_DIR, name)
    manifest = read_manifest(model_dir)  # sha256-checked
    requests = {s: example_inputs(entry, batch=2, seed=1) for s, entry in savedmodel_signatures(manifest).items()}
    in_cpp = cpp_loader.run_signatures(os.path.join(model_dir, manifest["savedmodel"]["path"]), requests, binary)
    python = load(model_dir, runtime="savedmodel")
    assert set(in_cpp) == set(requests), name
    for signature, inputs in requests.items():
        expected = python(signature, **inputs)
        assert set(in_cpp[signature]) == set(expected), (name, signature)
        for output, value in expected.items():
            got = in_cpp[signature][output]
            assert got.shape == value.shape, (name, signature, output)
            if value.dtype.kind in "iubOS":  # integers, booleans and text: exactly
                assert got.tolist() == value.tolist(), (name, signature, output)
            elif sampled_audio(manifest["signatures"][signature], output):
                assert_sampled_outputs_agree(got, value, f"{name} {signature} {output}")
            else:
                np.testing.assert_allclose(got, value, rtol=1e-4, atol=1e-4, err_msg=f"{name} {signature} {output}")


def test_what_the_cpp_loader_refuses_comes_back_as_its_message(binary, tmp_path):
    saved_model = os.path.join(EXPORTED_DIR, "gan", "1")
    noise = np.zeros((1, read_manifest(os.path.join(EXPORTED_DIR, "gan"), verify=False)["signatures"][
        "serving_default"]["inputs"]["noise"]["shape"][-1]), np.float32)
    with pytest.raises(ZooError, match="has no signature generate"):
        cpp_loader.run_signatures(saved_model, {"generate": {"noise": noise}}, binary)
    with pytest.raises(ZooError, match="input noise is float32, not int32"):
        cpp_loader.run_signatures(saved_model, {"serving_default": {"noise": noise.astype(np.int32)}}, binary)
    with pytest.raises(ZooError, match="LoadSavedModel"):
        cpp_loader.run_signatures(str(tmp_path), {"serving_default": {"noise": noise}}, binary)


def test_without_a_compiler_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setenv("CXX", "")
    monkeypatch.setattr(cpp_loader.shutil, "which", lambda name: None)
    with pytest.raises(ZooError, match="install g\\+\\+"):
        cpp_loader.build()
