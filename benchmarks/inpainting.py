"""Restoration: how often the zoo's MNIST classifier reads inpainted test digits as the true digit.

    python -m benchmarks.inpainting                      # diffusion and text2image, 100 digits per mask
    python -m benchmarks.inpainting --models diffusion --num-digits 40 --runtime tflite

For each model's exported ``inpaint`` signature (RePaint, the exported steps and resamplings): the first
``--num-digits`` MNIST test digits with the bottom half, the left half or a random half of the pixels hidden
(``zoo.core.recipes.inpainting``), completed twice: unconditionally (diffusion: label 10, text2image: the empty
prompt; guidance 0) and told the digit (diffusion: its label, guidance 2; text2image: "the digit D", guidance
3). Beside them, the same hole filled with the mean training digit, the baseline the issue names. Writes
``benchmarks/results/inpainting.json`` and ``inpainting_<model>.png`` (originals, masked, completions).
"""

import argparse
import datetime
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.core.export import machine_description as machine  # noqa: E402
from zoo.core.data import captions  # noqa: E402
from zoo.core.recipes import inpainting  # noqa: E402
from zoo.core.runtime import utf8  # noqa: E402
from zoo.core.runtime.paths import REPO_ROOT  # noqa: E402
from zoo.core.runtime.runners import load_exported  # noqa: E402

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "inpainting.json")
NULL_LABEL = 10


def completer(runner, name, conditioned):
    """``complete(images, mask, noise, labels) -> images`` through the model's ``inpaint`` signature."""

    def complete(images, mask, noise, labels):
        n = len(images)
        if name == "diffusion":
            extra = {"labels": (labels if conditioned else np.full(n, NULL_LABEL)).astype(np.int32),
                     "guidance": np.full(n, 2.0 if conditioned else 0.0, np.float32)}
        else:
            prompts = [captions.fill(captions.CLASS_PROMPTS["en"], int(d), "en") if conditioned else ""
                       for d in labels]
            extra = {"text": utf8.encode_texts(prompts),
                     "guidance": np.full(n, 3.0 if conditioned else 0.0, np.float32)}
        return runner("inpaint", images=images, mask=mask, noise=noise, **extra)["images"]

    return complete


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["diffusion", "text2image"])
    parser.add_argument("--num-digits", type=int, default=100)
    parser.add_argument("--runtime", default="savedmodel", choices=["savedmodel", "keras", "tflite"])
    args = parser.parse_args(argv)
    from zoo.core.metrics.mnist import MnistQuality

    quality = MnistQuality()
    results = json.load(open(RESULTS)) if os.path.exists(RESULTS) else {}
    for name in args.models:
        runner = load_exported(name, runtime=args.runtime)
        entry = {"runtime": args.runtime, "num_digits": args.num_digits,
                 "inpaint_steps": runner.manifest["inpaint_steps"],
                 "inpaint_resample": runner.manifest["inpaint_resample"]}
        for conditioned in (False, True):
            began = time.perf_counter()
            scores, pictures = inpainting.completion_quality(completer(runner, name, conditioned), args.num_digits,
                                                             quality=quality)
            seconds = time.perf_counter() - began
            key = "told_the_digit" if conditioned else "unconditional"
            entry[key] = scores
            entry[f"{key}_seconds_per_image"] = round(seconds / (args.num_digits * len(scores)), 3)
            print(name, key, json.dumps(scores), flush=True)
            if not conditioned:
                inpainting.save_completions(
                    pictures, os.path.join(REPO_ROOT, "benchmarks", "results", f"inpainting_{name}.png"),
                    f"{name} inpaint, unconditional: per mask (bottom, left, random half) the test digits, the known "
                    "pixels (hole grey), the completions")
        entry.update({"machine": machine(), "date": datetime.date.today().isoformat(),
                      "command": "python -m benchmarks.inpainting " + " ".join(argv or sys.argv[1:])})
        results[name] = entry
        with open(RESULTS + ".tmp", "w") as f:
            json.dump(results, f, indent=1, ensure_ascii=False)
        os.replace(RESULTS + ".tmp", RESULTS)
    return results


if __name__ == "__main__":
    main()
