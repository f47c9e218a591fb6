"""Dataset loaders that read a local directory first and download only as a fallback.

Set ``ZOO_DATA_DIR`` to a folder holding ``mnist/`` (the original idx files,
gzipped or not). Without it, the standard Keras download is used; offline with no
data, loading fails with a message naming the variable.
"""

import gzip
import os
import struct

import numpy as np

from zoo.core.errors import DataNotFoundError

DATA_DIR_ENV = "ZOO_DATA_DIR"

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def data_dir():
    """The local data directory from ``ZOO_DATA_DIR``, or None if unset.

    A set but missing directory is an error: silently downloading instead would
    hide a typo in the path.
    """
    path = os.environ.get(DATA_DIR_ENV)
    if not path:
        return None
    if not os.path.isdir(path):
        raise DataNotFoundError(
            f"{DATA_DIR_ENV}={path!r} is not a directory. Point it at the folder that "
            "holds mnist/ (for example ../shared/datasets), or unset it to download."
        )
    return path


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
                  shuffle=True, drop_remainder=True):
    """MNIST images as a batched ``tf.data.Dataset`` of float32 ``[batch, 28, 28, 1]``.

    Args:
        epoch: with ``shuffle``, the order depends only on ``(seed, epoch)``, so a
            run resumed mid-epoch can skip exactly the batches it already trained on.
        value_range: ``(low, high)`` the pixels are scaled to, e.g. (-1, 1) for a tanh generator.
        shuffle: shuffle, seeded by ``seed`` and ``epoch``.
        drop_remainder: whole batches only, so every step has the same loss scale.
    """
    import tensorflow as tf

    from zoo.core.errors import BadInputError

    images, _ = mnist_images(split, limit=limit)
    if drop_remainder and batch_size > len(images):
        raise BadInputError(f"batch size {batch_size} is larger than the {len(images)} {split} images")
    low, high = value_range
    dataset = tf.data.Dataset.from_tensor_slices(images * (high - low) + low)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
