"""Harmonize a melody or compose a chorale with the music model's TFLite file, as a phone app would: NumPy and
LiteRT only, one model call per Gibbs step.

    python -m zoo.music.tflite_sample exported/music/music.tflite --melody "G4 G4 D5 B4 A4 G4 A4 B4" \\
        --output samples/music-app.mid
    python -m zoo.music.tflite_sample exported/music/music.tflite --output samples/music-app.wav  # compose

Copy this file and ``zoo/core/apps/manifest.py``, ``music.py`` and ``counter_random.py`` next to
``music.tflite`` and its ``manifest.json`` in any project. The in-graph ``harmonize`` and
``serving_default`` run the whole sampler in one call; this loop calls the ``logits`` signature once a
step instead, so an app can show progress, stop early or let its user fix notes between steps. It
draws the same numbers as the graph (``counter_random``), so at the same seed it writes the same
chorale.
"""

import argparse
import os
import sys
import time

import numpy as np

try:  # in the repository (python -m zoo.music.tflite_sample)
    from zoo.core.apps import music
    from zoo.core.apps.manifest import add_threads_argument, verified_manifest
except ImportError:  # copied into an app next to music.py, counter_random.py and manifest.py
    import music
    from manifest import add_threads_argument, verified_manifest


class TFLiteChorales:
    """The ``logits`` signature of the music model's TFLite file and the sampler around it."""

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        manifest = verified_manifest(path)
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads or os.cpu_count())  # every core unless told
        if "logits" not in self.interpreter.get_signature_list() or "tokens" not in manifest:
            raise ValueError(f"{path} has no logits signature: is it the music model's TFLite file?")
        self.logits_runner = self.interpreter.get_signature_runner("logits")
        self.tokens = manifest["tokens"]
        self.steps = int(manifest["sampler"]["gibbs_steps"])
        self.forbid_parallels = bool(manifest["sampler"].get("forbid_parallels", False))  # as the graph samples
        self.length = int(self.logits_runner.get_input_details()["voices"]["shape_signature"][2])

    def log_probs(self, voices):
        return self.logits_runner(voices=np.asarray(voices, np.int32))["log_probs"]

    def check_soprano(self, soprano):
        low, high = self.tokens["ranges"]["soprano"]
        soprano = np.asarray(soprano)
        if soprano.ndim != 2 or soprano.shape[1] != self.length:
            raise ValueError(f"soprano must have shape [batch, {self.length}], got {list(soprano.shape)}")
        message = music.soprano_range_error(soprano, low, high)
        if message:
            raise ValueError(message)

    def sample(self, soprano=None, batch=1, temperature=0.5, seed=0, on_step=None):
        """Four voices ``[batch, 4, t]``: the soprano's harmonization (``soprano`` MIDI ``[batch, t]``), or
        composed when it is None. ``seed`` and ``temperature``: one per row, or one for all."""
        if soprano is not None:
            self.check_soprano(soprano)
            batch = len(soprano)
        temperature = np.broadcast_to(np.asarray(temperature, np.float32), (batch,))
        seed = np.broadcast_to(np.asarray(seed, np.int64), (batch,))
        if np.any(temperature < 0) or np.any(seed < 0):
            raise ValueError("temperature and seed must be >= 0")
        voices = np.zeros((batch, 4, self.length), np.int32)
        known = np.zeros(voices.shape, bool)
        if soprano is not None:
            voices[:, 0], known[:, 0] = soprano, True
        return music.gibbs(self.log_probs, voices, known, temperature, seed, self.tokens["lowest_midi"],
                           self.tokens["vocabulary"], steps=self.steps, on_step=on_step,
                           forbid_parallels=self.forbid_parallels)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Harmonize or compose a chorale (NumPy + LiteRT only).")
    parser.add_argument("model", help="path to music.tflite (its manifest.json beside it)")
    parser.add_argument("--melody", help='note names to harmonize, e.g. "G4 G4 D5 B4:2" (default: compose)')
    parser.add_argument("--temperature", type=float, default=0.5, help="0 = the most likely notes (default 0.5)")
    parser.add_argument("--seed", type=int, default=0)
    add_threads_argument(parser)
    parser.add_argument("--output", default=os.path.join("samples", "music-app.mid"),
                        help="the .mid or .wav to write (default samples/music-app.mid)")
    args = parser.parse_args(argv)
    try:
        if os.path.splitext(args.output)[1].lower() not in (".mid", ".midi", ".wav"):
            raise ValueError(f"--output {args.output}: write .mid or .wav")
        model = TFLiteChorales(args.model, num_threads=args.threads)
        soprano = None
        if args.melody:
            tune, said = music.fit_melody(music.parse_melody(args.melody), model.length)
            if said:
                print(said)
            soprano = tune[None]
        started = time.perf_counter()
        voices = model.sample(soprano, temperature=args.temperature, seed=args.seed)[0]
        seconds = time.perf_counter() - started
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    data = (music.wav_file_bytes(music.synthesize(voices)) if args.output.lower().endswith(".wav")
            else music.midi_file_bytes(voices))
    with open(args.output, "wb") as f:
        f.write(data)
    what = "harmonized the melody" if args.melody else "composed a chorale"
    print(f"{what} in {model.steps} steps, {seconds:.2f} s ({seconds * 1000 / model.steps:.1f} ms a step); "
          f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
