"""Quality and speed of the diffusion model's samplers, in Keras and in TFLite.

    python -m benchmarks.diffusion            # writes benchmarks/results/diffusion.json and diffusion.png
    python -m benchmarks.diffusion --quick    # smoke run: few samples
    python -m benchmarks.diffusion --threads-only   # LiteRT with 1 and 2 threads, added to the JSON

For DDIM with 10, 25, 50 and 250 steps (Keras ``.keras`` file and LiteRT float32),
and ancestral DDPM with 50 and 250 steps (Keras) for comparison: the classifier
Fréchet distance and class coverage of guided samples (labels cycling 0-9,
guidance 2), how often the zoo's MNIST classifier reads the digit that was asked
for, and seconds per image on this CPU. Every setting samples from the same noise
(``default_rng(12345)``, as ``python -m zoo export`` and ``evaluate`` do) through the app's
loop over ``denoise_step`` (``zoo/diffusion/tflite_sample.py``), in batches of ``--batch-size``. The
committed DCGAN is measured on the same number of samples, because the Fréchet
distance of n samples is biased upwards for small n: only equal counts compare.
"""

import argparse
import datetime
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.core.runtime.runners import load_exported  # noqa: E402
from zoo.core.export import machine_description as machine  # noqa: E402
from zoo.core.runtime.paths import EXPORTED_DIR, REPO_ROOT  # noqa: E402
from zoo.diffusion.recipe import guided_samples  # noqa: E402

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "diffusion.json")
SETTINGS = [("keras", "ddim", 10), ("keras", "ddim", 25), ("keras", "ddim", 50), ("keras", "ddim", 250),
            ("tflite", "ddim", 10), ("tflite", "ddim", 25), ("tflite", "ddim", 50), ("tflite", "ddim", 250),
            ("keras", "ddpm", 50), ("keras", "ddpm", 250)]


def median_seconds(call, repeats=3):
    """Median seconds of ``call()`` over ``repeats`` runs, after one warm-up run."""
    call()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return round(float(np.median(times)), 3)


def single_image_seconds(runner, repeats=3):
    """Seconds for one image (batch 1) from the in-graph ``generate`` signature: what a phone app waits."""
    inputs = {"noise": np.random.default_rng(0).standard_normal((1, 28, 28, 1)).astype(np.float32),
              "labels": np.array([7], np.int32), "guidance": np.array([2.0], np.float32)}
    return median_seconds(lambda: runner("generate", **inputs), repeats)


def litert_threads(exported_dir, repeats=3):
    """Seconds for ``generate`` at batch 1 and one ``denoise_step`` at batch 100, LiteRT float32, 1 and 2 threads."""
    rng = np.random.default_rng(0)
    step_inputs = {"images_t": rng.standard_normal((100, 28, 28, 1)).astype(np.float32),
                   "timestep": np.full(100, 500, np.int32), "labels": np.arange(100, dtype=np.int32) % 10,
                   "guidance": np.full(100, 2.0, np.float32)}
    rows = []
    for threads in (1, 2):
        runner = load_exported("diffusion", runtime="tflite", exported_dir=exported_dir, num_threads=threads)
        rows.append({"num_threads": threads,
                     "denoise_step_seconds_batch100": median_seconds(lambda: runner("denoise_step", **step_inputs),
                                                                     repeats),
                     "generate_seconds_batch1": single_image_seconds(runner, repeats)})
        print(f"    {rows[-1]}", flush=True)
    return rows


def dcgan_reference(quality, num_samples, exported_dir):
    from zoo.core.export import noise_batches
    from zoo.core.recipes.images import generate_from_runner, serving_input
    from zoo.core.recipes.registry import get_recipe

    if not os.path.isfile(os.path.join(exported_dir, "dcgan", "manifest.json")):
        return None
    runner = load_exported("dcgan", runtime="tflite", exported_dir=exported_dir)
    images = generate_from_runner(runner, noise_batches(serving_input(runner)[1]["shape"][1], num_samples, get_recipe("dcgan").eval_seed))
    metrics = quality.evaluate(images)
    return {"frechet_distance": metrics["frechet_distance"], "classes_covered": metrics["classes_covered"],
            "num_samples": num_samples, "runtime": "tflite_float32"}


def plot(results, path, grids):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # the charts on top; below, one image: a row of digits 0-9 per setting, labelled on the left
    figure = plt.figure(figsize=(12, 10))
    layout = figure.add_gridspec(2, 2, height_ratios=[1, 1.15])
    axes_fd, axes_accuracy = figure.add_subplot(layout[0, 0]), figure.add_subplot(layout[0, 1])
    for key, style in (("keras/ddim", "o-"), ("tflite/ddim", "s--"), ("keras/ddpm", "^-")):
        rows = [r for r in results["settings"] if f"{r['runtime']}/{r['sampler']}" == key]
        if not rows:
            continue
        steps = [r["steps"] for r in rows]
        axes_fd.plot(steps, [r["frechet_distance"] for r in rows], style, label=key)
        axes_accuracy.plot(steps, [100 * r["guided_accuracy"] for r in rows], style, label=key)
    if results.get("dcgan"):
        axes_fd.axhline(results["dcgan"]["frechet_distance"], color="grey", linestyle=":", label="committed DCGAN")
    axes_accuracy.axhline(95, color="grey", linestyle=":", label="target 95%")
    for axes, label in ((axes_fd, "classifier Fréchet distance (lower is better)"),
                        (axes_accuracy, "guided class accuracy, %")):
        axes.set_xscale("log")
        axes.set_xlabel("sampling steps")
        axes.set_ylabel(label)
        axes.legend()
        axes.grid(alpha=0.3)
    axes_fd.set_title(f"{results['num_samples']} guided samples per point, guidance {results['guidance']}")
    if grids:
        gap = 3  # white pixels between rows
        rows = [np.pad(np.concatenate(list(images[:10, :, :, 0]), axis=1), ((0, gap), (0, 0)), constant_values=1.0)
                for _, images in grids]
        axes = figure.add_subplot(layout[1, :])
        axes.imshow(np.concatenate(rows, axis=0)[:-gap], cmap="gray", vmin=0, vmax=1)
        axes.set_yticks([(28 + gap) * i + 13.5 for i in range(len(grids))], [title for title, _ in grids])
        axes.set_xticks([28 * d + 13.5 for d in range(10)], [str(d) for d in range(10)])
        axes.tick_params(length=0)
        axes.set_title("Keras samples asked for digits 0-9 (labels on the axis), the same start noise in every row",
                       fontsize=10)
        for side in axes.spines.values():
            side.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=int, default=200, help="guided samples per setting (default 200)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="10 samples, DDIM 10 and 25 steps only")
    parser.add_argument("--threads-only", action="store_true",
                        help="only time LiteRT with 1 and 2 threads; adds 'litert_threads' to the existing JSON")
    parser.add_argument("--exported-dir", default=EXPORTED_DIR)
    parser.add_argument("--output", default=RESULTS, help=f"results JSON (default {os.path.relpath(RESULTS)})")
    args = parser.parse_args()

    if args.threads_only:
        with open(args.output) as f:
            results = json.load(f)
        results["litert_threads"] = litert_threads(args.exported_dir)
        results["litert_threads_command"] = "python " + " ".join(sys.argv)
        with open(args.output, "w") as f:
            json.dump(results, f, indent=2)
        print(f"updated {args.output}")
        return

    from zoo.core.metrics.mnist import MnistQuality

    num_samples = 10 if args.quick else args.num_samples
    settings = [s for s in SETTINGS if s[2] <= 25 and s[1] == "ddim"] if args.quick else SETTINGS
    quality = MnistQuality()
    results = {"date": datetime.date.today().isoformat(), "machine": machine(), "num_samples": num_samples,
               "batch_size": args.batch_size, "guidance": 2.0, "command": "python " + " ".join(sys.argv),
               "settings": []}
    started = time.time()
    grids, runners = [], {}
    for runtime, sampler, steps in settings:
        if runtime not in runners:
            runners.clear()  # one runtime alive at a time
            runners[runtime] = load_exported("diffusion", runtime=runtime, exported_dir=args.exported_dir)
        runner = runners[runtime]
        print(f"[diffusion] {runtime} {sampler} {steps} steps, {num_samples} samples", flush=True)
        began = time.perf_counter()
        images, labels = guided_samples(runner, num_samples, batch_size=args.batch_size, progress=False, steps=steps,
                                        sampler=sampler, in_graph=False)
        seconds = time.perf_counter() - began
        metrics = quality.evaluate(images)
        _, classes = quality.features_and_classes(images)
        row = {"runtime": runtime, "sampler": sampler, "steps": steps,
               "frechet_distance": metrics["frechet_distance"], "classes_covered": metrics["classes_covered"],
               "guided_accuracy": round(float(np.mean(classes == labels)), 4),
               "seconds_per_image": round(seconds / num_samples, 4)}
        print(f"    {row}", flush=True)
        results["settings"].append(row)
        if runtime == "keras" and len(images) >= 10:
            grids.append((f"{sampler.upper()} {steps} steps", images[:10]))
    for runtime, runner in (("keras", None), ("tflite", None)):
        runner = load_exported("diffusion", runtime=runtime, exported_dir=args.exported_dir)
        results[f"{runtime}_generate_seconds_batch1"] = single_image_seconds(runner)
    results["generate_steps"] = runner.manifest["generate_steps"]
    results["litert_threads"] = litert_threads(args.exported_dir)
    results["dcgan"] = dcgan_reference(quality, num_samples, args.exported_dir)
    results["minutes"] = round((time.time() - started) / 60, 1)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)
    plot(results, os.path.splitext(args.output)[0] + ".png", grids)
    print(f"wrote {args.output} ({results['minutes']} minutes)")


if __name__ == "__main__":
    main()
