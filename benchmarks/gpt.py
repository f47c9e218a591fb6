"""The GPT against nanoGPT's CPU recipe on this machine, and generation speed with and without the cache.

    python benchmarks/gpt.py --torch-python /path/to/python-with-torch       # about 10 minutes on 2 cores
    python benchmarks/gpt.py --nanogpt-dir ~/nanoGPT                         # the real nanoGPT instead
    python benchmarks/gpt.py --skip-training                                 # generation speed only

1. nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, context 64, batch 12, 2000 iterations;
   ``benchmarks/nanogpt_recipe.py``, or nanoGPT's own ``train.py`` with ``--nanogpt-dir``):
   its wall-clock time T, from process start to its last validation estimate.
2. The zoo's ``python -m zoo train gpt --preset nanogpt_cpu`` (the same network size) with the
   settings below, stopped when its process has run for T seconds.
3. Both scored on the same validation protocol: the last 10% of tiny Shakespeare as
   non-overlapping 64-byte windows, every position predicted, nats per byte (the text is
   ASCII, so nanoGPT's characters are bytes).
4. Generation speed of the exported model (``exported/gpt``): bytes per second through
   ``prefill`` + ``decode_step`` (the cache), through ``logits`` on the whole prefix at every
   step (no cache), and through the in-graph ``generate``, for TFLite float32 and the SavedModel.

Writes ``benchmarks/results/gpt.json``; ``zoo/gpt/README.md`` quotes it.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

START = time.time()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.core.paths import EXPORTED_DIR, REPO_ROOT  # noqa: E402

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "gpt.json")
OURS = {"preset": "nanogpt_cpu",  # nanoGPT's network size; the zoo's recipe: larger batches, a higher peak rate
        "batch_size": int(os.environ.get("ZOO_BENCH_BATCH_SIZE", 24)),
        "learning_rate": float(os.environ.get("ZOO_BENCH_LEARNING_RATE", 3e-3))}
NANOGPT_FLAGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
                 "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
                 "--n_embd=128", "--max_iters=2000", "--lr_decay_iters=2000", "--dropout=0.0"]


def shakespeare_path():
    from zoo.core.data import DATA_DIR_ENV, data_dir

    root = data_dir()
    path = os.path.join(root or "", "tinyshakespeare", "input.txt")
    if not root or not os.path.isfile(path):
        sys.exit(f"set {DATA_DIR_ENV} to a folder with tinyshakespeare/input.txt")
    return path


def run_recipe(torch_python, work):
    output = os.path.join(work, "nanogpt.json")
    subprocess.run([torch_python, os.path.join(REPO_ROOT, "benchmarks", "nanogpt_recipe.py"), "--data",
                    shakespeare_path(), "--output", output], check=True)
    with open(output) as f:
        return json.load(f)


def run_nanogpt(nanogpt_dir, python):
    """nanoGPT's own train.py (its data prepared from the local copy of tiny Shakespeare)."""
    data = os.path.join(nanogpt_dir, "data", "shakespeare_char")
    if not os.path.isfile(os.path.join(data, "input.txt")):
        import shutil

        shutil.copy(shakespeare_path(), os.path.join(data, "input.txt"))
    subprocess.run([python, "prepare.py"], cwd=data, check=True)
    start = time.time()
    result = subprocess.run([python, "train.py", *NANOGPT_FLAGS], cwd=nanogpt_dir, capture_output=True, text=True,
                            check=True)
    wall = time.time() - start
    losses = re.findall(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", result.stdout)
    return {"recipe": "nanoGPT train.py " + " ".join(NANOGPT_FLAGS), "wall_seconds": round(wall, 1),
            "iterations": 2000, "tokens_per_iteration": 768, "training_tokens_per_second": round(2000 * 768 / wall, 1),
            "final_val_estimate": float(losses[-1][2]), "val_loss_shared_protocol": None}


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


def measure_step_seconds(steps=8):
    import tensorflow as tf

    from zoo.gpt.model import GPT, PRESETS
    from zoo.gpt.recipe import adamw_with_warmup

    model = GPT(**PRESETS[OURS["preset"]], seed=0)
    adamw_with_warmup(model, {"learning_rate": 1e-3, "warmup_steps": 10, "decay_steps": 100})
    tokens = tf.zeros([OURS["batch_size"], model.context_length], tf.int32)
    step = tf.function(model.train_step)
    for _ in range(3):
        step((tokens, tokens))
    start = time.perf_counter()
    for _ in range(steps):
        loss = step((tokens, tokens))["loss"]
    float(loss)
    return (time.perf_counter() - start) / steps


def train_ours(budget, run_dir, output):
    """Runs in its own process (``--train-ours``), so its clock starts as nanoGPT's does."""
    from zoo.core import commands
    from zoo.core.artifacts import ModelRunner
    from zoo.core.data import tiny_shakespeare, window_starts
    from zoo.core.registry import get_recipe
    from zoo.gpt.model import PRESETS
    from zoo.gpt.recipe import validation_loss

    steps_per_epoch = len(window_starts(len(tiny_shakespeare("train")), PRESETS[OURS["preset"]]["context_length"])) \
        // OURS["batch_size"]
    # the learning-rate schedule should end about when the budget does: epochs from a step
    # time measured here (inside the budget: this process's clock is already running)
    step_seconds = measure_step_seconds()
    epochs = max(1, round((budget - (time.time() - START)) / (1.15 * step_seconds) / steps_per_epoch))
    state = commands.train("gpt", **OURS, epochs=epochs, run_dir=run_dir, fresh=True, callbacks=[StopAfter(budget)],
                           samples=False, verbose=2)
    wall = time.time() - START
    model, _, _ = commands.load_run("gpt", run_dir)
    validation = validation_loss(ModelRunner(get_recipe("gpt"), model), tiny_shakespeare("validation"), 64)
    result = {"recipe": f"python -m zoo train gpt --preset {OURS['preset']} --batch-size {OURS['batch_size']} "
                        f"--learning-rate {OURS['learning_rate']} --epochs {epochs}, stopped at {budget:.0f} s",
              "wall_seconds": round(wall, 1), "iterations": state["step"],
              "tokens_per_iteration": OURS["batch_size"] * 64,
              "training_tokens_per_second": round(state["step"] * OURS["batch_size"] * 64 / wall, 1),
              "training_seconds_in_loop": round(state["training_seconds"], 1),
              "val_loss_shared_protocol": validation["validation_loss"]}
    with open(output, "w") as f:
        json.dump(result, f, indent=2)


def generation_speed(exported_dir, new_bytes=None, repeats=3):
    """Bytes per second of greedy generation after a 6-byte prompt, for each way of running the model."""
    from zoo.core.artifacts import load_exported
    from zoo.gpt import tflite_generate
    from zoo.core.litert_text import RunnerDecoder
    from zoo.gpt.recipe import context_length_of

    results = {}
    prompt = list(b"ROMEO:")
    for runtime in ("tflite", "savedmodel"):
        runner = load_exported("gpt", runtime=runtime, exported_dir=exported_dir)
        context = context_length_of(runner)
        count = new_bytes or context - len(prompt)

        def with_cache():
            return tflite_generate.generate_bytes(RunnerDecoder(runner, context), prompt, count, slide=False)

        def without_cache():
            text = list(prompt)
            for _ in range(count):
                logits = runner("logits", tokens=np.asarray([text], np.int32))["logits"]
                text.append(int(np.argmax(logits[0, -1])))
            return bytes(text[len(prompt):])

        def in_graph():
            noise = np.zeros((1, context), np.float32)
            out = runner("generate", tokens=np.asarray([prompt], np.int32), lengths=np.array([len(prompt)], np.int32),
                         max_new_tokens=np.array([count], np.int32), temperature=np.zeros(1, np.float32),
                         top_k=np.zeros(1, np.int32), top_p=np.ones(1, np.float32), noise=noise)
            return bytes(out["tokens"][0, :count].astype(np.uint8))

        outputs = {}
        for name, fn in (("with_cache", with_cache), ("without_cache", without_cache), ("in_graph_generate", in_graph)):
            fn()  # warm-up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                outputs[name] = fn()
                times.append(time.perf_counter() - start)
            results[f"{runtime}_{name}_bytes_per_second"] = round(count / min(times), 1)
        assert len(set(outputs.values())) == 1, "the three ways must produce the same greedy bytes"
        results[f"{runtime}_bytes_generated"] = count
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch-python", default=sys.executable, help="a Python with torch, for the recipe")
    parser.add_argument("--nanogpt-dir", default=None, help="a nanoGPT checkout: run its own train.py")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--exported-dir", default=EXPORTED_DIR)
    parser.add_argument("--work-dir", default=os.path.join("runs", "benchmark-gpt"))
    parser.add_argument("--output", default=RESULTS, help=f"results JSON (default {os.path.relpath(RESULTS)})")
    parser.add_argument("--train-ours", nargs=2, metavar=("BUDGET", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_ours:
        train_ours(float(args.train_ours[0]), os.path.join(args.work_dir, "zoo"), args.train_ours[1])
        return
    os.makedirs(args.work_dir, exist_ok=True)
    results = {}
    if os.path.isfile(args.output):  # --skip-training keeps the training comparison already measured
        with open(args.output) as f:
            results = json.load(f)
    if not args.skip_training:
        nano = run_nanogpt(args.nanogpt_dir, args.torch_python) if args.nanogpt_dir else \
            run_recipe(args.torch_python, args.work_dir)
        output = os.path.join(args.work_dir, "zoo.json")
        subprocess.run([sys.executable, "-m", "benchmarks.gpt", "--work-dir", args.work_dir, "--train-ours",
                        str(nano["wall_seconds"]), output], check=True, cwd=REPO_ROOT,
                       env={**os.environ, "PYTHONPATH": REPO_ROOT})
        with open(output) as f:
            ours = json.load(f)
        results["training"] = {"nanogpt": nano, "zoo": ours,
                               "zoo_lower_val_loss_in_the_same_time":
                                   ours["val_loss_shared_protocol"] < (nano["val_loss_shared_protocol"]
                                                                      or nano["final_val_estimate"])}
    results["generation"] = generation_speed(args.exported_dir)
    import platform

    results["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps({k: v for k, v in results.items()}, indent=2)[:4000])


if __name__ == "__main__":
    main()
