"""Say a digit string with the TTS TFLite file, streaming, as a phone app would: NumPy and LiteRT only.

    python -m zoo.tts.tflite_speak exported/tts/tts.tflite --digits 5550123 --speaker jackson --output call.wav

Copy this file, ``zoo/core/apps/manifest.py`` (the sha256 check) and ``zoo/core/apps/speech.py`` (voices, WAV
files) next to ``tts.tflite`` and its ``manifest.json`` in any project: it needs NumPy and LiteRT alone. It checks the file's sha256 against the manifest, calls ``mel``
once (the spectrogram, the vocoder's conditioning and the boundaries: where each digit starts), then the
WaveNet's ``step`` once per sample up to the last digit's end, with the fast-WaveNet queues passed in and
out as ``state``. Each 10 ms frame goes to ``on_frame`` as soon as its 80 samples are out, so an app starts
playing after 10 ms of compute, not after the whole utterance, and ``on_digit`` says which digit is being
said (to highlight it). With the same noise it gives the in-graph ``serving_default``'s samples.
"""

import argparse
import os
import sys
import time

import numpy as np

try:  # in the repository (python -m zoo.tts.tflite_speak)
    from zoo.core.apps.manifest import add_threads_argument
    from zoo.core.apps.speech import HOP_LENGTH, SAMPLE_RATE, VocoderFile, write_wav
except ImportError:  # copied into an app next to manifest.py and speech.py
    from manifest import add_threads_argument
    from speech import HOP_LENGTH, SAMPLE_RATE, VocoderFile, write_wav

MAX_DIGITS = 8
MAX_SAMPLES = 64000
PADDING = -1


def digit_row(digits):
    """"5550123" (spaces and dashes ignored) or a list of 0-9 -> int32 [8] padded with -1; ValueError otherwise."""
    if isinstance(digits, str):
        kept = [c for c in digits if c not in " -"]
        bad = [c for c in kept if c not in "0123456789"]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a digit: the model says the digits 0-9 (got {digits!r})")
        digits = [int(c) for c in kept]
    digits = [int(d) for d in digits]
    if not digits:
        raise ValueError("no digits to say: give 1-8 digits")
    if len(digits) > MAX_DIGITS:
        raise ValueError(f"{len(digits)} digits is more than the {MAX_DIGITS} one call says; split the string")
    if min(digits) < 0 or max(digits) > 9:
        raise ValueError(f"digits must be 0-9, got {digits}")
    return np.array(digits + [PADDING] * (MAX_DIGITS - len(digits)), np.int32)


class TFLiteSpeech(VocoderFile):
    """The ``mel`` and ``step`` signatures of the TTS TFLite file."""

    frames_signature = "mel"
    what = "the TTS model's"

    def spectrogram(self, digits, speaker):
        """``mel`` of one string: ``{"mel" [1, 800, 40], "conditioning" [1, 800, C], "boundaries" [1, 9]}``."""
        # The TFLite graph cannot refuse bad values (the converter drops asserts): a digit or speaker out of
        # range would read past an embedding table, so they are checked here.
        row = digit_row(digits)
        return self.frames_runner(digits=row[None], speaker=np.array([self.speaker_index(speaker)], np.int32))

    def speak(self, digits, speaker, noise=None, seed=0, on_frame=None, on_digit=None):
        """``(audio [samples], boundaries [9])``: one string in one voice, up to its last digit's end.

        Args:
            noise: ``[64000]`` uniform numbers in [0, 1) (default: ``numpy.random.default_rng(seed)``).
            on_frame: called with each 10 ms frame's 80 samples as soon as they are out.
            on_digit: called with a digit's index in the string when its first sample is out.
        """
        if noise is None:
            noise = np.random.default_rng(seed).random((1, MAX_SAMPLES), dtype=np.float32)[0]
        noise = np.asarray(noise, np.float32).reshape(-1)
        if noise.shape != (MAX_SAMPLES,) or noise.min() < 0 or noise.max() > 1:
            raise ValueError(f"noise must be {MAX_SAMPLES} uniform numbers in [0, 1), got shape {list(noise.shape)}")
        frames = self.spectrogram(digits, speaker)
        conditioning, marks = frames["conditioning"][0], frames["boundaries"][0]
        end = int(marks.max())
        starts = {int(m): i for i, m in enumerate(marks[:-1]) if 0 <= m < end}
        state = np.zeros((1, self.state_size), np.float32)
        sample = np.zeros(1, np.float32)
        audio = np.zeros(end, np.float32)
        for t in range(end):
            if on_digit is not None and t in starts:
                on_digit(starts[t])
            out = self.step_runner(conditioning=conditioning[None, t // HOP_LENGTH], sample=sample,
                                   noise=noise[t : t + 1], state=state)
            sample, state = out["audio"], out["state"]
            audio[t] = sample[0]
            if on_frame is not None and (t + 1) % HOP_LENGTH == 0:
                on_frame(audio[t + 1 - HOP_LENGTH : t + 1])
        return audio, marks


def main(argv=None):
    parser = argparse.ArgumentParser(description="Say digits with the TTS TFLite file, streaming (NumPy + LiteRT).")
    parser.add_argument("model", help="path to tts.tflite (its manifest.json beside it)")
    parser.add_argument("--digits", default="5550123", help="1-8 digits (default 5550123)")
    parser.add_argument("--speaker", default="jackson", help="a speaker's name or index (default jackson)")
    parser.add_argument("--seed", type=int, default=0)
    add_threads_argument(parser)
    parser.add_argument("--output", default=os.path.join("samples", "tts.wav"), help="the WAV to write")
    args = parser.parse_args(argv)
    try:
        model = TFLiteSpeech(args.model, num_threads=args.threads)
        start = time.perf_counter()
        first = []
        audio, marks = model.speak(args.digits, args.speaker, seed=args.seed,
                                   on_frame=lambda frame: first or first.append(time.perf_counter() - start))
        seconds = time.perf_counter() - start
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_wav(args.output, audio)
    duration = len(audio) / SAMPLE_RATE
    print(f"wrote {args.output}: {args.digits} by {model.speakers[model.speaker_index(args.speaker)]}, {duration:.2f} s "
          f"at {SAMPLE_RATE} Hz, digits starting at {', '.join(f'{m / SAMPLE_RATE:.2f}' for m in marks[:-1] if m >= 0)} s;"
          f" first frame after {first[0] * 1000:.0f} ms, all in {seconds:.2f} s (real-time factor "
          f"{seconds / max(duration, 1e-9):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
