"""Quality, speed, size and memory of every model in the zoo and every exported variant.

    python benchmarks/run.py            # full run, writes BENCHMARKS.md (about 10 minutes on 2 cores)
    python benchmarks/run.py --quick    # smoke run with few samples and repeats

For each image model with an exported artifact (the GPT and the diffusion model have their own
scripts, ``benchmarks/gpt.py`` and ``benchmarks/diffusion.py``) and
each runtime (Keras ``.keras``, SavedModel, TFLite float32 / float16 / int8):
- quality: the model's metric on a fixed seed (classifier Fréchet distance and class
  coverage for the MNIST image generators);
- latency of ``serving_default`` at batch 1 and batch 64, median of repeated runs after
  warm-up, each runtime in a fresh process, which also gives its peak memory (max RSS);
- size on disk;
and for each model the training throughput of its ``train_step`` (examples per second).
"""

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.core.artifacts import load_exported, read_manifest  # noqa: E402
from zoo.core.paths import EXPORTED_DIR, REPO_ROOT  # noqa: E402
from zoo.core.serving import example_inputs  # noqa: E402

# Models measured by their own script: the GPT's text and the diffusion model's samplers
# (a 50-step sample costs 100 network calls, too slow for 10,000 samples per runtime here).
OWN_BENCHMARKS = {"gpt": "benchmarks/gpt.py", "diffusion": "benchmarks/diffusion.py"}
RUNTIMES = [("keras", None), ("savedmodel", None), ("tflite", "float32"), ("tflite", "float16"), ("tflite", "int8")]
BATCHES = (1, 64)


def runtime_key(runtime, variant):
    return runtime if variant is None else f"{runtime}_{variant}"


def measure_latency(model_dir, runtime, variant, repeats, warmup=3):
    """In this process: load one runtime, time serving_default; returns ms and peak RSS."""
    started = time.perf_counter()
    runner = load_exported(model_dir, runtime=runtime, variant=variant or "float32")
    load_seconds = time.perf_counter() - started
    signature = runner.signatures["serving_default"]
    result = {"load_seconds": round(load_seconds, 3)}
    for batch in BATCHES:
        inputs = example_inputs(signature, batch=batch)
        for _ in range(warmup):
            runner("serving_default", **inputs)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            runner("serving_default", **inputs)
            times.append((time.perf_counter() - start) * 1000)
        result[f"latency_ms_batch{batch}"] = round(statistics.median(times), 3)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def peak_rss_mb():
    """This process's peak resident memory. VmHWM, not ru_maxrss: a child started by
    fork + exec inherits its parent's ru_maxrss, while VmHWM starts afresh at exec."""
    try:
        with open("/proc/self/status") as f:
            return round(int(next(line.split()[1] for line in f if line.startswith("VmHWM:"))) / 1024, 1)
    except (OSError, StopIteration):  # not Linux
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure_in_subprocess(model_dir, runtime, variant, repeats):
    command = [sys.executable, os.path.abspath(__file__), "--worker", model_dir, runtime, variant or "-",
               "--repeats", str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {runtime} {variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def disk_size(model_dir, manifest, runtime, variant):
    if runtime == "tflite":
        prefix = manifest["tflite"][variant]["path"]
    elif runtime == "keras":
        prefix = manifest["keras"]["path"]
    else:
        prefix = manifest["savedmodel"]["path"] + "/"
    return sum(e["bytes"] for e in manifest["files"] if e["path"] == prefix or e["path"].startswith(prefix))


def training_throughput(name, steps, batch_size=128):
    """Examples per second of the base preset's train_step on synthetic MNIST-shaped batches."""
    import tensorflow as tf

    from zoo.core.registry import get_recipe
    from zoo.core.training import set_seed

    set_seed(0)
    model = get_recipe(name).create_model("base")
    model.compile()
    images = np.random.default_rng(0).uniform(-1, 1, (batch_size * (steps + 2), 28, 28, 1)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    model.fit(dataset.take(2), epochs=1, verbose=0, shuffle=False)  # trace and warm up
    start = time.perf_counter()
    model.fit(dataset.skip(2), epochs=1, verbose=0, shuffle=False)
    seconds = time.perf_counter() - start
    return round(steps * batch_size / seconds, 1)


def quality(name, model_dir, runtime, variant, num_samples):
    from zoo.core.export import noise_batches
    from zoo.core.metrics import MnistQuality
    from zoo.core.image_generation import generate_from_runner, serving_input
    from zoo.core.registry import get_recipe

    EVAL_SEED = get_recipe(name).eval_seed

    runner = load_exported(model_dir, runtime=runtime, variant=variant or "float32")
    latent_dim = serving_input(runner)[1]["shape"][1]
    images = generate_from_runner(runner, noise_batches(latent_dim, num_samples, EVAL_SEED))
    if not hasattr(quality, "metric"):
        quality.metric = MnistQuality()
    return quality.metric.evaluate(images)


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def write_markdown(results, path, command, seconds):
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results['date']} on {results['machine']} (no GPU), in {seconds / 60:.1f} minutes, with",
        "",
        f"    {command}",
        "",
        "Latency: median of repeated `serving_default` calls after 3 warm-up calls, each runtime",
        "in a fresh process (which also gives peak memory: max resident set size of that process,",
        "runtime and model loaded, both batch sizes run). Quality: classifier Fréchet distance (FD)",
        f"to the MNIST test digits on {results['num_samples']} samples from a fixed seed, and the number of",
        "digits that get at least 1% of the samples. Training throughput: `train_step` of the",
        "base preset at batch 128 on synthetic batches (no input pipeline).",
        "",
        "![variants compared](benchmarks/results/benchmarks.png)",
        "",
    ]
    for name, model in results["models"].items():
        lines += [
            f"## {name}",
            "",
            f"Training throughput: {model['training_examples_per_second']} images/s. "
            f"Real-data floor of the FD: {model['floor_frechet_distance']}.",
            "",
            "| runtime | size | FD | digits | latency batch 1 | latency batch 64 | images/s at 64 | peak memory |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, row in model["runtimes"].items():
            per_second = 64 / (row["latency_ms_batch64"] / 1000)
            lines.append(
                f"| {key} | {row['bytes'] / 1e6:.2f} MB | {row['frechet_distance']:.2f} | {row['classes_covered']} "
                f"| {row['latency_ms_batch1']:.2f} ms | {row['latency_ms_batch64']:.2f} ms | {per_second:,.0f} "
                f"| {row['peak_rss_mb']:.0f} MB |")
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["models"])
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for m, name in enumerate(names):
        rows = results["models"][name]["runtimes"]
        keys = list(rows)
        x = np.arange(len(keys)) + m * (len(keys) + 1)
        axes[0].bar(x, [rows[k]["frechet_distance"] for k in keys], color=f"C{m}", label=name)
        axes[1].bar(x, [rows[k]["latency_ms_batch64"] for k in keys], color=f"C{m}")
        axes[2].bar(x, [rows[k]["bytes"] / 1e6 for k in keys], color=f"C{m}")
    labels = [f"{k}" for name in names for k in results["models"][name]["runtimes"]]
    positions = [m * (len(results["models"][n]["runtimes"]) + 1) + i
                 for m, n in enumerate(names) for i in range(len(results["models"][n]["runtimes"]))]
    for axis, title in zip(axes, ("classifier FD (lower is better)", "latency at batch 64 (ms)", "size on disk (MB)")):
        axis.set_xticks(positions)
        axis.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        axis.set_title(title, fontsize=10)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few samples and repeats: a smoke check")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "BENCHMARKS.md"))
    parser.add_argument("--results-dir", default=os.path.join(REPO_ROOT, "benchmarks", "results"))
    parser.add_argument("--exported-dir", default=EXPORTED_DIR)
    parser.add_argument("--models", default=None, help="comma-separated (default: every exported model)")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL_DIR", "RUNTIME", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()

    if args.worker:
        model_dir, runtime, variant = args.worker
        print(json.dumps(measure_latency(model_dir, runtime, None if variant == "-" else variant, args.repeats)))
        return

    from zoo.core.registry import model_names

    started = time.time()
    repeats = args.repeats or (5 if args.quick else 50)
    num_samples = 500 if args.quick else 10000
    train_steps = 3 if args.quick else 30
    names = args.models.split(",") if args.models else [  # the one-pass image models
        n for n in model_names() if n not in OWN_BENCHMARKS
        and os.path.isfile(os.path.join(args.exported_dir, n, "manifest.json"))
        and "images" in read_manifest(os.path.join(args.exported_dir, n), verify=False)["signatures"][
            "serving_default"]["outputs"]]
    results = {"date": datetime.date.today().isoformat(), "machine": machine(), "num_samples": num_samples,
               "repeats": repeats, "models": {}}
    for name in names:
        model_dir = os.path.join(args.exported_dir, name)
        manifest = read_manifest(model_dir)
        print(f"[{name}] training throughput")
        model = {"training_examples_per_second": training_throughput(name, train_steps), "runtimes": {}}
        from zoo.core.metrics import MnistQuality

        model["floor_frechet_distance"] = MnistQuality().real_data_floor(num_samples)["frechet_distance"]
        for runtime, variant in RUNTIMES:
            key = runtime_key(runtime, variant)
            print(f"[{name}] {key}")
            row = {"bytes": disk_size(model_dir, manifest, runtime, variant)}
            row.update(measure_in_subprocess(model_dir, runtime, variant, repeats))
            metrics = quality(name, model_dir, runtime, variant, num_samples)
            row.update({"frechet_distance": metrics["frechet_distance"], "classes_covered": metrics["classes_covered"]})
            model["runtimes"][key] = row
        results["models"][name] = model
    seconds = time.time() - started
    results["seconds"] = round(seconds, 1)
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, "benchmarks.json"), "w") as f:
        json.dump(results, f, indent=2)
    plot(results, os.path.join(args.results_dir, "benchmarks.png"))
    write_markdown(results, args.output, command, seconds)
    print(f"Wrote {args.output} and {args.results_dir}/benchmarks.json, benchmarks.png in {seconds:.0f} s")


if __name__ == "__main__":
    main()
