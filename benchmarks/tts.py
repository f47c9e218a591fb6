"""How fast the TTS model speaks on this CPU: real-time factor in LiteRT, and how soon an app starts playing.

    python -m benchmarks.tts                          # the committed export
    python -m benchmarks.tts --exported-dir /tmp/exports --repeats 1

Real-time factor (RTF) = seconds of compute per second of audio (below 1: faster than real time), at batch 1,
on one string of each length 1-7 (seed 12345, speaker jackson):

- the in-graph loop (``serving_default``: one ``invoke`` makes the whole utterance) of each TFLite variant,
  with 1 LiteRT thread and with every core;
- the app's loop (``zoo/tts/tflite_speak.py``: one ``mel`` call, then one ``step`` per sample from Python),
  float32, 1 thread, and its time to first sound: from the call to the first 10 ms frame out, what a
  listener waits for.

Writes ``benchmarks/results/tts.json``; the model card and BENCHMARKS.md quote it.
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

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "tts.json")
SEED = 12345


def requests():
    rng = np.random.default_rng(SEED)
    rows = []
    for length in range(1, 8):
        row = np.full(8, -1, np.int32)
        row[:length] = rng.integers(0, 10, length)
        rows.append((row, rng.random(64000, dtype=np.float32)))
    return rows


def in_graph_rtf(folder, manifest, variant, threads, repeats):
    from zoo.core.runtime.runners import TFLiteModel

    runner = TFLiteModel(os.path.join(folder, manifest["tflite"][variant]["path"]), manifest, num_threads=threads)
    compute = audio = 0.0
    for row, noise in requests():
        call = lambda: runner("serving_default", digits=row[None], speaker=np.array([1], np.int32),  # noqa: E731
                              noise=noise[None])
        out = call()  # untimed first call: XNNPACK's setup
        best = min(_timed(call) for _ in range(repeats))
        compute += best
        audio += out["boundaries"].max() / 8000
    return round(compute / audio, 3), round(audio, 2)


def _timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def app_loop(folder, threads):
    from zoo.tts import tflite_speak

    app = tflite_speak.TFLiteSpeech(os.path.join(folder, "tts.tflite"), num_threads=threads)
    compute = audio = 0.0
    first_frames = []
    for row, noise in requests():
        digits = [int(d) for d in row if d >= 0]
        app.speak(digits, "jackson", noise=noise)  # warm
        start = time.perf_counter()
        first = []
        said, _ = app.speak(digits, "jackson", noise=noise,
                            on_frame=lambda frame: first or first.append(time.perf_counter() - start))
        compute += time.perf_counter() - start
        audio += len(said) / 8000
        first_frames.append(first[0])
    mel_call = min(_timed(lambda: app.spectrogram("5550123", "jackson")) for _ in range(20))
    return {"real_time_factor": round(compute / audio, 3), "seconds_to_first_sound_median": round(float(
        np.median(first_frames)), 4), "mel_call_seconds": round(mel_call, 4)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exported-dir", default=EXPORTED_DIR)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    folder = os.path.join(args.exported_dir, "tts")
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    cores = os.cpu_count()
    results = {"machine": f"{platform.machine()}, {cores} cores ({platform.processor() or 'cpu'})",
               "command": "python -m benchmarks.tts " + " ".join(argv if argv is not None else sys.argv[1:]),
               "in_graph": {}}
    for variant in ("float32", "float16", "int8"):
        for threads in (1, cores):
            rtf, seconds = in_graph_rtf(folder, manifest, variant, threads, args.repeats)
            results["in_graph"][f"{variant}, {threads} thread{'s' if threads > 1 else ''}"] = rtf
            print(f"serving_default {variant:8s} {threads} thread(s): RTF {rtf} ({seconds} s of audio)")
    results["app_loop_float32_1_thread"] = app_loop(folder, 1)
    print("app loop (float32, 1 thread):", results["app_loop_float32_1_thread"])
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
