"""What makes the one training loop faster, model by model: XLA, and what the input pipeline costs.

    python -m benchmarks.training_speed                  # every model, about 15 minutes on 2 cores
    python -m benchmarks.training_speed --models gpt,dcgan --steps 20

For each registered model, at its default preset and batch size, the training step the loop
runs (``zoo.core.training.trainer.distributed_step``, the model's ``train_step`` under the default
strategy), examples per second (median of ``--repeats`` timings of ``--steps`` steps each, after
tracing and warm-up), three ways:

- ``loop``: as ``python -m zoo train`` runs it, fed by the recipe's ``tf.data`` pipeline;
- ``xla``: the same with ``--jit-compile`` (the step compiled with XLA);
- ``step_only``: one batch taken from the pipeline and fed again every step, so the
  difference from ``loop`` is what the input pipeline costs the loop.

Writes ``benchmarks/results/training_speed.json``; BENCHMARKS.md quotes it.
"""

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from zoo.core.recipes.commands import training_config, training_data  # noqa: E402
from zoo.core.runtime.paths import REPO_ROOT  # noqa: E402
from zoo.core.recipes.registry import get_recipe, model_names  # noqa: E402

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "training_speed.json")
WAYS = ("loop", "xla", "step_only")


def prepared_model(name, steps, seed=0):
    """``(model, data, batch_size)``: the default preset compiled as a run compiles it, optimizers built,
    its training data limited to what ``steps`` timed steps and warm-up read."""
    from zoo.core.training.trainer import build_optimizers, plan_steps, set_seed, steps_per_epoch

    recipe = get_recipe(name)
    set_seed(seed)
    batch_size = recipe.train_default("batch_size")
    model = recipe.create_model(recipe.train_default("preset"), seed=seed)
    data = training_data(recipe, model, batch_size=batch_size, seed=seed, limit=batch_size * (steps + 4))
    epochs, total_steps = plan_steps(steps_per_epoch(data.dataset_fn), 1)
    recipe.compile(model, {"learning_rate": recipe.train_default("learning_rate"), **data.config,
                           **training_config(recipe, model, data, epochs=epochs, total_steps=total_steps)})
    build_optimizers(model)
    return model, data, batch_size


def examples_per_second(name, way, steps, repeats):
    """Median examples/s of the loop's step over ``repeats`` timings of ``steps`` steps."""
    import tensorflow as tf

    from zoo.core.training.trainer import distributed_step

    model, data, batch_size = prepared_model(name, steps * repeats)
    step = distributed_step(model, tf.distribute.get_strategy(), "train_step", jit_compile=(way == "xla"))
    batches = iter(data.dataset_fn(0))
    fixed = next(batches)
    feed = (lambda: fixed) if way == "step_only" else (lambda: next(batches))
    for _ in range(2):  # trace (XLA: compile) and warm up
        logs = step(feed())
    float(next(iter(logs.values())))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            logs = step(feed())
        float(next(iter(logs.values())))  # wait for the last step
        rates.append(steps * batch_size / (time.perf_counter() - start))
    return round(statistics.median(rates), 1), batch_size


def markdown(results):
    """The table BENCHMARKS.md quotes."""
    lines = ["| model (preset, batch) | loop, examples/s | with XLA (`--jit-compile`) | step alone (no input "
             "pipeline) | input pipeline's share of the loop |", "|---|---|---|---|---|"]
    for name, row in results["models"].items():
        xla = (f"{row['xla']:,.0f} (x{row['xla_speedup']:.2f})" if row.get("xla")
               else f"fails: {row.get('xla_error', '?')[:80]}")
        lines.append(f"| {name} ({row['preset']}, {row['batch_size']}) | {row['loop']:,.0f} | {xla} | "
                     f"{row['step_only']:,.0f} | {row['input_pipeline_share']:.0%} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None, help="comma-separated (default: every registered model)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=RESULTS)
    parser.add_argument("--markdown", action="store_true", help="print the results' table and exit")
    args = parser.parse_args()
    if args.markdown:
        with open(args.output) as f:
            print(markdown(json.load(f)))
        return
    names = args.models.split(",") if args.models else model_names()
    results = {}
    if os.path.isfile(args.output):
        with open(args.output) as f:
            results = json.load(f).get("models", {})
    started = time.time()
    for name in names:
        row = {}
        for way in WAYS:
            try:
                row[way], row["batch_size"] = examples_per_second(name, way, args.steps, args.repeats)
            except Exception as error:  # XLA cannot compile some ops; that is a result too
                row[way] = None
                row[f"{way}_error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
        if row.get("xla"):
            row["xla_speedup"] = round(row["xla"] / row["loop"], 2)
        row["input_pipeline_share"] = round(max(0.0, 1 - row["loop"] / row["step_only"]), 3)
        row["preset"] = get_recipe(name).train_default("preset")
        results[name] = row
        print(name, json.dumps(row), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"machine": f"{platform.machine()}, {os.cpu_count()} cores", "steps": args.steps,
                   "repeats": args.repeats, "command": "python -m benchmarks.training_speed"
                   + (f" --models {args.models}" if args.models else ""),
                   "minutes": round((time.time() - started) / 60, 1), "models": results}, f, indent=2)


if __name__ == "__main__":
    main()
