"""Spoken digit strings built from the Free Spoken Digit Dataset: what the text-to-speech model learns and is scored on.

An utterance of 1-7 digits in one speaker's voice is that speaker's recordings of the
digits (a random take of each, from one split), each trimmed of its silence, laid end to
end with a random pause between two digits:

- *trim*: the recording's 10 ms frames (80 samples) whose RMS is within 30 dB of its
  loudest frame mark the speech; one frame of margin is kept on each side, and the cut
  falls on frame boundaries, so every digit starts on a frame (its ``boundaries``);
- *pause*: 5-25 frames (50-250 ms) of silence after every digit but the last;
- the utterance starts with the first digit and ends with the last one's speech; the
  64,000-sample buffer (8 s) is zero after it.

``held_out_strings`` are the 300 strings the model is scored on (seed 12345, lengths 1-7);
training never draws one of three digits or more (shorter strings are too few to hold out).
"""

import numpy as np

from zoo.core.data.audio import HOP_LENGTH

MAX_DIGITS = 8
MAX_FRAMES = 800
MAX_SAMPLES = MAX_FRAMES * HOP_LENGTH
TRIM_DB = 30.0
PAUSE_FRAMES = (5, 25)
LENGTHS = (1, 7)
HELD_OUT_SEED = 12345
HELD_OUT_COUNT = 300
EPOCH_UTTERANCES = 6400      # new training utterances an epoch (tests shrink it, as they shrink MNIST)
VALIDATION_UTTERANCES = 256  # of the test takes
PADDING = -1


def trimmed_frames(samples, db=TRIM_DB):
    """``(first, last)`` frames (last excluded) of a recording's speech: frames within ``db`` of its loudest, plus one
    frame each side."""
    frames = len(samples) // HOP_LENGTH
    rms = np.sqrt(np.mean(np.square(samples[: frames * HOP_LENGTH].reshape(frames, HOP_LENGTH)), axis=1) + 1e-12)
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-db / 20))
    return max(int(loud[0]) - 1, 0), min(int(loud[-1]) + 2, frames)


class DigitTakes:
    """Every trimmed recording of one FSDD split, by digit and speaker."""

    def __init__(self, split="train", limit=None):
        from zoo.core.data.datasets import spoken_digits

        clips = spoken_digits(split, limit=limit)
        self.speaker_names = clips.speaker_names
        self.takes = {}  # (digit, speaker) -> [trimmed samples, a multiple of 80]
        for samples, length, digit, speaker in zip(clips.audio, clips.lengths, clips.digits, clips.speakers):
            first, last = trimmed_frames(samples[: min(int(length), len(samples))])
            self.takes.setdefault((int(digit), int(speaker)), []).append(samples[first * HOP_LENGTH : last * HOP_LENGTH])
        self.num_speakers = len(self.speaker_names)
        self.missing = [(d, s) for d in range(10) for s in range(self.num_speakers) if (d, s) not in self.takes]

    def utterance(self, digits, speaker, rng):
        """``(audio [64000], speech [8], pause [8])`` frames of the digit string ``digits`` in ``speaker``'s voice."""
        audio = np.zeros(MAX_SAMPLES, np.float32)
        speech, pause = np.zeros(MAX_DIGITS, np.int32), np.zeros(MAX_DIGITS, np.int32)
        at = 0
        for i, digit in enumerate(digits):
            takes = self.takes.get((int(digit), int(speaker)))
            if not takes:
                raise ValueError(f"no recording of {digit} by speaker {speaker} in this split")
            take = takes[int(rng.integers(len(takes)))]
            take = take[: max(MAX_SAMPLES - at, 0)]
            audio[at : at + len(take)] = take
            speech[i] = len(take) // HOP_LENGTH
            at += len(take)
            if i < len(digits) - 1:
                pause[i] = int(rng.integers(PAUSE_FRAMES[0], PAUSE_FRAMES[1] + 1))
                at += pause[i] * HOP_LENGTH
        return audio, speech, pause


def padded(digits):
    """A digit string (a sequence of 0-9) as ``int32 [8]``, -1 after its end."""
    row = np.full(MAX_DIGITS, PADDING, np.int32)
    row[: len(digits)] = digits
    return row


def held_out_strings(count=HELD_OUT_COUNT, num_speakers=6, seed=HELD_OUT_SEED):
    """``(strings, speakers)``: ``count`` digit strings of lengths 1-7 (as many of each length as can be) and a
    voice each (in turn), drawn from ``seed``: the evaluation's requests."""
    rng = np.random.default_rng(seed)
    lengths = LENGTHS[0] + np.arange(count) % (LENGTHS[1] - LENGTHS[0] + 1)
    strings = [tuple(int(d) for d in rng.integers(0, 10, n)) for n in lengths]
    return strings, np.arange(count, dtype=np.int32) % num_speakers


HELD_OUT = frozenset(s for s in held_out_strings()[0] if len(s) >= 3)


def draw_string(rng):
    """A training digit string: length uniform in 1-7, digits uniform, never one of the held-out strings."""
    while True:
        digits = tuple(int(d) for d in rng.integers(0, 10, int(rng.integers(LENGTHS[0], LENGTHS[1] + 1))))
        if digits not in HELD_OUT:
            return digits


def training_batch(takes, seed, epoch, index, batch_size):
    """Batch ``index`` of ``epoch`` from ``default_rng([seed, epoch, index])`` alone (exact resume): digits
    [b, 8], speaker [b], speech and pause [b, 8] (frames) and audio [b, samples] cut after the longest
    utterance (rounded up to 50 frames, so a run traces a handful of shapes)."""
    rng = np.random.default_rng([seed, epoch, index])
    rows = [draw_string(rng) for _ in range(batch_size)]
    speakers = rng.integers(0, takes.num_speakers, batch_size).astype(np.int32)
    return utterance_batch(takes, rows, speakers, rng)


def utterance_batch(takes, rows, speakers, rng):
    built = [takes.utterance(row, speaker, rng) for row, speaker in zip(rows, speakers)]
    speech, pause = np.stack([b[1] for b in built]), np.stack([b[2] for b in built])
    frames = int((speech + pause).sum(axis=1).max())
    keep = min(MAX_FRAMES, -(-(frames + 3) // 50) * 50) * HOP_LENGTH
    audio = np.stack([b[0][:keep] for b in built])
    return (np.stack([padded(r) for r in rows]), np.asarray(speakers, np.int32), speech, pause, audio)


def segments(audio, marks):
    """The clips between consecutive ``marks`` (the sample where each digit starts, then the end; -1 padding),
    each cut or zero-padded to one second: what the spoken-digit classifier reads."""
    from zoo.core.data.audio import CLIP_SAMPLES, fit_to_clip

    marks = [int(m) for m in marks if m >= 0]
    return [fit_to_clip(audio[a:b], CLIP_SAMPLES) for a, b in zip(marks[:-1], marks[1:])]
