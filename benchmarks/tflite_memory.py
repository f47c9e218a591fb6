"""What each TFLite file costs in memory, as an app holds it: LiteRT's own share, at batch 1, against a budget.

    python -m benchmarks.tflite_memory                  # every exported model, every TFLite variant (~2 minutes)
    python -m benchmarks.tflite_memory --models gpt,vae

Issue 45's budget for a TFLite runtime: at most twice its file's size plus 50 MB. ``benchmarks/run.py``'s peak
memory column is a whole process's (Python, NumPy, the runner's checks) at batch 64 as well as 1; this asks what
LiteRT itself takes on a phone's usual call. Each file is measured in a fresh process that imports only NumPy and
``ai_edge_litert`` (no TensorFlow, no zoo): its resident memory after those imports is the baseline; it loads the
file (one thread), calls the model's timed signature at batch 1 three times (inputs from the model's spec), and
reads its peak (``VmHWM``). ``runtime_mb`` = peak - baseline: the file's pages, the interpreter, XNNPACK's packed
weights and the tensors. The number of signatures is reported beside it because the ``Interpreter`` applies the
XNNPACK delegate to every subgraph of a file when the first is allocated, and each subgraph packs its own copy of
the weights it uses: a file with several signatures over the same weights pays for them several times. Each file
is measured twice: through the ``Interpreter`` (what the zoo's runners and app loops use) and through LiteRT's
``CompiledModel`` with XNNPACK's in-memory weight cache (``xnnpack_weight_cache_path=":memory:"``), which packs
each weight once.

Writes ``benchmarks/results/tflite_memory.json`` and prints a Markdown table.
"""

import argparse
import json
import os
import subprocess
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "tflite_memory.json")
CALLS = 3
BUDGET_FACTOR, BUDGET_EXTRA_MB = 2, 50
APIS = ("interpreter", "compiled")


def status_mb(field):
    with open("/proc/self/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith(field + ":"))) / 1024


def worker(path, signature, inputs_path, api="interpreter"):
    """In a fresh process: LiteRT's memory for one file and signature at batch 1; prints one JSON line.

    ``api``: ``interpreter`` (``ai_edge_litert.interpreter.Interpreter``, what the zoo's runners and app loops
    use) or ``compiled`` (LiteRT's ``CompiledModel`` with XNNPACK's in-memory weight cache, which packs each
    weight once for every subgraph)."""
    import numpy as np

    stored = np.load(inputs_path)
    inputs = {k.split("/", 1)[1]: stored[k] for k in stored.files if k.startswith("1/")}
    if api == "interpreter":
        from ai_edge_litert.interpreter import Interpreter

        baseline = status_mb("VmRSS")
        interpreter = Interpreter(model_path=path, num_threads=1)
        runner = interpreter.get_signature_runner(signature)
        for _ in range(CALLS):
            runner(**inputs)
        signatures = len(interpreter.get_signature_list())
    else:
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.options import Options

        baseline = status_mb("VmRSS")
        options = Options(cpu_options=CpuOptions(num_threads=1, xnnpack_weight_cache_path=":memory:"))
        model = CompiledModel.from_file(path, options=options)
        for name, value in inputs.items():
            model.resize_input_tensor_by_name(signature, name, value.shape)
        index = model.get_signature_index(signature)
        input_buffers, output_buffers = model.create_input_buffers(index), model.create_output_buffers(index)
        for buffer, name in zip(input_buffers, model.get_signature_list()[signature]["inputs"]):
            buffer.write(np.ascontiguousarray(inputs[name]))
        try:
            for _ in range(CALLS):
                model.run_by_index(index, input_buffers, output_buffers)
        except RuntimeError as error:  # a file this API cannot run: say so instead of a number
            print(json.dumps({"error": str(error).splitlines()[0], "signatures": model.get_num_signatures()}))
            return
        signatures = model.get_num_signatures()
    peak = status_mb("VmHWM")
    print(json.dumps({"baseline_mb": round(baseline, 1), "peak_mb": round(peak, 1),
                      "runtime_mb": round(peak - baseline, 1), "signatures": signatures}))


def measure(name, model_dir, work_dir):
    from benchmarks.run import write_inputs
    from zoo.core.recipes.spec import get_spec
    from zoo.core.runtime.runners import read_manifest

    manifest = read_manifest(model_dir)  # sha256-checked
    signature = get_spec(name).benchmark_signature
    inputs_path = write_inputs(name, model_dir, os.path.join(work_dir, f"{name}.npz"))
    rows = {}
    for variant, entry in manifest["tflite"].items():
        path = os.path.join(model_dir, entry["path"])
        row = {"file_mb": round(os.path.getsize(path) / 1e6, 2)}
        row["budget_mb"] = round(BUDGET_FACTOR * row["file_mb"] + BUDGET_EXTRA_MB, 1)
        for api in APIS:
            done = subprocess.run([sys.executable, "-m", "benchmarks.tflite_memory", "--worker", path, signature,
                                   inputs_path, "--api", api], capture_output=True, text=True, timeout=600,
                                  cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            if done.returncode != 0:
                raise RuntimeError(f"{name} {variant} ({api}): the worker failed:\n{done.stderr[-2000:]}")
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            row["signatures"] = measured.pop("signatures")
            if "error" not in measured:
                measured["within_budget"] = measured["runtime_mb"] <= row["budget_mb"]
            row[api] = measured
        rows[variant] = row
        print(f"{name} {variant}: {row}", flush=True)
    return {"signature": signature, "variants": rows}


def markdown(results):
    lines = ["| model | timed signature (signatures in the file) | variant | file | budget | LiteRT's memory at batch 1: "
             "`Interpreter` | `CompiledModel`, weight cache |",
             "|---|---|---|---|---|---|---|"]
    for name, model in results["models"].items():
        for variant, row in model["variants"].items():
            cells = ["fails to run" if "error" in row[api] else
                     f"{row[api]['runtime_mb']:.0f} MB" + ("" if row[api]["within_budget"] else " **over**")
                     for api in APIS]
            lines.append(f"| {name} | `{model['signature']}` ({row['signatures']}) | {variant} | {row['file_mb']:.2f} MB "
                         f"| {row['budget_mb']:.0f} MB | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", nargs=3, metavar=("TFLITE", "SIGNATURE", "INPUTS"), help=argparse.SUPPRESS)
    parser.add_argument("--api", choices=APIS, default="interpreter", help=argparse.SUPPRESS)
    parser.add_argument("--models", default=None, help="comma-separated (default: every exported model)")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(*args.worker, api=args.api)
    import datetime
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo.core.export import machine_description
    from zoo.core.recipes.registry import model_names
    from zoo.core.runtime.paths import EXPORTED_DIR

    names = args.models.split(",") if args.models else [
        n for n in model_names() if os.path.isfile(os.path.join(EXPORTED_DIR, n, "manifest.json"))]
    results = {"date": datetime.date.today().isoformat(), "machine": machine_description(), "threads": 1,
               "calls": CALLS, "budget": f"{BUDGET_FACTOR} x file + {BUDGET_EXTRA_MB} MB", "models": {}}
    with tempfile.TemporaryDirectory() as work_dir:
        for name in names:
            results["models"][name] = measure(name, os.path.join(EXPORTED_DIR, name), work_dir)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)
    print(markdown(results))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
