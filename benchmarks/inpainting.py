"""Restoration: how often the zoo's MNIST classifier reads inpainted test digits as the true digit.

    python -m benchmarks.inpainting                      # diffusion and text2image, 100 digits per mask
    python -m benchmarks.inpainting --models diffusion --num-digits 40 --runtime tflite

For each model's exported ``inpaint`` signature (RePaint, the exported steps and resamplings): the first
``--num-digits`` MNIST test digits with the bottom half, the left half or a random half of the pixels hidden
(``zoo.core.recipes.inpainting``), completed in up to three ways (``--modes``): ``unconditional`` (diffusion:
label 10, text2image: the empty prompt; guidance 0), ``read_digit`` (the same inputs with guidance 2 / 3: the
model reads the digit from the known pixels with its recognizer and completes the image as that digit) and
``told_the_digit`` (diffusion: its label, guidance 2; text2image: "the digit D", guidance 3). Beside them, the
same hole filled with the mean training digit, the baseline the issue names. Writes
``benchmarks/results/inpainting.json`` (a run updates the modes it ran) and ``inpainting_<model>.png``
(originals, masked, completions of the first mode run).
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


MODES = ("unconditional", "read_digit", "told_the_digit")
GUIDANCE = {"diffusion": 2.0, "text2image": 3.0}


def completer(runner, name, mode):
    """``complete(images, mask, noise, labels) -> images`` through the model's ``inpaint`` signature."""
    told = mode == "told_the_digit"
    guidance = 0.0 if mode == "unconditional" else GUIDANCE[name]

    def complete(images, mask, noise, labels):
        n = len(images)
        if name == "diffusion":
            extra = {"labels": (labels if told else np.full(n, NULL_LABEL)).astype(np.int32)}
        else:
            prompts = [captions.fill(captions.CLASS_PROMPTS["en"], int(d), "en") if told else "" for d in labels]
            extra = {"text": utf8.encode_texts(prompts)}
        return runner("inpaint", images=images, mask=mask, noise=noise, guidance=np.full(n, guidance, np.float32),
                      **extra)["images"]

    return complete


def read_digit_accuracy(runner, num_digits, seed=0):
    """How often the ``read_digit`` signature names the true digit, per scored mask, on the first
    ``num_digits`` test digits and on all 10,000 (the masks ``completion_quality`` uses)."""
    from zoo.core.data.datasets import mnist_images

    images, labels = mnist_images("test")
    scores = {}
    for name in inpainting.SCORED_MASKS:
        mask = inpainting.named_mask(name, len(images), seed)
        read = np.concatenate([runner("read_digit", images=images[i:i + 1000], mask=mask[i:i + 1000])["digits"]
                               for i in range(0, len(images), 1000)])
        scores[name] = {f"first_{num_digits}": round(float(np.mean(read[:num_digits] == labels[:num_digits])), 4),
                        "all_test_digits": round(float(np.mean(read == labels)), 4)}
    return scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["diffusion", "text2image"])
    parser.add_argument("--num-digits", type=int, default=100)
    parser.add_argument("--runtime", default="savedmodel", choices=["savedmodel", "keras", "tflite"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    args = parser.parse_args(argv)
    from zoo.core.metrics.mnist import MnistQuality

    quality = MnistQuality()
    results = json.load(open(RESULTS)) if os.path.exists(RESULTS) else {}
    for name in args.models:
        runner = load_exported(name, runtime=args.runtime)
        entry = results.get(name, {})
        if (entry.get("runtime"), entry.get("num_digits")) != (args.runtime, args.num_digits):
            entry = {}  # other settings: the modes not run now would not compare
        run = {key: entry.pop(key) for key in ("machine", "date", "command") if key in entry}
        for mode in MODES:  # an entry written before runs were recorded per mode: its run was every mode's
            if run and mode in entry:
                entry.setdefault(f"{mode}_run", run)
        entry.update({"runtime": args.runtime, "num_digits": args.num_digits,
                      "inpaint_steps": runner.manifest["inpaint_steps"],
                      "inpaint_resample": runner.manifest["inpaint_resample"]})
        for mode in args.modes:
            began = time.perf_counter()
            scores, pictures = inpainting.completion_quality(completer(runner, name, mode), args.num_digits,
                                                             quality=quality)
            seconds = time.perf_counter() - began
            entry[mode] = scores
            if mode == "read_digit":
                entry["read_digit_accuracy"] = read_digit_accuracy(runner, args.num_digits)
                print(name, "read_digit_accuracy", json.dumps(entry["read_digit_accuracy"]), flush=True)
            entry[f"{mode}_seconds_per_image"] = round(seconds / (args.num_digits * len(scores)), 3)
            entry[f"{mode}_run"] = {"machine": machine(), "date": datetime.date.today().isoformat(),
                                    "command": "python -m benchmarks.inpainting " + " ".join(argv or sys.argv[1:])}
            print(name, mode, json.dumps(scores), flush=True)
            if mode == args.modes[0]:
                inpainting.save_completions(
                    pictures, os.path.join(REPO_ROOT, "benchmarks", "results", f"inpainting_{name}.png"),
                    f"{name} inpaint, {mode.replace('_', ' ')}: per mask (bottom, left, random half) the test "
                    "digits, the known pixels (hole grey), the completions")
        results[name] = entry
        with open(RESULTS + ".tmp", "w") as f:
            json.dump(results, f, indent=1, ensure_ascii=False)
        os.replace(RESULTS + ".tmp", RESULTS)
    return results


if __name__ == "__main__":
    main()
