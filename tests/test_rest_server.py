"""`python -m zoo serve`: TF Serving's REST API over the committed SavedModels, and bad requests that leave it
serving."""

import base64
import json
import os
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest

from zoo.core.recipes.commands import load
from zoo.core.runtime import rest_server
from zoo.core.runtime.paths import EXPORTED_DIR

pytestmark = pytest.mark.slow  # loads committed SavedModels and runs a server


@pytest.fixture(scope="module")
def server():
    server, thread = rest_server.start(["gan", "clip"], port=0)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def call(url, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_status_and_metadata_are_tf_servings(server):
    code, status = call(f"{server}/v1/models/gan")
    assert code == 200 and status["model_version_status"][0] == {
        "version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    assert call(f"{server}/v1/models/gan/versions/1")[0] == 200
    code, meta = call(f"{server}/v1/models/clip/metadata")
    defs = meta["metadata"]["signature_def"]["signature_def"]
    assert code == 200 and set(defs) >= {"serving_default", "encode_text", "encode_image"}
    assert defs["encode_image"]["inputs"]["images"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in defs["encode_image"]["inputs"]["images"]["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    assert defs["serving_default"]["inputs"]["text"]["dtype"] == "DT_STRING"


def test_row_and_columnar_predictions_equal_the_savedmodels(server):
    noise = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
    expected = load("gan", runtime="savedmodel")("serving_default", noise=noise)["images"]
    code, rows = call(f"{server}/v1/models/gan:predict", {"instances": noise.tolist()})
    assert code == 200
    np.testing.assert_allclose(np.array(rows["predictions"]), expected, atol=1e-6)
    code, columns = call(f"{server}/v1/models/gan/versions/1:predict",
                         {"signature_name": "serving_default", "inputs": {"noise": noise.tolist()}})
    assert code == 200
    np.testing.assert_allclose(np.array(columns["outputs"]), expected, atol=1e-6)
    # strings, as text and as {"b64": ...}, through CLIP's string signature
    texts = ["一个粗体的七", "a bold seven"]
    want = load("clip", runtime="savedmodel")("serving_default", text=np.array(texts, object))["embedding"]
    code, plain = call(f"{server}/v1/models/clip:predict", {"instances": texts})
    code_b64, encoded = call(f"{server}/v1/models/clip:predict", {"instances": [
        {"text": {"b64": base64.b64encode(t.encode()).decode()}} for t in texts]})
    assert code == code_b64 == 200
    np.testing.assert_allclose(np.array(plain["predictions"]), want, atol=1e-6)
    np.testing.assert_allclose(np.array(encoded["predictions"]), want, atol=1e-6)


def test_bad_requests_get_tf_servings_errors_and_the_server_keeps_serving(server):
    predict = f"{server}/v1/models/gan:predict"
    cases = [
        (None, b"{not json", 400, "JSON Parse error"),
        ({"instances": [[0.0] * 3]}, None, 400, "shape [1, 3] does not match the signature's [None, 64]"),
        ({"instances": [["a"] * 64]}, None, 400, "expected float32 values"),
        ({"signature_name": "nope", "instances": [[0.0] * 64]}, None, 400, "\"nope\" not found in signature def"),
        ({"inputs": {"noise": [[0.0] * 64]}, "instances": []}, None, 400, "Not both 'inputs' and 'instances'"),
        ({"inputs": {"seed": [1]}}, None, 400, "not in the signature"),
        ([1, 2], None, 400, "must be a JSON object"),
    ]
    for body, raw, code, message in cases:
        got, answer = call(predict, body, raw)
        assert got == code and message in answer["error"], (body, raw, answer)
    assert call(f"{server}/v1/models/nope:predict", {"instances": [1]}) == (
        404, {"error": "Servable not found for request: Latest(nope)"})
    assert call(f"{server}/v1/models/gan/versions/7")[0] == 404
    # the SavedModel's own in-graph check answers with its message
    code, answer = call(f"{server}/v1/models/clip:predict", {"signature_name": "encode_image",
                                                             "instances": [np.full((28, 28, 1), 2.0).tolist()]})
    assert code == 400 and "images must be in [0, 1]" in answer["error"]
    # a body over the limit is refused without being read
    host, port = server.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"POST /v1/models/gan:predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
                  f"{rest_server.MAX_BODY_BYTES + 1}\r\n\r\n".encode())
        assert b" 413 " in s.recv(4096).split(b"\r\n")[0] + b" "
    # a client that dies half way through its body
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /v1/models/gan:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"instances\"")
    # and every later request is answered correctly
    noise = np.zeros((1, 64), np.float32)
    code, answer = call(predict, {"instances": noise.tolist()})
    assert code == 200 and np.array(answer["predictions"]).shape == (1, 28, 28, 1)


def test_the_cli_prints_the_docker_command_and_refuses_an_unknown_model(tmp_path):
    from tests.test_core import run_cli

    result = run_cli("serve", "nope", "--print-only", "--exported-dir", str(tmp_path))
    assert result.returncode == 2 and "no exported model at" in result.stderr
    result = run_cli("serve", "gan", "--print-only", "--output", str(tmp_path / "body.json"))
    assert result.returncode == 0 and "tensorflow/serving" in result.stdout
    assert os.path.isfile(tmp_path / "body.json") and os.path.isdir(os.path.join(EXPORTED_DIR, "gan", "1"))
