"""Dataset loaders that read a local directory first and download only as a fallback.

Set ``ZOO_DATA_DIR`` to a folder holding ``mnist/`` (the original idx files,
gzipped or not). Without it, the standard Keras download is used; offline with no
data, loading fails with a message naming the variable.
"""

import dataclasses
import gzip
import os
import struct
from typing import Callable, Optional

import numpy as np

from zoo.core.runtime.errors import BadInputError, DataNotFoundError

DATA_DIR_ENV = "ZOO_DATA_DIR"

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def data_dir():
    """The local data directory from ``ZOO_DATA_DIR``, as an absolute path, or None if unset.

    A relative value is resolved against the directory it was set from: the shell's
    ``$PWD``, which a notebook kernel or a test's subprocess inherits even when it
    runs in another working directory (``ZOO_DATA_DIR=../shared/datasets jupyter lab``
    from the repository root, a notebook opened from ``notebooks/``). A set but
    missing directory is an error: silently downloading instead would hide a typo.
    """
    path = os.environ.get(DATA_DIR_ENV)
    if not path:
        return None
    candidates = [path] if os.path.isabs(path) else list(dict.fromkeys(
        os.path.abspath(os.path.join(base, path)) for base in (os.environ.get("PWD"), os.getcwd()) if base))
    for candidate in candidates:
        if os.path.isdir(candidate):
            return candidate
    tried = f" (tried {', '.join(candidates)})" if candidates != [path] else ""
    raise DataNotFoundError(
        f"{DATA_DIR_ENV}={path!r} is not a directory{tried}. Point it at the folder that "
        "holds mnist/ (for example ../shared/datasets), or unset it to download."
    )


def unavailable(dataset, root, relative_path, error):
    """The error for a dataset that is neither under ``ZOO_DATA_DIR`` nor downloadable: what to set."""
    where = f"{DATA_DIR_ENV}={root!r} has no {relative_path}" if root else f"{DATA_DIR_ENV} is not set"
    return DataNotFoundError(f"{dataset} is not available: {where} and the download failed ({error}). "
                             f"Set {DATA_DIR_ENV} to a folder containing {relative_path}.")


def resolve_data_dir_variable():
    """Make a relative ``ZOO_DATA_DIR`` absolute once, so processes started in other folders see the same data."""
    path = os.environ.get(DATA_DIR_ENV)
    if path and not os.path.isabs(path):
        try:
            os.environ[DATA_DIR_ENV] = data_dir()
        except DataNotFoundError:
            pass  # reported, with the paths tried, when data is first loaded


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise DataNotFoundError(f"{path} is too short to be an idx file")
    magic, count = struct.unpack(">II", data[:8])
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in (1, 3):  # 0x08: unsigned byte data
        raise DataNotFoundError(f"{path} is not an unsigned-byte idx file (magic {magic:#x})")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    header = 4 + 4 * ndim
    array = np.frombuffer(data, dtype=np.uint8, offset=header)
    if array.size != int(np.prod(dims)):
        raise DataNotFoundError(f"{path} is truncated: expected {dims}, got {array.size} bytes")
    return array.reshape(dims)


def _find(folder, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def load_mnist(split="train"):
    """MNIST digits as ``(images uint8 [n, 28, 28], labels uint8 [n])``.

    Args:
        split: "train" (60,000 images) or "test" (10,000 images).
    """
    if split not in _MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = data_dir()
    if root is not None:
        folder = os.path.join(root, "mnist")
        paths = [_find(folder, stem) for stem in _MNIST_FILES[split]]
        if all(paths):
            images, labels = (_read_idx(p) for p in paths)
            if len(images) != len(labels):
                raise DataNotFoundError(f"{folder}: {len(images)} images but {len(labels)} labels")
            return images, labels
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # offline, proxy, disk full: all mean the same to the user
        where = f"{DATA_DIR_ENV}={root!r} has no mnist/ idx files" if root else f"{DATA_DIR_ENV} is not set"
        raise DataNotFoundError(
            f"MNIST is not available: {where} and the download failed ({error}). "
            f"Set {DATA_DIR_ENV} to a folder containing mnist/{_MNIST_FILES[split][0]}.gz "
            "and the other idx files."
        ) from None
    return (x_train, y_train) if split == "train" else (x_test, y_test)


def mnist_images(split="train", limit=None):
    """MNIST images as float32 ``[n, 28, 28, 1]`` in [0, 1], and their labels."""
    images, labels = load_mnist(split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return (images.astype(np.float32) / 255.0)[..., None], labels.astype(np.int32)


def mnist_dataset(split="train", *, batch_size, seed=0, epoch=0, limit=None, value_range=(0.0, 1.0),
                  shuffle=True, drop_remainder=True, with_labels=False):
    """MNIST images as a batched ``tf.data.Dataset`` of float32 ``[batch, 28, 28, 1]``.

    Args:
        epoch: with ``shuffle``, the order depends only on ``(seed, epoch)``, so a
            run resumed mid-epoch can skip exactly the batches it already trained on.
        value_range: ``(low, high)`` the pixels are scaled to, e.g. (-1, 1) for a tanh generator.
        shuffle: shuffle, seeded by ``seed`` and ``epoch``.
        drop_remainder: whole batches only, so every step has the same loss scale.
        with_labels: batches of ``(images, labels int32 [batch])`` (class-conditional models).
    """
    import tensorflow as tf

    from zoo.core.runtime.errors import BadInputError

    images, labels = mnist_images(split, limit=limit)
    if drop_remainder and batch_size > len(images):
        raise BadInputError(f"batch size {batch_size} is larger than the {len(images)} {split} images")
    low, high = value_range
    scaled = images * (high - low) + low
    dataset = tf.data.Dataset.from_tensor_slices((scaled, labels) if with_labels else scaled)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def mnist_training_data(*, batch_size, seed, limit, how, validation=True, **dataset_options):
    """A recipe's :class:`TrainingData` for the MNIST training digits: epoch ``e`` in the
    order of ``(seed, e)``; with ``validation``, the test digits for ``val_loss`` (a sixth of ``limit`` of
    them in a limited run). ``how``: what the model sees, for the run's description ("dynamically
    binarized each step"); ``dataset_options``: :func:`mnist_dataset`'s ``value_range`` and ``with_labels``."""
    def dataset_fn(epoch):
        return mnist_dataset("train", batch_size=batch_size, seed=seed, epoch=epoch, limit=limit, **dataset_options)

    test = (mnist_dataset("test", batch_size=500, shuffle=False, drop_remainder=False,
                          limit=None if limit is None else max(limit // 6, 1), **dataset_options)
            if validation else None)
    what = "MNIST train split (60,000 digits)" if not limit else f"first {limit} MNIST training digits"
    return TrainingData(dataset_fn, f"{what}, {how}", validation=test, config={"train_examples": limit or 60000})


@dataclasses.dataclass
class TrainingData:
    """What a recipe's :meth:`Recipe.training_data` returns.

    Args:
        dataset_fn: ``dataset_fn(epoch) -> tf.data.Dataset`` of global batches for
            ``model.train_step``; the same epoch gives the same order (exact resume).
        description: one line for ``run.json`` and the manifest ("MNIST train split ...").
        validation: a dataset for ``model.test_step``, measured each epoch (optional).
        config: entries for the run's config (e.g. ``train_examples``); a checkpoint
            made with another config is refused.
        token_ids: the token ids the training part holds, sorted (text models): a LoRA fine-tune trains
            only these rows of the recipe's ``lora_embedding_rows`` tables.
    """

    dataset_fn: Callable
    description: str
    validation: Optional[object] = None
    config: dict = dataclasses.field(default_factory=dict)
    token_ids: Optional[object] = None


SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TRAIN_FRACTION = 0.9  # nanoGPT's and char-rnn's split: first 90% train, last 10% validation


def text_bytes(path):
    """A text file's UTF-8 bytes as ``uint8 [n]`` (any language: the models read bytes, not characters)."""
    if not os.path.isfile(path):
        raise DataNotFoundError(f"text file {path!r} not found")
    with open(path, "rb") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8)
    if data.size == 0:
        raise DataNotFoundError(f"text file {path!r} is empty")
    try:
        data.tobytes().decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].tobytes().count(b"\n") + 1
        raise BadInputError(f"text file {path!r} is not UTF-8: byte {error.start:,} (line {line}) is "
                            f"0x{data[error.start]:02x}; save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    return data


def split_bytes(data, split):
    """The ``"train"`` (first 90%) or ``"validation"`` (last 10%) part of a byte array."""
    if split not in ("train", "validation"):
        raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
    cut = int(len(data) * TRAIN_FRACTION)
    return data[:cut] if split == "train" else data[cut:]


def tiny_shakespeare(split="train"):
    """Tiny Shakespeare (1,115,394 bytes of ASCII) as ``uint8 [n]``, split 90/10 as nanoGPT does.

    Read from ``$ZOO_DATA_DIR/tinyshakespeare/input.txt``; without it, downloaded
    from char-rnn's repository.
    """
    root = data_dir()
    if root is not None:
        path = os.path.join(root, "tinyshakespeare", "input.txt")
        if os.path.isfile(path):
            return split_bytes(text_bytes(path), split)
    try:
        import keras

        path = keras.utils.get_file("tinyshakespeare.txt", SHAKESPEARE_URL)
    except Exception as error:  # offline, proxy, disk full: all mean the same to the user
        raise unavailable("tiny Shakespeare", root, "tinyshakespeare/input.txt", error) from None
    return split_bytes(text_bytes(path), split)


def window_starts(num_bytes, window, seed=0, epoch=0, shuffle=True):
    """Start offsets of the non-overlapping ``window``-byte training windows of one epoch.

    With ``shuffle``, each epoch shifts the windows by a random offset and shuffles
    them, both from ``(seed, epoch)`` only, so a resumed run sees the same batches.
    """
    if num_bytes < window + 1:
        raise DataNotFoundError(f"the text has {num_bytes} bytes; at least {window + 1} are needed "
                                f"for one window of {window} bytes and its next-byte targets")
    rng = np.random.default_rng([seed, epoch])
    shift = int(rng.integers(0, window)) if shuffle else 0
    shift = min(shift, num_bytes - window - 1)
    starts = np.arange(shift, num_bytes - window, window)
    if shuffle:
        rng.shuffle(starts)
    return starts


def text_dataset(data, *, window, batch_size, seed=0, epoch=0, shuffle=True, drop_remainder=True, limit=None):
    """``(inputs, targets)`` int32 ``[batch, window]`` batches of a byte array; targets are inputs shifted by one.

    ``limit`` keeps at most that many windows (smoke runs).
    """
    import tensorflow as tf

    from zoo.core.runtime.errors import BadInputError

    starts = window_starts(len(data), window, seed, epoch, shuffle)[:limit]
    if drop_remainder and batch_size > len(starts):
        raise BadInputError(f"batch size {batch_size} is larger than the {len(starts)} windows of {window} bytes "
                            "in the text; use a smaller --batch-size or a longer text")
    index = starts[:, None] + np.arange(window + 1)[None, :]
    windows = data[index].astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((windows[:, :-1], windows[:, 1:]))
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"
FSDD_TEST_INDICES = range(0, 5)  # the dataset's official split: takes 0-4 test, 5-49 train


class SpokenDigits:
    """The Free Spoken Digit Dataset, one second per clip (see :func:`spoken_digits`).

    Attributes:
        audio: float32 ``[n, 8000]`` in [-1, 1], 8 kHz, zero-padded or trimmed to one second.
        digits: int32 ``[n]``, 0-9.
        speakers: int32 ``[n]``, indices into ``speaker_names``.
        lengths: int32 ``[n]``, each recording's length in samples before padding or trimming.
        speaker_names: the six speakers, sorted (the index a model's ``speaker`` input takes).
        files: each clip's file name.
    """

    def __init__(self, audio, digits, speakers, lengths, speaker_names, files):
        self.audio, self.digits, self.speakers, self.lengths = audio, digits, speakers, lengths
        self.speaker_names, self.files = speaker_names, files

    def __len__(self):
        return len(self.digits)

    @property
    def num_trimmed(self):
        """How many recordings are longer than one second (their end is cut)."""
        from zoo.core.data.audio import CLIP_SAMPLES

        return int(np.sum(self.lengths > CLIP_SAMPLES))


def _fsdd_folder():
    root = data_dir()
    if root is not None:
        folder = os.path.join(root, "fsdd", "recordings")
        if os.path.isdir(folder):
            return folder
    try:
        import keras

        extracted = keras.utils.get_file("free-spoken-digit-dataset-1.0.10.tar.gz", FSDD_URL, extract=True)
        for candidate in (os.path.join(extracted, "free-spoken-digit-dataset-1.0.10", "recordings"),
                          os.path.join(extracted, "recordings")):
            if os.path.isdir(candidate):
                return candidate
        raise FileNotFoundError(f"no recordings/ folder in {extracted}")
    except Exception as error:  # offline, proxy, disk full: all mean the same to the user
        raise unavailable("the Free Spoken Digit Dataset", root, "fsdd/recordings/{digit}_{speaker}_{index}.wav",
                          error) from None


def spoken_digits(split="train", limit=None):
    """The Free Spoken Digit Dataset's ``split`` ("train": takes 5-49, 2,700 clips; "test": takes 0-4, 300).

    Read from ``$ZOO_DATA_DIR/fsdd/recordings/`` (``{digit}_{speaker}_{index}.wav``,
    16-bit mono at 8 kHz); without it, downloaded from the dataset's release. A file
    that is not such a WAV stops loading with its name in the message.
    """
    from zoo.core.data.audio import fit_to_clip, read_wav

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = _fsdd_folder()
    entries = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".wav"):
            continue
        parts = name[:-4].split("_")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit() or int(parts[0]) > 9:
            raise DataNotFoundError(f"{os.path.join(folder, name)}: expected a name like 7_jackson_12.wav")
        entries.append((int(parts[0]), parts[1], int(parts[2]), name))
    if not entries:
        raise DataNotFoundError(f"{folder} holds no .wav recordings")
    speaker_names = sorted({speaker for _, speaker, _, _ in entries})
    test = split == "test"
    chosen = [e for e in entries if (e[2] in FSDD_TEST_INDICES) == test][:limit]
    audio, lengths = [], []
    for _, _, _, name in chosen:
        samples = read_wav(os.path.join(folder, name))
        lengths.append(len(samples))
        audio.append(fit_to_clip(samples))
    index = {name: i for i, name in enumerate(speaker_names)}
    return SpokenDigits(np.stack(audio).astype(np.float32), np.array([e[0] for e in chosen], np.int32),
                        np.array([index[e[1]] for e in chosen], np.int32), np.array(lengths, np.int32),
                        speaker_names, [e[3] for e in chosen])


# === Your own images (fine-tuning, restoration) ===
def read_image_file(path, what="image"):
    """One grey image from a PNG (read by matplotlib) or a ``.npy`` file, as float32 ``[h, w]`` in [0, 1].
    8-bit values (0-255) are scaled; a colour PNG whose channels differ is refused (the models draw one)."""
    if not os.path.isfile(path):
        raise BadInputError(f"{what} file {path} does not exist")
    try:
        if path.endswith(".npy"):
            image = np.load(path, allow_pickle=False).astype(np.float32)
            if image.max(initial=0) > 1:
                image = image / 255.0
        else:
            import matplotlib.image

            image = np.asarray(matplotlib.image.imread(path), np.float32)
            if image.max(initial=0) > 1:  # 8/16-bit files some readers give as integers
                image = image / 255.0
            if image.ndim == 3:  # RGB(A): grey saved as colour is fine; alpha is ignored
                colour = image[..., :3]
                if np.abs(colour - colour.mean(axis=-1, keepdims=True)).max() > 1.5 / 255:
                    raise BadInputError(f"{what} {path} is in colour; the models draw grey images (white on black): "
                                        "save it in greyscale")
                image = colour.mean(axis=-1)
    except (OSError, ValueError, SyntaxError) as error:
        if isinstance(error, BadInputError):
            raise
        raise BadInputError(f"cannot read {what} from {path}: {error}") from None
    image = np.squeeze(image)
    if image.ndim != 2:
        raise BadInputError(f"{what} {path} has shape {list(image.shape)}; one grey image is [height, width]")
    if image.min() < 0 or image.max() > 1:
        raise BadInputError(f"{what} {path} has values from {image.min()} to {image.max()}, outside [0, 1] (or 0-255)")
    return image


def read_image_collection(path, shape=(28, 28), what="--data"):
    """Your images as float32 ``[n, *shape, 1]`` in [0, 1]: a folder of PNG files (sorted by name) or one
    ``.npy`` array ``[n, *shape]`` or ``[n, *shape, 1]`` (floats in [0, 1] or 8-bit values 0-255)."""
    if os.path.isdir(path):
        files = sorted(f for f in os.listdir(path) if f.lower().endswith(".png"))
        if not files:
            raise BadInputError(f"{what} {path} is a folder with no .png files")
        images = []
        for name in files:
            image = read_image_file(os.path.join(path, name), "image")
            if image.shape != tuple(shape):
                raise BadInputError(f"image {os.path.join(path, name)} is {' x '.join(map(str, image.shape))}; the "
                                    f"model takes {' x '.join(map(str, shape))}")
            images.append(image)
        return np.stack(images)[..., None]
    if not path.endswith(".npy"):
        raise BadInputError(f"{what} {path} is neither a folder of PNG files nor an .npy array")
    if not os.path.isfile(path):
        raise DataNotFoundError(f"{what} file {path} does not exist")
    try:
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise BadInputError(f"cannot read {what} {path}: {error}") from None
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != tuple(shape):
        raise BadInputError(f"{what} {path} holds an array of shape {list(images.shape)}; give [n, "
                            f"{', '.join(map(str, shape))}] or [n, {', '.join(map(str, shape))}, 1] (one grey channel)")
    images = images.astype(np.float32)
    if images.max(initial=0) > 1:
        images = images / 255.0
    if images.min(initial=0) < 0 or images.max(initial=0) > 1:
        raise BadInputError(f"{what} {path} has values outside [0, 1] (or 0-255)")
    return images[..., None]
