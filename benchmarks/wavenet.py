"""How fast the WaveNet speaks on this CPU: real-time factor in LiteRT, and where the time goes.

    python -m benchmarks.wavenet                      # the committed export
    python -m benchmarks.wavenet --exported-dir /tmp/exports --repeats 1
    python -m benchmarks.wavenet --temperatures 0.6,0.8,1.0 --run-dir runs/wavenet   # the sampling study first

Real-time factor (RTF) = seconds of compute per second of audio (below 1: faster than
real time). Measured on each TFLite variant's in-graph loop (``serving_default``: one
``invoke`` makes whole clips) at batch 1 and 16 with 1 and 2 LiteRT threads, and on the
app's loop (``zoo/wavenet/tflite_sample.py``: 8,000 ``step`` calls from Python) at batch 1.
A batch of 16 clips is 16 seconds of audio: its RTF is per second of audio, so it shows
what batching buys a server. Where the time goes: the ``condition`` call (once per clip)
against the 8,000 steps, and one ``step`` call's time against the arithmetic it does.

With ``--temperatures``, first the sampling temperature study: the trained run (Keras, in
memory) speaks the evaluation's 300 clips at each temperature, scored by the spoken-digit
classifier; the export bakes in the temperature chosen from it (``--temperature``).

Writes ``benchmarks/results/wavenet.json``; the model card and BENCHMARKS.md quote it, and
``--record-in-manifest`` copies its real-time factors (no new measurement) into
``exported/wavenet/manifest.json`` as ``speed``.
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.core.runtime.paths import EXPORTED_DIR, REPO_ROOT  # noqa: E402
from benchmarks.timing import best_time  # noqa: E402

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "wavenet.json")
SECONDS_PER_CLIP = 1.0


def in_graph_rtf(path, manifest, batch, threads, repeats):
    from zoo.core.runtime.runners import TFLiteModel

    runner = TFLiteModel(path, manifest, num_threads=threads)
    rng = np.random.default_rng(0)
    inputs = {"digit": (np.arange(batch) % 10).astype(np.int32), "speaker": (np.arange(batch) % 6).astype(np.int32),
              "noise": rng.random((batch, 8000), dtype=np.float32)}
    # one untimed call first: XNNPACK's first-call setup
    return round(best_time(lambda: runner("serving_default", **inputs), repeats) / (batch * SECONDS_PER_CLIP), 3)


def app_loop(folder, threads, repeats):
    from zoo.wavenet import tflite_sample

    app = tflite_sample.TFLiteWaveNet(os.path.join(folder, "wavenet.tflite"), num_threads=threads)
    total = best_time(lambda: app.speak([7], ["jackson"]), repeats)
    condition = best_time(lambda: app.condition_runner(digit=np.array([7], np.int32),
                                                       speaker=np.array([1], np.int32)), 20, warmup=0)
    conditioning = app.condition_runner(digit=np.array([7], np.int32), speaker=np.array([1], np.int32))["conditioning"]
    state = np.zeros((1, app.state_size), np.float32)
    zero = np.zeros(1, np.float32)
    calls = 2000
    start = time.perf_counter()
    for _ in range(calls):
        app.step_runner(conditioning=conditioning[:, 0], sample=zero, noise=zero + 0.5, state=state)
    step = (time.perf_counter() - start) / calls
    return {"rtf_batch1": round(total / SECONDS_PER_CLIP, 3), "condition_ms": round(condition * 1e3, 3),
            "step_us": round(step * 1e6, 1), "steps_alone_seconds": round(8000 * step, 3)}


def temperature_study(run_dir, temperatures):
    import tensorflow as tf

    from zoo.core.recipes import commands
    from zoo.core.metrics.spoken_digits import SpokenDigitQuality, evaluation_requests
    from zoo.wavenet.recipe import EVAL_SEED

    model, _, state = commands.load_run("wavenet", run_dir)
    quality = SpokenDigitQuality()
    digits, speakers = evaluation_requests(5, model.num_speakers)
    noise = np.random.default_rng(EVAL_SEED).random((len(digits), 8000), dtype=np.float32)
    study = {"run_step": state["step"], "protocol": "Keras in memory, 5 clips of every digit in every voice, noise "
                                                    f"from seed {EVAL_SEED}", "temperatures": {}}
    for temperature in temperatures:
        model.temperature = temperature
        generate = tf.function(model.generate)  # traced anew: the temperature is a constant of the graph
        start = time.perf_counter()
        clips = np.concatenate([generate(digits[i : i + 60], speakers[i : i + 60], noise[i : i + 60]).numpy()
                                for i in range(0, len(digits), 60)])
        metrics = quality.evaluate(clips, digits, speakers)
        study["temperatures"][f"{temperature:g}"] = metrics
        print(f"temperature {temperature:g}: {metrics} ({time.perf_counter() - start:.0f} s)", flush=True)
    return study


def operator_counts(path):
    """Operators per signature in the TFLite file (each is one dispatch per call)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(path)
    return {sig.signatureKey.decode(): len(model.subgraphs[sig.subgraphIndex].operators) for sig in model.signatureDefs}


def record_in_manifest(results, folder):
    """The manifest's ``speed`` entry: the real-time factors measured by this script, with how and where."""
    from zoo.core.runtime.files import write_json

    path = os.path.join(folder, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    manifest["speed"] = {
        "command": "python -m benchmarks.wavenet", "machine": results["machine"], "date": results["date"],
        "definition": "real-time factor: seconds of compute per second of audio in LiteRT, best of "
                      f"{results['repeats']} (below 1 is faster than real time)",
        "serving_default": results["in_graph"], "app_loop_float32_threads1": results["app_loop_float32_threads1"],
        "step_operators": results["operators"]["step"], "step_multiply_adds": results["step_multiply_adds"]}
    write_json(path, manifest)
    print(f"wrote the real-time factors of {results['date']} into {path}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exported-dir", default=EXPORTED_DIR)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=RESULTS)
    parser.add_argument("--record-in-manifest", action="store_true",
                        help="copy the real-time factors of --output into the export's manifest and stop")
    parser.add_argument("--temperatures", default=None, help="comma-separated sampling temperatures to study first")
    parser.add_argument("--run-dir", default=os.path.join(REPO_ROOT, "runs", "wavenet"),
                        help="the training run the temperature study loads (default runs/wavenet)")
    args = parser.parse_args()
    previous = {}
    if os.path.isfile(args.output):
        with open(args.output) as f:
            previous = json.load(f)
    if args.record_in_manifest:
        return record_in_manifest(previous, os.path.join(args.exported_dir, "wavenet"))
    if args.temperatures:
        previous["temperature_study"] = temperature_study(args.run_dir, [float(t) for t in args.temperatures.split(",")])
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump(previous, f, indent=2)
        if not os.path.isfile(os.path.join(args.exported_dir, "wavenet", "manifest.json")):
            return 0
    from zoo.core.runtime.runners import read_manifest

    folder = os.path.join(args.exported_dir, "wavenet")
    manifest = read_manifest(folder)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
               "repeats": args.repeats, "in_graph": {},
               **({"temperature_study": previous["temperature_study"]} if "temperature_study" in previous else {})}
    for variant, entry in manifest["tflite"].items():
        path = os.path.join(folder, entry["path"])
        for batch in (1, 16):
            for threads in (1, 2):
                key = f"{variant}_batch{batch}_threads{threads}"
                results["in_graph"][key] = in_graph_rtf(path, manifest, batch, threads, args.repeats)
                print(f"{key}: RTF {results['in_graph'][key]}", flush=True)
    results["app_loop_float32_threads1"] = app_loop(folder, 1, args.repeats)
    print("app loop:", results["app_loop_float32_threads1"])
    multiply_adds = manifest["step_multiply_adds"]
    step_us = results["app_loop_float32_threads1"]["step_us"]
    results["step_multiply_adds"] = multiply_adds
    results["operators"] = operator_counts(os.path.join(folder, "wavenet.tflite"))
    results["step_gflops_achieved"] = round(2 * multiply_adds / (step_us * 1e-6) / 1e9, 2)
    print(f"one step: {multiply_adds:,} multiply-adds in {results['operators']['step']} operators, {step_us} us = "
          f"{results['step_gflops_achieved']} GFLOP/s")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
