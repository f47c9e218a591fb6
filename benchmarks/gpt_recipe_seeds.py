"""Is the zoo's GPT recipe stable from seed to seed? The zoo's side of ``benchmarks/gpt.py`` at a fixed
iteration count (so the machine's speed does not matter), every variant at every seed.

    python -m benchmarks.gpt_recipe_seeds                       # the variants below, seeds 0-4, 1,136 steps
    python -m benchmarks.gpt_recipe_seeds --seeds 5,6 --variants "batch 24, lr 3e-3, 100 warm-up steps"

Each run is ``python -m zoo train gpt --preset nanogpt_cpu`` with the variant's batch size, peak learning rate
and warm-up (its own process, as ``benchmarks/gpt.py`` runs it), scored by the shared protocol's scorer
(``benchmarks/gpt_protocol.py``, the whole validation split) at 8 evenly spaced points. Reported per variant:
the validation loss at each point for every seed, its mean and spread at the end, and each run's largest
training-loss spike (a step's loss above the median of the 5 steps before it), which is how an unstable
recipe shows before its validation loss does. Writes ``benchmarks/results/gpt_recipe_seeds.json``.
"""

import argparse
import json
import os
import sys

import numpy as np

from zoo.core.runtime.paths import REPO_ROOT
from benchmarks import gpt

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "gpt_recipe_seeds.json")
VARIANTS = {  # (their order names their runs' files: add new ones at the end)
    # the zoo's recipe in benchmarks/gpt.py until 2026-12-07: the zoo's default warm-up, 2% of the run (22 steps)
    "batch 24, lr 3e-3, warm-up 2% (22 steps)": {"batch_size": 24, "learning_rate": 3e-3, "warmup_steps": None},
    # the zoo's recipe since
    "batch 24, lr 3e-3, 100 warm-up steps": gpt.ZOO_RECIPES["zoo, zoo's recipe"],
    "batch 24, lr 2e-3, 100 warm-up steps": {"batch_size": 24, "learning_rate": 2e-3, "warmup_steps": 100},
}


def largest_spike(losses, window=5, first=5):
    """``(rise, step)``: the largest rise of one step's loss above the median of the ``window`` steps
    before it, from step ``first`` on (the warm-up's steps included: that is where a too-fast one shows)."""
    losses = np.asarray(losses, float)
    rises = [losses[i] - np.median(losses[max(0, i - window):i]) for i in range(first, len(losses))]
    if not rises:
        return None, None
    step = int(np.argmax(rises))
    return round(float(rises[step]), 4), step + first


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default=";".join(VARIANTS), help="names of VARIANTS, separated by semicolons")
    parser.add_argument("--seeds", type=lambda text: [int(s) for s in text.split(",")], default=[0, 1, 2, 3, 4])
    parser.add_argument("--iterations", type=int, default=1136,
                        help="steps per run (default: the zoo's recipe's plan in the committed race)")
    parser.add_argument("--work-dir", default=os.path.join("runs", "benchmark-gpt-seeds"))
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args()
    names = [name.strip() for name in args.variants.split(";")]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    os.makedirs(args.work_dir, exist_ok=True)
    results = {"iterations": args.iterations, "seeds": args.seeds, "variants": {}}
    if os.path.isfile(args.output):
        with open(args.output) as f:
            previous = json.load(f)
        if previous.get("iterations") == args.iterations:
            results["variants"] = previous.get("variants", {})  # other variants measured before stay
    for name in names:
        options = VARIANTS[name]
        runs = []
        for seed in args.seeds:
            # one file per variant, iteration count and seed: a study stopped half way reuses the runs it has
            output = os.path.abspath(os.path.join(args.work_dir, f"{list(VARIANTS).index(name)}-{args.iterations}-"
                                                                 f"{seed}.json"))
            if os.path.isfile(output):
                with open(output) as f:
                    run = json.load(f)
            else:
                run = gpt.run_side(gpt.zoo_command(args.work_dir, name, args.iterations, seed, output, options), output)
            losses = [point["loss"] for point in run["checkpoints"]]
            spike, step = largest_spike(run["training_losses"])
            runs.append({"seed": seed, "validation_losses": losses, "side": run["side"],
                         "training_seconds": run["training_seconds"],
                         "largest_training_spike": spike, "spike_step": step,
                         "training_loss_first_100_steps": round(float(np.mean(run["training_losses"][:100])), 4)})
            print(f"{name}, seed {seed}: validation {losses}, largest spike {spike} at step {step}", flush=True)
        finals = np.array([run["validation_losses"][-1] for run in runs])
        results["variants"][name] = {"options": options, "runs": runs, "final_mean": round(float(finals.mean()), 4),
                                     "final_std": round(float(finals.std(ddof=1)) if len(finals) > 1 else 0.0, 4),
                                     "final_range": [float(finals.min()), float(finals.max())]}
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)
    print("| variant | final validation loss per seed | mean ± std | largest training-loss spike per seed (step) |")
    print("|---|---|---|---|")
    for name, row in results["variants"].items():
        finals = ", ".join(f"{run['validation_losses'][-1]:.3f}" for run in row["runs"])
        spikes = ", ".join(f"{run['largest_training_spike']:.2f} ({run['spike_step']})" for run in row["runs"])
        print(f"| {name} | {finals} | {row['final_mean']:.3f} ± {row['final_std']:.3f} | {spikes} |")


if __name__ == "__main__":
    main()
