"""Why the diffusion models' int8 files quantize only the convolutions and matrix products (issue 45).

    python -m benchmarks.denoiser_int8                 # the committed diffusion model, about 2 minutes
    python -m benchmarks.denoiser_int8 --repeats 5

Converts the committed model's ``denoise_step`` (one guided U-Net call) three ways from its own ``.keras``:
float32; int8 quantized whole (every op with an integer kernel in int8, calibrated as the export does:
``zoo.core.recipes.images.denoiser_calibration``); and "integer-products", the exported kind (only the
convolutions and matrix products in int8, ``zoo.core.export.PRODUCT_OPS``). For each: latency at batch 1
and 64 on one LiteRT thread (median of ``--repeats`` after 3 warm-up calls), and how far its noise estimate
is from float32's (RMS over 32 MNIST test digits noised to each timestep, their labels, guidance 2), beside
how far float32's estimate is from the noise actually added (the model's own error, for scale). The files go
to a temporary folder; the figures to benchmarks/results/denoiser_int8.json.
"""

import argparse
import json
import os
import tempfile

import numpy as np

from benchmarks.timing import call_times
from zoo.core.export import convert_to_tflite, machine_description, write_saved_model
from zoo.core.runtime.paths import EXPORTED_DIR, REPO_ROOT

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "denoiser_int8.json")
TIMESTEPS = (999, 900, 700, 500, 300, 100, 30, 5)
VARIANTS = ("float32", "int8_whole", "int8_integer_products")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)

    import keras
    from ai_edge_litert.interpreter import Interpreter

    from zoo.core.apps.ddim import add_noise
    from zoo.core.data.datasets import mnist_images
    from zoo.core.recipes.registry import get_recipe

    recipe = get_recipe("diffusion")
    model = keras.saving.load_model(os.path.join(EXPORTED_DIR, "diffusion", "diffusion.keras"), safe_mode=True)
    plan = recipe.export_plan(model, {}, 1, 1)
    step = [s for s in plan.signatures if s.name == "denoise_step"]
    alpha_bars = model.alpha_bars.numpy()
    digits, labels = mnist_images("test", limit=32)
    rng = np.random.default_rng(0)
    results = {"machine": machine_description(), "repeats": args.repeats, "variants": {}}
    with tempfile.TemporaryDirectory() as folder:
        write_saved_model(os.path.join(folder, "saved_model"), step)
        runners = {}
        for variant in VARIANTS:
            data = convert_to_tflite(os.path.join(folder, "saved_model"), ["denoise_step"],
                                     "float32" if variant == "float32" else "int8",
                                     None if variant == "float32" else plan.representative_inputs,
                                     integer_products=variant == "int8_integer_products")
            runners[variant] = Interpreter(model_content=data, num_threads=1).get_signature_runner("denoise_step")
            row = {"bytes": len(data)}
            for batch in (1, 64):
                inputs = {"images_t": rng.standard_normal((batch, 28, 28, 1)).astype(np.float32),
                          "timestep": np.full(batch, 500, np.int32), "labels": np.arange(batch, dtype=np.int32) % 10,
                          "guidance": np.full(batch, 2.0, np.float32)}
                times, _ = call_times(lambda: runners[variant](**inputs), args.repeats, warmup=3)
                row[f"batch{batch}_ms"] = round(float(np.median(times)) * 1000, 2)
            results["variants"][variant] = row
        errors = {}
        for t in TIMESTEPS:
            noise = rng.standard_normal(digits.shape).astype(np.float32)
            inputs = {"images_t": add_noise(digits * 2 - 1, noise, alpha_bars[t]).astype(np.float32), "timestep": np.full(len(digits), t, np.int32),
                      "labels": labels.astype(np.int32), "guidance": np.full(len(digits), 2.0, np.float32)}
            estimates = {v: runners[v](**inputs)["predicted_noise"] for v in VARIANTS}
            errors[t] = {"float32_vs_true_noise": float(np.sqrt(np.mean((estimates["float32"] - noise) ** 2))),
                         **{f"{v}_vs_float32": float(np.sqrt(np.mean((estimates[v] - estimates["float32"]) ** 2)))
                            for v in VARIANTS[1:]}}
        results["noise_estimate_rms"] = {str(t): {k: round(v, 3) for k, v in e.items()} for t, e in errors.items()}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(results, f, indent=2)
    print(f"{results['machine']}, one LiteRT thread, median of {args.repeats}\n")
    print("| denoise_step file | size | batch 1 | batch 64 |\n|---|---|---|---|")
    for variant, row in results["variants"].items():
        print(f"| {variant} | {row['bytes'] / 1e6:.2f} MB | {row['batch1_ms']:.2f} ms | {row['batch64_ms']:.1f} ms |")
    print("\n| timestep | float32 vs the noise added | int8 whole vs float32 | integer products vs float32 |\n"
          "|---|---|---|---|")
    for t, e in results["noise_estimate_rms"].items():
        print(f"| {t} | {e['float32_vs_true_noise']:.3f} | {e['int8_whole_vs_float32']:.3f} | "
              f"{e['int8_integer_products_vs_float32']:.3f} |")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
