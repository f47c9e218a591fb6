"""Which held-out sentence a CLIP gets wrong, and as what: zero-shot accuracy per frame and per digit.

    python -m benchmarks.clip_sentences                              # the exported CLIP (Keras file)
    python -m benchmarks.clip_sentences --run-dir runs/clip          # a training run's newest checkpoint
    python -m benchmarks.clip_sentences --limit 2000 --frame "do you think it is {np}?"

The export reports each held-out family's mean (``zero_shot_held_out_<language>_<family>`` in the manifest);
this takes a family apart: every frame of every held-out family (``zoo.core.data.captions.HELD_OUT_FAMILIES``,
filled with "a seven" / "一个七"), its accuracy on the MNIST test digits, each digit's accuracy, and for a digit
below 0.9 the digits its images went to and how similar its prompt is to the other nine. A training run can be
read while it trains (its newest checkpoint), which is how a caption change that breaks another sentence shows
early. Writes ``benchmarks/results/clip_sentences.json``.
"""

import argparse
import datetime
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.core.export import machine_description as machine  # noqa: E402
from zoo.core.runtime.paths import EXPORTED_DIR, REPO_ROOT  # noqa: E402

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "clip_sentences.json")
WEAK_DIGIT = 0.9


def frame_report(runner, image_embeddings, labels, frame, language):
    from zoo.clip.recipe import encode_prompts
    from zoo.core.data import captions

    prompts = captions.held_out_prompts(frame, language)
    text = encode_prompts(runner, prompts)
    predicted = np.argmax(image_embeddings @ text.T, axis=1)
    per_digit = [float((predicted[labels == d] == d).mean()) for d in range(10)]
    report = {"frame": frame, "accuracy": round(float((predicted == labels).mean()), 4),
              "per_digit": [round(a, 3) for a in per_digit], "weak_digits": {}}
    for digit in (d for d in range(10) if per_digit[d] < WEAK_DIGIT):
        report["weak_digits"][prompts[digit]] = {
            "read_as": np.bincount(predicted[labels == digit], minlength=10).tolist(),
            "prompt_similarity": [round(float(s), 2) for s in text[digit] @ text.T]}
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", help="a training run (its newest checkpoint) instead of the export")
    parser.add_argument("--exported-dir", default=EXPORTED_DIR)
    parser.add_argument("--limit", type=int, default=None, help="the first N test digits (default: all 10,000)")
    parser.add_argument("--frame", action="append", help="only this held-out frame (repeatable)")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)

    from zoo.clip.recipe import encode_images
    from zoo.core.data import captions
    from zoo.core.data.datasets import mnist_images
    from zoo.core.recipes.commands import load, load_run
    from zoo.core.recipes.registry import get_recipe
    from zoo.core.runtime.runners import ModelRunner

    if args.run_dir:  # a checkpoint has no export to load: the recipe's signatures on the model in memory
        model, _, state = load_run("clip", args.run_dir)
        runner, source = ModelRunner(get_recipe("clip"), model), f"{args.run_dir} (step {state.get('step')})"
    else:
        runner, source = load("clip", runtime="keras", exported_dir=args.exported_dir), "exported clip.keras"
    images, labels = mnist_images("test", limit=args.limit)
    image_embeddings = encode_images(runner, images)
    record = {"date": datetime.date.today().isoformat(), "machine": machine(), "model": source,
              "test_digits": int(len(labels)), "families": {}}
    for language in captions.LANGUAGES:
        for family, frames in captions.HELD_OUT_FAMILIES[language].items():
            chosen = [f for f in frames if not args.frame or f in args.frame]
            if not chosen:
                continue
            reports = [frame_report(runner, image_embeddings, labels, f, language) for f in chosen]
            mean = round(float(np.mean([r["accuracy"] for r in reports])), 4)
            record["families"][f"{language} {family}"] = {"accuracy": mean, "frames": reports}
            print(f"{language} {family:14s} {mean:.4f}  " + "  ".join(f"{r['frame']!r} {r['accuracy']:.3f}"
                                                                      for r in reports), flush=True)
            for report in reports:
                for prompt, weak in report["weak_digits"].items():
                    print(f"    {prompt!r}: read as {weak['read_as']}; prompt similarity to the ten "
                          f"{weak['prompt_similarity']}")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(record, f, indent=2, ensure_ascii=False)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
