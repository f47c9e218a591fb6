"""How often can a perfect inpainter's completion be read as the true digit? The ceiling of the issue's score.

    python -m benchmarks.inpainting_ceiling              # bottom, left and random-half masks (~3 minutes here)

Completing a hidden half faithfully means drawing from p(digit image | visible half). When the visible half
fits several digits (the top of a 4 and of a 9), a faithful completion is the true digit only as often as the
true digit's posterior probability p(true digit | visible half), whatever the model; so the best a faithful
unconditional inpainter can score, on average, is E[p(true | visible)] (for a reader that always recognizes a
well-drawn digit). The mean-digit fill is not bound by this: a grey blob in the hole lets the reader pick the
most likely digit (the argmax) instead of drawing one.

This estimates p(digit | visible pixels) with a small CNN trained on masked MNIST training digits (the masks of
``zoo.core.recipes.inpainting``; 55,000 train, 5,000 held out to fit a softmax temperature so its probabilities
are calibrated), and reports, on the MNIST test digits (all 10,000, and the first 100 the inpainting benchmark
scores): the argmax accuracy (what a hole filled to be read as the likeliest digit can reach) and E[p(true)]
(what a faithful sample reaches). Writes ``benchmarks/results/inpainting_ceiling.json``.
"""

import argparse
import datetime
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.core.export import machine_description as machine  # noqa: E402
from zoo.core.recipes.inpainting import SCORED_MASKS, named_mask  # noqa: E402
from zoo.core.runtime.paths import REPO_ROOT  # noqa: E402

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "inpainting_ceiling.json")
HELD_OUT = 5000


def visible(images, mask_name, seed):
    """The masked digits as the classifier sees them: the known pixels (hole 0) and the mask itself."""
    mask = named_mask(mask_name, len(images), seed)
    return np.concatenate([images * mask, mask], axis=-1)


def posterior_classifier(seed):
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 2)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dropout(0.3), layers.Dense(128, activation="relu"), layers.Dense(10),
    ])


def calibrated_temperature(logits, labels):
    """The softmax temperature that minimizes the held-out negative log-likelihood (Guo et al. 2017)."""
    def nll(temperature):
        scaled = logits / temperature
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        log_p = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
        return -log_p[np.arange(len(labels)), labels].mean()

    grid = np.exp(np.linspace(np.log(0.25), np.log(4.0), 200))
    return float(grid[np.argmin([nll(t) for t in grid])])


def probabilities(logits, temperature):
    scaled = logits / temperature
    scaled = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return scaled / scaled.sum(axis=1, keepdims=True)


def ceiling(mask_name, epochs, seed, first):
    import keras

    from zoo.core.data.datasets import mnist_images

    train_images, train_labels = mnist_images("train")
    test_images, test_labels = mnist_images("test")
    # the training digits get masks of their own draws (random-half masks differ per digit and seed)
    inputs = visible(train_images, mask_name, seed + 1)
    model = posterior_classifier(seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(inputs[:-HELD_OUT], train_labels[:-HELD_OUT], batch_size=128, epochs=epochs, verbose=0, shuffle=True)
    temperature = calibrated_temperature(model.predict(inputs[-HELD_OUT:], batch_size=1000, verbose=0),
                                         train_labels[-HELD_OUT:])
    # the test digits get the inpainting benchmark's own masks (its seed 0)
    p = probabilities(model.predict(visible(test_images, mask_name, 0), batch_size=1000, verbose=0), temperature)
    p_true = p[np.arange(len(test_labels)), test_labels]
    argmax_right = p.argmax(axis=1) == test_labels
    return {"temperature": round(temperature, 3),
            "all_test_digits": {"argmax_accuracy": round(float(argmax_right.mean()), 4),
                                "faithful_sample_accuracy": round(float(p_true.mean()), 4)},
            f"first_{first}": {"argmax_accuracy": round(float(argmax_right[:first].mean()), 4),
                               "faithful_sample_accuracy": round(float(p_true[:first].mean()), 4)}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--masks", nargs="+", default=list(SCORED_MASKS), choices=SCORED_MASKS)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=100, help="also score the first N test digits (the "
                        "inpainting benchmark's)")
    args = parser.parse_args(argv)
    results = {}
    for name in args.masks:
        results[name] = ceiling(name, args.epochs, args.seed, args.first)
        print(name, json.dumps(results[name]), flush=True)
    results.update({"machine": machine(), "date": datetime.date.today().isoformat(),
                    "command": "python -m benchmarks.inpainting_ceiling " + " ".join(argv or sys.argv[1:])})
    with open(RESULTS + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(RESULTS + ".tmp", RESULTS)
    return results


if __name__ == "__main__":
    main()
