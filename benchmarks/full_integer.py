"""A probe for issue 45: full-integer int8 against the committed dynamic-range int8 and float32 files.

    python -m benchmarks.full_integer                      # dcgan, gan, vae, cdcgan
    python -m benchmarks.full_integer --models dcgan --repeats 20
    python -m benchmarks.full_integer --models seq2seq,wavenet --repeats 100   # the two dynamic-range near-ties

The committed ``<model>.int8.tflite`` files are dynamic-range quantized (int8 weights, float activations),
which falls back to slow reference kernels for transposed convolutions and friends. This converts each
committed SavedModel's benchmark signature again with a representative dataset (activations in int8 too,
XNNPACK's QS8 kernels; inputs and outputs stay float32, and an op with no integer kernel stays float), and once
more with only the convolutions and matrix products in int8 (the exporter's ``integer_products``), then
times the four files side by side at batch 1 and 64 on one LiteRT thread (median of ``--repeats`` after
3 warm-up calls) and reports the largest output difference from float32 on the same inputs. The
representative inputs are the signature's own example inputs (``zoo.core.runtime.serving.example_inputs``:
standard-normal noise for the generators, which is what they take). Nothing is written to exported/:
the probe files go to a temporary folder, the timings to benchmarks/results/full_integer.json. Quality on each model's own metric is the exporter's job once
full-integer int8 replaces dynamic range there.
"""

import argparse
import json
import os
import tempfile

import numpy as np

from benchmarks.run import int8_kind
from benchmarks.timing import call_times
from zoo.core.export import REPRESENTATIVE_ROWS, convert_to_tflite
from zoo.core.export import machine_description as machine
from zoo.core.recipes.spec import get_spec
from zoo.core.runtime.paths import EXPORTED_DIR, REPO_ROOT
from zoo.core.runtime.serving import example_inputs

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "full_integer.json")


def calibrated_file(model_dir, signature, manifest, folder, integer_products=False):
    """The signature alone, converted int8 with the exporter's own conversion (``zoo.core.export``), calibrated on
    the signature's example inputs: full-integer, or with ``integer_products`` only the convolutions and matrix
    products in int8."""
    entry = manifest["signatures"][signature]

    def representative(_):
        for i in range(REPRESENTATIVE_ROWS):
            yield example_inputs(entry, batch=1, seed=i)

    data = convert_to_tflite(os.path.join(model_dir, manifest["savedmodel"]["path"]), [signature], "int8",
                             representative, integer_products=integer_products)
    path = os.path.join(folder, f"{manifest['model']}.{'products' if integer_products else 'full'}_int8.tflite")
    with open(path, "wb") as f:
        f.write(data)
    return path


def timed(path, signature, entry, repeats):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path, num_threads=1).get_signature_runner(signature)
    row = {}
    for batch in (1, 64):
        inputs = example_inputs(entry, batch=batch, seed=12345)
        times, outputs = call_times(lambda: runner(**inputs), repeats, warmup=3)
        row[f"batch{batch}_ms"] = round(float(np.median(times)) * 1000, 3)
        row[f"outputs_batch{batch}"] = outputs
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="dcgan,gan,vae,cdcgan")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    results = {"machine": machine(), "threads": 1, "repeats": args.repeats, "models": {}}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            model_dir = os.path.join(EXPORTED_DIR, name)
            with open(os.path.join(model_dir, "manifest.json")) as f:
                manifest = json.load(f)
            signature = get_spec(name).benchmark_signature
            entry = manifest["signatures"][signature]
            files = {"float32": os.path.join(model_dir, manifest["tflite"]["float32"]["path"]),
                     "committed_int8": os.path.join(model_dir, manifest["tflite"]["int8"]["path"]),
                     "full_integer_int8": calibrated_file(model_dir, signature, manifest, folder),
                     "integer_products_int8": calibrated_file(model_dir, signature, manifest, folder, True)}
            rows = {kind: timed(path, signature, entry, args.repeats) for kind, path in files.items()}
            reference = rows["float32"]["outputs_batch64"]
            for kind, row in rows.items():
                outputs = row.pop("outputs_batch64")
                row.pop("outputs_batch1")
                row["max_abs_difference_from_float32"] = round(
                    max(float(np.abs(outputs[k] - reference[k]).max()) for k in reference), 4)
                row["bytes"] = os.path.getsize(files[kind])
            results["models"][name] = {"signature": signature, "committed_int8_kind": int8_kind(manifest), **rows}
            print(f"{name} ({signature}): " + "; ".join(
                f"{kind} {row['batch1_ms']} / {row['batch64_ms']} ms, max diff {row['max_abs_difference_from_float32']}"
                for kind, row in rows.items()))
    import datetime

    results["date"] = datetime.date.today().isoformat()
    if os.path.isfile(RESULTS):  # models probed earlier stay, each with its own date and machine
        with open(RESULTS) as f:
            earlier = json.load(f)
        for name, entry in earlier["models"].items():
            if name not in results["models"]:
                results["models"][name] = {"date": earlier.get("date"), "machine": earlier.get("machine"), **entry}
    with open(RESULTS, "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
