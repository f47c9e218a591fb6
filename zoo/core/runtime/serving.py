"""TF Serving helper: the docker command and a REST request body for an exported model.

    python -m zoo serve dcgan
"""

import json
import os

import numpy as np

from zoo.core.runtime import utf8
from zoo.core.runtime.runners import read_manifest, resolve_model_dir
from zoo.core.runtime.errors import BadInputError

def example_value(spec, shape, rng):
    """An array of ``shape`` the input ``spec`` (a manifest entry) accepts: inside its ``range`` when it has
    one (uniform between finite bounds, kept a thousandth of the span inside them so a 3-decimal REST body
    stays inside; the lower bound for integers, or the value above it where that bound is the row's padding),
    else standard-normal floats and zero integers."""
    low, high = spec.get("range", (None, None))
    if "allowed" in spec:  # the low end of the first interval: a rest for a melody, 0 (fill) for a 0/1 mask
        return np.full(shape, spec["allowed"][0][0], spec["dtype"])
    if spec["dtype"].startswith("float"):
        if low is not None and high is not None:
            margin = (high - low) / 1000
            return rng.uniform(low + margin, high - margin, shape).astype(spec["dtype"])
        values = rng.standard_normal(shape)
        if low is not None:
            values = low + 0.001 + np.abs(values)
        elif high is not None:
            values = high - 0.001 - np.abs(values)
        return values.astype(spec["dtype"])
    if spec["dtype"].startswith("int"):
        value = low if low is not None else (min(0, high) if high is not None else 0)
        if value == spec.get("padding"):  # a row of padding is empty: the next value up is an entry
            value += 1
        return np.full(shape, value, spec["dtype"])
    raise BadInputError(f"no example for an input of dtype {spec['dtype']}")


def example_inputs(signature, batch=1, seed=0):
    """Arrays that fit ``signature`` (a manifest entry) and that it accepts: its ``example`` row repeated if
    it has one, else :func:`example_value` from the input's dtype and range."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, spec in signature["inputs"].items():
        shape = [batch if d is None else d for d in spec["shape"]]
        if name in signature.get("example", {}) and spec.get("encoding") == utf8.ENCODING:
            inputs[name] = utf8.encode_texts([signature["example"][name]] * batch, shape[-1])
        elif name in signature.get("example", {}):
            dtype = object if spec["dtype"] == "string" else spec["dtype"]
            inputs[name] = np.array([signature["example"][name]] * batch, dtype=dtype).reshape(shape)
        else:
            inputs[name] = example_value(spec, shape, rng)
    return inputs


def _json_value(value):
    # 3 decimals keep the request body short; TF Serving casts to the signature's dtype
    if value.dtype.kind == "f":
        return np.round(value.astype(np.float64), 3).tolist()
    return [v.decode("utf-8") if isinstance(v, bytes) else v for v in value.tolist()]


def rest_request(manifest, signature="serving_default", seed=0):
    """The JSON body of a TF Serving REST ``:predict`` call (columnar ``inputs`` format)."""
    if signature not in manifest["signatures"]:
        raise BadInputError(f"unknown signature {signature!r}; this model has {sorted(manifest['signatures'])}")
    inputs = example_inputs(manifest["signatures"][signature], seed=seed)
    return {"signature_name": signature, "inputs": {name: _json_value(v) for name, v in inputs.items()}}


def serving_instructions(name, exported_dir=None, port=8501, signature="serving_default"):
    """What to type to serve ``name`` with TF Serving and query it, as text."""
    model_dir = resolve_model_dir(name, exported_dir) if exported_dir else resolve_model_dir(name)
    manifest = read_manifest(model_dir)
    body = rest_request(manifest, signature)
    spec = manifest["signatures"][signature]
    described = "\n".join(
        f"  {kind[:-1]} {n}: {s['dtype']} [{', '.join('batch' if d is None else str(d) for d in s['shape'])}]"
        f" - {s['meaning']}"
        for kind in ("inputs", "outputs") for n, s in spec[kind].items())
    return (
        f"# Serve {name} (SavedModel version {manifest['savedmodel']['path']} under {model_dir}):\n"
        f"docker run --rm -p {port}:8501 -v \"{os.path.abspath(model_dir)}:/models/{name}\" "
        f"-e MODEL_NAME={name} tensorflow/serving\n\n"
        f"# Signature {signature}:\n{described}\n\n"
        f"# Query it (body written to {name}_request.json):\n"
        f"curl -s -X POST -d @{name}_request.json http://localhost:{port}/v1/models/{name}:predict\n",
        body,
    )


def serve(name, *, exported_dir=None, port=8501, signature="serving_default", output=None):
    text, body = serving_instructions(name, exported_dir, port, signature)
    output = output or f"{name}_request.json"
    with open(output, "w") as f:
        json.dump(body, f)
    print(text.replace(f"{name}_request.json", output))
    return output
