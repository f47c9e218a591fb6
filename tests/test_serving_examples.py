"""Every request body `python -m zoo serve` writes is accepted by the model it was written for.

The committed SavedModel is called as TF Serving would (``tf.saved_model.load``, the body's JSON values,
no zoo runner in between), for every signature of every model; the zoo's own runners accept the same
inputs (their checks read the manifest's ranges).
"""

import json
import os

import numpy as np
import pytest

from zoo.core.recipes.spec import committed_models
from zoo.core.runtime.paths import EXPORTED_DIR
from zoo.core.runtime.runners import ExportedModel, read_manifest
from zoo.core.runtime.serving import example_value, rest_request

pytestmark = pytest.mark.slow  # loads every committed SavedModel


@pytest.mark.parametrize("name", committed_models())
def test_every_serve_request_body_is_accepted_by_its_savedmodel(name, tmp_path):
    import tensorflow as tf

    from zoo.core.runtime.runners import import_savedmodel_ops

    model_dir = os.path.join(EXPORTED_DIR, name)
    manifest = read_manifest(model_dir)
    import_savedmodel_ops(manifest)
    loaded = tf.saved_model.load(os.path.join(model_dir, manifest["savedmodel"]["path"]))
    refused = {}
    for signature in sorted(manifest["signatures"]):
        body = json.loads(json.dumps(rest_request(manifest, signature)))  # through JSON, as the file holds it
        _, expected = loaded.signatures[signature].structured_input_signature
        inputs = {n: tf.constant(v, dtype=expected[n].dtype) for n, v in body["inputs"].items()}
        try:
            loaded.signatures[signature](**inputs)
        except tf.errors.InvalidArgumentError as error:
            refused[signature] = error.message.strip().splitlines()[0][:200]
            continue
        arrays = {n: np.array(v, dtype=object if s["dtype"] == "string" else s["dtype"])
                  for (n, v), s in zip(body["inputs"].items(), manifest["signatures"][signature]["inputs"].values())}
        ExportedModel(manifest).check_inputs(signature, arrays)  # the zoo's runners accept it too
    assert refused == {}


@pytest.mark.parametrize("spec, check", [
    ({"dtype": "float32", "shape": [None, 3], "range": [0.0, 1.0]}, lambda v: v.min() > 0 and v.max() < 1),
    ({"dtype": "float32", "shape": [None], "range": [0.0, None]}, lambda v: v.min() > 0),
    ({"dtype": "float32", "shape": [None], "range": [-1.0, 1.0]}, lambda v: v.min() > -1 and v.max() < 1),
    ({"dtype": "int32", "shape": [None], "range": [1, 128]}, lambda v: (v == 1).all()),
    ({"dtype": "int32", "shape": [None], "range": [None, -2]}, lambda v: (v == -2).all()),
    ({"dtype": "float32", "shape": [None]}, lambda v: v.dtype == np.float32),
], ids=["unit", "non-negative", "symmetric", "int-from-1", "int-below", "unbounded"])
def test_example_values_lie_inside_the_declared_range(spec, check):
    value = example_value(spec, [500, *spec["shape"][1:]], np.random.default_rng(0))
    assert value.dtype == np.dtype(spec["dtype"]) and check(value)
