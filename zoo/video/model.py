"""An object-centric video model of Moving MNIST: find each digit, its shape and its motion, then move it.

Hsieh et al. (2018), "Learning to Decompose and Disentangle Representations for Video Prediction"
(DDPAE, https://arxiv.org/abs/1806.04166) showed that Moving MNIST is best predicted by splitting a
clip into its objects, each a fixed appearance and a pose that moves. This model does that with four
small networks and one renderer shared by prediction and generation:

- ``tracker``: a U-Net over the ten context frames (as channels) draws, for each of two slots and each
  frame, a heatmap of where that digit is; its soft-argmax is the digit's top-left corner, to a fraction
  of a pixel (integral regression, Sun et al. 2018). A global-pooling branch lets it keep one digit in
  one slot across the clip.
- ``motion``: an MLP reads a slot's ten corners and gives its corner and velocity at the last context
  frame (it learns to unfold the bounces). It is trained with the tracker, whose features its loss
  shapes, but prediction measures the motion instead (:meth:`VideoModel.measure_motion`): the tracked
  corners snapped to the whole pixels where the glyph fits the frames, and the straight, wall-mirrored
  path through them fitted by a robust grid search; the MLP's regression is a pixel off where the fit
  is exact.
- ``glyph``: the ten 28 x 28 windows at the tracked corners are aligned copies of the digit, each
  partly hidden by the other digit in some frames; a small CNN reads their per-pixel min, mean and max
  and writes the digit.
- ``sprite_decoder``: a conditional VAE decoder (Sohn et al. 2015): label + latent -> a 28 x 28 digit,
  what generation draws; its encoder is only used in training.

The renderer moves a corner one frame with the data's own physics (constant velocity, mirrored at
the edges: :func:`zoo.core.data.moving_mnist.reflect`) and draws each glyph at its corner rounded to a
whole pixel (as the data is drawn) with two matrix products, combining digits by max; builtin
TFLite ops only. Generation maps standard-normal noise to a start corner, a direction and a speed
with the data's distributions and to the VAE's latent; prediction starts from what the tracker saw.
So the motion is the known physics, not learned dynamics: the card says so.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo.core.data.moving_mnist import CANVAS, CONTEXT, DIGIT, FRAMES, SLOTS, SPEED, reflect
from zoo.core.nn import distribute

HIGH = float(CANVAS - DIGIT)  # the largest corner coordinate, 36
NUM_CLASSES = 10
MOTION_NOISE = 4  # per slot: start y, start x, direction, speed
# leaky ReLU throughout: ReLU maps a NaN to 0, so a NaN weight would reach the loss (and its guard) only steps later
ACTIVATION = "leaky_relu"
HEATMAP = 32  # the tracker's heatmaps: 2-pixel cells; the soft-argmax between cells gives the fraction

PRESETS = {
    "tiny": {"tracker_filters": (4, 8, 8, 8), "glyph_filters": 4, "motion_units": 16, "latent_dim": 4,
             "vae_filters": 4},
    "base": {"tracker_filters": (24, 48, 64, 96), "glyph_filters": 32, "motion_units": 128, "latent_dim": 16,
             "vae_filters": 32},
}


def standard_normal_cdf(x):
    """Φ(x) to 2e-4 (Bowling et al. 2009's logistic approximation): builtin ops, unlike erf."""
    return tf.sigmoid(1.5976 * x + 0.07056 * x * x * x)


def placement(corners, size=CANVAS, width=DIGIT):
    """Matrices ``[..., size, width]`` that put a ``width``-pixel row at each (rounded) corner coordinate:
    ``A[i, j] = max(0, 1 - |i - (corner + j)|)``, a one-hot shift for whole-pixel corners (rows off the
    canvas are zeros)."""
    rows = tf.range(size, dtype=tf.float32)[:, None]
    cols = tf.range(width, dtype=tf.float32)[None, :]
    corners = tf.round(corners)[..., None, None]
    return tf.nn.relu(1.0 - tf.abs(rows - cols - corners))


def draw(glyphs, corners):
    """Frames ``[b, 64, 64]``: glyphs ``[b, slots, 28, 28]`` placed at corners ``[b, slots, 2]`` (y, x), max over slots."""
    batch = tf.shape(glyphs)[0]
    along_y = tf.reshape(placement(corners[..., 0]), [-1, CANVAS, DIGIT])
    along_x = tf.reshape(placement(corners[..., 1]), [-1, CANVAS, DIGIT])
    flat = tf.reshape(glyphs, [-1, DIGIT, DIGIT])
    placed = tf.matmul(tf.matmul(along_y, flat), along_x, transpose_b=True)
    return tf.reduce_max(tf.reshape(placed, [batch, SLOTS, CANVAS, CANVAS]), axis=1)


def windows(frames, corners, width=DIGIT):
    """The ``width`` x ``width`` windows ``[b, slots, t, width, width]`` of frames ``[b, t, 64, 64]`` at corners
    ``[b, slots, t, 2]`` (pixels off the canvas read 0)."""
    batch, steps = tf.shape(frames)[0], tf.shape(frames)[1]
    along_y = tf.reshape(placement(corners[..., 0], width=width), [-1, CANVAS, width])
    along_x = tf.reshape(placement(corners[..., 1], width=width), [-1, CANVAS, width])
    tiled = tf.reshape(tf.tile(frames[:, None], [1, SLOTS, 1, 1, 1]), [-1, CANVAS, CANVAS])
    cut = tf.matmul(tf.matmul(along_y, tiled, transpose_a=True), along_x)
    return tf.reshape(cut, [batch, SLOTS, steps, width, width])


def snap_corners(frames, glyphs, corners, radius):
    """The whole-pixel corners ``[b, slots, t, 2]`` within ``radius`` of ``corners`` (y, x) where each slot's
    glyph ``[b, slots, 28, 28]`` fits the frames ``[b, t, 64, 64]`` best.

    The fit is one-sided, the glyph's ink missing from the frame: digits are drawn by max, so the other
    digit's ink over this one costs nothing at the true corner. A tiny pull to the centre breaks ties (an
    empty frame keeps the corner it was given)."""
    base = tf.clip_by_value(tf.round(corners), 0.0, HIGH)
    width = DIGIT + 2 * radius
    cut = windows(frames, base - radius, width)  # [b, slots, t, width, width]
    glyphs = glyphs[:, :, None]
    offsets, scores = [], []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            window = cut[..., radius + dy: radius + dy + DIGIT, radius + dx: radius + dx + DIGIT]
            score = tf.reduce_sum(tf.square(tf.nn.relu(glyphs - window)), axis=[-2, -1]) + 1e-3 * (dy * dy + dx * dx)
            moved = base + tf.constant([dy, dx], tf.float32)
            off_canvas = tf.reduce_any((moved < 0.0) | (moved > HIGH), axis=-1)
            scores.append(tf.where(off_canvas, 1e9, score))
            offsets.append((dy, dx))
    best = tf.one_hot(tf.argmin(tf.stack(scores, axis=-1), axis=-1), len(offsets))  # [b, slots, t, offsets]
    return base + tf.einsum("bstk,kc->bstc", best, tf.constant(offsets, tf.float32))


def fold(unfolded):
    """Where a 1-D motion mirrored at 0 and HIGH is, from the straight-line position it would have without
    the walls (a triangle wave of period 2 * HIGH): the data's reflections, any number of them at once."""
    return tf.abs(tf.math.floormod(unfolded + HIGH, 2.0 * HIGH) - HIGH)


def fit_paths(corners, cap=1.0):
    """The straight, wall-mirrored path ``(start, velocity)`` ``[b, slots, 2]`` (unfolded, at frame 0) that
    best explains whole-pixel corners ``[b, slots, t, 2]``: a grid search, coarse to fine, of the robust
    squared error (each frame's error capped at ``cap``, so a frame where the corner was missed does not
    bend the path). y and x move independently, so each coordinate is its own 2-D search."""
    batch, steps = tf.shape(corners)[0], corners.shape[2]
    observed = tf.reshape(tf.transpose(corners, [0, 1, 3, 2]), [-1, steps])  # [problems, t]
    times = tf.range(steps, dtype=tf.float32)

    def best(starts, velocities):  # candidates [problems or 1, n] -> index of the best per problem
        path = fold(starts[..., None] + velocities[..., None] * times)
        cost = tf.reduce_sum(tf.minimum(tf.square(path - observed[:, None, :]), cap), axis=-1)
        return tf.argmin(cost, axis=-1)

    grid_start, grid_velocity = np.meshgrid(np.arange(-1.0, HIGH + 1.01, 1.0),
                                            np.arange(-SPEED[1] - 0.25, SPEED[1] + 0.26, 0.25), indexing="ij")
    grid_start = tf.constant(grid_start.ravel(), tf.float32)
    grid_velocity = tf.constant(grid_velocity.ravel(), tf.float32)
    index = best(grid_start[None], grid_velocity[None])
    start, velocity = tf.gather(grid_start, index), tf.gather(grid_velocity, index)
    for start_step, velocity_step in ((1.0, 0.25), (0.2, 0.05), (0.04, 0.01)):
        local_start, local_velocity = np.meshgrid(np.linspace(-start_step, start_step, 11),
                                                  np.linspace(-velocity_step, velocity_step, 11), indexing="ij")
        local_start = tf.constant(local_start.ravel(), tf.float32)
        local_velocity = tf.constant(local_velocity.ravel(), tf.float32)
        index = best(start[:, None] + local_start, velocity[:, None] + local_velocity)
        start, velocity = start + tf.gather(local_start, index), velocity + tf.gather(local_velocity, index)
    shape = [batch, SLOTS, 2]
    return tf.reshape(start, shape), tf.reshape(velocity, shape)


def path_at(start, velocity, time):
    """The corner and velocity of a fitted path (:func:`fit_paths`) at frame ``time``, both folded."""
    unfolded = start + velocity * time
    slope = tf.where(tf.math.floormod(unfolded + HIGH, 2.0 * HIGH) - HIGH >= 0.0, 1.0, -1.0)
    return fold(unfolded), tf.clip_by_value(velocity * slope, -SPEED[1], SPEED[1])


def roll_forward(corners, velocities, frames, glyphs):
    """``frames`` frames drawn from the state, and the state after them (each frame then one move)."""
    drawn = []
    for _ in range(frames):
        drawn.append(draw(glyphs, corners))
        corners, velocities = reflect(corners, velocities, HIGH)
    return tf.stack(drawn, axis=1), corners, velocities


@keras.saving.register_keras_serializable(package="zoo")
class Tracker(keras.Model):
    """Context frames ``[b, 10, 64, 64]`` -> corners ``[b, slots, 10, 2]`` (y, x) by soft-argmax of heatmaps.

    Each frame first goes through the same small CNN (a digit looks the same in every frame, so its
    detector is shared and learns from all ten); their 32 x 32 feature maps, stacked, then go through a
    U-Net that sees the whole clip and writes a heatmap per slot and frame (which digit is which).
    """

    def __init__(self, filters=(24, 48, 64, 96), context=CONTEXT, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.context = int(context)
        f1, f2, f3, f4 = self.filters

        def conv(width, strides=1, name=None, size=3):
            return layers.Conv2D(width, size, strides=strides, padding="same", activation=ACTIVATION, name=name)

        self.frame_encoder = keras.Sequential([conv(f1 // 2, name="frame64"), conv(f1, 2, name="frame32"),
                                               conv(f1, name="frame32b")], name="frame_encoder")
        self.down = [conv(f2, name="clip32", size=1), conv(f2, name="mix32"), conv(f3, 2, name="down16"),
                     conv(f3, name="mix16"), conv(f4, 2, name="down8"), conv(f4, name="mix8")]
        self.context_dense = layers.Dense(f4, activation="gelu", name="global_context")
        self.up = [conv(f3, name="up16"), conv(f2, name="up32")]
        self.heatmaps = layers.Conv2D(SLOTS * self.context, 3, padding="same", name="heatmaps")

    def heatmap_logits(self, frames):
        """Logits ``[b, 32 * 32, slots * 10]``: for each slot and frame, where the digit's centre is (row-major)."""
        batch = tf.shape(frames)[0]
        grid = tf.range(CANVAS, dtype=tf.float32) / (CANVAS - 1)
        coords = tf.stack(tf.meshgrid(grid, grid, indexing="ij"), axis=-1)
        single = tf.reshape(frames, [-1, CANVAS, CANVAS, 1])
        features = self.frame_encoder(tf.concat([single, tf.tile(coords[None], [tf.shape(single)[0], 1, 1, 1])],
                                                axis=-1))  # [b * 10, 32, 32, f1]
        width = self.filters[0]
        stacked = tf.reshape(tf.transpose(tf.reshape(features, [batch, self.context, HEATMAP, HEATMAP, width]),
                                          [0, 2, 3, 1, 4]), [batch, HEATMAP, HEATMAP, self.context * width])
        d32 = self.down[1](self.down[0](stacked))
        d16 = self.down[3](self.down[2](d32))
        d8 = self.down[5](self.down[4](d16))
        d8 = d8 + self.context_dense(tf.reduce_mean(d8, axis=[1, 2]))[:, None, None, :]
        u16 = self.up[0](tf.concat([tf.image.resize(d8, [16, 16], "nearest"), d16], axis=-1))
        u32 = self.up[1](tf.concat([tf.image.resize(u16, [32, 32], "nearest"), d32], axis=-1))
        return tf.reshape(self.heatmaps(u32), [batch, HEATMAP * HEATMAP, SLOTS * self.context])

    def corners(self, logits):
        """The soft-argmax of the heatmaps, as top-left corners ``[b, slots, 10, 2]`` (y, x)."""
        batch = tf.shape(logits)[0]
        weights = tf.nn.softmax(logits, axis=1)
        cells = tf.range(HEATMAP, dtype=tf.float32) * (CANVAS / HEATMAP) + (CANVAS / HEATMAP - 1) / 2  # cell centres
        ys = tf.reshape(tf.tile(cells[:, None], [1, HEATMAP]), [1, -1, 1])
        xs = tf.reshape(tf.tile(cells[None, :], [HEATMAP, 1]), [1, -1, 1])
        # the heatmap peaks at the digit's centre; the corner is 14 pixels up and left of it
        centre = tf.stack([tf.reduce_sum(weights * ys, axis=1), tf.reduce_sum(weights * xs, axis=1)], axis=-1)
        return tf.reshape(centre - DIGIT / 2, [batch, SLOTS, self.context, 2])

    def call(self, frames):
        return self.corners(self.heatmap_logits(frames))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "context": self.context}


@keras.saving.register_keras_serializable(package="zoo")
class VideoModel(keras.Model):
    """Predicts and generates Moving MNIST clips (see the module's docstring).

    Args:
        tracker_filters: the tracker U-Net's widths at 64, 32, 16 and 8 pixels.
        glyph_filters: the glyph CNN's width.
        motion_units: the motion MLP's width.
        latent_dim: the digit VAE's latent size (generation's noise per slot is ``latent_dim + 4``).
        vae_filters: the digit VAE's width.
        seed: seeds the initial weights.

    Example:
    >>> video = VideoModel(**PRESETS["tiny"])
    >>> tuple(video.predict_frames(np.zeros((1, 10, 64, 64, 1), "float32")).shape)
    (1, 10, 64, 64, 1)
    """

    def __init__(self, tracker_filters=(24, 48, 64, 96), glyph_filters=32, motion_units=128, latent_dim=16,
                 vae_filters=32, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)
        keras.utils.set_random_seed(self.seed)
        self.tracker_filters = tuple(int(f) for f in tracker_filters)
        self.glyph_filters = int(glyph_filters)
        self.motion_units = int(motion_units)
        self.latent_dim = int(latent_dim)
        self.vae_filters = int(vae_filters)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.tracker = Tracker(self.tracker_filters, name="tracker")
        self.motion = keras.Sequential([
            layers.Dense(self.motion_units, activation="gelu"), layers.Dense(self.motion_units, activation="gelu"),
            layers.Dense(4)], name="motion")
        g = self.glyph_filters
        self.glyph = keras.Sequential([
            layers.Conv2D(g, 3, padding="same", activation=ACTIVATION), layers.Conv2D(g, 3, padding="same", activation=ACTIVATION),
            layers.Conv2D(g, 3, padding="same", activation=ACTIVATION), layers.Conv2D(1, 3, padding="same")], name="glyph")
        v = self.vae_filters
        self.sprite_encoder = keras.Sequential([
            layers.Conv2D(v, 3, strides=2, padding="same", activation=ACTIVATION),
            layers.Conv2D(2 * v, 3, strides=2, padding="same", activation=ACTIVATION), layers.Flatten(),
            layers.Dense(2 * self.latent_dim)], name="sprite_encoder")
        self.sprite_decoder = keras.Sequential([
            layers.Dense(7 * 7 * 2 * v, activation="gelu"), layers.Reshape((7, 7, 2 * v)),
            layers.Conv2DTranspose(v, 4, strides=2, padding="same", activation=ACTIVATION),
            layers.Conv2DTranspose(v, 4, strides=2, padding="same", activation=ACTIVATION),
            layers.Conv2D(1, 3, padding="same")], name="sprite_decoder")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("loss", "heatmap_loss", "corner_error", "future_corner_error", "glyph_loss", "vae_loss", "frame_mse")}
        self.predict_frames(tf.zeros([1, CONTEXT, CANVAS, CANVAS, 1]))
        self.last_motion(tf.zeros([1, SLOTS, CONTEXT, 2]))  # training only now: built here, not by predict_frames
        self.generate(tf.zeros([1, SLOTS], tf.int32), tf.zeros([1, SLOTS * self.noise_per_slot]))
        self.sprite_encoder(tf.zeros([1, DIGIT, DIGIT, 1 + NUM_CLASSES]))
        self.built = True

    @property
    def noise_per_slot(self):
        return self.latent_dim + MOTION_NOISE

    @property
    def metrics(self):
        return list(self.trackers.values())

    # === Prediction ===
    def track(self, frames):
        """Context ``[b, 10, 64, 64, 1]`` -> (tracked corners ``[b, slots, 10, 2]``, the state at frame 10:
        glyphs ``[b, slots, 28, 28]``, corners ``[b, slots, 2]``, velocities ``[b, slots, 2]``)."""
        frames = tf.convert_to_tensor(frames, tf.float32)[..., 0]
        tracked = self.tracker(frames)
        glyphs = self.read_glyphs(frames, tracked)
        corners, velocities = self.measure_motion(frames, glyphs, tracked)
        corners, velocities = reflect(corners, velocities, HIGH)  # frame 9 -> frame 10
        return tracked, glyphs, corners, velocities

    def measure_motion(self, frames, glyphs, tracked):
        """The corner and velocity ``[b, slots, 2]`` at the last context frame, measured rather than regressed:
        the tracked corners snapped to the whole pixels where the glyph fits the frames, a wall-mirrored
        straight path fitted through them, the corners snapped again (1 pixel) around that path and the path
        fitted again. The motion MLP's regression (:meth:`last_motion`, trained with the tracker, whose
        features its loss shapes) is a pixel off where this is exact: on the first 1,000 test clips its
        velocities are 0.31 pixels a frame off, this fit's 0.17, MSE 96.4 -> 61.4 (``benchmarks/video_motion.py``)."""
        snapped = snap_corners(frames, glyphs, tracked, radius=2)
        start, velocity = fit_paths(snapped)
        times = tf.range(CONTEXT, dtype=tf.float32)[None, None, :, None]
        on_path, _ = path_at(start[:, :, None], velocity[:, :, None], times)
        start, velocity = fit_paths(snap_corners(frames, glyphs, on_path, radius=1))
        return path_at(start, velocity, float(CONTEXT - 1))

    def last_motion(self, tracked):
        """The corner and velocity at the last context frame, from the tracked corners ``[b, slots, 10, 2]``."""
        batch = tf.shape(tracked)[0]
        flat = tf.reshape(tracked / HIGH, [batch, SLOTS, CONTEXT * 2])
        out = tf.reshape(self.motion(tf.reshape(flat, [-1, CONTEXT * 2])), [batch, SLOTS, 4])
        corners = tf.clip_by_value(tracked[:, :, -1] + out[..., :2], 0.0, HIGH)
        return corners, out[..., 2:] * SPEED[1]

    def read_glyphs(self, frames, tracked):
        """The digit in each slot ``[b, slots, 28, 28]`` in [0, 1], from the context's windows at its corners."""
        batch = tf.shape(frames)[0]
        cut = windows(frames, tf.stop_gradient(tracked))  # [b, slots, 10, 28, 28]
        features = tf.stack([tf.reduce_min(cut, axis=2), tf.reduce_mean(cut, axis=2), tf.reduce_max(cut, axis=2)],
                            axis=-1)
        logits = self.glyph(tf.reshape(features, [-1, DIGIT, DIGIT, 3]))
        return tf.reshape(tf.sigmoid(logits), [batch, SLOTS, DIGIT, DIGIT])

    def predict_frames(self, frames, future=FRAMES - CONTEXT):
        """The next ``future`` frames ``[b, future, 64, 64, 1]`` after the context ``[b, 10, 64, 64, 1]``."""
        _, glyphs, corners, velocities = self.track(frames)
        drawn, _, _ = roll_forward(corners, velocities, future, glyphs)
        return drawn[..., None]

    # === Generation ===
    def start(self, digits, noise):
        """The state at frame 0 of a generated clip: digits ``[b, 2]`` (-1 = none), noise ``[b, 2 * (latent + 4)]``."""
        batch = tf.shape(digits)[0]
        noise = tf.reshape(tf.convert_to_tensor(noise, tf.float32), [batch, SLOTS, self.noise_per_slot])
        latents, motion = noise[..., : self.latent_dim], standard_normal_cdf(noise[..., self.latent_dim:])
        digits = tf.convert_to_tensor(digits, tf.int32)
        glyphs = self.decode_glyphs(tf.reshape(latents, [-1, self.latent_dim]), tf.reshape(digits, [-1]))
        present = tf.cast(digits >= 0, tf.float32)[..., None, None]
        glyphs = tf.reshape(glyphs, [batch, SLOTS, DIGIT, DIGIT]) * present
        corners = motion[..., :2] * HIGH
        angle = motion[..., 2] * (2.0 * np.pi)
        speed = SPEED[0] + (SPEED[1] - SPEED[0]) * motion[..., 3]
        velocities = tf.stack([tf.sin(angle), tf.cos(angle)], axis=-1) * speed[..., None]
        return glyphs, corners, velocities

    def decode_glyphs(self, latents, digits):
        """Digits ``[n, 28, 28]`` (Bernoulli means) from latents ``[n, latent]`` and labels ``[n]`` (-1 draws a 0's
        shape, masked by the caller)."""
        onehot = tf.one_hot(tf.maximum(digits, 0), NUM_CLASSES)
        logits = self.sprite_decoder(tf.concat([latents, onehot], axis=-1))
        return tf.sigmoid(logits)[..., 0]

    def generate(self, digits, noise, frames=FRAMES):
        """Clips ``[b, frames, 64, 64, 1]`` of the asked digits moving as the data moves."""
        glyphs, corners, velocities = self.start(digits, noise)
        drawn, _, _ = roll_forward(corners, velocities, frames, glyphs)
        return drawn[..., None]

    def step(self, glyphs, corners, velocities):
        """One frame for an app's loop: the frame at the state's corners, and the state one frame later."""
        frame = draw(glyphs, corners)
        corners, velocities = reflect(corners, velocities, HIGH)
        return frame[..., None], corners, velocities

    def call(self, frames):
        return self.predict_frames(frames)

    # === Training ===
    def losses_of(self, batch, training=False):
        frames, labels = batch["frames"][..., 0], batch["labels"]
        positions, velocities, glyphs = batch["positions"], batch["velocities"], batch["glyphs"]
        # an empty slot's targets are the other digit's: both slots then follow it and draw it twice (max is idempotent)
        empty = (labels < 0)[:, None, :, None]
        positions = tf.where(empty, positions[:, :, ::-1], positions)
        velocities = tf.where(empty, velocities[:, :, ::-1], velocities)
        glyphs = tf.where((labels < 0)[..., None, None], glyphs[:, ::-1], glyphs)
        context = frames[:, :CONTEXT]
        logits = self.tracker.heatmap_logits(context)  # [b, 64 * 64, slots * 10]
        tracked = self.tracker.corners(logits)  # [b, slots, 10, 2]
        true_tracked = tf.transpose(positions[:, :CONTEXT], [0, 2, 1, 3])
        # the heatmaps learn, as a classifier does, the pixel where each digit's centre is drawn (a strong,
        # local signal); the soft-argmax's L1 refines it. Slots are unordered: each clip is scored against the
        # better of the two assignments.
        cell = tf.cast(tf.floor((true_tracked + DIGIT / 2) / (CANVAS / HEATMAP)), tf.int32)
        target = cell[..., 0] * HEATMAP + cell[..., 1]  # [b, slots, 10]
        log_probs = tf.transpose(tf.reshape(tf.nn.log_softmax(logits, axis=1),
                                            [-1, HEATMAP * HEATMAP, SLOTS, CONTEXT]), [0, 2, 3, 1])
        cross_entropy = lambda index: -tf.reduce_mean(  # noqa: E731
            tf.gather(log_probs, index, batch_dims=3), axis=[1, 2])
        kept, swapped = cross_entropy(target), cross_entropy(target[:, ::-1])
        swap = tf.stop_gradient(swapped < kept)
        heatmap_loss = tf.reduce_mean(tf.minimum(kept, swapped))

        def assign(target):  # target [b, slots, ...]
            shape = tf.concat([tf.shape(swap), tf.ones([tf.rank(target) - 1], tf.int32)], axis=0)
            return tf.where(tf.reshape(swap, shape), target[:, ::-1], target)

        corner_error = tf.reduce_mean(tf.abs(tracked - assign(true_tracked)))
        last_corners, last_velocities = self.last_motion(tracked)
        true_last = assign(positions[:, CONTEXT - 1])
        true_velocity = assign(velocities[:, CONTEXT - 1])
        motion_loss = (tf.reduce_mean(tf.abs(last_corners - true_last))
                       + tf.reduce_mean(tf.abs(last_velocities - true_velocity)))
        corners, moving = last_corners, last_velocities
        future = []
        for _ in range(FRAMES - CONTEXT):
            corners, moving = reflect(corners, moving, HIGH)
            future.append(corners)
        future = tf.stack(future, axis=2)
        future_error = tf.reduce_mean(tf.abs(future - assign(tf.transpose(positions[:, CONTEXT:], [0, 2, 1, 3]))))
        glyph_estimate = self.read_glyphs(context, tracked)
        glyph_loss = tf.reduce_mean(keras.losses.binary_crossentropy(
            tf.reshape(assign(glyphs), [-1, DIGIT * DIGIT]), tf.reshape(glyph_estimate, [-1, DIGIT * DIGIT])))
        vae_loss = self.vae_loss(batch["glyphs"], labels)
        loss = (heatmap_loss + corner_error + motion_loss + future_error + glyph_loss * 10.0
                + vae_loss / (DIGIT * DIGIT))
        drawn = tf.stack([draw(glyph_estimate, future[:, :, t]) for t in range(FRAMES - CONTEXT)], axis=1)
        frame_mse = tf.reduce_mean(tf.reduce_sum(tf.square(drawn - frames[:, CONTEXT:]), axis=[2, 3]))
        return loss, {"heatmap_loss": heatmap_loss, "corner_error": corner_error, "future_corner_error": future_error, "glyph_loss": glyph_loss,
                      "vae_loss": vae_loss, "frame_mse": frame_mse}

    def vae_loss(self, glyphs, labels):
        """Negative ELBO of the conditional digit VAE on the clips' real digits, nats per slot (an empty slot: 0)."""
        flat = tf.reshape(glyphs, [-1, DIGIT, DIGIT, 1])
        digits = tf.reshape(labels, [-1])
        onehot = tf.one_hot(tf.maximum(digits, 0), NUM_CLASSES)
        encoder_in = tf.concat([flat, tf.tile(onehot[:, None, None, :], [1, DIGIT, DIGIT, 1])], axis=-1)
        mean, log_variance = tf.split(self.sprite_encoder(encoder_in), 2, axis=-1)
        # rows per replica: [batch * slots] latents drawn as one device would (see draw_for_global_batch)
        eps = distribute.draw_for_global_batch(
            lambda n: keras.random.normal((n, self.latent_dim), seed=self.seed_generator), tf.shape(mean)[0])
        latents = mean + tf.exp(0.5 * log_variance) * eps
        logits = self.sprite_decoder(tf.concat([latents, onehot], axis=-1))
        reconstruction = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(flat, logits), axis=[1, 2, 3])
        kl = 0.5 * tf.reduce_sum(tf.exp(log_variance) + tf.square(mean) - 1.0 - log_variance, axis=-1)
        # a mean over every slot (an empty one counts 0), not over the present ones: a replica's share of the
        # batch then weighs what it weighs on one device
        present = tf.cast(digits >= 0, tf.float32)
        return tf.reduce_mean((reconstruction + kl) * present)

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            loss, parts = self.losses_of(batch, training=True)
            scaled = distribute.scale_loss(loss)
        gradients = distribute.clip_by_global_norm(tape.gradient(scaled, self.trainable_variables), 1.0)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._track(loss, parts)

    def test_step(self, batch):
        return self._track(*self.losses_of(batch))

    def _track(self, loss, parts):
        self.trackers["loss"].update_state(loss)
        for name, value in parts.items():
            self.trackers[name].update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {**super().get_config(), "tracker_filters": self.tracker_filters, "glyph_filters": self.glyph_filters,
                "motion_units": self.motion_units, "latent_dim": self.latent_dim, "vae_filters": self.vae_filters,
                "seed": self.seed}
