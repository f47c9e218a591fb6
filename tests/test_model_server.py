"""`python -m zoo serve`: TF Serving's REST and gRPC APIs over the committed SavedModels, and bad requests that
leave it serving."""

import base64
import json
import os
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest

from zoo.core.recipes.commands import load
from zoo.core.runtime import model_server
from zoo.core.runtime.paths import EXPORTED_DIR

pytestmark = pytest.mark.slow  # loads committed SavedModels and runs a server


@pytest.fixture(scope="module")
def servers():
    running = model_server.start(["gan", "clip"], port=0, grpc_port=0)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server(servers):
    return f"http://127.0.0.1:{servers.rest_port}"


@pytest.fixture(scope="module")
def stubs(servers):
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{servers.grpc_port}")
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()


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
                  f"{model_server.MAX_BODY_BYTES + 1}\r\n\r\n".encode())
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


def test_grpc_predict_metadata_and_status_as_a_tensorflow_serving_client_calls_them(stubs):
    """The client code of TF Serving's own examples (tensorflow_serving.apis), unchanged."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

    prediction, status = stubs
    noise = np.random.default_rng(1).standard_normal((2, 64)).astype(np.float32)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "gan"
    request.model_spec.signature_name = "serving_default"
    request.inputs["noise"].CopyFrom(tf.make_tensor_proto(noise))
    response = prediction.Predict(request, timeout=60)
    expected = load("gan", runtime="savedmodel")("serving_default", noise=noise)["images"]
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["images"]), expected, atol=1e-6)
    assert response.model_spec.version.value == 1

    texts = ["一个粗体的七", "a bold seven"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "clip"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(texts))
    want = load("clip", runtime="savedmodel")("serving_default", text=np.array(texts, object))["embedding"]
    np.testing.assert_allclose(tf.make_ndarray(prediction.Predict(request, timeout=60).outputs["embedding"]), want,
                               atol=1e-6)

    meta = get_model_metadata_pb2.GetModelMetadataRequest()
    meta.model_spec.name = "clip"
    meta.metadata_field.append("signature_def")
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    prediction.GetModelMetadata(meta, timeout=60).metadata["signature_def"].Unpack(signature_map)
    assert set(signature_map.signature_def) >= {"serving_default", "encode_text", "encode_image"}
    assert signature_map.signature_def["encode_image"].inputs["images"].dtype == tf.float32.as_datatype_enum

    asked = get_model_status_pb2.GetModelStatusRequest()
    asked.model_spec.name = "gan"
    state = status.GetModelStatus(asked, timeout=60).model_version_status[0]
    assert state.version == 1 and state.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE

    # refusals: TF Serving's status codes, and the server goes on
    def refused(model, signature, inputs):
        bad = predict_pb2.PredictRequest()
        bad.model_spec.name = model
        bad.model_spec.signature_name = signature
        for name, value in inputs.items():
            bad.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        with pytest.raises(grpc.RpcError) as caught:
            prediction.Predict(bad, timeout=60)
        return caught.value.code(), caught.value.details()

    assert refused("nope", "", {"noise": noise}) == (grpc.StatusCode.NOT_FOUND,
                                                      "Servable not found for request: Latest(nope)")
    code, details = refused("gan", "generate", {"noise": noise})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "\"generate\" not found" in details
    code, details = refused("gan", "", {"noise": noise[:, :3]})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "shape [2, 3]" in details
    code, details = refused("clip", "encode_image", {"images": np.full((1, 28, 28, 1), 2.0, np.float32)})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "images must be in [0, 1]" in details
    assert prediction.Predict(request, timeout=60).outputs["embedding"].tensor_shape.dim[0].size == 2


def test_many_clients_at_once_are_all_answered(server):
    """64 clients predicting at once all get their digit (benchmarks/serving.py once saw a connection reset
    with 32; the server now keeps a listen backlog of 256 instead of http.server's 5)."""
    import threading

    answers, lock = [], threading.Lock()
    body = {"instances": np.zeros((1, 64)).tolist()}

    def client():
        try:
            got = call(f"{server}/v1/models/gan:predict", body)[0]
        except OSError as error:  # a reset connection
            got = repr(error)
        with lock:
            answers.append(got)

    threads = [threading.Thread(target=client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 64


def test_batching_answers_each_request_with_its_own_rows_and_errors():
    """``--enable-batching``: 16 concurrent requests to CLIP's ``encode_image``, one of them refused by the
    graph's own check, run as batches; every good one gets the embedding the SavedModel gives its images
    alone, the bad one its own error."""
    import threading

    clip = model_server.load_models(["clip"], batching=True)["clip"]
    clip.batcher.timeout_s = 0.05  # wide enough that the threads below surely share batches
    calls = []
    original = model_server.call_signature

    def counting(function, tensors):
        calls.append(int(next(iter(tensors.values())).shape[0]))
        return original(function, tensors)

    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 1, (1 + i % 3, 28, 28, 1)).astype(np.float32) for i in range(16)]
    images[5][0, 3, 3, 0] = 2.0  # the graph refuses the whole batch it is in: then each runs alone
    answers = [None] * 16

    def client(i):
        try:
            answers[i] = model_server.run_signature(clip, None, "encode_image", {"images": images[i]})
        except model_server.RequestError as error:
            answers[i] = error

    model_server.call_signature = counting
    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        model_server.call_signature = original
    assert isinstance(answers[5], model_server.RequestError) and "images must be in [0, 1]" in str(answers[5])
    alone = load("clip", runtime="savedmodel")
    for i, answer in enumerate(answers):
        if i != 5:
            expected = alone("encode_image", images=images[i])
            assert set(answer) == set(expected)
            for key in expected:
                np.testing.assert_allclose(answer[key], expected[key], atol=1e-5)
    assert max(calls) > 3  # requests ran together
