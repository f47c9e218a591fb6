"""Where the video model's prediction error comes from: the motion, measured three ways, with the model's own glyphs.

    python -m benchmarks.video_motion                 # the first 1,000 test clips (~2 minutes here)
    python -m benchmarks.video_motion --num-clips 300

The exported ``video.keras`` (sha256-checked, ``safe_mode``) reads each test clip's ten context frames; its glyphs
are then moved from frame 10 with three motions, and the next ten frames scored with the protocol's MSE per frame:

- ``regressed``: the motion MLP's corner and velocity from the tracked corners (what prediction used before
  2026-12-06, and what the training's ``frame_mse`` still measures);
- ``measured``: ``VideoModel.measure_motion``, the snapped corners and the fitted mirrored path (what ``predict``
  uses now);
- ``true``: the data's own corner and velocity at frame 10 (each slot matched to the nearer digit): what the
  glyphs alone would cost with perfect motion.

Also each motion's mean absolute velocity and corner error at frame 10, in pixels. Writes
``benchmarks/results/video_motion.json``.
"""

import argparse
import datetime
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.core.export import machine_description as machine  # noqa: E402
from zoo.core.runtime.paths import REPO_ROOT  # noqa: E402

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "video_motion.json")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-clips", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args(argv)
    import tensorflow as tf

    from zoo.core.data.moving_mnist import CONTEXT, reflect, test_clips
    import zoo
    from zoo.video.model import HIGH, roll_forward

    model = zoo.load("video", runtime="keras").model
    clips = test_clips(args.num_clips)
    frames, future = clips["frames"][:, :CONTEXT, ..., 0], clips["frames"][:, CONTEXT:, ..., 0]

    @tf.function
    def read(context):
        tracked = model.tracker(context)
        glyphs = model.read_glyphs(context, tracked)
        regressed = reflect(*model.last_motion(tracked), HIGH)  # frame 9 -> frame 10, as track() moves them
        measured = reflect(*model.measure_motion(context, glyphs, tracked), HIGH)
        return glyphs, regressed, measured

    parts = [read(tf.constant(frames[i:i + args.batch_size])) for i in range(0, len(frames), args.batch_size)]
    glyphs = np.concatenate([p[0].numpy() for p in parts])
    motions = {name: tuple(np.concatenate([p[k][j].numpy() for p in parts]) for j in range(2))
               for k, name in ((1, "regressed"), (2, "measured"))}
    true_corners, true_velocities = clips["positions"][:, CONTEXT], clips["velocities"][:, CONTEXT]
    # slots are unordered: match each clip's slots to the data's digits by the measured corners
    swap = (np.abs(motions["measured"][0] - true_corners[:, ::-1]).sum((1, 2))
            < np.abs(motions["measured"][0] - true_corners).sum((1, 2)))[:, None, None]
    motions["true"] = (np.where(swap, true_corners[:, ::-1], true_corners),
                       np.where(swap, true_velocities[:, ::-1], true_velocities))

    results = {}
    for name, (corners, velocities) in motions.items():
        drawn, _, _ = roll_forward(tf.constant(corners, tf.float32), tf.constant(velocities, tf.float32),
                                   future.shape[1], tf.constant(glyphs))
        mse = float(np.mean(np.sum((drawn.numpy() - future) ** 2, axis=(2, 3))))
        results[name] = {"frame_mse": round(mse, 2),
                         "corner_error_px": round(float(np.abs(corners - motions["true"][0]).mean()), 3),
                         "velocity_error_px_per_frame": round(float(np.abs(velocities - motions["true"][1]).mean()), 3)}
        print(name, json.dumps(results[name]), flush=True)
    results.update({"num_clips": args.num_clips, "machine": machine(),
                    "date": datetime.date.today().isoformat(),
                    "command": f"python -m benchmarks.video_motion --num-clips {args.num_clips}"})
    with open(RESULTS, "w") as f:
        json.dump(results, f, indent=1)
    print(f"Wrote {RESULTS}")


if __name__ == "__main__":
    main()
