"""What the speech apps share (NumPy, LiteRT and Python's standard library alone): the model file opened with its
frame and step signatures, a voice's index, and WAV bytes.

``zoo/wavenet/tflite_sample.py`` and ``zoo/tts/tflite_speak.py`` import it; copy it and ``manifest.py`` next to either
in an app.
"""

import io
import os
import wave

import numpy as np

try:  # in the repository
    from zoo.core.apps.manifest import verified_manifest
except ImportError:  # copied into an app next to manifest.py
    from manifest import verified_manifest

SAMPLE_RATE = 8000
HOP_LENGTH = 80  # samples per 10 ms frame: the vocoder's conditioning row t // 80 is sample t's


class VocoderFile:
    """A speech model's TFLite file, checked against its manifest first and run on every core unless told: its
    ``frames_runner`` (the signature that makes the vocoder's conditioning: the WaveNet's ``condition``, the TTS
    model's ``mel``), its ``step_runner`` (one sample) and the ``state_size`` of the vocoder's queues."""

    frames_signature = None  # set by the subclass
    what = "a speech model's"

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.manifest = verified_manifest(path)
        self.speakers = self.manifest["speakers"]
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads or os.cpu_count())  # every core unless told
        missing = {self.frames_signature, "step"} - set(self.interpreter.get_signature_list())
        if missing:
            raise ValueError(f"{path} has no {sorted(missing)} signature: is it {self.what} TFLite file?")
        self.frames_runner = self.interpreter.get_signature_runner(self.frames_signature)
        self.step_runner = self.interpreter.get_signature_runner("step")
        self.state_size = int(self.step_runner.get_input_details()["state"]["shape_signature"][1])

    def speaker_index(self, speaker):
        return speaker_index(speaker, self.speakers)


def speaker_index(speaker, speakers):
    """The index of ``speaker`` (a name in ``speakers``, case-insensitive, or an index as int or digits); a
    ValueError that lists the voices otherwise."""
    if isinstance(speaker, str) and speaker.isdigit():
        speaker = int(speaker)
    if isinstance(speaker, (int, np.integer)) and not isinstance(speaker, bool) and 0 <= speaker < len(speakers):
        return int(speaker)
    if isinstance(speaker, str) and speaker.lower() in speakers:
        return list(speakers).index(speaker.lower())
    raise ValueError(f"unknown speaker {speaker!r}; choose one of {', '.join(speakers)} (or 0-{len(speakers) - 1})")


def write_wav(path, clip, sample_rate=SAMPLE_RATE):
    """Write one clip as a 16-bit mono WAV file (its folder made if needed)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(wav_bytes(clip, sample_rate))


def wav_bytes(clip, sample_rate=SAMPLE_RATE):
    """A 16-bit mono WAV of one clip in [-1, 1]."""
    pcm = np.round(np.clip(clip, -1.0, 1.0) * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())
    return buffer.getvalue()
