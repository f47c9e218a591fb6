"""Checks every exported model must pass, whatever its signatures.

A model's tests give the inputs of each signature and what the in-memory Keras
model returns for them; these checks run every runtime (the exported ``.keras``
file, the SavedModel, each TFLite variant) on the same inputs.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np

from zoo.core.artifacts import SavedModelModel, TFLiteModel, load_keras_runner, read_manifest

# Max absolute difference against the in-memory Keras model, on outputs of order 1:
# the exported .keras file must reproduce it; SavedModel runs the same TF kernels;
# float32 TFLite differs by kernel rounding; float16 and int8 weights change the function.
TOLERANCES = {"keras": 1e-6, "savedmodel": 1e-5, "tflite_float32": 1e-4, "tflite_float16": 2e-2, "tflite_int8": 0.15}


def runners(exported_dir):
    manifest = read_manifest(exported_dir)
    found = {"keras": load_keras_runner(exported_dir, manifest),
             "savedmodel": SavedModelModel(os.path.join(exported_dir, manifest["savedmodel"]["path"]), manifest)}
    for variant, entry in manifest["tflite"].items():
        found[f"tflite_{variant}"] = TFLiteModel(os.path.join(exported_dir, entry["path"]), manifest)
    return found


def check_parity(exported_dir, inputs, expected, tolerances=None, scale=None):
    """Every runtime, every signature: outputs match ``expected`` within the tolerance.

    Args:
        inputs: signature -> {input name: array}.
        expected: signature -> {output name: array} from the in-memory Keras model.
        tolerances: runtime key -> atol (default :data:`TOLERANCES`).
        scale: output name -> factor the tolerance is multiplied by (for outputs
            not of order 1, e.g. logits).
    """
    tolerances = {**TOLERANCES, **(tolerances or {})}
    manifest = read_manifest(exported_dir)
    assert set(inputs) == set(manifest["signatures"]), "test every signature"
    for key, runner in runners(exported_dir).items():
        for signature, signature_inputs in inputs.items():
            outputs = runner(signature, **signature_inputs)
            assert set(outputs) == set(expected[signature]), (key, signature)
            for name, want in expected[signature].items():
                got = outputs[name]
                assert got.shape == np.shape(want), (key, signature, name)
                atol = tolerances[key] * (scale or {}).get(name, 1.0)
                np.testing.assert_allclose(got, want, atol=atol, err_msg=f"{key} {signature} {name}")


def check_builtin_only(exported_dir):
    """No Flex or custom op in any TFLite file; the same signatures and names as the SavedModel."""
    manifest = read_manifest(exported_dir)
    wanted = {name: {"inputs": sorted(s["inputs"]), "outputs": sorted(s["outputs"])}
              for name, s in manifest["signatures"].items()}
    for variant, entry in manifest["tflite"].items():
        path = os.path.join(exported_dir, entry["path"])
        with open(path, "rb") as f:
            assert b"Flex" not in f.read(), f"{variant} contains a Flex op"
        runner = TFLiteModel(path, manifest)
        ops = runner.op_names()
        assert ops and not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], (variant, ops)
        found = {name: {"inputs": sorted(s["inputs"]), "outputs": sorted(s["outputs"])}
                 for name, s in runner.interpreter.get_signature_list().items()}
        assert found == wanted, variant


LOAD_WITHOUT_ZOO = textwrap.dedent("""
    import hashlib, json, os, sys
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    model_dir, inputs_path, expected_path = sys.argv[1:]
    manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
    for entry in manifest["files"]:
        digest = hashlib.sha256(open(os.path.join(model_dir, entry["path"]), "rb").read()).hexdigest()
        assert digest == entry["sha256"], entry["path"]
    inputs, expected = np.load(inputs_path), np.load(expected_path)
    saved = tf.saved_model.load(os.path.join(model_dir, manifest["savedmodel"]["path"]))
    lite = Interpreter(model_path=os.path.join(model_dir, manifest["tflite"]["float32"]["path"]))
    for signature in manifest["signatures"]:
        feed = {k.split("/", 1)[1]: inputs[k] for k in inputs.files if k.startswith(signature + "/")}
        want = {k.split("/", 1)[1]: expected[k] for k in expected.files if k.startswith(signature + "/")}
        got_saved = saved.signatures[signature](**{k: tf.constant(v) for k, v in feed.items()})
        got_lite = lite.get_signature_runner(signature)(**feed)
        for name, value in want.items():
            np.testing.assert_allclose(got_saved[name].numpy(), value, atol=%(savedmodel)r * SCALE.get(name, 1))
            np.testing.assert_allclose(got_lite[name], value, atol=%(tflite_float32)r * SCALE.get(name, 1))
    assert not [m for m in sys.modules if m == "zoo" or m.startswith("zoo.")], "zoo was imported"
    print("OK without zoo")
""") % TOLERANCES


def check_loads_without_zoo(exported_dir, inputs, expected, tmp_path, scale=None):
    """SavedModel and float32 TFLite give ``expected`` in a process that cannot import zoo."""
    np.savez(os.path.join(tmp_path, "inputs.npz"),
             **{f"{s}/{n}": v for s, values in inputs.items() for n, v in values.items()})
    np.savez(os.path.join(tmp_path, "expected.npz"),
             **{f"{s}/{n}": v for s, values in expected.items() for n, v in values.items()})
    script = f"SCALE = {dict(scale or {})!r}\n" + LOAD_WITHOUT_ZOO
    # cwd and PYTHONPATH away from the checkout, so `import zoo` could not even succeed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script, os.path.abspath(exported_dir),
         os.path.join(tmp_path, "inputs.npz"), os.path.join(tmp_path, "expected.npz")],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK without zoo" in result.stdout
