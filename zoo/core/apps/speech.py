"""What the speech apps share (NumPy and Python's standard library alone): a voice's index, and WAV bytes.

``zoo/wavenet/tflite_sample.py`` and ``zoo/tts/tflite_speak.py`` import it; copy it next to either in an app.
"""

import io
import wave

import numpy as np

SAMPLE_RATE = 8000
HOP_LENGTH = 80  # samples per 10 ms frame: the vocoder's conditioning row t // 80 is sample t's


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
