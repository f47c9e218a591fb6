"""The character LSTM side by side with the zoo's GPT on this CPU: loss at equal training time, generation
speed at batch 1 in LiteRT, and generation memory.

    python -m benchmarks.charrnn                         # all three (2 x --budget-minutes of training first)
    python -m benchmarks.charrnn --skip-training         # speed and memory of the committed models only

1. Equal training time: ``python -m zoo train gpt`` and ``python -m zoo train charrnn`` (each its committed
   recipe and preset) in their own processes, one after the other, each stopped when its process has run
   ``--budget-minutes``; the learning-rate schedules are sized to the budget from a step time measured
   first. Each is then scored on its own validation protocol on the last 10% of tiny Shakespeare, and the
   LSTM also on the GPT's (non-overlapping 128-byte windows from a zero state), so the two numbers compare.
2. Generation speed of the committed exports at batch 1, greedy, after the prompt "ROMEO:", in LiteRT
   float32 with 2 threads for both: the GPT through prefill + decode_step (``zoo/gpt/tflite_generate.py``, which re-prefills half its 128-byte
   context each time it fills), the LSTM through ``step`` (``zoo/charrnn/tflite_generate.py``), for 100
   and for 2,000 new bytes.
3. Memory a generation holds besides the weights: the LSTM's state against the GPT's key/value cache,
   from the signatures' shapes (float32).

Writes ``benchmarks/results/charrnn.json``; ``zoo/charrnn/README.md`` and BENCHMARKS.md quote it.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

START = time.time()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.core.runtime.paths import EXPORTED_DIR, REPO_ROOT  # noqa: E402
from benchmarks.timing import best_time  # noqa: E402

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "charrnn.json")
PROMPT = b"ROMEO:"


def generation_speed(exported_dir, lengths=(100, 2000), repeats=3, threads=2):
    """Bytes per second of greedy generation at batch 1 in LiteRT float32, for each model's app loop."""
    from zoo.charrnn import tflite_generate as rnn_app
    from zoo.gpt import tflite_generate as gpt_app

    apps = {"charrnn": (rnn_app.TFLiteCharRNN(os.path.join(exported_dir, "charrnn", "charrnn.tflite"), threads),
                        lambda app, n: rnn_app.generate_bytes(app, PROMPT, n)),
            "gpt": (gpt_app.TFLiteGPT(os.path.join(exported_dir, "gpt", "gpt.tflite"), threads),
                    lambda app, n: gpt_app.generate_bytes(app, PROMPT, n, slide=True))}
    results = {}
    for name, (app, generate) in apps.items():
        generate(app, 20)  # warm-up
        for count in lengths:
            seconds = best_time(lambda: generate(app, count), repeats, warmup=0)
            results[f"{name}_{count}_bytes_per_second"] = round(count / seconds, 1)
    results["protocol"] = (f"greedy, prompt {PROMPT.decode()!r}, batch 1, LiteRT float32 with {threads} threads, "
                           f"best of {repeats}; the GPT slides (re-prefills the last 64 bytes) each time its 128-byte "
                           "context fills")
    return results


def generation_memory(exported_dir):
    from zoo.core.runtime.runners import read_manifest

    rnn = read_manifest(os.path.join(exported_dir, "charrnn"))["signatures"]["step"]["inputs"]["state"]["shape"]
    gpt = read_manifest(os.path.join(exported_dir, "gpt"))["signatures"]["decode_step"]["inputs"]["cache"]["shape"]
    return {"charrnn_state_bytes": int(np.prod(rnn[1:])) * 4, "charrnn_state_shape": rnn,
            "gpt_cache_bytes": int(np.prod(gpt[1:])) * 4, "gpt_cache_shape": gpt,
            "note": "per text being generated (batch row), float32; the LSTM's never grows, the GPT's is fixed "
                    "by its 128-byte context"}


class StopAfter:
    """Ends the run (with a checkpoint) once this process has run ``seconds``."""

    def __init__(self, seconds):
        self.deadline = START + seconds
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_train_batch_end(self, batch, logs):
        if time.time() >= self.deadline:
            self.model.stop_training = True


def measure_step_seconds(recipe, model, batch_size, data, steps=3):
    import tensorflow as tf

    config = {"learning_rate": 1e-3, "warmup_steps": 10, "decay_steps": 100, "epochs": 1}
    recipe.compile(model, config)
    batch = next(iter(data.dataset_fn(0)))
    step = tf.function(model.train_step)
    step(batch)
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(batch)["loss"]
    float(loss)
    return (time.perf_counter() - start) / steps


def train_one(name, budget, run_dir, output):
    """Runs in its own process (``--train``), so each model's clock starts at its process start."""
    from zoo.core.recipes import commands
    from zoo.core.data import datasets as data
    from zoo.core.runtime.runners import ModelRunner
    from zoo.core.recipes.registry import get_recipe

    recipe = get_recipe(name)
    model = recipe.create_model(recipe.train_default("preset"), 0)
    training = commands.training_data(recipe, model, batch_size=recipe.train_default("batch_size"), seed=0, limit=None)
    steps_per_epoch = int(training.dataset_fn(0).cardinality())
    step_seconds = measure_step_seconds(recipe, model, recipe.train_default("batch_size"), training)
    epochs = max(1, round((budget - (time.time() - START)) / (1.1 * step_seconds) / steps_per_epoch))
    state = commands.train(name, epochs=epochs, run_dir=run_dir, fresh=True, callbacks=[StopAfter(budget)],
                           samples=False, verbose=2)
    wall = time.time() - START
    trained, _, _ = commands.load_run(name, run_dir)
    runner = ModelRunner(recipe, trained)
    validation = data.tiny_shakespeare("validation")
    result = {"command": f"python -m zoo train {name} --epochs {epochs}, stopped at {budget:.0f} s",
              "wall_seconds": round(wall, 1), "steps": state["step"], "epochs_planned": epochs,
              "windowed_128_validation_loss": windowed_loss(trained, name, validation)}
    if name == "charrnn":
        from zoo.charrnn.recipe import stream_loss

        result["streamed_validation_loss"] = stream_loss(runner, validation, progress=False)["validation_loss"]
    with open(output, "w") as f:
        json.dump(result, f, indent=2)


def windowed_loss(model, name, validation, window=128):
    """The GPT's protocol: non-overlapping 128-byte windows, each byte predicted from its window only."""
    import tensorflow as tf

    from zoo.core.data.datasets import window_starts

    starts = window_starts(len(validation), window, shuffle=False)
    windows = validation[starts[:, None] + np.arange(window + 1)[None, :]].astype(np.int32)
    total = 0.0
    for i in range(0, len(windows), 64):
        chunk = windows[i : i + 64]
        logits = model(chunk[:, :-1])  # both models' call: logits of every position from the window alone
        total += float(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(chunk[:, 1:], logits)))
    return round(total / windows[:, 1:].size, 4)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=float, default=20.0, help="training time per model (default 20)")
    parser.add_argument("--skip-training", action="store_true", help="speed and memory of the committed models only")
    parser.add_argument("--exported-dir", default=EXPORTED_DIR)
    parser.add_argument("--output", default=RESULTS)
    parser.add_argument("--train", help=argparse.SUPPRESS)  # internal: train this model in this process
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        train_one(args.train, args.budget_minutes * 60, args.run_dir, args.output)
        return 0
    results = {}
    if os.path.isfile(args.output):
        with open(args.output) as f:
            results = json.load(f)
    if not args.skip_training:
        import tempfile

        work = tempfile.mkdtemp(prefix="charrnn-bench-")
        trained = {}
        for name in ("gpt", "charrnn"):
            output = os.path.join(work, f"{name}.json")
            subprocess.run([sys.executable, "-m", "benchmarks.charrnn", "--train", name, "--budget-minutes", str(args.budget_minutes),
                            "--run-dir", os.path.join(work, name), "--output", output], check=True, cwd=REPO_ROOT)
            with open(output) as f:
                trained[name] = json.load(f)
        results["equal_training_time"] = {"budget_minutes": args.budget_minutes, **trained}
    results["generation"] = generation_speed(args.exported_dir)
    results["memory"] = generation_memory(args.exported_dir)
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
