"""The committed exported models: intact, runnable, and as good as README says.

Every registered model with a committed export is checked here from the registry and its ``spec.py``
(``zoo.core.recipes.spec``): files against their sha256, builtin ops only, the training command, its targets,
one re-measured number, a ``sample`` from the CLI and the model's own checks. Nothing here names a model.
Re-measurements that take most of a minute or more (the diffusion models' guided DDIM over their whole metric
sets, the TTS, WaveNet, video and music models': ``Reproduce(in_test_suite=False)``) are a benchmark that
re-measures every committed model, ``python -m benchmarks.reproduce_committed``.
"""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # re-measures the committed models and runs the CLI on them

from tests.export_checks import check_builtin_only  # noqa: E402
from zoo.core.recipes.registry import get_recipe, model_names  # noqa: E402
from zoo.core.recipes.spec import get_spec, remeasure_committed  # noqa: E402
from zoo.core.runtime.paths import EXPORTED_DIR  # noqa: E402
from zoo.core.runtime.runners import read_manifest  # noqa: E402

COMMITTED = [name for name in model_names() if os.path.isfile(os.path.join(EXPORTED_DIR, name, "manifest.json"))]


def data_available(folders):
    from zoo.core.data.datasets import data_dir
    from zoo.core.runtime.errors import DataNotFoundError

    try:
        root = data_dir()
    except DataNotFoundError:
        return False
    return bool(root) and all(os.path.isdir(os.path.join(root, folder)) for folder in folders)


def test_every_model_has_a_committed_export():
    """Every model but one still training (its spec says where the run is) has its export committed; one that
    says it is training has none (once it is exported, its spec must stop saying so)."""
    from zoo.core.recipes.spec import committed_models

    assert COMMITTED == committed_models()
    for name in set(model_names()) - set(committed_models()):
        assert "runs/" in get_spec(name).in_training, f"{name}: say where its training run is"


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_export_is_intact_builtin_only_and_meets_its_targets(name):
    model_dir = os.path.join(EXPORTED_DIR, name)
    manifest = read_manifest(model_dir)  # raises on any sha256 mismatch
    assert os.path.isfile(os.path.join(model_dir, manifest["savedmodel"]["path"], "saved_model.pb"))
    check_builtin_only(model_dir)
    assert manifest["training"]["command"].startswith(f"python -m zoo train {name}")
    assert set(get_recipe(name).metrics) <= set(manifest["metrics"]["tflite_float32"])
    spec = get_spec(name)
    assert [failure for target in spec.targets for failure in target.failures(manifest)] == []
    for check in spec.checks:
        check(manifest, model_dir)


@pytest.mark.parametrize("name", [n for n in COMMITTED
                                  if get_spec(n).reproduce is not None and get_spec(n).reproduce.in_test_suite])
def test_committed_metric_reproduces(name):
    """One of the manifest's numbers re-measured with the export's protocol: the number is real."""
    reproduce = get_spec(name).reproduce
    if not data_available(reproduce.data):
        pytest.skip(f"needs {', '.join(reproduce.data)} under ZOO_DATA_DIR (CI sets ../shared/datasets)")
    for key, measured, stored, tolerance in remeasure_committed(name):
        assert measured == pytest.approx(stored, abs=tolerance), key


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_keras_file_then_the_cli_sample_run_in_a_fresh_process(name, tmp_path):
    """A fresh process has imported none of the model's classes; its .keras file (safe_mode) must still load
    through the registry and run the signature the benchmarks time. The same process then runs
    ``python -m zoo sample <model>`` (runpy, as ``-m`` does: one interpreter start, TensorFlow's import, for both)."""
    spec, recipe = get_spec(name), get_recipe(name)
    output = str(tmp_path / f"{name}{recipe.sample_suffix}")
    code = f"""
import runpy, sys
import zoo
from zoo.core.recipes.spec import get_spec
runner = zoo.load({name!r}, runtime="keras")
spec = get_spec({name!r})
signature = spec.benchmark_signature
outputs = runner(signature, **spec.inputs(signature, runner.signatures[signature], batch=2))
assert outputs and all(len(v) == 2 for v in outputs.values()), outputs
print("keras file ran", signature, flush=True)
sys.argv = ["zoo", "sample", {name!r}, *{list(spec.cli_sample)!r}, "--output", {output!r}]
runpy.run_module("zoo", run_name="__main__", alter_sys=True)
"""
    # the test's working directory, as the CLI tests': a relative ZOO_DATA_DIR (the README's) still resolves
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"keras file ran {spec.benchmark_signature}" in result.stdout
    assert f"to {output}" in result.stdout
    if spec.sample_check:  # what the model's file must hold (seq2seq's is one short line of text)
        spec.sample_check(output)
    else:
        assert os.path.getsize(output) > 100
