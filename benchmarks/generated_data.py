"""Generated digits as training data: Classification Accuracy Score and augmentation, per conditional model.

- **CAS** (Ravuri & Vinyals 2019, "Classification Accuracy Score for Conditional Generative
  Models", arXiv:1905.10887): the zoo's MNIST classifier architecture
  (``zoo.core.metrics.mnist.build_classifier``) trained only on generated digits (``--per-label`` of
  each asked label, 6,000 by default: 60,000 like MNIST's training set), tested on the 10,000
  real test digits; against the same classifier, same recipe, trained on the 60,000 real
  training digits.
- **Augmentation**: the classifier trained on 1% of the real labels (``--real-per-label`` = 60
  of each digit, 600 in all) alone, and on those 600 plus generated digits (``--extra-per-label``
  of each label from the generated pool), the same number of steps for both; test accuracy over
  ``--seeds`` seeds (each seed picks other real digits, other generated ones, other weights).

Models: every conditional image model of the zoo, through its exported SavedModel
(``cdcgan``: the asked digit's label; ``diffusion``: the label with guidance 2 and its
exported DDIM loop; ``text2image``: the prompt "the digit <name>" with its exported loop).
Each model's pool is also scored as an image model: classifier FD of its first 10,000 digits (as
the manifests measure it) and the share the metric classifier reads as the asked digit.
Generated digits are cached in chunks under ``--cache-dir`` so a long run that stops resumes.

    python -m benchmarks.generated_data                        # cdcgan, diffusion, text2image
    python -m benchmarks.generated_data --models cdcgan
    python -m benchmarks.generated_data --per-label 100 --epochs 1 --seeds 1   # a quick look
    python -m benchmarks.generated_data --models cdcgan --pool-only            # FD and label accuracy only
    python -m benchmarks.generated_data --markdown                             # the table for BENCHMARKS.md

Writes benchmarks/results/generated_data.json (after every model) and, when every model's digits are
cached, generated_data.png (a block of digits 0-9 per model: what each classifier trained on).
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
NUM_CLASSES = 10


def digit_models():
    """The registered models that draw the digit they are asked for (their spec's ``digits``), in order."""
    from zoo.core.recipes.registry import model_names
    from zoo.core.recipes.spec import get_spec

    return tuple(name for name in model_names() if get_spec(name).digits is not None)


def digits_of(name):
    from zoo.core.recipes.spec import get_spec

    return get_spec(name).digits


def chunk_path(cache_dir, index, chunk=1000, seed=0):
    """Where chunk ``index`` of a pool drawn in chunks of ``chunk`` from noise ``seed`` is cached."""
    return os.path.join(cache_dir, f"chunk-{index:04d}-of-{chunk}-seed-{seed}.npy")


def generated_digits(draw, runner, per_label, seed, cache_dir=None, chunk=1000, progress=True):
    """``(images [n, 28, 28, 1] float32 in [0, 1], labels)``: ``per_label`` digits of each label, labels
    cycling 0-9, drawn in chunks of ``chunk`` (each from its own noise seed), cached as uint8 when
    ``cache_dir`` is given so an interrupted run keeps what it drew."""
    total = per_label * NUM_CLASSES
    labels = (np.arange(total) % NUM_CLASSES).astype(np.int32)
    images, drawing_seconds, drawn = [], 0.0, 0
    for index, start in enumerate(range(0, total, chunk)):
        path = chunk_path(cache_dir, index, chunk, seed) if cache_dir else None
        cached = bool(path and os.path.isfile(path))
        started = time.perf_counter()
        if cached:
            pixels = np.load(path, allow_pickle=False)
        else:
            pixels = np.clip(np.round(draw(runner, labels[start : start + chunk], seed * 100_003 + index) * 255),
                             0, 255).astype(np.uint8)
            if path:
                os.makedirs(cache_dir, exist_ok=True)
                np.save(path + ".tmp.npy", pixels)
                os.replace(path + ".tmp.npy", path)  # a chunk is there whole or not at all
        images.append(pixels)
        if not cached:
            drawing_seconds, drawn = drawing_seconds + time.perf_counter() - started, drawn + len(pixels)
        if progress:
            done = min(start + chunk, total)
            rate = (f" ({drawing_seconds / drawn * 1000:.1f} s per 1,000 drawn here; about "
                    f"{drawing_seconds / drawn * (total - done) / 60:.1f} minutes left)" if drawn and done < total else "")
            print(f"  {'read' if cached else 'drew'} {done}/{total}{rate}", flush=True)
    return np.concatenate(images).astype(np.float32) / 255.0, labels


def pool_quality(generated, fd_samples=10_000):
    """The drawn pool as the zoo's image metrics read it: the classifier FD of its first ``fd_samples``
    digits (labels cycling 0-9, so every digit equally) against MNIST test, the measure and sample count
    of the exported models' manifests, so models compare on equal terms; and the share of the whole pool
    the metric classifier reads as the digit asked for."""
    from zoo.core.metrics.mnist import MnistQuality

    images, labels = generated
    quality = MnistQuality()
    features, classes = quality.features_and_classes(images)
    n = min(fd_samples, len(images))
    measured = quality.evaluate_features(features[:n], classes[:n])
    return {"frechet_distance": measured["frechet_distance"], "classes_covered": measured["classes_covered"],
            "fd_samples": n, "label_accuracy": round(float(np.mean(classes == labels)), 4),
            "label_accuracy_samples": int(len(labels))}


def pool_tiles(pools, per_digit):
    """``(tiles, columns)``: row ``r`` holds the ``r``-th draw of digits 0-9 of each pool (labels cycle 0-9,
    so digit d's r-th draw is at d + 10 r), a blank (white) tile between pools."""
    blank = np.ones((1, *pools[0].shape[1:]), np.float32)
    tiles = []
    for row in range(per_digit):
        for index, pool in enumerate(pools):
            tiles += [pool[row * NUM_CLASSES : (row + 1) * NUM_CLASSES]] + ([blank] if index < len(pools) - 1 else [])
    return np.concatenate(tiles), len(pools) * (NUM_CLASSES + 1) - 1


def draw_pools(cache_dir, path, models=None, per_digit=8):
    """A picture of what each classifier trained on: the first ``per_digit`` cached digits of each label,
    a block of columns 0-9 per model, blocks side by side with a blank column between them. Drawn only when
    every model's first chunk is cached here, so a checkout that drew one model does not replace the
    committed picture with a partial one; returns the path, or None."""
    from zoo.core.data.plotting import save_image_grid

    models = digit_models() if models is None else models
    first_chunks = [chunk_path(os.path.join(cache_dir, name), 0) for name in models]
    missing = [name for name, file in zip(models, first_chunks) if not os.path.isfile(file)]
    if missing:
        print(f"{path} not redrawn: no cached digits of {', '.join(missing)} under {cache_dir}", flush=True)
        return None
    pools = [np.load(file, allow_pickle=False).astype(np.float32) / 255.0 for file in first_chunks]
    tiles, columns = pool_tiles(pools, per_digit)
    return save_image_grid(tiles, path, columns=columns,
                           title=f"What each classifier trained on: columns 0-9 of {', '.join(models)}, "
                                 f"left to right ({per_digit} draws of each digit)")


# === The classifier, trained on whatever it is given ===
def train_and_test(images, labels, test_images, test_labels, seed, epochs=None, steps=None, batch_size=128):
    """Test accuracy of ``zoo.core.metrics.mnist.build_classifier`` trained on (images, labels), for ``epochs``
    epochs or ``steps`` steps (the pool reshuffled and repeated), Adam 1e-3: the metric classifier's recipe."""
    import keras
    import tensorflow as tf

    from zoo.core.metrics.mnist import build_classifier
    from zoo.core.training.trainer import set_seed

    set_seed(seed)
    model = build_classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    dataset = tf.data.Dataset.from_tensor_slices((images.astype(np.float32), labels.astype(np.int32)))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if steps is not None:
        model.fit(dataset.repeat().batch(batch_size), steps_per_epoch=steps, epochs=1, verbose=0)
    else:
        model.fit(dataset.batch(batch_size), epochs=epochs, verbose=0)
    _, accuracy = model.evaluate(test_images, test_labels, batch_size=1000, verbose=0)
    return round(float(accuracy), 4)


def real_subset(images, labels, per_label, seed):
    """``per_label`` real digits of each class, chosen by ``seed``."""
    rng = np.random.default_rng(seed)
    picked = np.concatenate([rng.choice(np.flatnonzero(labels == d), per_label, replace=False)
                             for d in range(NUM_CLASSES)])
    return images[picked], labels[picked]


def classification_accuracy_score(generated, real_train, real_test, seed=0, epochs=3, real_data_accuracy=None):
    """CAS and the real-data accuracy it is read against (same classifier, same recipe); the latter is
    taken as given when ``real_data_accuracy`` is (the same run, measured for another model)."""
    if real_data_accuracy is None:
        real_data_accuracy = train_and_test(*real_train, *real_test, seed, epochs=epochs)
    return {"cas": train_and_test(*generated, *real_test, seed, epochs=epochs),
            "real_data_accuracy": real_data_accuracy}


def augmentation(generated, real_train, real_test, seeds, real_per_label=60, extra_per_label=600, steps=1000,
                 real_only=None):
    """Accuracy of the classifier on ``real_per_label`` real digits a class, alone and with
    ``extra_per_label`` generated digits a class, ``steps`` steps each, over ``seeds``. ``real_only``:
    the real-only arm's accuracies per seed, when another model's run measured them already."""
    alone, mixed = [], []
    for index, seed in enumerate(seeds):
        real_images, real_labels = real_subset(*real_train, real_per_label, seed)
        extra_images, extra_labels = real_subset(*generated, extra_per_label, seed)
        alone.append(real_only[index] if real_only is not None else
                     train_and_test(real_images, real_labels, *real_test, seed, steps=steps))
        mixed.append(train_and_test(np.concatenate([real_images, extra_images]),
                                    np.concatenate([real_labels, extra_labels]), *real_test, seed, steps=steps))
    summary = lambda values: {"mean": round(float(np.mean(values)), 4),  # noqa: E731
                              "std": round(float(np.std(values)), 4), "per_seed": values}
    return {"real_only": summary(alone), "real_plus_generated": summary(mixed),
            "real_per_label": real_per_label, "generated_per_label": extra_per_label, "steps": steps,
            "seeds": list(seeds)}


def real_arms_measured(results, epochs, seeds, real_per_label, steps):
    """``(model, entry)`` of a model already scored with these settings, or ``(None, None)``. Both real-data
    arms (the classifier on the 60,000 real digits; augmentation's real-only arm) depend on the settings
    alone, not on the model, so each is trained once and its numbers serve every model after it."""
    for name in digit_models():
        entry = results.get(name)
        if (entry and entry.get("classifier_epochs") == epochs and entry["augmentation"]["seeds"] == list(seeds)
                and entry["augmentation"]["real_per_label"] == real_per_label
                and entry["augmentation"]["steps"] == steps):
            return name, entry
    return None, None


def markdown_table(results):
    """The results file as BENCHMARKS.md's table: a row per fully scored model, the best of each quality
    column in bold (a model with only its pool scored is left out: its row would be mostly empty)."""
    rows = [name for name in digit_models() if "cas" in results.get(name, {})]
    pools = {name: results[name].get("generated_pool") for name in rows}

    def best(value, values, low=False, unit="", text=None):
        text = text or f"{value}{unit}"
        return f"**{text}**" if value == (min(values) if low else max(values)) and len(values) > 1 else text

    def mean_std(arm):
        return f"{arm['mean']:.4f} ± {arm['std']:.4f}"

    cas = [results[n]["cas"] for n in rows]
    mixed = [results[n]["augmentation"]["real_plus_generated"]["mean"] for n in rows]
    # the pool's numbers as the table prints them, so that ties in print are ties in bold
    fd = {n: round(p["frechet_distance"], 2) for n, p in pools.items() if p}
    asked = {n: round(100 * p["label_accuracy"], 1) for n, p in pools.items() if p}
    lines = ["| model | trained on generated only (CAS) | real-data classifier | 600 real | 600 real + 6,000 generated "
             "| pool: FD (first 10,000) / read as asked | minutes (draw / CAS / augmentation) |",
             "|---|---|---|---|---|---|---|"]
    for name in rows:
        entry = results[name]
        augmented = entry["augmentation"]
        with_generated = best(augmented["real_plus_generated"]["mean"], mixed,
                              text=mean_std(augmented["real_plus_generated"]))
        pool_cell = (f"{best(fd[name], fd.values(), low=True, text=f'{fd[name]:.2f}')} / "
                     f"{best(asked[name], asked.values(), unit='%')}" if name in fd else "")
        minutes = " / ".join(str(value) for value in entry["minutes"].values())
        lines.append(f"| {digits_of(name).row_label} | {best(entry['cas'], cas)} | {entry['real_data_accuracy']} "
                     f"| {mean_std(augmented['real_only'])} | {with_generated} | {pool_cell} | {minutes} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None, help="comma-separated (default: every model whose spec draws "
                                                       "asked-for digits: " + ", ".join(digit_models()) + ")")
    parser.add_argument("--per-label", type=int, default=6000, help="generated digits per label (default 6000)")
    parser.add_argument("--epochs", type=int, default=3, help="classifier epochs for CAS and the real baseline")
    parser.add_argument("--seeds", type=int, default=3, help="augmentation seeds (default 3)")
    parser.add_argument("--real-per-label", type=int, default=60)
    parser.add_argument("--extra-per-label", type=int, default=600)
    parser.add_argument("--steps", type=int, default=1000, help="classifier steps of each augmentation arm")
    parser.add_argument("--markdown", action="store_true",
                        help="only print the results file's table (Markdown), for BENCHMARKS.md")
    parser.add_argument("--pool-only", action="store_true",
                        help="draw (or read the cached digits) and measure only the pool's FD and label accuracy")
    parser.add_argument("--cache-dir", default=os.path.join("runs", "generated-data"))
    parser.add_argument("--output", default=os.path.join(RESULTS, "generated_data.json"))
    args = parser.parse_args(argv)
    if args.markdown:
        with open(args.output) as f:
            print(markdown_table(json.load(f)))
        return

    from zoo.core.runtime.runners import load_exported
    from zoo.core.data.datasets import mnist_images
    from zoo.core.export import machine_description
    from zoo.core.runtime.files import write_json

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else list(digit_models())
    unknown = sorted(set(models) - set(digit_models()))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(digit_models())}")
    real_train, real_test = mnist_images("train"), mnist_images("test")
    header = {"machine": machine_description(), "classifier": "zoo.core.metrics.mnist.build_classifier, Adam 1e-3, "
              "batch 128", "test_set": "MNIST test (10,000 real digits)"}

    def saved_results():
        """The results file as it is now, read again before each write: a run of this script for another
        model that wrote meanwhile (a model's drawing can take hours) keeps its entry."""
        if not os.path.isfile(args.output):
            return {}
        with open(args.output) as f:
            return json.load(f)

    def save(name, update):
        results = {**saved_results(), **header}
        update(results)
        write_json(args.output, results)

    for name in models:
        print(f"=== {name}: drawing {args.per_label} digits per label", flush=True)
        runner = load_exported(name, runtime="savedmodel")
        started = time.perf_counter()
        generated = generated_digits(digits_of(name).draw, runner, args.per_label, seed=0,
                                     cache_dir=os.path.join(args.cache_dir, name))
        drawing_minutes = (time.perf_counter() - started) / 60
        pool = pool_quality(generated)
        print(f"{name}: FD {pool['frechet_distance']} on {pool['fd_samples']}, "
              f"{pool['label_accuracy']:.1%} read as the asked digit", flush=True)
        if args.pool_only:
            save(name, lambda results: results.setdefault(name, {}).update(generated_pool=pool))
            continue
        donor, measured = real_arms_measured({k: v for k, v in saved_results().items() if k != name}, args.epochs,
                                             range(args.seeds), args.real_per_label, args.steps)
        started = time.perf_counter()
        cas = classification_accuracy_score(generated, real_train, real_test, epochs=args.epochs,
                                            real_data_accuracy=measured and measured["real_data_accuracy"])
        cas_minutes = (time.perf_counter() - started) / 60
        print(f"{name}: CAS {cas['cas']} (real {cas['real_data_accuracy']})", flush=True)
        started = time.perf_counter()
        augmented = augmentation(generated, real_train, real_test, range(args.seeds), args.real_per_label,
                                 min(args.extra_per_label, args.per_label), args.steps,
                                 real_only=measured and measured["augmentation"]["real_only"]["per_seed"])
        entry = {
            "generated_per_label": args.per_label, "classifier_epochs": args.epochs, **cas,
            "generated_pool": pool,
            "augmentation": augmented,
            **({"real_data_arms_from": donor} if donor else {}),
            "minutes": {"drawing (cached chunks count as 0)": round(drawing_minutes, 1),
                        "cas" if donor else "cas_and_real_baseline": round(cas_minutes, 1),
                        "augmentation": round((time.perf_counter() - started) / 60, 1)},
            "how_drawn": digits_of(name).how,
        }
        print(f"{name}: augmentation {augmented['real_only']['mean']} -> {augmented['real_plus_generated']['mean']}",
              flush=True)
        save(name, lambda results: results.update({name: entry}))
    draw_pools(args.cache_dir, args.output.replace(".json", ".png"))
    print(json.dumps(saved_results(), indent=1))


if __name__ == "__main__":
    main()
