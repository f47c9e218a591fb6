"""Bach's four-part chorales from music21's bundled corpus, on a sixteenth-note grid.

Every chorale of ``music21.corpus.getComposer("bach")`` that parses into exactly four parts
(soprano, alto, tenor, bass) is kept; they are sorted by corpus path (``bach/bwv1.6.mxl``) and only
then indexed: index % 10 == 0 is test, index % 10 == 1 validation, the rest train, so everyone
measures on the same chorales. Each voice is a MIDI pitch per sixteenth (0 = rest); grace notes are
ignored, the pickup bar is kept, repeats are not expanded.

Which files have four parts is read from the files themselves in about a second (MusicXML's
``<score-part>`` entries, Humdrum's ``**kern`` spines; a RomanText analysis is one part), so a split can be
parsed alone: the 37 test chorales in seconds, all 433 files in about two minutes. Parsed arrays are kept
in a cache (``$ZOO_CACHE_DIR``, else ``~/.cache/zoo``), one file per music21 version and set of splits,
written atomically.
"""

import os
import re
import zipfile

import numpy as np

from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.files import atomic_file
from zoo.core.runtime.paths import cache_dir

STEPS_PER_QUARTER = 4  # a sixteenth-note grid
VOICES = ("soprano", "alto", "tenor", "bass")
WINDOW = 64  # four bars of 4/4
# The pitches the model writes, per voice: the training chorales' own ranges (MIDI), measured by
# `voice_ranges(load_chorales()["train"])` on music21 10.5.1 and kept fixed so a model never depends on
# which chorales a run saw.
RANGES = {"soprano": (57, 81), "alto": (53, 74), "tenor": (48, 69), "bass": (36, 64)}
# The textbook SATB ranges (e.g. Aldwell & Schachter): what "outside a voice's range" means in the metrics.
TEXTBOOK_RANGES = {"soprano": (60, 79), "alto": (55, 74), "tenor": (48, 67), "bass": (40, 62)}
SPLITS = ("train", "validation", "test")


def _music21():
    try:
        import music21
    except ImportError:
        raise BadInputError("the Bach chorales come with music21: pip install -r requirements.txt "
                            "(it pins music21)") from None
    return music21


def corpus_paths():
    """The corpus's Bach files as (relative path, full path), sorted by relative path."""
    music21 = _music21()
    paths = [str(p) for p in music21.corpus.getComposer("bach")]
    root = os.path.dirname(os.path.dirname(paths[0])) if paths else ""
    return sorted((os.path.relpath(p, root).replace(os.sep, "/"), p) for p in paths)


def quantize_part(part, top):
    """A part -> {step: midi} per sixteenth it sounds (the top note of a chord where ``top``, else the bottom)."""
    sounding = {}
    end_step = 0
    for element in part.flatten().notesAndRests:
        if element.duration.isGrace:
            continue
        start = int(round(float(element.offset) * STEPS_PER_QUARTER))
        end = int(round(float(element.offset + element.quarterLength) * STEPS_PER_QUARTER))
        end_step = max(end_step, end)
        if element.isRest:
            continue
        pitches = [p.midi for p in element.pitches]
        pitch = max(pitches) if top else min(pitches)
        for step in range(start, end):
            sounding[step] = pitch
    return sounding, end_step


def parse_chorale(path):
    """One file -> (voices int16 [4, steps], bar starts in steps, meter, key (tonic pitch class, mode)), or
    a string saying why it is skipped."""
    music21 = _music21()
    try:
        score = music21.converter.parse(path)
    except Exception as error:  # noqa: BLE001 (music21 raises many kinds; the file is reported, not fatal)
        return f"unparseable: {type(error).__name__}: {error}"
    if len(score.parts) != 4:
        return f"{len(score.parts)} parts, not four"
    parts = [quantize_part(part, top=i < 2) for i, part in enumerate(score.parts)]
    steps = max(end for _, end in parts)
    voices = np.zeros((4, steps), np.int16)
    for i, (sounding, _) in enumerate(parts):
        for step, pitch in sounding.items():
            voices[i, step] = pitch
    signatures = score.parts[0].recurse().getElementsByClass("TimeSignature")
    meter = signatures[0].ratioString if signatures else "4/4"
    bar = signatures[0].barDuration.quarterLength if signatures else 4.0
    measures = list(score.parts[0].getElementsByClass("Measure"))
    starts = [int(round(float(m.offset) * STEPS_PER_QUARTER)) for m in measures]
    # the pickup bar is kept, but windows start on full bars
    if measures and float(measures[0].duration.quarterLength) < bar:
        starts = starts[1:]
    key = score.analyze("key")
    return voices, np.array(sorted(set(starts)), np.int32), meter, (int(key.tonic.pitchClass), key.mode)


def part_count(path):
    """How many parts a corpus file has, read without parsing the music (what music21's parse gives, checked
    on every file of music21 10.5.1 by tests/test_music.py)."""
    if path.endswith(".rntxt"):
        return 1  # a RomanText analysis: one stream of chord symbols
    if path.endswith(".krn"):
        with open(path, encoding="utf-8", errors="replace") as file:
            header = next(line for line in file if line.startswith("**"))
        return header.split("\t").count("**kern")
    if path.endswith(".mxl"):
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist()
                        if not n.startswith("META-INF") and n.endswith((".xml", ".musicxml")))
            text = archive.read(name).decode("utf-8", "replace")
    else:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
    return len(re.findall(r"<score-part\b", text))


def split_of(index):
    """The split of the ``index``-th four-part chorale (sorted by corpus path)."""
    return SPLITS[2] if index % 10 == 0 else SPLITS[1] if index % 10 == 1 else SPLITS[0]


def _parse(limit, splits):
    kept, skipped, index = [], [], 0
    for relative, full in corpus_paths()[:limit]:
        parts = part_count(full)
        if parts != 4:
            skipped.append((relative, f"{parts} parts, not four"))
            continue
        index += 1
        if split_of(index - 1) not in splits:
            kept.append((relative, None))
            continue
        parsed = parse_chorale(full)
        if isinstance(parsed, str):  # the split would shift: say so rather than measure on other chorales
            raise BadInputError(f"{relative} has four parts but music21 {_music21().__version__} reads it as: "
                                f"{parsed}; the zoo's split was fixed on music21 10.5.1 (requirements.txt)")
        kept.append((relative, *parsed))
    return kept, skipped


def _cache_path(limit, splits):
    music21 = _music21()
    suffix = ("" if limit is None else f"-first{limit}") + ("" if set(splits) == set(SPLITS) else
                                                            "-" + "-".join(s for s in SPLITS if s in splits))
    return os.path.join(cache_dir(), f"bach-chorales-music21-{music21.__version__}{suffix}.npz")


def load_chorales(limit=None, progress=None, splits=SPLITS):
    """The chorales by split: ``{"train": [chorale, ...], "validation": ..., "test": ..., "skipped": [(path,
    why), ...]}``, each chorale a dict with ``path``, ``voices`` int16 [4, steps] (MIDI, 0 = rest),
    ``bar_starts`` (steps), ``meter``, ``key`` (tonic pitch class, "major"/"minor"). ``limit`` reads only the
    first ``limit`` corpus files (the tests), split by the same rule among those; ``splits`` parses only
    those splits (the others come back empty), e.g. ``("test",)`` in seconds."""
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise BadInputError(f"unknown chorale splits {sorted(unknown)}; choose from {SPLITS}")
    everything = _cache_path(limit, SPLITS)
    path = everything if os.path.isfile(everything) else _cache_path(limit, splits)
    if not os.path.isfile(path):
        if progress:
            progress(f"Parsing music21's Bach chorales ({'about two minutes' if 'train' in splits else 'seconds'}"
                     f", once) into {path}")
        kept = []
        all_kept, skipped = _parse(limit, splits)
        positions = []  # every four-part chorale's index, parsed or not, so the split rule still applies
        for position, entry in enumerate(all_kept):
            if entry[1] is not None:
                kept.append(entry)
                positions.append(position)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        lengths = np.array([v.shape[1] for _, v, _, _, _ in kept], np.int64)
        bar_counts = np.array([len(b) for _, _, b, _, _ in kept], np.int64)
        with atomic_file(path) as temporary:
            with open(temporary, "wb") as file:
                np.savez_compressed(
                    file, paths=np.array([k[0] for k in kept]), positions=np.array(positions, np.int64),
                    lengths=lengths, bar_counts=bar_counts,
                    voices=np.concatenate([k[1] for k in kept], axis=1) if kept else np.zeros((4, 0), np.int16),
                    bar_starts=np.concatenate([k[2] for k in kept]) if kept else np.zeros(0, np.int32),
                    meters=np.array([k[3] for k in kept]), tonics=np.array([k[4][0] for k in kept], np.int32),
                    modes=np.array([k[4][1] for k in kept]),
                    skipped_paths=np.array([s[0] for s in skipped] or [""]),
                    skipped_why=np.array([s[1] for s in skipped] or [""]))
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    voice_ends = np.cumsum(arrays["lengths"])
    bar_ends = np.cumsum(arrays["bar_counts"])
    split = {name: [] for name in SPLITS}
    # caches written before splits could be parsed alone hold every four-part chorale, in order
    positions = arrays["positions"] if "positions" in arrays else np.arange(len(arrays["paths"]))
    for index, relative in enumerate(arrays["paths"]):
        chorale = {
            "path": str(relative),
            "voices": arrays["voices"][:, voice_ends[index] - arrays["lengths"][index] : voice_ends[index]],
            "bar_starts": arrays["bar_starts"][bar_ends[index] - arrays["bar_counts"][index] : bar_ends[index]],
            "meter": str(arrays["meters"][index]),
            "key": (int(arrays["tonics"][index]), str(arrays["modes"][index])),
        }
        split[split_of(int(positions[index]))].append(chorale)
    split["skipped"] = [(str(p), str(w)) for p, w in zip(arrays["skipped_paths"], arrays["skipped_why"]) if p]
    return split


def voice_ranges(chorales):
    """Each voice's lowest and highest sounding MIDI pitch over ``chorales``."""
    ranges = {}
    for i, name in enumerate(VOICES):
        notes = np.concatenate([c["voices"][i][c["voices"][i] > 0] for c in chorales])
        ranges[name] = (int(notes.min()), int(notes.max()))
    return ranges


def transpositions(voices, ranges=RANGES, widest=6):
    """The shifts in semitones (-widest .. widest) that keep every voice of ``voices`` [4, steps] in ``ranges``."""
    shifts = []
    for shift in range(-widest, widest + 1):
        fits = True
        for i, name in enumerate(VOICES):
            notes = voices[i][voices[i] > 0]
            low, high = ranges[name]
            if len(notes) and (notes.min() + shift < low or notes.max() + shift > high):
                fits = False
                break
        if fits:
            shifts.append(shift)
    return shifts


def windows(chorale, length=WINDOW, hop_bars=1):
    """The ``[4, length]`` windows of a chorale starting on its bar lines (every ``hop_bars`` bars) that fit."""
    steps = chorale["voices"].shape[1]
    starts = [int(s) for s in chorale["bar_starts"][::hop_bars] if s + length <= steps]
    return [chorale["voices"][:, s : s + length] for s in starts]


def test_windows(chorales, length=WINDOW):
    """The evaluation windows: each chorale cut on bar lines into non-overlapping ``length``-step windows."""
    out = []
    for chorale in chorales:
        next_free = 0
        for start in chorale["bar_starts"]:
            start = int(start)
            if start >= next_free and start + length <= chorale["voices"].shape[1]:
                out.append(chorale["voices"][:, start : start + length])
                next_free = start + length
    return np.stack(out).astype(np.int32) if out else np.zeros((0, 4, length), np.int32)
