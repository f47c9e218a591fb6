"""Quality, speed, size and memory of every registered model with an export, in every runtime and variant.

    python -m benchmarks.run            # full run, writes BENCHMARKS.md (about half an hour on 2 cores)
    python -m benchmarks.run --quick    # smoke run with few samples and repeats
    python -m benchmarks.run --models gan,gpt
    python -m benchmarks.run --int8-pairs-only  # only the int8 and float32 LiteRT files against each other (~2 min)

For each model (its recipe says which signature to time and which metric fits it) and each
runtime (Keras ``.keras``, SavedModel, TFLite float32 / float16 / int8):
- quality: the recipe's ``evaluate`` with its ``benchmark_options`` (classifier FD for the
  image generators, likelihood bounds for the VAE, nats per byte for the GPT, guided FD and
  accuracy for the diffusion model), on the recipe's fixed seed;
- latency of the recipe's ``benchmark_signature`` at batch 1 and batch 64, median of repeated
  calls after warm-up, each runtime in a fresh process, which also gives its peak memory;
- size on disk;
- the int8 and float32 LiteRT files timed against each other call for call in one process (rounds of float32,
  int8, int8, float32), the table at the top of BENCHMARKS.md;
and for each model the training throughput of its ``train_step`` on its own training data
(examples per second at its default batch size). The GPT-vs-nanoGPT and the diffusion
step studies stay in ``benchmarks/gpt.py`` and ``benchmarks/diffusion.py``.
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

from zoo.core.recipes.commands import evaluate_runner, load as load_exported  # noqa: E402
from zoo.core.runtime.runners import read_manifest  # noqa: E402
from zoo.core.runtime.paths import EXPORTED_DIR, REPO_ROOT  # noqa: E402
from zoo.core.recipes.registry import get_recipe, model_names  # noqa: E402
from zoo.core.recipes.spec import get_spec
from benchmarks.timing import call_times  # noqa: E402


RUNTIMES = [("keras", None), ("savedmodel", None), ("tflite", "float32"), ("tflite", "float16"), ("tflite", "int8")]
BATCHES = (1, 64)


def runtime_key(runtime, variant):
    return runtime if variant is None else f"{runtime}_{variant}"


LATENCY_THREADS = 1
INT8_SECTION = "int8 against float32, every model"  # the heading of int8_against_float32's table
TF_THREADS = "TF's default (every core)"  # Keras and SavedModel rows: TensorFlow's intra-op pool


def measure_latency(model_dir, runtime, variant, repeats, inputs_path, warmup=3):
    """In this process (which imports no TensorFlow for a TFLite file, so its peak memory is LiteRT's):
    load one runtime, time the signature on the inputs the parent wrote; returns ms and peak RSS."""
    started = time.perf_counter()
    # one LiteRT thread, as every row of this table was measured (the zoo's own default is every core)
    runner = load_exported(model_dir, runtime=runtime, variant=variant or "float32",
                           **({"num_threads": LATENCY_THREADS} if runtime == "tflite" else {}))
    load_seconds = time.perf_counter() - started
    stored = np.load(inputs_path)
    signature = str(stored["signature"])
    result = {"load_seconds": round(load_seconds, 3), "signature": signature,
              "threads": LATENCY_THREADS if runtime == "tflite" else TF_THREADS}
    for batch in BATCHES:
        inputs = batch_inputs(stored, batch)
        times, _ = call_times(lambda: runner(signature, **inputs), repeats, warmup)
        result[f"latency_ms_batch{batch}"] = round(statistics.median(times) * 1000, 3)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


PAIR_SECONDS = 2.0  # per batch size: the paired rounds of one model's two LiteRT files take about this long
PAIR_ROUNDS = (5, 2000)  # at least, at most


def measure_int8_pair(model_dir, inputs_path):
    """The int8 and float32 LiteRT files of one model timed in one process, call for call: each round calls
    both on the same inputs, in the order float32, int8, int8, float32 (ABBA, so a drift of the machine's
    load falls on both alike), for about :data:`PAIR_SECONDS` per batch size. Returns, per batch, both medians
    and the share of rounds in which the int8 call was the faster one."""
    from ai_edge_litert.interpreter import Interpreter

    manifest = read_manifest(model_dir)
    stored = np.load(inputs_path)
    signature = str(stored["signature"])
    runners = {variant: Interpreter(model_path=os.path.join(model_dir, manifest["tflite"][variant]["path"]),
                                    num_threads=LATENCY_THREADS).get_signature_runner(signature)
               for variant in ("float32", "int8")}
    result = {"signature": signature, "threads": LATENCY_THREADS}
    for batch in BATCHES:
        inputs = batch_inputs(stored, batch)
        once = {v: min(call_times(lambda: r(**inputs), 1, warmup=3)[0]) for v, r in runners.items()}
        rounds = int(np.clip(PAIR_SECONDS / (2 * sum(once.values())), *PAIR_ROUNDS))
        times = {v: [] for v in runners}
        for _ in range(rounds):
            for variant in ("float32", "int8", "int8", "float32"):
                start = time.perf_counter()
                runners[variant](**inputs)
                times[variant].append(time.perf_counter() - start)
        pairs = np.array(times["int8"]).reshape(-1, 2).mean(1) < np.array(times["float32"]).reshape(-1, 2).mean(1)
        result[f"batch{batch}"] = {"float32_ms": round(statistics.median(times["float32"]) * 1000, 4),
                                   "int8_ms": round(statistics.median(times["int8"]) * 1000, 4),
                                   "int8_faster_share": round(float(pairs.mean()), 3), "rounds": rounds}
    return result


def peak_rss_mb():
    """This process's peak resident memory. VmHWM, not ru_maxrss: a child started by
    fork + exec inherits its parent's ru_maxrss, while VmHWM starts afresh at exec."""
    try:
        with open("/proc/self/status") as f:
            return round(int(next(line.split()[1] for line in f if line.startswith("VmHWM:"))) / 1024, 1)
    except (OSError, StopIteration):  # not Linux
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def write_inputs(name, model_dir, path):
    """The benchmark signature's inputs at each batch size, from the recipe, for the workers."""
    recipe = get_recipe(name)
    spec = get_spec(recipe.name)
    entry = read_manifest(model_dir, verify=False)["signatures"][spec.benchmark_signature]
    arrays = {f"{batch}/{k}": v for batch in BATCHES
              for k, v in spec.inputs(spec.benchmark_signature, entry, batch=batch).items()}
    np.savez(path, signature=np.array(spec.benchmark_signature), **arrays)
    return path


def batch_inputs(stored, batch):
    """One batch size's inputs from the file :func:`write_inputs` wrote."""
    return {k.split("/", 1)[1]: stored[k] for k in stored.files if k.startswith(f"{batch}/")}


def _run_worker(arguments, what, timeout):
    """This script again in a fresh process (``--worker`` / ``--pair-worker``); its last output line, as JSON."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", *arguments], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_in_subprocess(model_dir, runtime, variant, repeats, inputs_path):
    return _run_worker(["--worker", model_dir, runtime, variant or "-", "--repeats", str(repeats),
                        "--inputs", inputs_path], f"benchmark worker {runtime} {variant}", timeout=600)


def measure_pair_in_subprocess(model_dir, inputs_path):
    return _run_worker(["--pair-worker", model_dir, "--inputs", inputs_path], "paired int8/float32 worker",
                       timeout=900)


def disk_size(model_dir, manifest, runtime, variant):
    if runtime == "tflite":
        prefix = manifest["tflite"][variant]["path"]
    elif runtime == "keras":
        prefix = manifest["keras"]["path"]
    else:
        prefix = manifest["savedmodel"]["path"] + "/"
    return sum(e["bytes"] for e in manifest["files"] if e["path"] == prefix or e["path"].startswith(prefix))


def training_throughput(name, steps):
    """Examples per second of the default preset's training step as the loop runs it, on the model's own
    training data at its default batch size (``benchmarks/training_speed.py``'s ``loop``)."""
    from benchmarks.training_speed import examples_per_second

    rate, batch_size = examples_per_second(name, "loop", steps, repeats=1)
    return {"examples_per_second": rate, "batch_size": batch_size, "preset": get_recipe(name).train_default("preset")}


def quality(name, model_dir, runtime, variant, options):
    recipe = get_recipe(name)
    runner = load_exported(model_dir, runtime=runtime, variant=variant or "float32")
    return evaluate_runner(recipe, runner, **options)


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def int8_kind(manifest):
    """The int8 file's kind ("full-integer", "integer-products", "dynamic-range"); manifests before the kind was
    recorded say it first in their quantization line."""
    entry = manifest["tflite"]["int8"]
    return entry.get("kind") or entry["quantization"].split(":")[0]


def _milliseconds(value):
    """Three decimals below 1 ms (the median is stored to the microsecond), where two would tie."""
    return f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms"


def threads_of(runtime_key, row):
    """The threads a row was timed with; rows measured before the count was recorded all used these."""
    return row.get("threads", LATENCY_THREADS if runtime_key.startswith("tflite") else TF_THREADS)


def int8_against_float32(results):
    """Markdown lines: every model's int8 and float32 LiteRT files side by side, timed call for call in one process
    (:func:`measure_int8_pair`; a model measured before that: its two rows of the section below), with the int8
    file's kind from its manifest."""
    lines = [f"## {INT8_SECTION}", "",
             "The timed signature's median latency of each model's two LiteRT files, timed in one process call for "
             "call: each round calls both on the same inputs, in the order float32, int8, int8, float32, so a change "
             "in the machine's load falls on both alike (`measure_int8_pair`, about 2 s per batch size; a model "
             "without a paired timing shows its two rows of the section below, measured one after the other). "
             "Kind: the int8 file's, from its manifest. Rounds int8 won: the share of rounds in which the int8 "
             "call was the faster one (about 0.5 means the two are the same speed).", "",
             "| model | signature | int8 kind | threads | float32 batch 1 | int8 batch 1 | float32 batch 64 | int8 batch 64 "
             "| rounds int8 won (1 / 64) | int8 faster at both | measured |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, model in results["models"].items():
        float32, int8 = model["runtimes"].get("tflite_float32"), model["runtimes"].get("tflite_int8")
        if not float32 or not int8:
            continue
        pair = model.get("int8_pair")
        if pair:
            times = [pair[f"batch{b}"][f"{v}_ms"] for b in BATCHES for v in ("float32", "int8")]
            won = " / ".join(f"{pair[f'batch{b}']['int8_faster_share']:.2f}" for b in BATCHES)
            threads = pair["threads"]
        else:
            times = [row[f"latency_ms_batch{b}"] for b in BATCHES for row in (float32, int8)]
            won, threads = "-", threads_of("tflite", int8)
        faster = all(times[2 * i + 1] < times[2 * i] for i in range(len(BATCHES)))
        lines.append(f"| {name} | `{model['signature']}` | {model.get('int8_kind', '-')} | {threads} "
                     + "".join(f"| {_milliseconds(t)} " for t in times) + f"| {won} "
                     + f"| {'yes' if faster else '**no**'} | {(pair or model).get('date', results['date'])}"
                     + (f", {(pair or model)['machine'].split(',')[0]}" if (pair or model).get("machine") else "")
                     + " |")
    return lines + [""]


def write_markdown(results, path, command, seconds):
    lines = [
        "# Benchmarks",
        "",
        *([f"Measured {results['date']} on {results['machine']} (no GPU), in {seconds / 60:.1f} minutes, with",
           "", f"    {command}", ""] if "seconds_of_earlier_models" not in results else [
            f"Measured on {results['machine']} (no GPU): a full run of `python -m benchmarks.run`, then",
            "", f"    {command}", "",
            f"for the models added since ({results['date']}, {seconds / 60:.1f} minutes); each model says when it "
            "was measured.", ""]),
        "Every registered model with an export, every runtime. Latency: median of repeated calls of the",
        "model's benchmark signature (named per model: one network call) after 3 warm-up calls, each runtime",
        "in a fresh process, which also gives peak memory (max resident set size of that process, runtime",
        "and model loaded, both batch sizes run); LiteRT on one thread. Quality: the model's own metric, through that runtime,",
        "with the options stated per model, on its fixed seed. Training throughput: the default preset's",
        "`train_step` at the default batch size on the model's own data (input pipeline included).",
        "",
        "![variants compared](benchmarks/results/benchmarks.png)",
        "",
        *int8_against_float32(results),
    ]
    for name, model in results["models"].items():
        metrics = model["metrics"]
        training = model["training"]
        lines += [
            f"## {name}",
            "",
            *([f"Measured {model['date']}" + (f" on {model['machine']}." if model.get("machine") else ".")]
              if model.get("date") and (model["date"] != results["date"] or model.get("machine")) else []),
            f"Timed signature: `{model['signature']}`. Quality: `evaluate` with {model['quality_options'] or 'defaults'}. "
            f"Training: {training['examples_per_second']:,} examples/s (preset {training['preset']}, batch "
            f"{training['batch_size']}).",
            *([f"Further study: {get_spec(name).study}."] if get_spec(name).study else []),
            *study_summary(name),
            "",
            "| runtime | size | " + " | ".join(metrics) + " | latency batch 1 | latency batch 64 | calls/s at 64 "
            "| threads | peak memory |",
            "|---|---|" + "---|" * len(metrics) + "---|---|---|---|---|",
        ]
        for key, row in model["runtimes"].items():
            per_second = 64 / (row["latency_ms_batch64"] / 1000)
            lines.append(
                f"| {key} | {row['bytes'] / 1e6:.2f} MB | "
                + " | ".join(_cell(row["quality"].get(m, "-")) for m in metrics)
                + f" | {row['latency_ms_batch1']:.2f} ms | {row['latency_ms_batch64']:.2f} ms | {per_second:,.0f} "
                  f"| {threads_of(key, row)} | {row['peak_rss_mb']:.0f} MB |")
        lines.append("")
    lines += studies_written_by_hand(path, results["models"])
    with open(path, "w") as f:
        f.write("\n".join(lines))


def studies_written_by_hand(path, model_names):
    """The sections of the existing file that this script does not write (a study's own section, e.g. the GAN
    ablations or the generated-data benchmark): kept, in their order, after the model sections."""
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        sections = f.read().split("\n## ")[1:]
    written = set(model_names) | {INT8_SECTION}
    kept = [section for section in sections if section.split("\n", 1)[0].strip() not in written]
    return [line for section in kept for line in f"## {section.rstrip()}\n".split("\n")]


def study_summary(name):
    """Lines quoting a model's own study (``benchmarks/results/<name>.json``) where one has a short summary."""
    path = os.path.join(REPO_ROOT, "benchmarks", "results", f"{name}.json")
    if name not in ("charrnn", "wavenet") or not os.path.isfile(path):
        return []
    with open(path) as f:
        study = json.load(f)
    if name == "wavenet":
        return wavenet_summary(study)
    generation, memory = study["generation"], study["memory"]
    lines = ["", f"Against the GPT ({generation['protocol']}):", "",
             "| | character LSTM | GPT |", "|---|---|---|"]
    for count in (100, 2000):
        lines.append(f"| greedy generation, {count:,} new bytes | {generation[f'charrnn_{count}_bytes_per_second']:,.0f} "
                     f"bytes/s | {generation[f'gpt_{count}_bytes_per_second']:,.0f} bytes/s |")
    lines.append(f"| generation memory per text, besides the weights | state {memory['charrnn_state_bytes'] / 1024:,.0f} "
                 f"KiB, at any length | key/value cache {memory['gpt_cache_bytes'] / 1024:,.0f} KiB, 128 bytes of context |")
    if "equal_training_time" in study:
        equal = study["equal_training_time"]
        lines.append(f"| validation loss after {equal['budget_minutes']:g} minutes of training each, 128-byte windows "
                     f"| {equal['charrnn']['windowed_128_validation_loss']:.3f} "
                     f"(streamed: {equal['charrnn']['streamed_validation_loss']:.3f}) "
                     f"| {equal['gpt']['windowed_128_validation_loss']:.3f} |")
    return lines


def wavenet_summary(study):
    """The real-time factor table of benchmarks/wavenet.py (seconds of compute per second of audio)."""
    graph = study["in_graph"]
    lines = ["", f"Real-time factor in LiteRT (seconds of compute per second of audio; below 1 is faster than real "
                 f"time; best of {study['repeats']}, measured {study['date']}):", "",
             "| variant | batch 1, 1 thread | batch 1, 2 threads | batch 16, 1 thread | batch 16, 2 threads |",
             "|---|---|---|---|---|"]
    for variant in ("float32", "float16", "int8"):
        lines.append(f"| {variant} (in-graph loop) | " + " | ".join(
            f"{graph[f'{variant}_batch{b}_threads{t}']:.3f}" for b in (1, 16) for t in (1, 2)) + " |")
    app = study["app_loop_float32_threads1"]
    lines.append(f"| float32, app loop (8,000 `step` calls from Python) | {app['rtf_batch1']:.3f} | | | |")
    return lines


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["models"])
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    positions, labels = [], []
    for m, name in enumerate(names):
        rows = results["models"][name]["runtimes"]
        metric = results["models"][name]["metrics"][0]
        keys = list(rows)
        x = np.arange(len(keys)) + m * (len(keys) + 1)
        float32 = rows["tflite_float32"]["quality"][metric]
        axes[0].bar(x, [rows[k]["quality"][metric] / float32 for k in keys], color=f"C{m}", label=f"{name}: {metric}")
        axes[1].bar(x, [rows[k]["latency_ms_batch1"] for k in keys], color=f"C{m}")
        axes[2].bar(x, [rows[k]["bytes"] / 1e6 for k in keys], color=f"C{m}")
        positions += list(x)
        labels += keys
    titles = ("quality metric / float32 TFLite's (1 = same)", "latency at batch 1 (ms, log)", "size on disk (MB)")
    for axis, title in zip(axes, titles):
        axis.set_xticks(positions)
        axis.set_xticklabels(labels, rotation=70, ha="right", fontsize=6)
        axis.set_title(title, fontsize=10)
    axes[1].set_yscale("log")
    axes[0].set_ylim(0.9, 1.1)  # quantization moves these metrics by less than 1% here
    axes[0].legend(fontsize=7, loc="upper center", ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def benchmark_model(name, exported_dir, repeats, train_steps, quick, inputs_path, previous=None, pairs_only=False):
    """Every measurement of one model; with ``previous`` (an earlier result of the same model), only
    latency, memory and size are measured again and quality and training are kept from it; with
    ``pairs_only`` too, only the paired int8/float32 timing (everything else kept)."""
    recipe = get_recipe(name)
    model_dir = os.path.join(exported_dir, name)
    manifest = read_manifest(model_dir)
    spec = get_spec(name)
    options = dict(spec.quick_options.get("evaluate", {}) if quick else spec.benchmark_options)
    write_inputs(name, model_dir, inputs_path)
    if pairs_only:
        if previous is None:
            raise SystemExit(f"--int8-pairs-only keeps {name}'s other measurements, and the results file has none: "
                             f"run python -m benchmarks.run --models {name} first")
        print(f"[{name}] int8 and float32 LiteRT files, paired", flush=True)
        return {**previous, "int8_kind": int8_kind(manifest),
                "int8_pair": measure_pair_in_subprocess(model_dir, inputs_path)}
    if previous is None:
        print(f"[{name}] training throughput", flush=True)
    model = {"signature": spec.benchmark_signature, "metrics": recipe.metrics, "quality_options": options,
             "training": previous["training"] if previous else training_throughput(name, train_steps),
             "int8_kind": int8_kind(manifest), "runtimes": {}}
    for runtime, variant in RUNTIMES:
        key = runtime_key(runtime, variant)
        print(f"[{name}] {key}", flush=True)
        row = {"bytes": disk_size(model_dir, manifest, runtime, variant)}
        row.update(measure_in_subprocess(model_dir, runtime, variant, repeats, inputs_path))
        if previous:
            row["quality"], row["quality_seconds"] = (previous["runtimes"][key]["quality"],
                                                      previous["runtimes"][key]["quality_seconds"])
        else:
            started = time.perf_counter()
            row["quality"] = {k: v for k, v in quality(name, model_dir, runtime, variant, options).items()
                              if isinstance(v, (int, float, str))}
            row["quality_seconds"] = round(time.perf_counter() - started, 1)
        model["runtimes"][key] = row
    if "int8" in manifest["tflite"] and "float32" in manifest["tflite"]:
        print(f"[{name}] int8 and float32 LiteRT files, paired", flush=True)
        model["int8_pair"] = measure_pair_in_subprocess(model_dir, inputs_path)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few samples and repeats: a smoke check")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "BENCHMARKS.md"))
    parser.add_argument("--results-dir", default=os.path.join(REPO_ROOT, "benchmarks", "results"))
    parser.add_argument("--exported-dir", default=EXPORTED_DIR)
    parser.add_argument("--models", default=None, help="comma-separated (default: every model with an export)")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL_DIR", "RUNTIME", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    parser.add_argument("--latency-only", action="store_true",
                        help="measure latency, memory and size again; keep quality and training from the results file")
    parser.add_argument("--int8-pairs-only", action="store_true",
                        help="time only each model's int8 and float32 LiteRT files against each other, call for call; "
                             "keep everything else from the results file")
    parser.add_argument("--pair-worker", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.pair_worker:
        print(json.dumps(measure_int8_pair(args.pair_worker, args.inputs)))
        return
    if args.worker:
        model_dir, runtime, variant = args.worker
        print(json.dumps(measure_latency(model_dir, runtime, None if variant == "-" else variant, args.repeats,
                                         args.inputs)))
        return

    started = time.time()
    repeats = args.repeats or (5 if args.quick else 30)
    train_steps = 3 if args.quick else 20
    names = args.models.split(",") if args.models else [
        n for n in model_names() if os.path.isfile(os.path.join(args.exported_dir, n, "manifest.json"))]
    previous = {}
    if args.latency_only or args.int8_pairs_only:
        with open(os.path.join(args.results_dir, "benchmarks.json")) as f:
            previous = json.load(f)
    this_machine = machine()
    results = {"date": datetime.date.today().isoformat(), "machine": this_machine, "repeats": repeats, "models": {}}
    results_file = os.path.join(args.results_dir, "benchmarks.json")
    if args.models and not args.quick and os.path.isfile(results_file):
        # measuring some models adds them to (or updates them in) the full results, each with its date
        with open(results_file) as f:
            earlier = json.load(f)
        # the full run's machine stays the file's; a model measured on another machine says which
        results["machine"] = earlier["machine"]
        results["models"] = {name: {"date": earlier["date"], **entry} for name, entry in earlier["models"].items()}
        results["seconds_of_earlier_models"] = earlier.get("seconds", 0)
    for name, entry in results["models"].items():  # measured before the kind was recorded: the file on disk's
        if "int8_kind" not in entry and os.path.isfile(os.path.join(args.exported_dir, name, "manifest.json")):
            entry["int8_kind"] = int8_kind(read_manifest(os.path.join(args.exported_dir, name), verify=False))
    inputs_path = os.path.join(args.results_dir, ".benchmark-inputs.tmp.npz")
    os.makedirs(args.results_dir, exist_ok=True)
    for name in names:
        results["models"][name] = benchmark_model(name, args.exported_dir, repeats, train_steps, args.quick,
                                                  inputs_path, previous.get("models", {}).get(name),
                                                  pairs_only=args.int8_pairs_only)
        measured = results["models"][name]["int8_pair"] if args.int8_pairs_only else results["models"][name]
        measured["date"] = results["date"]
        if this_machine != results["machine"]:
            measured["machine"] = this_machine
        elif args.int8_pairs_only:
            results["models"][name]["int8_pair"].pop("machine", None)
        if args.int8_pairs_only:
            results["models"][name].setdefault("date", previous.get("date", results["date"]))
    os.remove(inputs_path)
    seconds = time.time() - started + (previous.get("seconds", 0) if previous else 0)
    results["seconds"] = round(seconds, 1)
    if previous:
        results["quality_and_training_measured"] = previous.get("quality_and_training_measured", previous["date"])
    command = "python -m benchmarks.run" + (" --quick" if args.quick else "") + (
        f" --models {args.models}" if args.models else "") + (
        " (then --latency-only: latency, memory and size measured again)" if args.latency_only else "") + (
        " (then --int8-pairs-only: the int8 and float32 files timed against each other)" if args.int8_pairs_only
        else "")
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, "benchmarks.json"), "w") as f:
        json.dump(results, f, indent=2)
    plot(results, os.path.join(args.results_dir, "benchmarks.png"))
    write_markdown(results, args.output, command, seconds)
    print(f"Wrote {args.output} and {args.results_dir}/benchmarks.json, benchmarks.png in {seconds:.0f} s")


if __name__ == "__main__":
    main()
