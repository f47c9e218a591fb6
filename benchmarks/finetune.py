"""Fine-tuning from a trained model: LoRA against full fine-tuning against training from scratch.

    python -m benchmarks.finetune                           # the GPT to Python, 200 steps, batch 32 (~25 min here)
    python -m benchmarks.finetune --model diffusion         # MNIST diffusion to thin digits (~30 min here)
    python -m benchmarks.finetune --steps 50 --batch-size 8 # a quick look

**gpt**: the Shakespeare GPT adapted to Python source. The data needs no download: the ``.py`` modules at the top
of the running interpreter's standard library, sorted by name; every tenth is held out (those that fit, whole, in
100 kB), so the validation text is whole modules the training never sees. The training text is the other
modules, cut to nine times the held-out bytes, so the recipe's 90/10 split of the one file falls exactly between
them. The sample: a continuation of a Python prompt.

**diffusion**: the MNIST diffusion model adapted to digits written thin (the third of each digit with the least
ink, ``zoo.core.data.captions.stroke_attributes``): the thin training digits train, thin *test* digits (one
ninth as many) make up the file's last 10% and validate. Fine-tuned on unlabelled images, the model learns them as
its unconditional images; the sample: 100 unconditional draws (guidance 0, seeded noise) through the float32
TFLite ``generate``, their mean ink against the thin and the whole MNIST test digits', and a picture.

Then, each through ``zoo.finetune`` / ``zoo.train`` with the same batches (seed 0):

- the base model (exported/<model>) on the held-out data, untouched;
- LoRA (the recipe's ``lora_rank`` on every dense kernel, plus its ``lora_trains_in_full`` and
  ``lora_embedding_rows``), ``--steps`` steps from the base,
  at ``zoo.finetune``'s learning rate for adapters;
- full fine-tuning, the same steps from the base;
- the same network from random weights, the same steps, and again for as long as the slower fine-tune took
  (equal time).

Each run's validation loss (the run's ``val_loss`` on the held-out data), trainable parameters, training seconds,
and the sample. Writes ``benchmarks/results/finetune.json`` (gpt) or ``finetune_<model>.json`` (+ ``.png``).
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

RESULTS_DIR = os.path.join(REPO_ROOT, "benchmarks", "results")
PROMPT = "def read_config(path):\n    "
UNCONDITIONAL_SAMPLES = 100


def results_path(model):
    return os.path.join(RESULTS_DIR, "finetune.json" if model == "gpt" else f"finetune_{model}.json")


def python_corpus(folder, held_out_every=10, held_out_bytes=100_000):
    """``(text file, description)``: the standard library's top-level modules, the held-out ones (of every tenth,
    the whole modules that fit in ``held_out_bytes``: each export scores them in five runtimes) last and making up
    exactly the file's last 10%."""
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
    return path, {"train_modules": len(train), "held_out_modules": [os.path.basename(m) for m in held_out],
                  "train_bytes": len(training), "prompt": PROMPT}


def thin_digits(folder):
    """``(.npy file, description)``: MNIST's thin training digits, then thin test digits (a ninth as many) as the
    file's last 10%, the part the recipe validates on."""
    import numpy as np

    from zoo.core.data.captions import THIN, captioned_mnist

    train_images, _, train_ink, _ = captioned_mnist("train")
    test_images, _, test_ink, _ = captioned_mnist("test")
    train, held_out = train_images[train_ink == THIN], test_images[test_ink == THIN]
    held_out = held_out[: len(train) // 9]
    train = train[: 9 * len(held_out)]
    path = os.path.join(folder, "thin_digits.npy")
    np.save(path, np.concatenate([train, held_out])[..., 0])
    return path, {"train_images": len(train), "validation_images": len(held_out),
                  "mean_ink": {"thin_test_digits": round(float(held_out.sum((1, 2, 3)).mean()), 1),
                               "all_test_digits": round(float(test_images.sum((1, 2, 3)).mean()), 1)}}


def continuation(folder, prompt=PROMPT, num_bytes=200):
    """Sampled, not greedy: greedy decoding of Python source collapses into indentation (every fine-tuned model
    continued the prompt with 160 spaces)."""
    from zoo.gpt.recipe import generate_text

    return generate_text(zoo.load(folder, runtime="tflite"), prompt, max_new_tokens=num_bytes, temperature=0.8,
                         top_p=0.95, seed=0)


def unconditional_digits(folder, count=UNCONDITIONAL_SAMPLES):
    """``count`` unconditional digits (guidance 0, noise from seed 0) from the float32 TFLite ``generate``."""
    import numpy as np

    runner = zoo.load(folder, runtime="tflite")
    noise = np.random.default_rng(0).standard_normal((count, 28, 28, 1)).astype(np.float32)
    images = [runner("generate", noise=noise[i : i + 10], labels=np.full(10, 10, np.int32),
                     guidance=np.zeros(10, np.float32))["images"] for i in range(0, count, 10)]
    return np.concatenate(images)


# per model: the data, the sample of one export, and how the JSON holds it
CASES = {
    "gpt": {"data": python_corpus, "sample": continuation, "unit": "nats per byte",
            "sample_description": "temperature 0.8, top_p 0.95, seed 0, 200 bytes, LiteRT float32"},
    "diffusion": {"data": thin_digits, "sample": unconditional_digits, "unit": "denoising MSE",
                  "sample_description": f"{UNCONDITIONAL_SAMPLES} unconditional digits (label 10, guidance 0), "
                                        "noise from default_rng(0), LiteRT float32 generate"},
}
FOLDERS = {"base": None, "lora": "lora", "full": "full", "scratch_equal_steps": "scratch",
           "scratch_equal_time": "scratch-time"}
EXPORT_OPTIONS = {"diffusion": {"num_eval_samples": 20, "num_detailed_samples": 20}}  # its FD to MNIST: not the point


def export_folder(model, work, name):
    if name == "base":
        return os.path.join(EXPORTED_DIR, model)
    path = os.path.join(work, FOLDERS[name])
    return path if os.path.isfile(os.path.join(path, "manifest.json")) else os.path.join(path, model)


def sample_entry(model, folder):
    """What the JSON keeps of a sample: the text, or the digits' mean ink (the picture holds the digits)."""
    sample = CASES[model]["sample"](folder)
    if isinstance(sample, str):
        return {"sample": sample}, None
    return {"sample_mean_ink": round(float(sample.sum((1, 2, 3)).mean()), 1)}, sample


def plot_samples(samples, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(samples), figsize=(2.6 * len(samples), 3.0))
    for axis, (name, images) in zip(axes, samples.items()):
        grid = images[:25, :, :, 0].reshape(5, 5, 28, 28).transpose(0, 2, 1, 3).reshape(140, 140)
        axis.imshow(grid, cmap="gray", vmin=0, vmax=1)
        axis.set_title(name.replace("_", " "), fontsize=9)
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def resample(model, work):
    """Only the samples again, from the exports a run left in ``work`` (the numbers are kept)."""
    with open(results_path(model)) as f:
        record = json.load(f)
    pictures = {}
    for name in FOLDERS:
        entry, pictures[name] = sample_entry(model, export_folder(model, work, name))
        record["results"][name].update(entry)
    record["samples"] = CASES[model]["sample_description"]
    with open(results_path(model), "w") as f:
        json.dump(record, f, indent=2)
    if all(p is not None for p in pictures.values()):
        plot_samples(pictures, results_path(model)[:-5] + ".png")


def run_summary(model, folder):
    with open(os.path.join(folder, "manifest.json")) as f:
        training = json.load(f)["training"]
    return {"validation_loss": round(training["final_losses"]["val_loss"], 4),
            "validation_loss_before": round(training.get("losses_before_training", {}).get("val_loss", float("nan")), 4),
            "training_seconds": training["training_seconds"], "steps": training["steps"],
            "trainable_parameters": training["config"].get("lora", {}).get("trainable_parameters"),
            "trained_in_full": training["config"].get("lora", {}).get("trained_in_full"),
            "learning_rate": training["config"]["learning_rate"],
            "tflite_bytes": os.path.getsize(os.path.join(folder, f"{model}.tflite"))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(CASES), default="gpt")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lora-rank", type=int, default=None, help="the adapters' rank (default: the recipe's)")
    parser.add_argument("--work-dir", default=None, help="where the runs and exports go (default: a temporary one)")
    parser.add_argument("--output", default=None, help="results JSON (default benchmarks/results/finetune.json, "
                                                       "or finetune_<model>.json)")
    parser.add_argument("--resample", action="store_true", help="only draw the samples again from --work-dir's "
                                                                  "exports")
    args = parser.parse_args(argv)
    model = args.model
    if args.resample:
        return resample(model, args.work_dir)
    from zoo.core.recipes.registry import get_recipe

    output = args.output or results_path(model)
    args.lora_rank = args.lora_rank or get_recipe(model).lora_rank
    work = args.work_dir or tempfile.mkdtemp(prefix="zoo-finetune-")
    os.makedirs(work, exist_ok=True)
    data, description = CASES[model]["data"](work)
    base = os.path.join(EXPORTED_DIR, model)
    parameters = zoo.load(base, runtime="keras").model.count_params()
    exporting = EXPORT_OPTIONS.get(model, {})
    common = dict(data=data, base=base, steps=args.steps, batch_size=args.batch_size, seed=0, verbose=0, **exporting)
    results, pictures = {}, {}

    def measured(name, folder, summary):
        entry, pictures[name] = sample_entry(model, folder)
        results[name] = {**summary, **entry}
        print(f"{name}: {results[name]}", flush=True)

    measured("base", base, {"trainable_parameters": 0})
    lora_dir = zoo.finetune(model, output=os.path.join(work, "lora"), lora_rank=args.lora_rank, **common)
    measured("lora", lora_dir, run_summary(model, lora_dir))
    results["base"]["validation_loss"] = results["lora"]["validation_loss_before"]
    full_dir = zoo.finetune(model, output=os.path.join(work, "full"), full=True, **common)
    measured("full", full_dir, {**run_summary(model, full_dir), "trainable_parameters": parameters})

    def from_scratch(name, steps):
        run_dir = os.path.join(work, FOLDERS[name] + ".run")
        zoo.train(model, preset="base", steps=steps, batch_size=args.batch_size, seed=0, run_dir=run_dir,
                  samples=False, verbose=0, **{get_recipe(model).finetune_data_option: data})
        folder = zoo.export(model, run_dir=run_dir, output_dir=os.path.join(work, FOLDERS[name]), **exporting)
        measured(name, folder, {**run_summary(model, folder), "trainable_parameters": parameters})

    from_scratch("scratch_equal_steps", args.steps)
    slower = max(results["lora"]["training_seconds"], results["full"]["training_seconds"])
    per_step = results["scratch_equal_steps"]["training_seconds"] / args.steps
    from_scratch("scratch_equal_time", max(1, round(slower / per_step)))
    record = {"date": datetime.date.today().isoformat(), "machine": machine(), "model": model, "steps": args.steps,
              "batch_size": args.batch_size, "lora_rank": args.lora_rank, "base_parameters": parameters,
              **description, "validation_unit": CASES[model]["unit"], "results": results,
              "samples": CASES[model]["sample_description"]}
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        json.dump(record, f, indent=2)
    if all(p is not None for p in pictures.values()):
        plot_samples(pictures, output[:-5] + ".png")
    for name, r in results.items():
        print(f"{name:20s} validation {r.get('validation_loss', float('nan')):.4f} {CASES[model]['unit']}  "
              f"trainable {r['trainable_parameters'] or 0:>9,}  {r.get('training_seconds', 0):7.1f} s")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
