"""Draw a Moving MNIST clip frame by frame with the video model's TFLite file, as a phone app would: NumPy and
LiteRT only.

    python -m zoo.video.tflite_sample exported/video/video.tflite --digits 3 7 --output samples/video-app.png
    python -m zoo.video.tflite_sample exported/video/video.tflite --context frames.npy   # predict what follows

Copy this file and ``zoo/core/apps/manifest.py`` and ``png.py`` next to ``video.tflite`` and its
``manifest.json`` in any project. It calls ``start`` (digits + noise) or ``track`` (your 10 frames) once
for the state (each digit's 28 x 28 picture, its corner and its velocity), then ``step`` once a frame:
each call returns the frame to show and the next state, so an app draws at its own pace, for as long
as it likes (the in-graph ``serving_default`` and ``predict`` are these loops, 20 and 10 frames long).
"""

import argparse
import os
import sys
import time

import numpy as np

try:  # in the repository (python -m zoo.video.tflite_sample)
    from zoo.core.apps import png
    from zoo.core.apps.manifest import add_threads_argument, verified_manifest
except ImportError:  # copied into an app next to png.py and manifest.py
    import png
    from manifest import add_threads_argument, verified_manifest

CONTEXT, CANVAS, SLOTS = 10, 64, 2


class TFLiteVideo:
    """The ``start``, ``track`` and ``step`` signatures of the video model's TFLite file."""

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        verified_manifest(path)
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads or os.cpu_count())  # every core unless told
        missing = {"start", "track", "step"} - set(self.interpreter.get_signature_list())
        if missing:
            raise ValueError(f"{path} has no {sorted(missing)} signature: is it the video model's TFLite file?")
        self.start_runner = self.interpreter.get_signature_runner("start")
        self.track_runner = self.interpreter.get_signature_runner("track")
        self.step_runner = self.interpreter.get_signature_runner("step")
        self.noise_size = int(self.start_runner.get_input_details()["noise"]["shape_signature"][1])

    def start(self, digits, noise=None, seed=0):
        """The state of new clips of ``digits`` ``[batch, 2]`` (0-9, -1 for none); noise standard normal."""
        digits = np.asarray(digits)
        if digits.ndim == 1:
            digits = digits[None]
        if digits.dtype.kind not in "iu" or digits.ndim != 2 or digits.shape[1] != SLOTS or digits.min() < -1 \
                or digits.max() > 9:
            raise ValueError(f"digits must be pairs of integers 0-9 or -1 (no digit), got {digits.tolist()}")
        if noise is None:
            noise = np.random.default_rng(seed).standard_normal((len(digits), self.noise_size))
        noise = np.asarray(noise, np.float32)
        if noise.shape != (len(digits), self.noise_size) or not np.all(np.isfinite(noise)):
            raise ValueError(f"noise must be finite, of shape [{len(digits)}, {self.noise_size}], "
                             f"got shape {list(noise.shape)}")
        return self.start_runner(digits=digits.astype(np.int32), noise=noise)

    def track(self, frames):
        """The state at the frame after ``frames`` ``[batch, 10, 64, 64, 1]`` in [0, 1]."""
        frames = np.asarray(frames, np.float32)
        if frames.ndim == 4:
            frames = frames[None]
        if frames.shape[1:] != (CONTEXT, CANVAS, CANVAS, 1):
            raise ValueError(f"frames must have shape [batch, {CONTEXT}, {CANVAS}, {CANVAS}, 1], "
                             f"got {list(frames.shape)}")
        if not np.all(np.isfinite(frames)) or frames.min() < 0 or frames.max() > 1:
            raise ValueError("frames must be in [0, 1]")
        return self.track_runner(frames=frames)

    def frames(self, state, count, on_frame=None):
        """``count`` frames ``[batch, count, 64, 64, 1]`` from ``state``, one ``step`` call each."""
        shown = []
        for _ in range(count):
            out = self.step_runner(glyphs=state["glyphs"], corners=state["corners"], velocities=state["velocities"])
            state = {"glyphs": state["glyphs"], "corners": out["corners"], "velocities": out["velocities"]}
            shown.append(out["frame"])
            if on_frame is not None:
                on_frame(out["frame"])
        return np.stack(shown, axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw a Moving MNIST clip frame by frame (NumPy + LiteRT only).")
    parser.add_argument("model", help="path to video.tflite (its manifest.json beside it)")
    parser.add_argument("--digits", type=int, nargs=2, default=[3, 7], help="two digits, -1 for none (default 3 7)")
    parser.add_argument("--context", help="an .npy of 10 frames [10, 64, 64] in [0, 1]: predict the 10 after them")
    parser.add_argument("--frames", type=int, default=20, help="frames to draw (default 20; 10 after a context)")
    parser.add_argument("--seed", type=int, default=0)
    add_threads_argument(parser)
    parser.add_argument("--output", default=os.path.join("samples", "video-app.png"),
                        help="the PNG frame strip to write (default samples/video-app.png)")
    args = parser.parse_args(argv)
    try:
        if args.frames < 1:
            raise ValueError(f"--frames must be at least 1, got {args.frames}")
        model = TFLiteVideo(args.model, num_threads=args.threads)
        started = time.perf_counter()
        if args.context:
            context = np.load(args.context, allow_pickle=False).astype(np.float32)
            state = model.track(context[..., None] if context.ndim == 3 else context)
            what = f"the frames after {args.context}"
        else:
            state = model.start([args.digits], seed=args.seed)
            what = f"digits {args.digits[0]} and {args.digits[1]}"
        clip = model.frames(state, args.frames)[0]
        seconds = time.perf_counter() - started
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    png.write_png(clip, args.output, columns=min(10, args.frames))
    print(f"wrote {args.output}: {args.frames} frames of {what} in {seconds * 1000:.0f} ms "
          f"({seconds * 1000 / args.frames:.1f} ms a frame, including the first call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
