"""Sample quality for MNIST generators that works offline.

The Fréchet distance between the feature statistics of real test digits and of
generated digits, where the features are the penultimate layer of a small MNIST
classifier the zoo trains and keeps (as TF-GAN's ``mnist_frechet_distance`` does
with its own classifier); and the classifier's view of class coverage.

The classifier lives in ``exported/mnist_classifier/`` with its sha256 in a
manifest; retrain it with ``python -m zoo.core.metrics.mnist`` (numbers measured with one
classifier are comparable only with numbers measured with the same one).

    FD = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2))
"""

import argparse
import datetime
import json
import os

import numpy as np

from zoo.core.runtime.errors import ArtifactNotFoundError, IntegrityError
from zoo.core.runtime.files import atomic_directory, sha256_of, write_json
from zoo.core.runtime.paths import EXPORTED_DIR

CLASSIFIER_DIR = os.path.join(EXPORTED_DIR, "mnist_classifier")
CLASSIFIER_FILE = "mnist_classifier.keras"
FEATURE_LAYER = "features"


def build_classifier():
    """A small CNN (about 99% test accuracy); its 128-d ``features`` layer feeds the FD."""
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1), name="images")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name="mnist_classifier")


def train_classifier(output_dir=CLASSIFIER_DIR, epochs=3, seed=0):
    """Train the metric's classifier on MNIST train, measure it on test, save it atomically."""
    import keras

    from zoo.core.data.datasets import mnist_images
    from zoo.core.training.trainer import set_seed

    set_seed(seed)
    x_train, y_train = mnist_images("train")
    x_test, y_test = mnist_images("test")
    model = build_classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, validation_split=0.0, shuffle=True)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    save_classifier(model, output_dir, {
        "test_accuracy": round(float(accuracy), 4),
        "training": {"command": f"python -m zoo.core.metrics.mnist --epochs {epochs} --seed {seed}",
                     "data": "MNIST train (60,000), evaluated on MNIST test (10,000)"},
        "created": datetime.date.today().isoformat(),
    })
    print(f"classifier test accuracy {accuracy:.4f}; saved to {output_dir}/")
    return output_dir


def save_classifier(model, output_dir, details):
    """Save the classifier's weights without optimizer state (a third of the size), atomically."""
    inference_copy = build_classifier()
    inference_copy.set_weights(model.get_weights())
    save_checked_model(inference_copy, output_dir, CLASSIFIER_FILE, {
        "model": "mnist_classifier",
        "purpose": "feature extractor for the classifier Fréchet distance and class coverage of MNIST generators",
        "feature_layer": FEATURE_LAYER,
        "input": "images float32 [batch, 28, 28, 1] in [0, 1]",
        **details,
    })


def save_checked_model(model, output_dir, filename, manifest):
    """Write ``model`` as ``output_dir/filename`` with a manifest holding its sha256, atomically."""
    with atomic_directory(output_dir) as tmp:
        path = os.path.join(tmp, filename)
        model.save(path)
        write_json(os.path.join(tmp, "manifest.json"), {
            "model": manifest["model"], "purpose": manifest["purpose"],
            "files": [{"path": filename, "sha256": sha256_of(path), "bytes": os.path.getsize(path)}],
            **{k: v for k, v in manifest.items() if k not in ("model", "purpose")},
        })


def load_checked_model(directory, train_command):
    """``(keras model, manifest)`` of a metric's classifier, its sha256 checked, loaded with ``safe_mode``."""
    import keras

    manifest_path = os.path.join(directory, "manifest.json")
    if not os.path.isfile(manifest_path):
        raise ArtifactNotFoundError(f"the metric's classifier is missing ({manifest_path}); "
                                    f"train it with `{train_command}`")
    with open(manifest_path) as f:
        manifest = json.load(f)
    entry = manifest["files"][0]
    path = os.path.join(directory, entry["path"])
    if sha256_of(path) != entry["sha256"]:
        raise IntegrityError(f"{path} does not match the sha256 in {manifest_path}")
    return keras.saving.load_model(path, safe_mode=True), manifest


def cross_entropy_sum(logits, targets):
    """Sum over positions of -log softmax(logits)[target], in float64 (NumPy only: the GPT benchmark's
    PyTorch side scores with it too)."""
    logits = np.asarray(logits, np.float64)
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return float(-np.take_along_axis(log_probs, np.asarray(targets)[..., None], axis=-1).sum())


def frechet_distance(mean_a, cov_a, mean_b, cov_b):
    """Fréchet distance between two Gaussians, in pure NumPy.

    tr((S_a S_b)^(1/2)) is computed as the sum of square roots of the eigenvalues
    of S_a^(1/2) S_b S_a^(1/2), which is symmetric, so ``eigh`` is stable here.
    """
    values, vectors = np.linalg.eigh(cov_a)
    sqrt_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
    trace_sqrt = np.sum(np.sqrt(np.clip(middle, 0, None)))
    diff = mean_a - mean_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)


def feature_stats(features):
    """The mean and covariance of ``features [n, d]``: what the Fréchet distance compares."""
    return features.mean(axis=0), np.cov(features, rowvar=False)


class MnistQuality:
    """Classifier Fréchet distance and class coverage of generated MNIST digits.

    Args:
        classifier_dir: folder with ``mnist_classifier.keras`` and its manifest.
    """

    def __init__(self, classifier_dir=CLASSIFIER_DIR):
        import keras

        classifier, self.manifest = load_checked_model(classifier_dir, "python -m zoo.core.metrics.mnist")
        self.model = keras.Model(classifier.inputs,
                                 [classifier.get_layer(FEATURE_LAYER).output, classifier.output])
        self._reference = None

    def features_and_classes(self, images, batch_size=500):
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != (28, 28, 1):
            raise ValueError(f"images must be [n, 28, 28, 1] in [0, 1], got {images.shape}")
        features, logits = self.model.predict(images, batch_size=batch_size, verbose=0)
        return features.astype(np.float64), np.argmax(logits, axis=-1)

    @staticmethod
    def _stats(features):
        return feature_stats(features)

    def reference(self):
        """Feature statistics of the 10,000 MNIST test digits (computed once)."""
        if self._reference is None:
            from zoo.core.data.datasets import mnist_images

            test_images, _ = mnist_images("test")
            self._reference = self._stats(self.features_and_classes(test_images)[0])
        return self._reference

    def evaluate(self, images):
        """Metrics of ``images`` ``[n, 28, 28, 1]`` in [0, 1] against MNIST test.

        Returns:
            frechet_distance: lower is better; real train digits score the floor.
            classes_covered: digits (of 10) that get at least 1% of the samples.
            class_fractions: the share of samples the classifier puts in each digit.
            class_kl_from_uniform: KL(class shares || uniform) in nats; 0 is perfectly even.
        """
        return self.evaluate_features(*self.features_and_classes(images))

    def evaluate_features(self, features, classes):
        """:meth:`evaluate`'s metrics from the classifier's features and classes of the images (from
        :meth:`features_and_classes`), for a caller that also needs the classes."""
        fractions = np.bincount(classes, minlength=10) / len(classes)
        nonzero = fractions[fractions > 0]
        return {
            "frechet_distance": round(frechet_distance(*self._stats(features), *self.reference()), 4),
            "classes_covered": int(np.sum(fractions >= 0.01)),
            "class_fractions": [round(float(f), 4) for f in fractions],
            "class_kl_from_uniform": round(float(np.sum(nonzero * np.log(nonzero * 10))), 4),
            "num_samples": int(len(classes)),
        }

    def real_data_floor(self, num_samples=10000):
        """The metrics of real MNIST *training* digits against the test digits."""
        from zoo.core.data.datasets import mnist_images

        train_images, _ = mnist_images("train", limit=num_samples)
        return self.evaluate(train_images)


def classifier_main(argv, prog, description, train, default_epochs, default_dir):
    """The command line that trains a metric's classifier (``python -m zoo.core.metrics.mnist``, ``...audio_metrics``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--epochs", type=int, default=default_epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=default_dir)
    args = parser.parse_args(argv)
    train(args.output_dir, args.epochs, args.seed)


def main(argv=None):
    classifier_main(argv, "python -m zoo.core.metrics.mnist", "Train the MNIST classifier behind the zoo's image metrics.",
                    train_classifier, 3, CLASSIFIER_DIR)


if __name__ == "__main__":
    main()
