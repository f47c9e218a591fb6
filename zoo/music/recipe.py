"""The chorale model's recipe: Bach's chorales from music21, harmonize and compose, voice-leading metrics.

    python -m zoo train music
    python -m zoo export music
    python -m zoo sample music --output chorale.mid                      # compose (also .wav, .png)
    python -m zoo sample music --melody "G4 G4 D5 B4 A4 G4 A4 B4" --output harmonized.wav
    python -m zoo sample music --melody tune.mid --output harmonized.mid
    python -m zoo evaluate music

Signatures (every runtime): ``harmonize`` (soprano [b, 64] + temperature + seed -> voices [b, 4, 64]),
``serving_default`` (compose: seed + temperature -> voices) and ``logits`` (voices with masked notes ->
each note's log-probabilities), the step the NumPy + LiteRT app loop (``zoo/music/tflite_sample.py``)
drives.
"""

import numpy as np

from zoo.core.data import chorales as chorale_data
from zoo.core.data.chorales import RANGES, TEXTBOOK_RANGES, VOICES, WINDOW, test_windows, transpositions, windows
from zoo.core.data.datasets import TrainingData
from zoo.core.recipes.recipe import Option, Recipe
from zoo.core.recipes.registry import register
from zoo.core.training.optimizers import CosineDecayAdam
from zoo.core.apps.music import ANNEAL, GIBBS_STEPS, MAX_SHARE, MIN_SHARE
from zoo.music.model import LOWEST, NUM_VOICES, PRESETS, VOCAB, ChoraleModel

COMPOSE_TEMPERATURE = 0.5  # composition in the metrics and the default of `sample`
HARMONIZE_FRACTION = 0.5  # training examples whose soprano is shown and only lower notes are masked
VALIDATION_SEED = 20170301


# === Batches ===
def to_tokens(midi):
    """MIDI int [..] (0 = rest) -> the model's tokens (NumPy)."""
    midi = np.asarray(midi, np.int32)
    return np.where(midi > 0, midi - (LOWEST - 1), 0).astype(np.int32)


def random_masks(rng, batch):
    """``[batch, 4, 64]`` int32, 1 = masked: for a share of the examples k of the 192 alto/tenor/bass notes
    (the soprano shown, as in harmonizing), for the rest k of all 256 notes; k uniform (Coconet's masks)."""
    masks = np.zeros((batch, NUM_VOICES, WINDOW), np.int32)
    harmonize = rng.random(batch) < HARMONIZE_FRACTION
    for i in range(batch):
        cells = np.arange(WINDOW if harmonize[i] else 0, NUM_VOICES * WINDOW)
        masks[i].reshape(-1)[rng.choice(cells, size=rng.integers(1, len(cells) + 1), replace=False)] = 1
    return masks


def training_windows(chorales):
    """Every bar-aligned four-bar window of ``chorales`` ``[n, 4, 64]`` (MIDI), and each one's transpositions."""
    cut = [w for chorale in chorales for w in windows(chorale)]
    return np.stack(cut).astype(np.int32), [transpositions(w) for w in cut]


def training_batch(cut, shifts, order, seed, epoch, index, batch_size):
    """Batch ``index`` of ``epoch``: windows ``order[index * batch_size:]``, each transposed by one of its shifts
    and masked, from ``default_rng([seed, epoch, index])`` alone (exact resume)."""
    rng = np.random.default_rng([seed, epoch, index])
    chosen = order[index * batch_size : (index + 1) * batch_size]
    midi = cut[chosen].copy()
    for row, window in enumerate(chosen):
        shift = shifts[window][rng.integers(len(shifts[window]))]
        midi[row] = np.where(midi[row] > 0, midi[row] + shift, 0)
    return to_tokens(midi), random_masks(rng, len(chosen))


def batch_dataset(make_batch, batches):
    """A ``tf.data.Dataset`` of ``{"tokens", "masked"}`` batches; ``make_batch(i)`` returns the two arrays."""
    import tensorflow as tf

    def load(index):
        tokens, masked = tf.numpy_function(lambda i: make_batch(int(i)), [index], (tf.int32, tf.int32))
        tokens.set_shape([None, NUM_VOICES, WINDOW])
        masked.set_shape([None, NUM_VOICES, WINDOW])
        return {"tokens": tokens, "masked": masked}

    return tf.data.Dataset.range(batches).map(load).prefetch(2)


def _say(message):
    import sys

    print(message, file=sys.stderr)


def chorale_split(limit=None):
    """The chorales by split; ``limit`` (quick runs and tests) reads only enough corpus files for about twice
    ``limit`` windows (some 11 a chorale) instead of parsing all 433 once (two minutes, then cached)."""
    return chorale_data.load_chorales(limit=None if limit is None else max(20, limit // 5), progress=_say)


# === Signatures ===
SOPRANO_EXAMPLE = [67] * 4 + [67] * 4 + [74] * 4 + [71] * 4 + [69] * 4 + [67] * 4 + [69] * 4 + [71] * 4 \
    + [72] * 8 + [71] * 8 + [69] * 8 + [67] * 8  # "G4 G4 D5 B4 A4 G4 A4 B4 C5:2 B4:2 A4:2 G4:2"
MAX_TEMPERATURE = 5.0
MAX_SEED = 10**9


def music_signatures(model):
    import tensorflow as tf

    from zoo.core.runtime.signature import Signature
    from zoo.music.model import MASKED, midi_to_tokens

    low, high = RANGES["soprano"]
    soprano_allowed = [(0, 0), (low, high)]
    voice_allowed = [(-1, 0), (LOWEST, LOWEST + VOCAB - 2)]
    sampling_in = {
        "temperature": (tf.TensorSpec([None], tf.float32),
                        f"sampling temperature per row, 0 (the most likely notes) to {MAX_TEMPERATURE:g}"),
        "seed": (tf.TensorSpec([None], tf.int32), f"the sampler's seed per row (0 to {MAX_SEED:,}): same seed, same music"),
    }
    voices_out = {"voices": "int32 [batch, 4, 64]: soprano, alto, tenor, bass, a MIDI pitch per sixteenth "
                            "(0 = rest); a pitch repeated over sixteenths is one held note"}

    def checked_sampling(temperature, seed):
        message = f"temperature must be in [0, {MAX_TEMPERATURE:g}]"
        return [tf.debugging.assert_greater_equal(temperature, 0.0, message=message),
                tf.debugging.assert_less_equal(temperature, MAX_TEMPERATURE, message=message),
                tf.debugging.assert_greater_equal(seed, 0, message=f"seed must be in [0, {MAX_SEED}]"),
                tf.debugging.assert_less_equal(seed, MAX_SEED, message=f"seed must be in [0, {MAX_SEED}]")]

    def harmonize(soprano, temperature, seed):
        message = (f"soprano must be MIDI {low}-{high} (the soprano's range in the chorales) or 0 for a rest; "
                   "pitches are 0-127")
        sings = tf.logical_or(tf.equal(soprano, 0), tf.logical_and(soprano >= low, soprano <= high))
        checks = [tf.debugging.assert_equal(tf.reduce_all(sings), True, message=message),
                  tf.debugging.assert_equal(tf.shape(temperature)[0], tf.shape(soprano)[0],
                                            message="soprano, temperature and seed must have the same batch size"),
                  tf.debugging.assert_equal(tf.shape(seed)[0], tf.shape(soprano)[0],
                                            message="soprano, temperature and seed must have the same batch size")]
        with tf.control_dependencies(checks + checked_sampling(temperature, seed)):
            return {"voices": model.harmonize(tf.identity(soprano), tf.identity(temperature), tf.identity(seed))}

    def compose(seed, temperature):
        checks = [tf.debugging.assert_equal(tf.shape(seed)[0], tf.shape(temperature)[0],
                                            message="seed and temperature must have the same batch size")]
        with tf.control_dependencies(checks + checked_sampling(temperature, seed)):
            return {"voices": model.compose(tf.identity(temperature), tf.identity(seed))}

    def logits(voices):
        rows = []
        for v, name in enumerate(VOICES):
            lowest, highest = RANGES[name]
            line = voices[:, v]
            sings = (line == -1) | (line == 0) | ((line >= lowest) & (line <= highest))
            rows.append(tf.debugging.assert_equal(
                tf.reduce_all(sings), True,
                message=f"{name} notes must be MIDI {lowest}-{highest}, 0 (rest) or -1 (to fill in)"))
        with tf.control_dependencies(rows):
            tokens = tf.where(voices < 0, tf.fill(tf.shape(voices), MASKED), midi_to_tokens(tf.maximum(voices, 0)))
        return {"log_probs": model.log_probs(tokens)}

    return [
        Signature("serving_default", compose, {"seed": sampling_in["seed"], "temperature": sampling_in["temperature"]},
                  voices_out, ranges={"seed": (0, MAX_SEED), "temperature": (0.0, MAX_TEMPERATURE)},
                  example={"seed": 0, "temperature": 0.5}),
        Signature("harmonize", harmonize, {
            "soprano": (tf.TensorSpec([None, WINDOW], tf.int32),
                        f"the melody: a MIDI pitch per sixteenth, four bars of 4/4 (0 = rest; pitches "
                        f"{low}-{high}, the soprano's range)"),
            **sampling_in}, {"voices": voices_out["voices"] + "; row 0 is the soprano given"},
            ranges={"soprano": (0, 127), "seed": (0, MAX_SEED), "temperature": (0.0, MAX_TEMPERATURE)},
            allowed={"soprano": soprano_allowed},
            example={"soprano": SOPRANO_EXAMPLE, "temperature": 0.0, "seed": 0}),
        Signature("logits", logits, {
            "voices": (tf.TensorSpec([None, len(VOICES), WINDOW], tf.int32),
                       "soprano, alto, tenor, bass: a MIDI pitch per sixteenth, 0 = rest, -1 = a note to fill in")},
            {"log_probs": f"float32 [batch, 4, 64, {VOCAB}]: each note's log-probability given every note shown: "
                          f"index 0 a rest, index i MIDI {LOWEST} + i - 1 (outside a voice's range: about -1e4)"},
            ranges={"voices": (-1, 127)}, allowed={"voices": voice_allowed}),
    ]


# === Measurements ===
TRIADS = {frozenset({r % 12, (r + 4) % 12, (r + 7) % 12}) for r in range(12)} | \
         {frozenset({r % 12, (r + 3) % 12, (r + 7) % 12}) for r in range(12)}
DOMINANT_SEVENTHS = {frozenset({r % 12, (r + 4) % 12, (r + 7) % 12, (r + 10) % 12}) for r in range(12)} | \
                    {frozenset({r % 12, (r + 4) % 12, (r + 10) % 12}) for r in range(12)}  # fifth omitted
PAIRS = [(i, j) for i in range(4) for j in range(i + 1, 4)]


def onsets(score):
    """The steps of ``score`` [4, t] where any voice changes (the first step included): its sonorities."""
    changed = np.any(score[:, 1:] != score[:, :-1], axis=0)
    return np.concatenate([[0], 1 + np.flatnonzero(changed)])


def voice_leading(scores):
    """Counts over ``scores`` [n, 4, t] (MIDI, 0 = rest) from which :func:`voice_leading_rates` are made."""
    counts = dict.fromkeys(("moves", "parallel_fifths", "parallel_octaves", "steps", "crossing_steps",
                            "sounding", "outside_range", "sonorities", "triads_or_sevenths"), 0)
    textbook = np.array([TEXTBOOK_RANGES[v] for v in VOICES])
    for score in np.asarray(scores):
        sounding = score > 0
        counts["sounding"] += int(sounding.sum())
        outside = sounding & ((score < textbook[:, :1]) | (score > textbook[:, 1:]))
        counts["outside_range"] += int(outside.sum())
        both = sounding[:-1] & sounding[1:]  # adjacent voices both sounding
        crossing = both & (score[:-1] < score[1:])  # a lower voice above the one over it
        counts["steps"] += score.shape[1]
        counts["crossing_steps"] += int(np.any(crossing, axis=0).sum())
        times = onsets(score)
        for t in times:
            if sounding[:, t].all():
                counts["sonorities"] += 1
                classes = frozenset(int(p) % 12 for p in score[:, t])
                counts["triads_or_sevenths"] += classes in TRIADS or classes in DOMINANT_SEVENTHS
        for before, after in zip(times[:-1], times[1:]):
            for i, j in PAIRS:
                a0, a1, b0, b1 = score[i, before], score[i, after], score[j, before], score[j, after]
                if min(a0, a1, b0, b1) == 0 or (a0 == a1 and b0 == b1):
                    continue
                counts["moves"] += 1
                if a0 != a1 and b0 != b1 and np.sign(a1 - a0) == np.sign(b1 - b0):
                    first, second = abs(int(a0) - int(b0)) % 12, abs(int(a1) - int(b1)) % 12
                    counts["parallel_fifths"] += first == 7 and second == 7
                    counts["parallel_octaves"] += first == 0 and second == 0
    return counts


def voice_leading_rates(scores):
    c = voice_leading(scores)
    per = lambda part, whole, scale=100.0: round(scale * part / max(whole, 1), 3)  # noqa: E731
    return {"parallel_fifths_per_100_moves": per(c["parallel_fifths"], c["moves"]),
            "parallel_octaves_per_100_moves": per(c["parallel_octaves"], c["moves"]),
            "voice_crossings_per_100_steps": per(c["crossing_steps"], c["steps"]),
            "notes_outside_range_percent": per(c["outside_range"], c["sounding"]),
            "triad_or_seventh_fraction": per(c["triads_or_sevenths"], c["sonorities"], 1.0)}


def evaluation_windows(split_name="test", files=None, split=None):
    """The split's non-overlapping four-bar windows ``[n, 4, 64]`` and each one's key (tonic pitch class, mode).
    ``files``: only the chorales among the first ``files`` corpus files (the split of a prefix is the prefix
    of the split, so these are the same test chorales, fewer); ``split``: the already loaded split instead."""
    split = split or chorale_data.load_chorales(limit=files, progress=_say)
    cut, keys = [], []
    for chorale in split[split_name]:
        windows_of = test_windows([chorale])
        cut += list(windows_of)
        keys += [chorale["key"]] * len(windows_of)
    return np.stack(cut).astype(np.int32), keys


def common_notes(chorales):
    """Each voice's most common sounding pitch in ``chorales``."""
    out = []
    for v in range(4):
        notes = np.concatenate([c["voices"][v][c["voices"][v] > 0] for c in chorales])
        out.append(int(np.bincount(notes).argmax()))
    return out


def tonic_triad_baseline(sopranos, keys, centres):
    """Each lower voice holds the tonic-triad pitch nearest its usual pitch (``centres``), under the soprano."""
    out = np.zeros((len(sopranos), 4, sopranos.shape[1]), np.int32)
    out[:, 0] = sopranos
    for i, (tonic, mode) in enumerate(keys):
        triad = {tonic, (tonic + (3 if mode == "minor" else 4)) % 12, (tonic + 7) % 12}
        for v in (1, 2, 3):
            candidates = [p for p in range(centres[v] - 6, centres[v] + 7) if p % 12 in triad]
            out[i, v] = min(candidates, key=lambda p: abs(p - centres[v]))
    return out


def harmonize_windows(runner, sopranos, temperature, seed, batch_size=64):
    out = []
    for start in range(0, len(sopranos), batch_size):
        part = sopranos[start : start + batch_size]
        out.append(runner("harmonize", soprano=part, temperature=np.full(len(part), temperature, np.float32),
                          seed=(seed + start + np.arange(len(part))).astype(np.int32))["voices"])
    return np.concatenate(out)


def compose_chorales(runner, num, temperature, seed, batch_size=64):
    out = []
    for start in range(0, num, batch_size):
        count = min(batch_size, num - start)
        out.append(runner("serving_default", seed=(seed + start + np.arange(count)).astype(np.int32),
                          temperature=np.full(count, temperature, np.float32))["voices"])
    return np.concatenate(out)


def lower_voice_accuracy(written, truth):
    """The fraction of alto, tenor and bass sixteenths (rests included) equal to Bach's."""
    return float(np.mean(written[:, 1:] == truth[:, 1:]))


def harmonization_quality(runner, seed, num_composed, compose_temperature=None, files=None, baselines=True):
    """What the card's tables show: harmonizing the test chorales' sopranos (greedy) beside two baselines and
    Bach's own voice leading, and composed chorales' voice leading. ``baselines=False``: the model's numbers
    alone, which need the test chorales only (parsed in seconds; the baselines read the training notes)."""
    compose_temperature = COMPOSE_TEMPERATURE if compose_temperature is None else compose_temperature
    split = chorale_data.load_chorales(limit=files, progress=_say,  # read once: test windows, training notes
                                       splits=chorale_data.SPLITS if baselines else ("test",))
    truth, keys = evaluation_windows("test", split=split)
    written = harmonize_windows(runner, truth[:, 0], 0.0, seed)
    metrics = {"harmonization_accuracy": round(lower_voice_accuracy(written, truth), 4),
               "test_windows": int(len(truth))}
    rates = {"bach": voice_leading_rates(truth), "model": voice_leading_rates(written)}
    scores = {}
    if baselines:
        common = common_notes(split["train"])
        scores = {"tonic_triad": tonic_triad_baseline(truth[:, 0], keys, common),
                  "common_note": np.concatenate([truth[:, :1], np.broadcast_to(
                      np.array(common[1:], np.int32)[None, :, None], (len(truth), 3, truth.shape[2]))], axis=1)}
    for name, score in scores.items():
        metrics[f"harmonization_accuracy_{name}_baseline"] = round(lower_voice_accuracy(score, truth), 4)
        rates[name] = voice_leading_rates(score)
    if num_composed:
        rates["composed"] = voice_leading_rates(compose_chorales(runner, num_composed, compose_temperature, seed))
    for who, values in rates.items():
        for key, value in values.items():
            metrics[f"{who}_{key}"] = value
    if scores:
        closer = [abs(rates["model"][k] - rates["bach"][k]) < min(abs(rates[b][k] - rates["bach"][k]) for b in scores)
                  for k in rates["bach"]]
        metrics["closer_to_bach_than_baselines"] = f"{sum(closer)} of {len(closer)}"
    return metrics


def chain_rule_nll(runner, split_name="validation", batch_size=128, files=None, max_windows=None):
    """-log p(alto, tenor, bass | soprano) per note (a voice's sixteenth), in nats, by the chain rule in time
    order (step 0's alto, tenor, bass, then step 1's, ...): one ``logits`` call per note, every later note
    masked. The orderless model defines the same joint in any order; this one is fixed so numbers compare."""
    truth, _ = evaluation_windows(split_name, files)
    truth = truth[:max_windows]
    total, count = 0.0, 0
    for start in range(0, len(truth), batch_size):
        windows_part = truth[start : start + batch_size]
        shown = windows_part.copy()
        shown[:, 1:] = -1
        for t in range(WINDOW):
            for v in (1, 2, 3):
                log_probs = runner("logits", voices=shown)["log_probs"][:, v, t]
                tokens = to_tokens(windows_part[:, v, t])
                total -= float(np.sum(log_probs[np.arange(len(tokens)), tokens]))
                count += len(tokens)
                shown[:, v, t] = windows_part[:, v, t]
    return {"validation_nll_per_note": round(total / count, 4), "nll_windows": int(len(truth))}


# === Files ===
def read_melody(text):
    """``--melody``: note names ("G4 G4 D5 B4:2", see zoo.core.apps.music.parse_melody) or a MIDI/MusicXML file,
    whose top part is the tune -> MIDI per sixteenth."""
    import os

    from zoo.core.apps.music import parse_melody
    from zoo.core.data.chorales import quantize_part, _music21
    from zoo.core.runtime.errors import BadInputError

    if os.path.splitext(text)[1].lower() in (".mid", ".midi", ".xml", ".mxl", ".musicxml", ".krn", ".abc"):
        if not os.path.isfile(text):
            raise BadInputError(f"--melody {text}: no such file")
        try:
            score = _music21().converter.parse(text)
        except Exception as error:  # noqa: BLE001 (music21 raises many kinds)
            raise BadInputError(f"--melody {text}: cannot read it as music ({type(error).__name__}: {error})") from None
        parts = list(score.parts) or [score]
        sounding, steps = quantize_part(parts[0], top=True)
        if not sounding:
            raise BadInputError(f"--melody {text}: its first part has no notes")
        return np.array([sounding.get(step, 0) for step in range(steps)], np.int32)
    try:
        return parse_melody(text)
    except ValueError as error:
        raise BadInputError(f"--melody: {error}") from None


def check_soprano(melody):
    from zoo.core.apps.music import soprano_range_error
    from zoo.core.runtime.errors import BadInputError

    message = soprano_range_error(melody, *RANGES["soprano"])
    if message:
        raise BadInputError(message)


def save_piano_roll(scores, path, title):
    """Scores ``[n, 4, t]`` as piano rolls, one panel each, a colour per voice (matplotlib's Figure, not pyplot:
    no backend is switched under a notebook)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from zoo.core.apps.music import notes_of

    from zoo.core.runtime.files import atomic_file

    scores = np.asarray(scores)
    colours = ("#d62728", "#2ca02c", "#1f77b4", "#9467bd")
    figure = Figure(figsize=(10, 2.6 * len(scores)))
    axes = figure.subplots(len(scores), 1, squeeze=False)
    for axis, score in zip(axes[:, 0], scores):
        for v, name in enumerate(VOICES):
            for i, (pitch, start, length) in enumerate(notes_of(score[v])):
                axis.add_patch(Rectangle((start, pitch - 0.4), length - 0.1, 0.8, color=colours[v],
                                         label=name if i == 0 else None))
        sounding = score[score > 0]
        axis.set_ylim((sounding.min() - 2, sounding.max() + 2) if len(sounding) else (40, 80))
        axis.set_xlim(0, score.shape[1])
        axis.set_xticks(range(0, score.shape[1] + 1, 16))
        axis.set_xticks(range(0, score.shape[1] + 1, 4), minor=True)
        axis.grid(axis="x", which="both", alpha=0.3)
        axis.set_ylabel("MIDI pitch")
    axes[0, 0].legend(loc="upper right", ncol=4, fontsize=8)
    axes[-1, 0].set_xlabel("sixteenth notes (a bar every 16)")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    with atomic_file(path) as temporary:
        figure.savefig(temporary, format="png", dpi=90)
    return path


def write_score(scores, path, title):
    """``.mid`` (a track per voice), ``.wav`` (the NumPy synthesizer) or ``.png`` (piano roll) by the suffix."""
    import os

    from zoo.core.apps import music
    from zoo.core.runtime.errors import BadInputError
    from zoo.core.runtime.files import atomic_file

    suffix = os.path.splitext(path)[1].lower()
    scores = np.asarray(scores)
    if suffix == ".png":
        return save_piano_roll(scores, path, title)
    joined = np.concatenate(list(scores), axis=1)  # several chorales play one after another
    if suffix in (".mid", ".midi"):
        data = music.midi_file_bytes(joined)
    elif suffix == ".wav":
        data = music.wav_file_bytes(music.synthesize(joined))
    else:
        raise BadInputError(f"--output {path}: write .mid, .wav or .png")
    with atomic_file(path) as temporary:
        with open(temporary, "wb") as f:
            f.write(data)
    return path


@register
class MusicRecipe(CosineDecayAdam, Recipe):
    name = "music"
    summary = ("Bach chorales: a soprano [batch, 64] sixteenths -> four voices (harmonize), or four voices from "
               "nothing (compose), by in-graph Gibbs sampling")
    paper = ("Huang, Cooijmans, Roberts, Courville & Eck (2017), Counterpoint by Convolution (Coconet), "
             "arXiv:1903.07227")
    model_class = ChoraleModel
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 100, "batch_size": 32, "learning_rate": 5e-4}
    sample_suffix = ".mid"
    other_sample_suffixes = (".midi", ".wav", ".png")
    sample_help = ("Compose a chorale, or harmonize your melody (--melody \"G4 G4 D5 B4:2\" or a MIDI file), with "
                   "the exported model (sha256-checked first); write .mid, .wav (a small synthesizer) or .png "
                   "(piano roll) by --output's suffix.")
    evaluate_help = ("Harmonize the 37 test chorales' sopranos: agreement with Bach beside two baselines, voice "
                     "leading (parallels, crossings, ranges, chord types) beside Bach's; composed chorales' voice "
                     "leading; the validation likelihood.")
    metrics = ["harmonization_accuracy", "model_parallel_fifths_per_100_moves", "model_parallel_octaves_per_100_moves"]

    options = (
        Option("melody", str, None, "a tune to harmonize: note names (\"G4 G4 D5 B4:2 r A4:0.5\", C4 = middle C, "
                                    "lengths in quarters) or a .mid/.musicxml file (default: compose)",
               commands=("sample",)),
        Option("temperature", float, COMPOSE_TEMPERATURE, "sampling temperature (0 = the most likely notes)",
               commands=("sample",), minimum=0.0, maximum=MAX_TEMPERATURE),
        Option("num", int, 1, "chorales to write (one after another in .mid/.wav)", commands=("sample",),
               minimum=1, maximum=16),
        Option("num_composed", int, 100, "chorales composed to measure their voice leading",
               commands=("evaluate",), minimum=0),
        Option("nll_windows", int, 118, "validation windows scored by the chain-rule likelihood (192 logits calls "
                                        "a batch; 0: skip it)", commands=("evaluate",), minimum=0),
        Option("num_eval_composed", int, 100, "chorales composed per runtime and variant", commands=("export",),
               minimum=0),
        Option("chorale_files", int, 0, "read only the first N corpus files' chorales (quick checks; 0 = all)",
               commands=("evaluate", "export"), minimum=0),
    )

    # === Training ===
    def training_data(self, model, *, batch_size, seed, limit):
        split = chorale_split(limit)
        cut, shifts = training_windows(split["train"])
        if limit is not None:
            cut, shifts = cut[:limit], shifts[:limit]
        batches = len(cut) // batch_size  # none: the core says the batch is larger than the data

        def dataset_fn(epoch):
            order = np.random.default_rng([seed, epoch]).permutation(len(cut))
            return batch_dataset(lambda i: training_batch(cut, shifts, order, seed, epoch, i, batch_size), batches)

        validation_midi = test_windows(split["validation"])
        validation = (to_tokens(validation_midi), random_masks(np.random.default_rng(VALIDATION_SEED),
                                                               len(validation_midi)))
        size = 64

        def validation_batch(i):
            return tuple(array[i * size : (i + 1) * size] for array in validation)

        return TrainingData(
            dataset_fn,
            f"music21's Bach chorales with four parts ({len(split['train'])} train, {len(split['validation'])} "
            f"validation, {len(split['test'])} test; index % 10 of the path-sorted list): every bar-aligned "
            f"four-bar window ({len(cut)}), transposed within the voices' ranges and masked at random each epoch",
            validation=batch_dataset(validation_batch, -(-len(validation_midi) // size)),
            config={"train_windows": int(len(cut)), "train_chorales": len(split["train"]),
                    "harmonize_fraction": HARMONIZE_FRACTION})

    # === Export ===
    def signatures(self, model):
        return music_signatures(model)

    def export_plan(self, model, training, num_eval_composed, chorale_files):
        from zoo.core import export as core_export

        keras_model = self.keras_model(model)
        files = chorale_files or None

        def evaluate(runner):
            return harmonization_quality(runner, self.eval_seed, num_eval_composed, files=files)

        def detailed(runner):
            return chain_rule_nll(runner, files=files)

        def samples(runner, path):
            save_sample_picture(runner, path, f"{self.name}.tflite (LiteRT)")

        return core_export.ExportPlan(
            name=self.name,
            signatures=self.signatures(keras_model),
            description="Four-part chorales in Bach's style: harmonizes a soprano line or composes four voices, "
                        "by annealed blocked Gibbs sampling inside the graph.",
            paper=self.paper,
            training=training,
            keras_model=keras_model,
            evaluate=evaluate,
            detailed_evaluate=detailed,
            samples=samples,
            primary_metric=self.metrics[0],
            metric_summary=self.metrics,
            notes={"tokens": {"lowest_midi": LOWEST, "vocabulary": VOCAB, "steps_per_quarter": 4,
                              "voices": list(VOICES), "ranges": {v: list(RANGES[v]) for v in VOICES}},
                   "sampler": {"gibbs_steps": GIBBS_STEPS, "max_share": MAX_SHARE, "min_share": MIN_SHARE,
                               "anneal": ANNEAL, "forbid_parallels": keras_model.forbid_parallels},
                   "metric_definitions": METRIC_DEFINITIONS},
        )

    # === Use ===
    def sample(self, runner, *, output, seed, melody, temperature, num):
        from zoo.core.apps.music import fit_melody
        from zoo.core.recipes.images import runtime_label

        said = []
        if melody:
            tune, note = fit_melody(read_melody(melody), WINDOW)
            if note:
                said.append(note)
            check_soprano(tune)
            scores = harmonize_windows(runner, np.tile(tune, (num, 1)), temperature, seed)
            what = f"{num} harmonization(s) of the melody"
        else:
            scores = compose_chorales(runner, num, temperature, seed)
            what = f"{num} chorale(s) composed"
        write_score(scores, output, title=f"{self.name}: {what}, temperature {temperature:g}, seed {seed}, "
                                          f"{runtime_label(runner)}")
        return "; ".join(said + [f"Wrote {what} (temperature {temperature:g}, seed {seed}) to {output}"])

    def evaluate(self, runner, *, seed, num_composed, chorale_files, nll_windows):
        return {**harmonization_quality(runner, seed, num_composed, files=chorale_files or None),
                **(chain_rule_nll(runner, files=chorale_files or None, max_windows=nll_windows) if nll_windows else {})}


METRIC_DEFINITIONS = {
    "harmonization_accuracy": "the test chorales' four-bar windows (non-overlapping, on bar lines): their soprano "
                              "harmonized at temperature 0; the fraction of alto, tenor and bass sixteenths "
                              "(rests included) equal to Bach's",
    "harmonization_accuracy_tonic_triad_baseline": "each lower voice holding the tonic-triad pitch (the chorale's "
                                                   "key, music21's analysis) nearest its most common pitch",
    "harmonization_accuracy_common_note_baseline": "each lower voice holding its most common pitch in the "
                                                   "training chorales",
    "validation_nll_per_note": "-log p(alto, tenor, bass | soprano) in nats per voice-sixteenth on the "
                               "validation windows, by the chain rule in time order (each step's alto, tenor, "
                               "bass; later notes masked): an exact likelihood of the orderless model",
    "parallel_fifths_per_100_moves": "between consecutive sonorities (steps where any voice changes), a voice "
                                     "pair both sounding in both, at least one moving, is a move; parallel: both "
                                     "move the same way and are a fifth (or compound) apart before and after",
    "parallel_octaves_per_100_moves": "as fifths, with octaves or unisons",
    "voice_crossings_per_100_steps": "sixteenths where a voice sounds above the voice written over it",
    "notes_outside_range_percent": "sounding sixteenths outside the textbook SATB ranges (S C4-G5, A G3-D5, "
                                   "T C3-G4, B E2-D4)",
    "triad_or_seventh_fraction": "sonorities (all four sounding) whose pitch classes are a major or minor triad "
                                 "or a dominant seventh (fifth optional)",
    "prefixes": "bach_: the test windows as Bach wrote them; model_: harmonized; tonic_triad_ / common_note_: "
                "the baselines; composed_: serving_default at temperature "
                f"{COMPOSE_TEMPERATURE}, seeds eval_seed + i",
}


def save_sample_picture(runner, path, label):
    """The card's picture: the example melody harmonized, and a composed chorale, as piano rolls."""
    harmonized = harmonize_windows(runner, np.array([SOPRANO_EXAMPLE], np.int32), 0.0, 0)
    composed = compose_chorales(runner, 1, COMPOSE_TEMPERATURE, 0)
    save_piano_roll(np.concatenate([harmonized, composed]), path,
                    f"music: top, a melody harmonized (temperature 0); bottom, composed (temperature "
                    f"{COMPOSE_TEMPERATURE}); {label}")
