"""`python -m zoo serve` under load: 1, 8 and 32 concurrent clients over REST and gRPC, and its memory.

    python -m benchmarks.serving              # writes benchmarks/results/serving.json
    python -m benchmarks.serving --quick      # a smoke run: few requests

The server runs in its own process (``python -m zoo serve gan diffusion``), as a user starts it; the clients
are threads of this process, each sending one request after another, batch 1 (the TF Serving client examples
of the README: ``urllib`` JSON rows for REST, ``tensorflow_serving.apis`` ``Predict`` for gRPC). Two models:
the GAN (small: a 64-number noise row to a digit, one matrix chain) and the diffusion model's
``serving_default`` (large: 50 DDIM steps, 100 U-Net evaluations a request). For each: requests per second,
p50 and p99 latency, and errors (any answer that is not a digit of the right shape); the diffusion rows again
with ``--enable-batching`` (concurrent requests run as one batch). Then 10,000 GAN
requests over REST, 8 clients, with the server's resident memory (VmRSS) before and after. Client and server
share the machine's cores, as they would on one serving host.
"""

import argparse
import datetime
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np

from zoo.core.export import machine_description as machine  # noqa: E402
from zoo.core.runtime.paths import REPO_ROOT

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "serving.json")
MODELS = {"gan": {"signature": "serving_default", "inputs": lambda rng: {"noise": rng.standard_normal((1, 64))}},
          "diffusion": {"signature": "serving_default",
                        "inputs": lambda rng: {"noise": rng.standard_normal((1, 28, 28, 1)), "labels": np.array([7]),
                                               "guidance": np.array([2.0])}}}
DTYPES = {"noise": np.float32, "labels": np.int32, "guidance": np.float32}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resident_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return round(next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024, 1)


class Server:
    """``python -m zoo serve`` in a child process, waited for until it answers."""

    def __init__(self, models, batching=False):
        self.rest_port, self.grpc_port = free_port(), free_port()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO_ROOT}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zoo", "serve", *models, "--port", str(self.rest_port), "--grpc-port",
             str(self.grpc_port), *(["--enable-batching"] if batching else [])], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}/v1/models/{models[0]}", timeout=5).read()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("the server stopped: " + self.process.stdout.read()[-2000:])
                time.sleep(1)
        raise RuntimeError("the server did not answer within 300 s")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


def rest_client(port, name):
    url = f"http://127.0.0.1:{port}/v1/models/{name}:predict"

    def send(inputs):
        body = json.dumps({"signature_name": MODELS[name]["signature"],
                           "inputs": {k: v.tolist() for k, v in inputs.items()}}).encode()
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=600) as answer:
            return np.asarray(json.loads(answer.read())["outputs"], np.float32)

    return send


def grpc_client(port, name):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

    def send(inputs):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.model_spec.signature_name = MODELS[name]["signature"]
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value.astype(DTYPES[key])))
        answer = stub.Predict(request, timeout=600)
        return tf.make_ndarray(answer.outputs["images"])

    return send


def load(send, clients, requests, name, seed=0):
    """``requests`` calls of ``send`` spread over ``clients`` threads: throughput, latency percentiles, errors."""
    latencies, errors, lock = [], [], threading.Lock()
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]

    def client(i):
        rng = np.random.default_rng([seed, i])
        for _ in range(per_client[i]):
            inputs = {k: v.astype(DTYPES[k]) for k, v in MODELS[name]["inputs"](rng).items()}
            began = time.perf_counter()
            try:
                images = send(inputs)
                ok = images.shape == (1, 28, 28, 1) and np.all(np.isfinite(images))
            except Exception as error:  # noqa: BLE001 (every failure is counted, whatever its kind)
                ok, images = False, error
            with lock:
                latencies.append(time.perf_counter() - began)
                if not ok:
                    errors.append(repr(images)[:200])

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    return {"clients": clients, "requests": requests, "requests_per_second": round(requests / seconds, 2),
            "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
            "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 1),
            "errors": len(errors), **({"first_error": errors[0]} if errors else {})}


def markdown(results):
    """BENCHMARKS.md's table of a results file."""
    lines = ["| model | protocol | batching | clients | requests | requests/s | p50 ms | p99 ms | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in results["load"]:
        lines.append(f"| {row['model']} | {row['protocol']} | {'on' if row.get('batching') else 'off'} | "
                     f"{row['clients']} | {row['requests']} | {row['requests_per_second']} | {row['p50_ms']} | "
                     f"{row['p99_ms']} | {row['errors']} |")
    memory = results.get("memory")
    if memory:
        lines.append("")
        lines.append(f"Memory: {memory['requests']:,} {memory['model']} requests over {memory['protocol']} "
                     f"({memory['clients']} clients, {memory['requests_per_second']} requests/s, "
                     f"{memory['errors']} errors): server resident memory {memory['rss_mb_before']} MB before, "
                     f"{memory['rss_mb_after']} MB after.")
    lines.append(f"\n({results['machine']}, {results['date']}, `{results['command']}`)")
    return "\n".join(lines)


def batching_rows(counts):
    """The large model again with ``--enable-batching`` (concurrent requests share U-Net evaluations), after
    one warm-up request per protocol as for the rows without it."""
    rows = []
    server = Server(["diffusion"], batching=True)
    try:
        for protocol, make in (("rest", lambda: rest_client(server.rest_port, "diffusion")),
                               ("grpc", lambda: grpc_client(server.grpc_port, "diffusion"))):
            send = make()
            send({k: v.astype(DTYPES[k]) for k, v in MODELS["diffusion"]["inputs"](np.random.default_rng(0)).items()})
            for clients, requests in counts["diffusion"].items():
                row = {"model": "diffusion", "protocol": protocol, "batching": True,
                       **load(send, clients, requests, "diffusion")}
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        server.stop()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few requests: a smoke run")
    parser.add_argument("--output", default=RESULTS)
    parser.add_argument("--table", action="store_true", help="print the Markdown table of --output and stop")
    parser.add_argument("--batching-only", action="store_true",
                        help="measure only the batching rows again, replacing them in --output")
    args = parser.parse_args(argv)
    if args.table:
        print(markdown(json.load(open(args.output))))
        return None
    counts = {"gan": {1: 200, 8: 800, 32: 1600}, "diffusion": {1: 8, 8: 24, 32: 64}}
    memory_requests = 10_000
    if args.quick:
        counts = {"gan": {1: 5, 8: 16, 32: 32}, "diffusion": {1: 1, 8: 8, 32: 32}}
        memory_requests = 200
    if args.batching_only:
        results = json.load(open(args.output))
        results["load"] = [r for r in results["load"] if not r.get("batching")] + batching_rows(counts)
        results["batching_rows_measured"] = datetime.date.today().isoformat()
        write(results, args.output)
        return results
    server = Server(list(MODELS))
    results = {"machine": machine(), "date": datetime.date.today().isoformat(),
               "command": "python -m benchmarks.serving" + (" --quick" if args.quick else ""), "load": []}
    try:
        for name in MODELS:
            for protocol, make in (("rest", lambda: rest_client(server.rest_port, name)),
                                   ("grpc", lambda: grpc_client(server.grpc_port, name))):
                send = make()
                send({k: v.astype(DTYPES[k]) for k, v in MODELS[name]["inputs"](np.random.default_rng(0)).items()})
                for clients, requests in counts[name].items():
                    row = {"model": name, "protocol": protocol, **load(send, clients, requests, name)}
                    print(json.dumps(row), flush=True)
                    results["load"].append(row)
        before = resident_mb(server.process.pid)
        row = load(rest_client(server.rest_port, "gan"), 8, memory_requests, "gan", seed=1)
        after = resident_mb(server.process.pid)
        results["memory"] = {"requests": memory_requests, "protocol": "rest", "model": "gan", "clients": 8,
                             "rss_mb_before": before, "rss_mb_after": after, "errors": row["errors"],
                             "requests_per_second": row["requests_per_second"]}
        print(json.dumps(results["memory"]), flush=True)
    finally:
        server.stop()
    results["load"] += batching_rows(counts)
    write(results, args.output)
    return results


def write(results, path):
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
