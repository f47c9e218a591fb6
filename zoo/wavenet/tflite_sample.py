"""Say a digit with the WaveNet's TFLite file, one sample per call, as a phone app streams audio: NumPy and LiteRT only.

    python -m zoo.wavenet.tflite_sample exported/wavenet/wavenet.tflite --digit 7 --speaker jackson --output seven.wav

Copy this file, ``zoo/core/apps/manifest.py`` (the sha256 check) and ``zoo/core/apps/speech.py`` (voices, WAV
files) next to ``wavenet.tflite`` and its ``manifest.json`` in any project: it needs NumPy and LiteRT alone. It checks the file's sha256 against the manifest,
calls ``condition`` once (the predicted mel frames, projected for every layer), then
``step`` 8,000 times with the fast-WaveNet queues passed in and out as ``state``:
memory stays at one ``[batch, S]`` state, and an app can play each 10 ms frame as
soon as its 80 samples are out (``on_frame``). With the same noise it gives the same
samples as the in-graph ``serving_default`` loop. The WAV is written with Python's
``wave`` module.
"""

import argparse
import os
import sys
import time

import numpy as np

try:  # in the repository (python -m zoo.wavenet.tflite_sample)
    from zoo.core.apps.manifest import add_threads_argument
    from zoo.core.apps.speech import HOP_LENGTH, SAMPLE_RATE, VocoderFile, write_wav
except ImportError:  # copied into an app next to manifest.py and speech.py
    from manifest import add_threads_argument
    from speech import HOP_LENGTH, SAMPLE_RATE, VocoderFile, write_wav

CLIP_SAMPLES = 8000


class TFLiteWaveNet(VocoderFile):
    """The ``condition`` and ``step`` signatures of the WaveNet's TFLite file."""

    frames_signature = "condition"
    what = "the WaveNet's"

    @property
    def condition_runner(self):
        return self.frames_runner

    def speak(self, digits, speakers, noise=None, seed=0, on_frame=None):
        """Clips ``[batch, 8000]`` in [-1, 1] of ``digits`` said by ``speakers`` (names or indices).

        Args:
            noise: ``[batch, 8000]`` uniform numbers in [0, 1) (default: ``numpy.random.default_rng(seed)``).
            on_frame: called with each frame's ``[batch, 80]`` samples as soon as they are out.
        """
        # The TFLite graph cannot refuse bad values (the converter drops asserts): an index out of
        # range would read past an embedding table, so they are checked here.
        digits = np.atleast_1d(np.asarray(digits))
        if digits.dtype.kind not in "iu" or digits.ndim != 1 or digits.min() < 0 or digits.max() > 9:
            raise ValueError(f"digits must be integers 0-9, got {digits.tolist()}")
        voices = np.array([self.speaker_index(s) for s in np.atleast_1d(speakers).tolist()], np.int32)
        if len(voices) != len(digits):
            raise ValueError(f"{len(digits)} digits but {len(voices)} speakers")
        batch = len(digits)
        if noise is None:
            noise = np.random.default_rng(seed).random((batch, CLIP_SAMPLES), dtype=np.float32)
        noise = np.asarray(noise, np.float32)
        if noise.shape != (batch, CLIP_SAMPLES) or noise.min() < 0 or noise.max() > 1:
            raise ValueError(f"noise must be uniform numbers in [0, 1) of shape [{batch}, {CLIP_SAMPLES}], "
                             f"got shape {list(noise.shape)}")
        conditioning = self.condition_runner(digit=digits.astype(np.int32), speaker=voices)["conditioning"]
        state = np.zeros((batch, self.state_size), np.float32)
        sample = np.zeros(batch, np.float32)
        audio = np.zeros((batch, CLIP_SAMPLES), np.float32)
        for t in range(CLIP_SAMPLES):
            out = self.step_runner(conditioning=conditioning[:, t // HOP_LENGTH], sample=sample,
                                   noise=noise[:, t], state=state)
            sample, state = out["audio"], out["state"]
            audio[:, t] = sample
            if on_frame is not None and (t + 1) % HOP_LENGTH == 0:
                on_frame(audio[:, t + 1 - HOP_LENGTH : t + 1])
        return audio


def main(argv=None):
    parser = argparse.ArgumentParser(description="Say a digit with the WaveNet TFLite file (NumPy + LiteRT only).")
    parser.add_argument("model", help="path to wavenet.tflite (its manifest.json beside it)")
    parser.add_argument("--digit", type=int, default=7, help="0-9 (default 7)")
    parser.add_argument("--speaker", default="jackson", help="a speaker's name or index (default jackson)")
    parser.add_argument("--seed", type=int, default=0)
    add_threads_argument(parser)
    parser.add_argument("--output", default=os.path.join("samples", "wavenet.wav"),
                        help="the WAV to write (default samples/wavenet.wav)")
    args = parser.parse_args(argv)
    try:
        model = TFLiteWaveNet(args.model, num_threads=args.threads)
        start = time.perf_counter()
        clip = model.speak([args.digit], [args.speaker], seed=args.seed)[0]
        seconds = time.perf_counter() - start
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_wav(args.output, clip)
    print(f"wrote {args.output}: '{args.digit}' by {model.speakers[model.speaker_index(args.speaker)]}, 1 s at "
          f"{SAMPLE_RATE} Hz, in {seconds:.2f} s (real-time factor {seconds / (CLIP_SAMPLES / SAMPLE_RATE):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
