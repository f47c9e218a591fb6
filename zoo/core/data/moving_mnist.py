"""Moving MNIST (Srivastava, Mansimov & Salakhutdinov 2015), generated on the fly from the MNIST files.

A clip is ``FRAMES`` frames of a ``CANVAS`` x ``CANVAS`` canvas with up to two 28 x 28 digits. Each
digit's top-left corner starts uniform in ``[0, CANVAS - 28]^2`` and moves in a direction uniform on
the circle at a speed uniform in ``SPEED`` pixels a frame; at an edge its position is mirrored back
inside and that velocity component flips. A digit is drawn at its position rounded to whole pixels
(as Srivastava et al.'s generator does, so digits stay sharp); digits combine by pixel-wise max;
values are in [0, 1]. A slot may be empty (label -1) for one-digit clips.

Every clip depends only on ``(seed, index)``: an epoch of training clips, or the 10,000 test clips
every evaluation uses (test digits, :data:`TEST_SEED`), is the same on every machine and after a resume.

    >>> clips = moving_mnist_clips("test", 4, seed=0)
    >>> clips["frames"].shape, clips["labels"].shape
    ((4, 20, 64, 64, 1), (4, 2))
"""

import numpy as np

from zoo.core.runtime.errors import BadInputError

CANVAS = 64
DIGIT = 28
FRAMES = 20
CONTEXT = 10
SLOTS = 2
SPEED = (2.0, 5.0)
TEST_SEED = 20150213  # the 10,000 evaluation clips (arXiv:1502.04681's submission date)
TEST_CLIPS = 10000


def reflect(position, velocity, high):
    """One frame of motion: ``position + velocity``, mirrored back into ``[0, high]`` with that component
    of the velocity flipped. Works on NumPy arrays and tensors alike (only arithmetic and ``where``)."""
    moved = position + velocity
    below, above = moved < 0, moved > high
    if isinstance(moved, np.ndarray):
        where = np.where
    else:
        import tensorflow as tf

        where = tf.where
    moved = where(below, -moved, where(above, 2.0 * high - moved, moved))
    velocity = where(below | above, -velocity, velocity)
    return moved, velocity


def trajectories(rng, num, frames=FRAMES, slots=SLOTS, canvas=CANVAS, speed=SPEED):
    """Top-left corners ``[num, frames, slots, 2]`` (y, x, float) and velocities after each frame's move."""
    high = float(canvas - DIGIT)
    position = rng.uniform(0.0, high, (num, slots, 2))
    angle = rng.uniform(0.0, 2.0 * np.pi, (num, slots))
    magnitude = rng.uniform(*speed, (num, slots))
    velocity = np.stack([np.sin(angle), np.cos(angle)], axis=-1) * magnitude[..., None]
    positions, velocities = [position], [velocity]
    for _ in range(frames - 1):
        position, velocity = reflect(position, velocity, high)
        positions.append(position)
        velocities.append(velocity)
    return np.stack(positions, axis=1), np.stack(velocities, axis=1)


def render(glyphs, corners, canvas=CANVAS):
    """Frames ``[num, frames, canvas, canvas, 1]`` from glyphs ``[num, slots, 28, 28]`` in [0, 1] placed at
    whole-pixel corners ``[num, frames, slots, 2]`` (int), combined by max. An all-zero glyph draws nothing."""
    num, frames, slots, _ = corners.shape
    out = np.zeros((num, frames, canvas, canvas), np.float32)
    for n in range(num):
        for k in range(slots):
            glyph = glyphs[n, k]
            if not glyph.any():
                continue
            for t in range(frames):
                y, x = corners[n, t, k]
                window = out[n, t, y : y + DIGIT, x : x + DIGIT]
                np.maximum(window, glyph, out=window)
    return out[..., None]


def make_clips(images, labels, rng, num, *, frames=FRAMES, one_digit_fraction=0.0, first=None):
    """``num`` clips from ``images`` ``[n, 28, 28]`` in [0, 1] and their ``labels``; ``first``: the indices of
    each clip's first digit (default: drawn from ``rng`` like the second).

    Returns a dict: ``frames`` float32 ``[num, frames, 64, 64, 1]``; ``labels`` int32 ``[num, 2]`` (-1 = empty
    slot); ``glyphs`` float32 ``[num, 2, 28, 28]`` (zeros for an empty slot); ``positions`` float32
    ``[num, frames, 2, 2]`` (the exact top-left corners, y then x); ``corners`` int32 (where each digit is
    drawn); ``velocities`` float32 ``[num, frames, 2, 2]`` (the velocity that moves frame t to t + 1).
    """
    picks = rng.integers(0, len(images), (num, SLOTS))
    if first is not None:
        picks[:, 0] = first
    glyphs = images[picks].astype(np.float32)
    chosen = labels[picks].astype(np.int32)
    one_digit = rng.uniform(size=num) < one_digit_fraction
    chosen[one_digit, 1] = -1
    glyphs[one_digit, 1] = 0.0
    positions, velocities = trajectories(rng, num, frames=frames)
    corners = np.rint(positions).astype(np.int32)
    return {"frames": render(glyphs, corners), "labels": chosen, "glyphs": glyphs,
            "positions": positions.astype(np.float32), "corners": corners,
            "velocities": velocities.astype(np.float32)}


def mnist_digits(split, limit=None):
    """The split's MNIST digits ``[n, 28, 28]`` float32 in [0, 1] and labels (the first ``limit``)."""
    from zoo.core.data.datasets import mnist_images

    images, labels = mnist_images(split, limit=limit)
    return images[..., 0], labels


def moving_mnist_clips(split, num, *, seed, start=0, one_digit_fraction=0.0, limit=None):
    """Clips ``start .. start + num - 1`` of the ``(split, seed)`` stream; clip i is drawn from
    ``default_rng([seed, i])`` alone, so any slice of the stream is the same wherever it is cut.
    ``limit``: use only the split's first ``limit`` digits."""
    if num < 1:
        raise BadInputError(f"the number of clips must be at least 1, got {num}")
    images, labels = mnist_digits(split, limit)
    parts = [make_clips(images, labels, np.random.default_rng([seed, start + i]), 1,
                        one_digit_fraction=one_digit_fraction) for i in range(num)]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def test_clips(num=TEST_CLIPS, one_digit_fraction=0.0, start=0):
    """The evaluation clips: test digits, :data:`TEST_SEED`; ``num`` of the 10,000 from ``start``."""
    return moving_mnist_clips("test", num, seed=TEST_SEED, start=start, one_digit_fraction=one_digit_fraction)
