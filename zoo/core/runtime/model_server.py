"""A local server that speaks TF Serving's REST and gRPC APIs over the exported SavedModels.

    python -m zoo serve gan diffusion            # REST on :8501, gRPC PredictionService on :8500

The routes, request formats and answers are TF Serving's (https://www.tensorflow.org/tfx/serving/api_rest), so a
client written for TF Serving runs unchanged against it, and the same ``exported/NAME/<version>/`` folders are
what ``docker run tensorflow/serving`` serves:

- ``GET /v1/models/NAME[/versions/V]``: the version's status;
- ``GET /v1/models/NAME[/versions/V]/metadata``: the SignatureDefs (inputs, outputs, dtypes, shapes);
- ``POST /v1/models/NAME[/versions/V]:predict``: ``{"signature_name": ..., "instances": [...]}`` (row format: a
  dict of named inputs per row, or the bare value where the signature has one input) answered with
  ``{"predictions": [...]}``, or ``{"inputs": ...}`` (columnar) answered with ``{"outputs": ...}``; bytes as
  ``{"b64": "..."}``.

gRPC: ``tensorflow.serving.PredictionService``'s ``Predict`` and ``GetModelMetadata`` and ``ModelService``'s
``GetModelStatus``, with the ``tensorflow-serving-api`` protos, so a client written with
``tensorflow_serving.apis`` runs unchanged.

Bad requests get TF Serving's answer: HTTP 400 (404 for an unknown model) with ``{"error": "..."}``, gRPC
INVALID_ARGUMENT (NOT_FOUND), and the server goes on serving. Every file is checked against the manifest's sha256 before a model is loaded.
"""

import base64
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from zoo.core.runtime.errors import BadInputError, ZooError
from zoo.core.runtime.runners import assertion_message, read_manifest, resolve_model_dir

MAX_BODY_BYTES = 64 * 1024 * 1024
ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<rest>/metadata|:predict)?$")


class RequestError(ZooError):
    """A request TF Serving would refuse: ``status`` is the HTTP code."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


class ServedModel:
    """Every numbered version of one exported model, loaded with ``tf.saved_model.load``."""

    def __init__(self, name, model_dir):
        import tensorflow as tf

        manifest = read_manifest(model_dir)  # sha256 of every file, before anything is loaded
        self.name, self.manifest = name, manifest
        versions = sorted(int(d) for d in os.listdir(model_dir)
                          if d.isdigit() and os.path.isfile(os.path.join(model_dir, d, "saved_model.pb")))
        if not versions:
            raise ZooError(f"{model_dir} has no SavedModel version folder (e.g. 1/saved_model.pb)")
        self.versions = {v: tf.saved_model.load(os.path.join(model_dir, str(v))) for v in versions}
        self.model_dir = model_dir
        self.batcher = None  # a Batcher: concurrent requests to one signature run as one batch

    def signature_defs(self, version):
        """The version's SignatureDefs as protos (what gRPC's GetModelMetadata returns), from saved_model.pb."""
        from tensorflow.core.protobuf import saved_model_pb2

        number, _ = self.loaded(version)
        saved_model = saved_model_pb2.SavedModel()
        with open(os.path.join(self.model_dir, str(number), "saved_model.pb"), "rb") as f:
            saved_model.ParseFromString(f.read())
        return number, saved_model.meta_graphs[0].signature_def

    def loaded(self, version):
        if version is None:
            return max(self.versions), self.versions[max(self.versions)]
        if int(version) not in self.versions:
            raise RequestError(f"Servable not found for request: Specific({self.name}, {version})", 404)
        return int(version), self.versions[int(version)]

    def signature(self, version, name):
        number, loaded = self.loaded(version)
        name = name or "serving_default"
        if name not in loaded.signatures:
            raise RequestError(f"Serving signature name: \"{name}\" not found in signature def")
        return number, loaded.signatures[name]


def metadata(model, version):
    """REST's metadata: the same SignatureDefs gRPC's GetModelMetadata sends (saved_model.pb's), as JSON."""
    from google.protobuf import json_format

    number, defs = model.signature_defs(version)
    return {"model_spec": {"name": model.name, "signature_name": "", "version": str(number)},
            "metadata": {"signature_def": {"signature_def": {
                name: json_format.MessageToDict(value, preserving_proto_field_name=True)
                for name, value in defs.items()}}}}


def status(model, version):
    number, _ = model.loaded(version)
    return {"model_version_status": [{"version": str(number), "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}}]}


def _decoded(value):
    """JSON -> Python values: ``{"b64": ...}`` objects become bytes."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError):
            raise RequestError("a {\"b64\": ...} value is not valid base64") from None
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def _tensor(name, value, spec):
    import tensorflow as tf

    value = _decoded(value)
    try:
        if spec.dtype == tf.string:
            array = np.array(value, dtype=object)
            array = np.vectorize(lambda v: v if isinstance(v, bytes) else str(v).encode("utf-8"),
                                 otypes=[object])(array) if array.size else array
        else:
            array = np.array(value)
            if array.dtype == object or array.dtype.kind in "US":
                raise ValueError
            if spec.dtype.is_integer and array.dtype.kind == "f" and not np.all(array == np.round(array)):
                raise ValueError
            array = array.astype(spec.dtype.as_numpy_dtype)
    except (ValueError, TypeError, OverflowError):
        raise RequestError(f"Failed to process element: 0 key: {name} of 'inputs' field: expected "
                           f"{spec.dtype.name} values in a rectangular list") from None
    if not spec.shape.is_compatible_with(array.shape):
        raise RequestError(f"input {name}: shape {list(array.shape)} does not match the signature's "
                           f"{spec.shape.as_list()}")
    return tf.constant(array, dtype=spec.dtype)


def _jsonable(array):
    if array.dtype == object:
        def text(v):
            try:
                return v.decode("utf-8")
            except UnicodeDecodeError:
                return {"b64": base64.b64encode(v).decode("ascii")}
        return np.vectorize(text, otypes=[object])(array).tolist() if array.size else []
    return array.tolist()


def run_signature(model, version, signature_name, columns):
    """One signature on named inputs (nested lists or arrays) -> ``{output: array}``; :class:`RequestError`
    where TF Serving would refuse the request."""
    _, function = model.signature(version, signature_name)
    _, specs = function.structured_input_signature
    unknown, missing = set(columns) - set(specs), set(specs) - set(columns)
    if unknown or missing:
        raise RequestError(f"inputs {sorted(unknown)} are not in the signature and {sorted(missing)} are missing; "
                           f"it takes {sorted(specs)}" if unknown else f"missing inputs {sorted(missing)}")
    tensors = {name: _tensor(name, value, specs[name]) for name, value in columns.items()}
    if model.batcher is not None and all(spec.shape.rank and spec.shape[0] is None for spec in specs.values()):
        number, _ = model.loaded(version)
        return model.batcher.run((number, signature_name or "serving_default"), function, tensors)
    return call_signature(function, tensors)


def call_signature(function, tensors):
    """``function(**tensors)`` as arrays; its in-graph checks' failures as :class:`RequestError`."""
    import tensorflow as tf

    try:
        return {k: v.numpy() for k, v in function(**tensors).items()}
    except tf.errors.InvalidArgumentError as error:  # the signature's in-graph checks: their own message
        raise RequestError(assertion_message(error)) from None
    except (ValueError, TypeError) as error:
        raise RequestError(str(error).strip().splitlines()[0]) from None


class Batcher:
    """TF Serving's ``--enable_batching``: requests that reach one signature within ``timeout_s`` of each other
    run as one batch of at most ``max_batch_size`` rows, and each gets its own rows back.

    The first request of a batch waits ``timeout_s`` for others, then runs all that arrived (rows concatenated
    along the batch axis). Requests whose inputs cannot be stacked (another text length), and every request
    of a batch that one bad request made fail, run alone, so each gets its own answer or error. Only
    signatures whose every input has a batch dimension are batched; rows never affect each other in the
    zoo's signatures, so a row's answer is the one it gets alone (to float rounding).
    """

    def __init__(self, max_batch_size=32, timeout_s=0.002):
        self.max_batch_size, self.timeout_s = int(max_batch_size), float(timeout_s)
        self.lock = threading.Lock()
        self.waiting = {}  # (version, signature) -> requests that arrived since its batch's first

    def run(self, key, function, tensors):
        import time

        request = {"tensors": tensors, "rows": int(next(iter(tensors.values())).shape[0]),
                   "done": threading.Event()}
        with self.lock:
            queue = self.waiting.setdefault(key, [])
            queue.append(request)
            first = len(queue) == 1
        if first:
            time.sleep(self.timeout_s)
            with self.lock:
                batch = self.waiting.pop(key)
            self._run_batches(function, batch)
        request["done"].wait()
        if "error" in request:
            raise request["error"]
        return request["outputs"]

    def _run_batches(self, function, requests):
        group, rows = [], 0
        for request in requests:
            if group and rows + request["rows"] > self.max_batch_size:
                self._run_together(function, group)
                group, rows = [], 0
            group.append(request)
            rows += request["rows"]
        if group:
            self._run_together(function, group)

    def _run_together(self, function, group):
        import tensorflow as tf

        try:
            if len(group) == 1:
                raise ValueError("alone")
            stacked = {name: tf.concat([r["tensors"][name] for r in group], axis=0) for name in group[0]["tensors"]}
            outputs = call_signature(function, stacked)
            sizes = [r["rows"] for r in group]
            if any(len(v) != sum(sizes) for v in outputs.values()):
                raise ValueError("an output without the batch's rows")
            starts = np.cumsum([0] + sizes)
            for request, start, end in zip(group, starts[:-1], starts[1:]):
                request["outputs"] = {k: v[start:end] for k, v in outputs.items()}
                request["done"].set()
        except (ValueError, RequestError, tf.errors.InvalidArgumentError):
            for request in group:  # alone: each gets its own answer or error
                try:
                    request["outputs"] = call_signature(function, request["tensors"])
                except RequestError as error:
                    request["error"] = error
                request["done"].set()


def predict(model, version, body):
    """TF Serving's REST ``:predict`` on one loaded model: the request body -> the answer body."""
    if not isinstance(body, dict):
        raise RequestError("JSON Value: the request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise RequestError("Missing 'inputs' or 'instances' key" if "instances" not in body
                           else "Not both 'inputs' and 'instances' can be specified")
    _, function = model.signature(version, body.get("signature_name"))
    _, specs = function.structured_input_signature
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise RequestError("'instances' must be a non-empty list")
        if all(isinstance(r, dict) and not set(r) == {"b64"} for r in rows):
            keys = set(rows[0])
            if any(set(r) != keys for r in rows):
                raise RequestError("every instance must have the same named inputs")
            columns = {k: [r[k] for r in rows] for k in keys}
        elif len(specs) == 1:
            columns = {next(iter(specs)): rows}
        else:
            raise RequestError(f"this signature has {len(specs)} inputs ({sorted(specs)}): give each instance as "
                               "an object of named inputs")
    else:
        inputs = body["inputs"]
        columns = inputs if isinstance(inputs, dict) and not set(inputs) == {"b64"} else (
            {next(iter(specs)): inputs} if len(specs) == 1 else None)
        if columns is None:
            raise RequestError(f"this signature has {len(specs)} inputs ({sorted(specs)}): give 'inputs' as an "
                               "object of named inputs")
    outputs = run_signature(model, version, body.get("signature_name"), columns)
    if "instances" in body:
        if len(outputs) == 1:
            return {"predictions": _jsonable(next(iter(outputs.values())))}
        batch = len(next(iter(outputs.values())))
        return {"predictions": [{k: _jsonable(v[i]) if v.ndim > 1 else _jsonable(v[i:i + 1])[0]
                                 for k, v in outputs.items()} for i in range(batch)]}
    if len(outputs) == 1:
        return {"outputs": _jsonable(next(iter(outputs.values())))}
    return {"outputs": {k: _jsonable(v) for k, v in outputs.items()}}


def make_handler(models):
    class Handler(BaseHTTPRequestHandler):
        server_version = "zoo-tf-serving-rest/1"
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # quiet: one line per request would drown the console
            pass

        def _answer(self, code, body):
            data = json.dumps(body).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self):
            match = ROUTE.match(self.path.split("?")[0])
            if not match:
                raise RequestError(f"Malformed request: {self.command} {self.path}", 404)
            name = match["name"]
            if name not in models:
                raise RequestError(f"Servable not found for request: Latest({name})", 404)
            return models[name], match["version"], match["rest"]

        def do_GET(self):  # noqa: N802 (http.server's name)
            try:
                model, version, rest = self._route()
                if rest == ":predict":
                    raise RequestError("predict takes POST", 405)
                self._answer(200, metadata(model, version) if rest == "/metadata" else status(model, version))
            except RequestError as error:
                self._answer(error.status, {"error": str(error)})

        def do_POST(self):  # noqa: N802
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self.close_connection = True  # the body is not read
                    raise RequestError(f"request body of {length} bytes is over the {MAX_BODY_BYTES}-byte limit", 413)
                raw = self.rfile.read(length)
                model, version, rest = self._route()
                if rest != ":predict":
                    raise RequestError(f"Malformed request: POST {self.path} (only :predict takes POST)", 404)
                try:
                    body = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as error:
                    raise RequestError(f"JSON Parse error: {error}") from None
                self._answer(200, predict(model, version, body))
            except RequestError as error:
                self._answer(error.status, {"error": str(error)})
            except Exception as error:  # noqa: BLE001 (a bug answers 500 and the server goes on)
                self._answer(500, {"error": f"{type(error).__name__}: {error}"})

    return Handler


def grpc_servicers(models):
    """TF Serving's gRPC ``PredictionService`` (Predict, GetModelMetadata) and ``ModelService``
    (GetModelStatus) over ``models``."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                         predict_pb2, prediction_service_pb2_grpc)

    def found(request, context):
        name = request.model_spec.name
        if name not in models:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})")
        version = request.model_spec.version.value if request.model_spec.HasField("version") else None
        return models[name], version

    def answered(context, work):
        try:
            return work()
        except RequestError as error:
            context.abort(grpc.StatusCode.NOT_FOUND if error.status == 404 else grpc.StatusCode.INVALID_ARGUMENT,
                          str(error))

    class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802 (the proto's name)
            model, version = found(request, context)

            def work():
                try:
                    columns = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                except (TypeError, ValueError) as error:
                    raise RequestError(f"cannot read an input tensor: {error}") from None
                outputs = run_signature(model, version, request.model_spec.signature_name or None, columns)
                number, _ = model.loaded(version)
                response = predict_pb2.PredictResponse()
                response.model_spec.name = model.name
                response.model_spec.version.value = number
                response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
                for name, value in outputs.items():
                    response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
                return response

            return answered(context, work)

        def GetModelMetadata(self, request, context):  # noqa: N802
            model, version = found(request, context)

            def work():
                if list(request.metadata_field) != ["signature_def"]:
                    raise RequestError("Metadata field signature_def is the one supported")
                number, defs = model.signature_defs(version)
                response = get_model_metadata_pb2.GetModelMetadataResponse()
                response.model_spec.name = model.name
                response.model_spec.version.value = number
                signature_map = get_model_metadata_pb2.SignatureDefMap()
                for key, value in defs.items():
                    signature_map.signature_def[key].CopyFrom(value)
                response.metadata["signature_def"].Pack(signature_map)
                return response

            return answered(context, work)

    class Status(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):  # noqa: N802
            model, version = found(request, context)

            def work():
                number, _ = model.loaded(version)
                response = get_model_status_pb2.GetModelStatusResponse()
                entry = response.model_version_status.add()
                entry.version = number
                entry.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
                return response

            return answered(context, work)

    return Prediction(), Status()


def start_grpc(models, port=8500, host="127.0.0.1", workers=8):
    """A started gRPC server and its port (0 picks a free one)."""
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_receive_message_length", MAX_BODY_BYTES),
                                  ("grpc.max_send_message_length", MAX_BODY_BYTES)])
    prediction, status_service = grpc_servicers(models)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(prediction, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(status_service, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise BadInputError(f"cannot listen for gRPC on {host}:{port} (another server there? --grpc-port)")
    server.start()
    return server, bound


def load_models(names, exported_dir=None, batching=False):
    """The models to serve by name; ``batching``: each gets a :class:`Batcher`."""
    from zoo.core.runtime.paths import EXPORTED_DIR

    models = {}
    for name in names:
        model_dir = resolve_model_dir(name, exported_dir or EXPORTED_DIR)
        key = os.path.basename(os.path.normpath(model_dir))
        models[key] = ServedModel(key, model_dir)
        models[key].batcher = Batcher() if batching else None
    return models


class RestServer(ThreadingHTTPServer):
    """A thread per connection, and room for many waiting ones (http.server's default listen backlog is 5;
    benchmarks/serving.py's 32 clients once saw a connection reset with it)."""

    request_queue_size = 256
    daemon_threads = True


class Servers:
    """The running REST and gRPC servers: ``rest_port``, ``grpc_port`` (None when off), ``stop()``."""

    def __init__(self, models, port=8501, grpc_port=8500, host="127.0.0.1"):
        try:
            self.rest = RestServer((host, port), make_handler(models))
        except OSError as error:
            raise BadInputError(f"cannot listen on {host}:{port}: {error.strerror} (another server there? --port)") \
                from None
        self.thread = threading.Thread(target=self.rest.serve_forever, daemon=True)
        self.thread.start()
        self.rest_port = self.rest.server_address[1]
        self.grpc, self.grpc_port = (None, None) if grpc_port is None else start_grpc(models, grpc_port, host)

    def stop(self):
        self.rest.shutdown()
        if self.grpc is not None:
            self.grpc.stop(grace=None)


def start(names, port=8501, grpc_port=8500, host="127.0.0.1", exported_dir=None, batching=False):
    """Load the models and serve them in background threads (port 0: a free port; ``grpc_port=None``: REST
    only; ``batching``: concurrent requests batched, :class:`Batcher`): a :class:`Servers`."""
    return Servers(load_models(names, exported_dir, batching), port, grpc_port, host)


def serve_forever(names, port=8501, grpc_port=8500, host="127.0.0.1", exported_dir=None, batching=False):
    servers = start(names, port, grpc_port, host, exported_dir, batching)
    print(f"Serving {', '.join(names)} with TF Serving's APIs: REST on http://{host}:{servers.rest_port}"
          f"/v1/models/NAME" + (f", gRPC on {host}:{servers.grpc_port}" if servers.grpc_port else "")
          + " (Ctrl-C stops)", flush=True)
    try:
        servers.thread.join()
    except KeyboardInterrupt:
        servers.stop()
