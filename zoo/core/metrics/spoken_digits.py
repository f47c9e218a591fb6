"""Quality of generated spoken digits, offline: a classifier the zoo trains and keeps, as it does for MNIST.

A small CNN on log-mel features (:func:`zoo.core.data.audio.log_mel`) trained on the Free
Spoken Digit Dataset's training takes, with two heads: the digit and the speaker.
For generated clips asked to say digit d in speaker s's voice it reports how often
it hears d (``digit_accuracy``) and s (``speaker_accuracy``), and the Fréchet
distance between its 128-d features of the clips and of the 300 real test clips.
The floor is real training clips scored the same way; the trivial baseline is each
digit's mean spectrogram turned back into sound by Griffin-Lim (:func:`griffin_lim_baseline`).

The classifier lives in ``exported/fsdd_classifier/`` with its sha256 in a manifest;
retrain it with ``python -m zoo.core.metrics.spoken_digits`` (numbers measured with one
classifier compare only with numbers measured with the same one).
"""

import datetime
import os

import numpy as np

from zoo.core.metrics.mnist import classifier_main, feature_stats, frechet_distance, load_checked_model, save_checked_model
from zoo.core.runtime.paths import EXPORTED_DIR

CLASSIFIER_DIR = os.path.join(EXPORTED_DIR, "fsdd_classifier")
CLASSIFIER_FILE = "fsdd_classifier.keras"
FEATURE_LAYER = "features"
TRAIN_COMMAND = "python -m zoo.core.metrics.spoken_digits"


def build_classifier(num_speakers=6):
    """log-mel ``[100, 40]`` -> (digit logits [10], speaker logits [num_speakers]); ``features`` is 128-d."""
    import keras
    from keras import layers

    from zoo.core.data.audio import MEL_BINS, MEL_FRAMES

    inputs = keras.Input((MEL_FRAMES, MEL_BINS), name="log_mel")
    x = layers.Reshape((MEL_FRAMES, MEL_BINS, 1))(inputs)
    x = layers.Rescaling(1 / 3.0, offset=4 / 3.0)(x)  # log-mel of FSDD: mean -4, std 3
    for filters in (32, 64, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)  # keeps the order of the sounds in time: "six" and "seven" differ there
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(0.3)(x)
    digit = layers.Dense(10, name="digit")(x)
    speaker = layers.Dense(num_speakers, name="speaker")(x)
    return keras.Model(inputs, [digit, speaker], name="fsdd_classifier")


def augment(audio, lengths, rng):
    """Random gain (x0.5..1.5) and a delay of up to 0.15 s (as far as the recording fits in the second)."""
    from zoo.core.data.audio import CLIP_SAMPLES

    out = np.zeros_like(audio)
    for i, (clip, length) in enumerate(zip(audio, np.minimum(lengths, CLIP_SAMPLES))):
        shift = int(rng.integers(0, max(min(1200, CLIP_SAMPLES - length), 0) + 1))
        out[i, shift:] = clip[: CLIP_SAMPLES - shift]
    return out * rng.uniform(0.5, 1.5, (len(audio), 1)).astype(np.float32)


def train_classifier(output_dir=CLASSIFIER_DIR, epochs=30, seed=0):
    """Train the metric's classifier on FSDD train (augmented), measure it on test, save it atomically."""
    import keras

    from zoo.core.data.audio import log_mel
    from zoo.core.data.datasets import spoken_digits
    from zoo.core.training.trainer import set_seed

    set_seed(seed)
    rng = np.random.default_rng(seed)
    train, test = spoken_digits("train"), spoken_digits("test")
    model = build_classifier(len(train.speaker_names))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=[loss, loss], metrics=[["accuracy"], ["accuracy"]])
    test_features = np.asarray(log_mel(test.audio))
    for epoch in range(epochs):
        features = np.asarray(log_mel(augment(train.audio, train.lengths, rng)))
        history = model.fit(features, (train.digits, train.speakers), batch_size=64, epochs=1, verbose=0,
                            shuffle=True)
        print(f"epoch {epoch + 1}/{epochs}: loss {history.history['loss'][-1]:.4f}")
    digit_logits, speaker_logits = model.predict(test_features, verbose=0)
    details = {
        "test_digit_accuracy": round(float(np.mean(digit_logits.argmax(-1) == test.digits)), 4),
        "test_speaker_accuracy": round(float(np.mean(speaker_logits.argmax(-1) == test.speakers)), 4),
    }
    inference_copy = build_classifier(len(train.speaker_names))  # without the optimizer's state: a third of the size
    inference_copy.set_weights(model.get_weights())
    save_checked_model(inference_copy, output_dir, CLASSIFIER_FILE, {
        "model": "fsdd_classifier",
        "purpose": "digit and speaker recognition and features for the Fréchet distance of generated spoken digits",
        "feature_layer": FEATURE_LAYER,
        "input": "log_mel float32 [batch, 100, 40] from zoo.core.data.audio.log_mel of 8 kHz one-second clips",
        "speakers": train.speaker_names,
        **details,
        "training": {"command": f"{TRAIN_COMMAND} --epochs {epochs} --seed {seed}",
                     "data": "FSDD takes 5-49 (2,700 clips, random gain and time shift), evaluated on takes 0-4 (300)"},
        "created": datetime.date.today().isoformat(),
    })
    print(f"classifier test accuracy: digit {details['test_digit_accuracy']:.4f}, speaker "
          f"{details['test_speaker_accuracy']:.4f}; saved to {output_dir}/")
    return output_dir


class SpokenDigitQuality:
    """Digit and speaker accuracy and classifier Fréchet distance of generated one-second clips."""

    def __init__(self, classifier_dir=CLASSIFIER_DIR):
        import keras

        classifier, self.manifest = load_checked_model(classifier_dir, TRAIN_COMMAND)
        self.model = keras.Model(classifier.inputs[0], [classifier.get_layer(FEATURE_LAYER).output, *classifier.outputs])
        self._reference = None

    def features_and_classes(self, audio, batch_size=300):
        """``(features [n, 128], digits [n], speakers [n])`` of clips ``[n, 8000]`` in [-1, 1]."""
        from zoo.core.data.audio import CLIP_SAMPLES, log_mel

        audio = np.asarray(audio, np.float32)
        if audio.ndim != 2 or audio.shape[1] != CLIP_SAMPLES:
            raise ValueError(f"audio must be [n, {CLIP_SAMPLES}] (one second at 8 kHz), got {list(audio.shape)}")
        features = np.asarray(log_mel(audio))
        outputs = [self.model(features[i : i + batch_size], training=False) for i in range(0, len(features), batch_size)]
        features, digits, speakers = (np.concatenate([np.asarray(o[k]) for o in outputs]) for k in range(3))
        return features.astype(np.float64), digits.argmax(-1), speakers.argmax(-1)

    def reference(self):
        """Feature statistics of the 300 real test clips (computed once)."""
        if self._reference is None:
            from zoo.core.data.datasets import spoken_digits

            self._reference = feature_stats(self.features_and_classes(spoken_digits("test").audio)[0])
        return self._reference

    def evaluate(self, audio, digits, speakers=None):
        """Metrics of clips asked to say ``digits`` (in ``speakers``' voices) against the real test clips.

        Returns:
            digit_accuracy: the share of clips in which the classifier hears the asked digit.
            speaker_accuracy: the share it attributes to the asked speaker (if ``speakers`` is given).
            frechet_distance: of the classifier's features, to the 300 test clips (lower is better).
        """
        features, heard_digits, heard_speakers = self.features_and_classes(audio)
        metrics = {"digit_accuracy": round(float(np.mean(heard_digits == np.asarray(digits))), 4)}
        if speakers is not None:
            metrics["speaker_accuracy"] = round(float(np.mean(heard_speakers == np.asarray(speakers))), 4)
        metrics["frechet_distance"] = round(frechet_distance(*feature_stats(features), *self.reference()), 4)
        metrics["num_samples"] = int(len(features))
        return metrics

    def real_data_floor(self):
        """The metrics of 300 real *training* clips (take 5-9 of every digit and speaker) against the test clips."""
        from zoo.core.data.datasets import spoken_digits

        train = spoken_digits("train")
        chosen = np.array([name.endswith(("_5.wav", "_6.wav", "_7.wav", "_8.wav", "_9.wav")) for name in train.files])
        return self.evaluate(train.audio[chosen], train.digits[chosen], train.speakers[chosen])


def griffin_lim_baseline(digits, speakers, seed=0):
    """The trivial baseline: each asked digit's mean STFT magnitude over the training clips (all speakers),
    inverted by Griffin-Lim with a random initial phase per clip."""
    from zoo.core.data.audio import griffin_lim, stft_magnitude
    from zoo.core.data.datasets import spoken_digits

    train = spoken_digits("train")
    magnitudes = np.asarray(stft_magnitude(train.audio))
    means = np.stack([magnitudes[train.digits == d].mean(axis=0) for d in range(10)])
    return griffin_lim(means[np.asarray(digits)], seed=seed)


def evaluation_requests(per_pair=5, num_speakers=6):
    """``(digits, speakers)``: every digit in every voice ``per_pair`` times, as the 300 test clips are."""
    digits, speakers = np.meshgrid(np.arange(10), np.arange(num_speakers), indexing="ij")
    return (np.repeat(digits.ravel(), per_pair).astype(np.int32), np.repeat(speakers.ravel(), per_pair).astype(np.int32))


def main(argv=None):
    classifier_main(argv, TRAIN_COMMAND, "Train the spoken-digit classifier behind the zoo's audio metrics.",
                    train_classifier, 30, CLASSIFIER_DIR)


if __name__ == "__main__":
    main()
