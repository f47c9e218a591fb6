"""Fine-tuning the Shakespeare GPT to Python source: LoRA against full fine-tuning against training from scratch.

    python -m benchmarks.finetune                           # 200 steps each, batch 32 (about 15 minutes here)
    python -m benchmarks.finetune --steps 50 --batch-size 8 # a quick look

The data needs no download: the ``.py`` modules at the top of the running interpreter's standard library,
sorted by name; every tenth is held out (those that fit, whole, in 100 kB), so the validation text is
whole modules the training never sees. The training text is the other modules, cut to nine times the held-out bytes, so the
recipe's 90/10 split of the one file falls exactly between them. Then, each through ``zoo.finetune`` /
``zoo.train`` with the same batches (seed 0):

- the base model (exported/gpt) on the held-out modules, untouched;
- LoRA (rank 4 on every dense kernel, the embedding and layer norms in full: the GPT's ``lora_trains_in_full``),
  ``--steps`` steps from the base, at ``zoo.finetune``'s learning rate for adapters;
- full fine-tuning, the same steps from the base;
- the same network from random weights, the same steps, and again for as long as the slower fine-tune took
  (equal time).

Each run's validation loss (nats per byte on the held-out modules, ``val_loss`` of the run), trainable
parameters, training seconds, and a greedy continuation of a Python prompt before and after. Writes
``benchmarks/results/finetune.json``.
"""

import argparse
import datetime
import glob
import json
import os
import sysconfig
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import zoo  # noqa: E402
from zoo.core.export import machine_description as machine  # noqa: E402
from zoo.core.runtime.paths import EXPORTED_DIR, REPO_ROOT  # noqa: E402

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "finetune.json")
PROMPT = "def read_config(path):\n    "


def python_corpus(folder, held_out_every=10, held_out_bytes=100_000):
    """``(text file, train modules, held-out modules)``: the standard library's top-level modules, the held-out
    ones (of every tenth, the whole modules that fit in ``held_out_bytes``: each export scores them in five runtimes) last
    and making up exactly the file's last 10%."""
    modules = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))
    held_out, size = [], 0
    for module in modules[::held_out_every]:
        if size + os.path.getsize(module) <= held_out_bytes:
            held_out.append(module)
            size += os.path.getsize(module)
    train = [m for m in modules if m not in modules[::held_out_every]]
    read = lambda paths: b"".join(open(p, "rb").read() for p in paths)  # noqa: E731
    validation = read(held_out)
    training = read(train)[: 9 * len(validation)]
    path = os.path.join(folder, "stdlib.py.txt")
    with open(path, "wb") as f:
        f.write(training + validation)
    assert int(len(training + validation) * 0.9) == len(training)  # the recipe's cut: train | held out
    return path, [os.path.basename(m) for m in train], [os.path.basename(m) for m in held_out]


def continuation(folder, prompt=PROMPT, num_bytes=200):
    """Sampled, not greedy: greedy decoding of Python source collapses into indentation (every fine-tuned model
    continued the prompt with 160 spaces)."""
    from zoo.gpt.recipe import generate_text

    return generate_text(zoo.load(folder, runtime="tflite"), prompt, max_new_tokens=num_bytes, temperature=0.8,
                         top_p=0.95, seed=0)


FOLDERS = {"base": None, "lora": "lora", "full": "full", "scratch_equal_steps": "scratch",
           "scratch_equal_time": "scratch-time"}


def resample(work):
    """Only the samples again, from the exports a run left in ``work`` (the numbers are kept)."""
    with open(RESULTS) as f:
        record = json.load(f)
    for name, folder in FOLDERS.items():
        path = os.path.join(EXPORTED_DIR, "gpt") if folder is None else os.path.join(work, folder)
        if folder is not None and not os.path.isfile(os.path.join(path, "manifest.json")):
            path = os.path.join(path, "gpt")  # zoo.export writes <output_dir>/gpt
        record["results"][name]["sample"] = continuation(path)
    record["samples"] = "temperature 0.8, top_p 0.95, seed 0, 200 bytes, LiteRT float32"
    with open(RESULTS, "w") as f:
        json.dump(record, f, indent=2)
    for name, r in record["results"].items():
        print(f"=== {name}\n{PROMPT}{r['sample']}\n")


def run_summary(folder):
    with open(os.path.join(folder, "manifest.json")) as f:
        training = json.load(f)["training"]
    return {"validation_loss": round(training["final_losses"]["val_loss"], 4),
            "validation_loss_before": round(training.get("losses_before_training", {}).get("val_loss", float("nan")), 4),
            "training_seconds": training["training_seconds"], "steps": training["steps"],
            "trainable_parameters": training["config"].get("lora", {}).get("trainable_parameters"),
            "trained_in_full": training["config"].get("lora", {}).get("trained_in_full"),
            "learning_rate": training["config"]["learning_rate"],
            "tflite_bytes": os.path.getsize(os.path.join(folder, "gpt.tflite"))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lora-rank", type=int, default=4)
    parser.add_argument("--work-dir", default=None, help="where the runs and exports go (default: a temporary one)")
    parser.add_argument("--resample", action="store_true", help="only draw the samples again from --work-dir's "
                                                                  "exports")
    args = parser.parse_args(argv)
    if args.resample:
        return resample(args.work_dir)
    work = args.work_dir or tempfile.mkdtemp(prefix="zoo-finetune-")
    os.makedirs(work, exist_ok=True)
    data, train_modules, held_out = python_corpus(work)
    base = os.path.join(EXPORTED_DIR, "gpt")
    base_model = zoo.load(base, runtime="keras").model
    parameters = base_model.count_params()
    common = dict(data=data, base=base, steps=args.steps, batch_size=args.batch_size, seed=0, verbose=0)
    results = {"base": {"trainable_parameters": 0, "sample": continuation(base)}}

    lora_dir = zoo.finetune("gpt", output=os.path.join(work, "lora"), lora_rank=args.lora_rank, **common)
    results["lora"] = {**run_summary(lora_dir), "sample": continuation(lora_dir)}
    results["base"]["validation_loss"] = results["lora"]["validation_loss_before"]
    full_dir = zoo.finetune("gpt", output=os.path.join(work, "full"), full=True, **common)
    results["full"] = {**run_summary(full_dir), "trainable_parameters": parameters, "sample": continuation(full_dir)}

    def from_scratch(name, steps):
        run_dir = os.path.join(work, name + ".run")
        zoo.train("gpt", preset="base", text=data, steps=steps, batch_size=args.batch_size, seed=0, run_dir=run_dir,
                  samples=False, verbose=0)
        folder = zoo.export("gpt", run_dir=run_dir, output_dir=os.path.join(work, name))
        return {**run_summary(folder), "trainable_parameters": parameters, "sample": continuation(folder)}

    results["scratch_equal_steps"] = from_scratch("scratch", args.steps)
    slower = max(results["lora"]["training_seconds"], results["full"]["training_seconds"])
    per_step = results["scratch_equal_steps"]["training_seconds"] / args.steps
    results["scratch_equal_time"] = from_scratch("scratch-time", max(1, round(slower / per_step)))
    record = {"date": datetime.date.today().isoformat(), "machine": machine(), "steps": args.steps,
              "batch_size": args.batch_size, "lora_rank": args.lora_rank, "base_parameters": parameters,
              "train_modules": len(train_modules), "held_out_modules": held_out,
              "train_bytes": int(os.path.getsize(data) * 0.9), "prompt": PROMPT, "results": results,
              "samples": "temperature 0.8, top_p 0.95, seed 0, 200 bytes, LiteRT float32"}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(record, f, indent=2)
    for name, r in results.items():
        print(f"{name:20s} validation {r.get('validation_loss', float('nan')):.4f} nats/byte  "
              f"trainable {r['trainable_parameters'] or 0:>9,}  {r.get('training_seconds', 0):7.1f} s")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
