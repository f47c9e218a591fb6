"""Four-voice music for an app: melodies from note names, the Gibbs sampler's loop, MIDI files, a synthesizer.

NumPy and Python's standard library only (no TensorFlow, no zoo), so an app can copy it beside a
``.tflite`` file. A score here is MIDI pitches ``[4, steps]`` (soprano, alto, tenor, bass), one per
sixteenth note, 0 = rest; a pitch held over several sixteenths is one note.
"""

import io
import re
import struct
import wave

import numpy as np

try:  # in the repository
    from zoo.core.apps.counter_random import counter_uniform
except ImportError:  # copied beside the app
    from counter_random import counter_uniform

STEPS_PER_QUARTER = 4
NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
NOTE = re.compile(r"^([A-Ga-g])([#b]*)(-?\d+)(?::(\d+(?:\.\d+)?))?$")
REST = re.compile(r"^[rR](?::(\d+(?:\.\d+)?))?$")

# The in-graph sampler's schedule (``zoo.music.model`` uses these): Gibbs step n resamples each free note
# with probability max(MIN_SHARE, MAX_SHARE - n (MAX_SHARE - MIN_SHARE) / (ANNEAL * steps)).
GIBBS_STEPS = 96
MAX_SHARE, MIN_SHARE, ANNEAL = 1.0, 0.05, 0.75
# Added to the score of a note that would move in parallel fifths or octaves with another voice (the
# sampler's one rule of voice leading): far below any note the network would draw, yet float16 holds it.
PARALLEL_PENALTY = -1e4


def note_name(midi):
    """60 -> "C4"; 0 -> "rest"."""
    return "rest" if midi == 0 else f"{PITCH_CLASS_NAMES[midi % 12]}{midi // 12 - 1}"



def soprano_range_error(notes, low, high):
    """What is wrong with soprano ``notes`` (MIDI, 0 = rest) outside ``low``..``high``, or None: one message
    for the CLI and the phone app alike."""
    outside = sorted({int(p) for p in np.ravel(notes) if p and not low <= p <= high})
    if not outside:
        return None
    direction = "up" if outside[0] < low else "down"
    return (f"the melody has {', '.join(note_name(p) for p in outside)} outside the soprano's range "
            f"{note_name(low)}-{note_name(high)} (MIDI {low}-{high}, what Bach's sopranos sing): transpose it "
            f"{direction} (an octave is 12 semitones)")

def parse_melody(text):
    """ "C4 D4 E4:2 r F#4:0.5" -> MIDI per sixteenth. A note is a letter, sharps (#) or flats (b), an octave
    (C4 = middle C = 60) and an optional length in quarter notes after a colon (default 1); "r" is a rest."""
    steps = []
    for word in text.replace(",", " ").split():
        rest, note = REST.match(word), NOTE.match(word)
        if not rest and not note:
            raise ValueError(f"cannot read {word!r} as a note: write a letter, # or b, an octave and an optional "
                             "length in quarters, e.g. C4, F#4:2, Bb3:0.5, or r for a rest")
        length = float((rest or note).groups()[-1] or 1.0)
        count = length * STEPS_PER_QUARTER
        if count < 1 or count != int(count):
            raise ValueError(f"{word!r}: a length must be a whole number of sixteenths (0.25, 0.5, 1, 1.5, 2 ...)")
        if rest:
            pitch = 0
        else:
            letter, accidentals, octave = note.groups()[:3]
            pitch = 12 * (int(octave) + 1) + NAMES[letter.upper()] + accidentals.count("#") - accidentals.count("b")
            if not 0 <= pitch <= 127:
                raise ValueError(f"{word!r} is MIDI {pitch}, outside 0-127")
        steps += [pitch] * int(count)
    if not steps:
        raise ValueError("the melody is empty: give notes such as \"G4 G4 D5 B4\"")
    return np.array(steps, np.int32)


def fit_melody(melody, length):
    """A melody cut or padded to ``length`` sixteenths (padding holds the last note); and what was done, in words."""
    melody = np.asarray(melody, np.int32)
    if len(melody) == length:
        return melody, None
    if len(melody) > length:
        return melody[:length], (f"the melody is {len(melody)} sixteenths long; the model writes {length} "
                                 f"(four bars of 4/4), so it was cut after {length}")
    return (np.concatenate([melody, np.full(length - len(melody), melody[-1], np.int32)]),
            f"the melody is {len(melody)} sixteenths long; its last note is held to fill {length} (four bars of 4/4)")


# === Sampling: annealed blocked Gibbs around the model's ``logits`` signature ===
def share_at(step, steps=GIBBS_STEPS):
    share = np.float32(MAX_SHARE) - np.float32(step) * np.float32((MAX_SHARE - MIN_SHARE) / (ANNEAL * steps))
    return np.maximum(np.float32(MIN_SHARE), share)


def gibbs_uniforms(seed, step, cells, vocabulary, gumbel):
    """Step ``step``'s uniforms ``[b, cells]`` (which notes to resample) or, with ``gumbel``, ``[b, cells,
    vocabulary]`` (the noise that samples them): the graph's counters (``zoo.music.model.gibbs_uniforms``)."""
    block = cells * (1 + vocabulary)
    size = cells * vocabulary if gumbel else cells
    counter = step * block + (cells if gumbel else 0) + np.arange(size, dtype=np.int64)
    u = counter_uniform(np.asarray(seed, np.int64)[:, None], counter[None, :], lambda x: x.astype(np.float32))
    return u.reshape(len(u), cells, vocabulary) if gumbel else u


def parallel_motion(voices, candidates):
    """Where a voice drawing a candidate pitch would move in parallel fifths or octaves with another voice:
    bool ``[b, 4, t, k]`` for ``voices`` MIDI ``[b, 4, t]`` (0 = rest) and ``candidates`` MIDI ``[k]``, the
    other notes as they stand. Both moves a note takes part in are checked (from the step before, to the step
    after), as the card's count defines a parallel: both voices sounding before and after, both moving the
    same way, a fifth (or compound fifth) apart before and after, or both times an octave or unison. The
    graph computes the same (``zoo.music.model.parallel_motion``)."""
    voices = np.asarray(voices, np.int64)[:, :, None, :, None]  # [b, voice, other voice, t, candidate]
    others = np.swapaxes(voices, 1, 2)
    candidate = np.asarray(candidates, np.int64)[None, None, None, None, :]
    rest = lambda x: np.zeros_like(x[..., :1, :])  # noqa: E731 (before the first step, after the last)
    before = lambda x: np.concatenate([rest(x), x[..., :-1, :]], axis=-2)  # noqa: E731 (the step before)
    after = lambda x: np.concatenate([x[..., 1:, :], rest(x)], axis=-2)  # noqa: E731

    def parallel(a0, a1, b0, b1):  # voice a moves a0 -> a1 while voice b moves b0 -> b1
        sounding = (a0 > 0) & (a1 > 0) & (b0 > 0) & (b1 > 0)
        same_way = ((a1 > a0) & (b1 > b0)) | ((a1 < a0) & (b1 < b0))
        first, second = np.abs(a0 - b0) % 12, np.abs(a1 - b1) % 12
        return sounding & same_way & (((first == 7) & (second == 7)) | ((first == 0) & (second == 0)))

    into = parallel(before(voices), candidate, before(others), others)
    out_of = parallel(candidate, after(voices), others, after(others))
    another = ~np.eye(voices.shape[1], dtype=bool)[None, :, :, None, None]
    return np.any((into | out_of) & another, axis=2)


def gibbs(log_probs, voices, known, temperature, seed, lowest, vocabulary, steps=GIBBS_STEPS, on_step=None,
          forbid_parallels=False):
    """The in-graph sampler, step by step: ``log_probs(voices)`` is the exported ``logits`` signature (MIDI
    ``[b, 4, t]``, -1 = masked -> ``[b, 4, t, vocabulary]``, token 0 a rest and i MIDI ``lowest + i - 1``).
    ``voices`` MIDI ``[b, 4, t]``, ``known`` bool (kept), ``temperature`` and ``seed`` ``[b]``;
    ``forbid_parallels``: the rule against parallel fifths and octaves (the manifest's ``sampler`` says whether
    the exported graph applies it). Draws the same numbers as the graph (``counter_random``), so at the same
    seed it writes the same notes."""
    voices = np.where(known, np.asarray(voices, np.int32), 0)
    batch, shape = voices.shape[0], voices.shape
    cells = shape[1] * shape[2]
    temperature = np.asarray(temperature, np.float32).reshape(-1, 1, 1)
    tokens = np.arange(vocabulary)
    candidates = np.where(tokens > 0, tokens + lowest - 1, 0)
    for step in range(steps):
        resample = ~known.reshape(batch, cells) & (
            gibbs_uniforms(seed, step, cells, vocabulary, gumbel=False) < share_at(step, steps))
        shown = np.where(resample, -1, voices.reshape(batch, cells)).reshape(shape)
        scores = np.asarray(log_probs(shown), np.float32).reshape(batch, cells, vocabulary)
        if forbid_parallels:
            forbidden = parallel_motion(voices, candidates).reshape(batch, cells, vocabulary)
            scores = scores + np.where(forbidden, np.float32(PARALLEL_PENALTY), np.float32(0.0))
        gumbel = -np.log(-np.log(gibbs_uniforms(seed, step, cells, vocabulary, gumbel=True)))
        drawn = np.argmax(scores + temperature * gumbel, axis=-1).astype(np.int32)
        drawn = np.where(drawn > 0, drawn + lowest - 1, 0)
        voices = np.where(resample, drawn, voices.reshape(batch, cells)).reshape(shape)
        if on_step:
            on_step(step)
    return voices


# === Files ===
def notes_of(line):
    """One voice's MIDI per step -> [(pitch, start step, steps)], a held pitch being one note; rests dropped."""
    notes, start = [], 0
    for step in range(1, len(line) + 1):
        if step == len(line) or line[step] != line[start]:
            if line[start] > 0:
                notes.append((int(line[start]), start, step - start))
            start = step
    return notes


def _variable_length(value):
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_file_bytes(voices, beats_per_minute=72, programs=(52, 52, 52, 52)):
    """A standard MIDI file (format 1): a tempo track, then one track per voice on its own channel
    (General MIDI program 52, "choir aahs", by default)."""
    ticks_per_step = 120  # 480 ticks a quarter note
    tempo = struct.pack(">I", int(60_000_000 / beats_per_minute))[1:]
    tracks = [b"\x00\xff\x51\x03" + tempo + b"\x00\xff\x58\x04\x04\x02\x18\x08" + b"\x00\xff\x2f\x00"]
    for channel, line in enumerate(np.asarray(voices)):
        events = [(0, bytes([0xC0 | channel, programs[channel % len(programs)]]))]
        for pitch, start, length in notes_of(line):
            events.append((start * ticks_per_step, bytes([0x90 | channel, pitch, 80])))
            events.append(((start + length) * ticks_per_step, bytes([0x80 | channel, pitch, 0])))
        events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90))  # note-offs before note-ons at the same tick
        body, now = b"", 0
        for tick, message in events:
            body += _variable_length(tick - now) + message
            now = tick
        tracks.append(body + b"\x00\xff\x2f\x00")
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), 480)
    return header + b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in tracks)


def synthesize(voices, sample_rate=16000, beats_per_minute=72):
    """A short additive synthesizer: each note a few harmonics with a soft attack and release; float32 in [-1, 1]."""
    voices = np.asarray(voices)
    step_seconds = 60.0 / beats_per_minute / STEPS_PER_QUARTER
    total = int(round(voices.shape[1] * step_seconds * sample_rate)) + sample_rate // 4
    audio = np.zeros(total, np.float64)
    for line in voices:
        for pitch, start, length in notes_of(line):
            first = int(round(start * step_seconds * sample_rate))
            count = int(round(length * step_seconds * sample_rate)) + sample_rate // 20
            t = np.arange(count) / sample_rate
            frequency = 440.0 * 2 ** ((pitch - 69) / 12)
            tone = sum(np.sin(2 * np.pi * frequency * k * t) / k ** 1.5 for k in (1, 2, 3, 4))
            envelope = np.minimum(1.0, t / 0.02) * np.minimum(1.0, (count / sample_rate - t) / 0.05)
            end = min(total, first + count)
            audio[first:end] += (tone * envelope)[: end - first]
    peak = np.max(np.abs(audio)) or 1.0
    return (0.8 * audio / peak).astype(np.float32)


def wav_file_bytes(audio, sample_rate=16000):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()
