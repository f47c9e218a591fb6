"""The chorale model: the corpus and its split, transposition, the in-graph sampler against the NumPy app loop,
the counter-based random numbers in every runtime, the voice-leading measures, melodies and MIDI files
(export, parity and generic bad input: test_every_model.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from zoo.core.apps import music
from zoo.core.apps.counter_random import counter_uniform
from zoo.core.data import chorales
from zoo.core.recipes.commands import load as load_exported
from zoo.core.recipes.registry import get_recipe
from zoo.core.recipes.spec import get_spec
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.paths import REPO_ROOT

FILES = 12  # the first corpus files: a few seconds to parse, and the same split rule as all 433


@pytest.fixture(scope="module")
def recipe():
    return get_recipe("music")


@pytest.fixture(scope="module")
def model(recipe):
    return get_spec("music").make_test_model(recipe)


@pytest.fixture(scope="module")
def untrained(recipe):
    """The tiny preset as initialised: near-uniform logits, so the seed decides the notes at temperature 1."""
    return recipe.create_model("tiny", seed=0)


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export("music")[1]


@pytest.fixture(scope="module")
def split():
    return chorales.load_chorales(limit=FILES)


def as_float(x):
    return x.astype(np.float32)


def test_the_split_is_index_modulo_ten_of_the_sorted_four_part_chorales(split):
    paths = [relative for relative, _ in chorales.corpus_paths()[:FILES]]
    assert paths == sorted(paths)
    kept = [p for p in paths if p not in dict(split["skipped"])]
    assert [c["path"] for c in split["test"]] == kept[0::10]
    assert [c["path"] for c in split["validation"]] == kept[1::10]
    assert len(split["train"]) == len(kept) - len(kept[0::10]) - len(kept[1::10])
    assert all("not four" in why for _, why in split["skipped"])  # bwv1.6 has a horn part: five


def test_files_counted_as_not_four_parts_are_not_four_parts_to_music21(split):
    """The split reads part counts from the files (seconds, not a two-minute parse); music21 agrees on the ones
    it skips (a four-part count that music21 reads otherwise raises while loading, tested by the fixture)."""
    import music21

    full = dict(chorales.corpus_paths())
    assert split["skipped"]
    for relative, why in split["skipped"]:
        assert len(music21.converter.parse(full[relative]).parts) != 4, (relative, why)
    with pytest.raises(BadInputError, match="unknown chorale splits"):
        chorales.load_chorales(limit=FILES, splits=("tests",))


def test_one_split_alone_is_that_split_of_the_whole(split, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    alone = chorales.load_chorales(limit=FILES, splits=("test",))
    assert alone["train"] == [] and alone["validation"] == []
    assert [c["path"] for c in alone["test"]] == [c["path"] for c in split["test"]]
    for mine, whole in zip(alone["test"], split["test"]):
        np.testing.assert_array_equal(mine["voices"], whole["voices"])
    assert os.listdir(tmp_path) == [f"bach-chorales-music21-10.5.1-first{FILES}-test.npz"]


def test_chorales_are_four_voices_on_a_sixteenth_grid_as_music21_reads_them(split):
    import music21

    chorale = split["train"][0]
    score = music21.corpus.parse(chorale["path"])
    assert chorale["voices"].shape == (4, int(score.highestTime * 4))
    for v, part in enumerate(score.parts):
        first = next(n for n in part.flatten().notes if not n.duration.isGrace)
        step = int(round(float(first.offset) * 4))
        assert chorale["voices"][v, step] == first.pitch.midi
    low = np.array([chorales.RANGES[v][0] for v in chorales.VOICES])[:, None]
    high = np.array([chorales.RANGES[v][1] for v in chorales.VOICES])[:, None]
    for c in split["train"]:  # the model's vocabulary is the training chorales' ranges
        sounding = c["voices"] > 0
        assert np.all(~sounding | ((c["voices"] >= low) & (c["voices"] <= high)))
    assert all(int(b) % 4 == 0 for c in split["train"] for b in c["bar_starts"])  # bars start on beats


def test_transpositions_keep_every_voice_in_its_range(split):
    window = chorales.windows(split["train"][0])[0]
    shifts = chorales.transpositions(window)
    assert 0 in shifts and len(shifts) >= 3
    for shift in range(-6, 7):
        moved = np.where(window > 0, window + shift, 0)
        fits = all(((line[line > 0] >= chorales.RANGES[v][0]) & (line[line > 0] <= chorales.RANGES[v][1])).all()
                   for line, v in zip(moved, chorales.VOICES))
        assert fits == (shift in shifts), shift


def test_training_batches_repeat_with_the_seed_and_keep_harmonize_masks_off_the_soprano(split):
    from zoo.music.recipe import training_batch, training_windows

    cut, shifts = training_windows(split["train"])
    order = np.random.default_rng([0, 1]).permutation(len(cut))
    first = training_batch(cut, shifts, order, 0, 1, 0, 16)
    again = training_batch(cut, shifts, order, 0, 1, 0, 16)
    other = training_batch(cut, shifts, order, 0, 1, 1, 16)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])
    tokens, masks = first
    from zoo.music.model import VOCAB

    assert tokens.min() >= 0 and tokens.max() < VOCAB
    assert tokens.shape == masks.shape == (16, 4, 64) and masks.sum(axis=(1, 2)).min() >= 1
    soprano_shown = masks[:, 0].sum(axis=1) == 0
    assert 0 < soprano_shown.mean() < 1  # both kinds of masks in a batch


def test_counter_uniforms_are_the_same_in_numpy_tensorflow_and_litert(tmp_path):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    seeds = np.array([0, 1, 7, 12345, 10**9], np.int32)
    counter = np.arange(0, 60000, 7, dtype=np.int32)
    in_numpy = counter_uniform(seeds[:, None].astype(np.int64), counter[None].astype(np.int64), as_float)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="seed")])
    def draw(seed):
        return {"u": counter_uniform(seed[:, None], tf.constant(counter)[None], lambda x: tf.cast(x, tf.float32))}

    np.testing.assert_array_equal(draw(tf.constant(seeds))["u"].numpy(), in_numpy)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([draw.get_concrete_function()], draw)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path = tmp_path / "draw.tflite"
    path.write_bytes(converter.convert())
    interpreter = Interpreter(model_path=str(path))
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], [len(seeds)])
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], seeds)
    interpreter.invoke()
    np.testing.assert_array_equal(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), in_numpy)
    # and they look uniform and independent: a chi-square over 20 bins, neighbours uncorrelated
    many = counter_uniform(np.arange(20, dtype=np.int64)[:, None], np.arange(20000, dtype=np.int64)[None], as_float)
    counts = np.histogram(many, bins=20, range=(0, 1))[0]
    expected = many.size / 20
    assert ((counts - expected) ** 2 / expected).sum() < 60  # 19 degrees of freedom: 60 is far in the tail
    assert abs(np.corrcoef(many[:, :-1].ravel(), many[:, 1:].ravel())[0, 1]) < 0.01
    assert 0 < many.min() and many.max() < 1


def test_the_gibbs_schedule_and_draws_match_between_the_graph_and_the_app():
    from zoo.music import model as chorale_model

    for step in (0, 1, 40, 71, 72, 95):
        assert float(chorale_model.share_at(step)) == float(music.share_at(step))
    seeds = np.array([3, 99], np.int32)
    vocabulary = chorale_model.VOCAB
    np.testing.assert_array_equal(chorale_model.gibbs_uniforms(seeds, 17, [256]).numpy(),
                                  music.gibbs_uniforms(seeds, 17, 256, vocabulary, gumbel=False))
    np.testing.assert_array_equal(chorale_model.gibbs_uniforms(seeds, 95, [256, vocabulary]).numpy(),
                                  music.gibbs_uniforms(seeds, 95, 256, vocabulary, gumbel=True))


def test_temperature_samples_each_pitch_as_often_as_the_model_says(untrained):
    """Gumbel-max over the counter uniforms: at temperature 1 the pitches drawn for one masked note over many
    seeds follow the model's softmax; at 0 always its argmax; higher temperatures spread them."""
    import tensorflow as tf
    from zoo.music.model import MASKED, NUM_VOICES, VOCAB

    seeds = np.arange(4000, dtype=np.int32)
    tokens = np.full((len(seeds), NUM_VOICES, 64), MASKED, np.int32)
    known = np.zeros(tokens.shape, bool)
    probs = tf.nn.softmax(untrained(tokens[:1])).numpy()[0, 2, 5]  # the tenor's sixth sixteenth
    counts = {}
    for temperature in (0.0, 1.0, 3.0):
        drawn = untrained.gibbs(tf.constant(tokens), tf.constant(known), tf.fill([len(seeds)], temperature),
                                tf.constant(seeds), steps=1).numpy()[:, 2, 5]
        counts[temperature] = np.bincount(drawn, minlength=VOCAB) / len(seeds)
    assert counts[0.0][np.argmax(probs)] == 1.0
    allowed = probs > 1e-6
    np.testing.assert_allclose(counts[1.0][allowed], probs[allowed], atol=0.03)
    assert counts[1.0][~allowed].sum() == 0  # never a pitch outside the tenor's range
    entropy = lambda p: -np.sum(p[p > 0] * np.log(p[p > 0]))  # noqa: E731
    assert entropy(counts[3.0]) > entropy(counts[1.0]) > entropy(counts[0.0])


def test_harmonize_keeps_the_soprano_and_writes_each_voice_in_its_range(untrained):
    model = untrained
    rng = np.random.default_rng(0)
    soprano = np.repeat(rng.integers(60, 80, (3, 16)), 4, axis=1).astype(np.int32)
    soprano[0, :4] = 0  # a rest
    voices = model.harmonize(soprano, np.array([0.0, 1.0, 1.0], np.float32), np.array([1, 2, 3], np.int32)).numpy()
    assert voices.shape == (3, 4, 64)
    np.testing.assert_array_equal(voices[:, 0], soprano)
    for v, name in enumerate(chorales.VOICES[1:], start=1):
        line = voices[:, v]
        low, high = chorales.RANGES[name]
        assert np.all((line == 0) | ((line >= low) & (line <= high))), name
    again = model.harmonize(soprano, np.array([0.0, 1.0, 1.0], np.float32), np.array([1, 2, 3], np.int32)).numpy()
    np.testing.assert_array_equal(voices, again)
    other = model.harmonize(soprano, np.array([0.0, 1.0, 1.0], np.float32), np.array([1, 2, 4], np.int32)).numpy()
    assert not np.array_equal(voices[2], other[2])  # another seed, other notes at temperature 1


def test_temperature_zero_takes_the_most_likely_note_of_each_masked_note(model):
    """With every free note resampled at once (step 0) and T = 0, Gibbs writes the argmax of the logits."""
    import tensorflow as tf
    from zoo.music.model import MASKED

    soprano = np.full((1, 64), 67, np.int32)
    tokens = np.concatenate([soprano[:, None] - 35, np.zeros((1, 3, 64), np.int32)], axis=1)
    known = np.zeros((1, 4, 64), bool)
    known[:, 0] = True
    one_step = model.gibbs(tf.constant(tokens), tf.constant(known), tf.zeros([1]), tf.constant([5]), steps=1).numpy()
    shown = np.where(known, tokens, MASKED)
    best = np.argmax(model(shown).numpy(), axis=-1)
    np.testing.assert_array_equal(one_step[:, 1:], best[:, 1:])


def random_scores(count, length, seed):
    """Scores ``[count, 4, length]`` held over 1-3 sixteenths, each voice near its usual pitch, with rests: many
    fifths, octaves and moves of every kind."""
    rng = np.random.default_rng(seed)
    centres = np.array([67, 60, 53, 45])[None, :, None]
    notes = centres + rng.integers(-6, 7, (count, 4, length))
    notes = np.where(rng.random(notes.shape) < 0.08, 0, notes)
    held = np.minimum(np.cumsum(rng.integers(1, 4, (count, 4, length)), axis=-1) // 2, length - 1)
    return np.take_along_axis(notes, held, axis=-1).astype(np.int32)


def test_the_parallels_rule_forbids_exactly_the_notes_the_count_calls_parallel():
    """Each candidate pitch of each note of random scores against the card's own count (the recipe's
    ``voice_leading`` on the voice and one other over the three steps around the note): the rule forbids a
    pitch if and only if writing it there makes a parallel fifth or octave; the graph forbids the same."""
    from zoo.music.model import parallel_motion as graph_parallel_motion
    from zoo.music.model import tokens_to_midi, VOCAB
    from zoo.music.recipe import voice_leading

    scores = random_scores(3, 12, seed=4)
    candidates = tokens_to_midi(np.arange(VOCAB)).numpy()
    forbidden = music.parallel_motion(scores, candidates)
    np.testing.assert_array_equal(graph_parallel_motion(scores).numpy(), forbidden)
    checked = 0
    for n in range(len(scores)):
        for v in range(4):
            for t in range(12):
                for k in range(0, VOCAB, 3):
                    score = scores[n].copy()
                    score[v, t] = candidates[k]
                    window = score[:, max(t - 1, 0) : t + 2]
                    makes_parallel = False
                    for w in set(range(4)) - {v}:
                        pair = np.zeros_like(window)
                        pair[[v, w]] = window[[v, w]]
                        counts = voice_leading(pair[None])
                        makes_parallel |= counts["parallel_fifths"] + counts["parallel_octaves"] > 0
                    assert forbidden[n, v, t, k] == makes_parallel, (n, v, t, k)
                    checked += makes_parallel
    assert checked > 20  # the scores hold parallels to find, not only their absence


def test_with_the_rule_the_sampler_writes_far_fewer_parallels_and_the_app_loop_writes_the_same():
    """The untrained model draws notes at random, so parallels come often; the rule removes most of them
    (blocked Gibbs redraws several notes at once, each against the others as they stood), and the NumPy
    loop with the rule writes the graph's notes."""
    import tensorflow as tf
    from zoo.music.model import LOWEST, MASKED, PRESETS, VOCAB, ChoraleModel, midi_to_tokens
    from zoo.music.recipe import voice_leading

    free = ChoraleModel(**PRESETS["tiny"], seed=0, forbid_parallels=False)
    ruled = ChoraleModel(**PRESETS["tiny"], seed=0, forbid_parallels=True)
    soprano = random_scores(12, 64, seed=5)[:, 0]
    soprano = np.where(soprano == 0, 67, soprano)
    temperature, seeds = np.full(12, 1.0, np.float32), np.arange(12, dtype=np.int32)
    parallels = {}
    for name, model in (("free", free), ("ruled", ruled)):
        counts = voice_leading(model.harmonize(soprano, temperature, seeds).numpy())
        parallels[name] = counts["parallel_fifths"] + counts["parallel_octaves"]
    assert parallels["free"] >= 10 and parallels["ruled"] <= parallels["free"] / 5, parallels

    def log_probs(voices):  # what the exported logits signature computes
        tokens = np.where(voices < 0, MASKED, midi_to_tokens(np.maximum(voices, 0)).numpy())
        return tf.nn.log_softmax(ruled(tokens)).numpy()

    known = np.zeros((3, 4, 64), bool)
    known[:, 0] = True
    voices = np.zeros((3, 4, 64), np.int32)
    voices[:, 0] = soprano[:3]
    app = music.gibbs(log_probs, voices, known, np.zeros(3, np.float32), seeds[:3], LOWEST, VOCAB,
                      forbid_parallels=True)
    graph = ruled.harmonize(soprano[:3], np.zeros(3, np.float32), seeds[:3]).numpy()
    np.testing.assert_array_equal(app, graph)


@pytest.mark.slow
def test_the_app_loop_writes_what_the_graph_writes(exported):
    """The NumPy + LiteRT loop around ``logits`` against the in-graph ``harmonize`` and ``serving_default`` of
    the same float32 file, same seeds: the same notes."""
    from zoo.music.tflite_sample import TFLiteChorales

    app = TFLiteChorales(os.path.join(exported, "music.tflite"))
    runner = load_exported(exported, runtime="tflite")
    soprano = np.repeat(np.random.default_rng(1).integers(60, 79, (2, 16)), 4, axis=1).astype(np.int32)
    temperature, seed = np.array([0.0, 1.0], np.float32), np.array([4, 11], np.int32)
    steps = []
    looped = app.sample(soprano, temperature=temperature, seed=seed, on_step=steps.append)
    assert len(steps) == 96
    np.testing.assert_array_equal(looped, runner("harmonize", soprano=soprano, temperature=temperature,
                                                 seed=seed)["voices"])
    composed = app.sample(None, batch=2, temperature=temperature, seed=seed)
    np.testing.assert_array_equal(composed, runner("serving_default", seed=seed, temperature=temperature)["voices"])
    with pytest.raises(ValueError, match=r"E2 outside the soprano's range A3-A5 \(MIDI 57-81"):
        app.sample(np.full((1, 64), 40, np.int32))


@pytest.mark.slow
def test_the_app_script_writes_midi_and_wav_and_refuses_bad_melodies(exported, tmp_path):
    script = [sys.executable, "-m", "zoo.music.tflite_sample", os.path.join(exported, "music.tflite")]
    done = subprocess.run(script + ["--melody", "G4 A4 B4:2", "--output", str(tmp_path / "a.mid")],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert "held to fill 64" in done.stdout and (tmp_path / "a.mid").read_bytes()[:4] == b"MThd"
    done = subprocess.run(script + ["--output", str(tmp_path / "b.wav")], capture_output=True, text=True,
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "b.wav").read_bytes()[:4] == b"RIFF"
    for melody, message in (("G2 A4", "G2 outside the soprano's range A3-A5"), ("H4", "cannot read 'H4' as a note")):
        done = subprocess.run(script + ["--melody", melody], capture_output=True, text=True, cwd=REPO_ROOT)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_voice_leading_counts_parallels_crossings_ranges_and_chords():
    from zoo.music.recipe import voice_leading, voice_leading_rates

    # a C major triad to a D minor triad, every voice up: the textbook's forbidden parallels
    score = np.array([[72] * 4 + [74] * 4,  # soprano C5 -> D5
                      [67] * 4 + [69] * 4,  # alto G4 -> A4
                      [64] * 4 + [65] * 4,  # tenor E4 -> F4
                      [48] * 4 + [50] * 4])  # bass C3 -> D3
    counts = voice_leading(score[None])
    assert counts["moves"] == 6 and counts["sonorities"] == 2 and counts["triads_or_sevenths"] == 2
    # alto-bass 19 -> 19 semitones: parallel fifths; soprano-bass 24 -> 24: octaves; the rest are not perfect
    assert counts["parallel_fifths"] == 1 and counts["parallel_octaves"] == 1
    assert counts["crossing_steps"] == 0 and counts["outside_range"] == 0
    low = score.copy()
    low[3] = 36  # a bass C2 under the textbook's E2
    assert voice_leading(low[None])["outside_range"] == 8
    crossed = score.copy()
    crossed[1, :4] = 76  # the alto above the soprano for a beat
    assert voice_leading(crossed[None])["crossing_steps"] == 4
    rates = voice_leading_rates(score[None])
    assert rates["parallel_fifths_per_100_moves"] == pytest.approx(100 / 6, abs=1e-3)
    assert rates["triad_or_seventh_fraction"] == 1.0


def test_melodies_from_note_names_fitted_to_four_bars():
    np.testing.assert_array_equal(music.parse_melody("C4 D#4:0.5 r:0.25 Bb3:2"),
                                  [60] * 4 + [63] * 2 + [0] + [58] * 8)
    for bad, message in (("C4 X9", "cannot read 'X9'"), ("C4:0.3", "whole number of sixteenths"), ("", "empty"),
                         ("C10", "outside 0-127")):
        with pytest.raises(ValueError, match=message):
            music.parse_melody(bad)
    tune, said = music.fit_melody(np.arange(70, 80), 64)
    assert len(tune) == 64 and tune[-1] == 79 and "held" in said
    tune, said = music.fit_melody(np.full(100, 67), 64)
    assert len(tune) == 64 and "cut" in said
    assert music.fit_melody(np.full(64, 67), 64)[1] is None


def test_midi_files_read_back_in_music21_with_the_same_notes(tmp_path):
    import music21

    score = np.array([[72] * 8 + [74] * 8, [67] * 16, [64] * 4 + [0] * 4 + [65] * 8, [48] * 16])
    path = tmp_path / "four.mid"
    path.write_bytes(music.midi_file_bytes(score))
    parsed = music21.converter.parse(str(path))
    assert len(parsed.parts) == 4
    for line, part in zip(score, parsed.parts):
        read = [(n.pitch.midi, float(n.offset) * 4, float(n.quarterLength) * 4) for n in part.flatten().notes]
        assert read == [(p, float(s), float(n)) for p, s, n in music.notes_of(line)]
    audio = music.synthesize(score)
    assert audio.dtype == np.float32 and np.abs(audio).max() <= 0.81 and np.abs(audio).max() > 0.5


def test_the_cli_refuses_melodies_out_of_range_and_unreadable_files(recipe, exported, tmp_path):
    runner = load_exported(exported, runtime="savedmodel")
    with pytest.raises(BadInputError, match="outside the soprano's range"):
        recipe.sample(runner, output=str(tmp_path / "x.mid"), seed=0, melody="C3 D3 E3", temperature=0.0, num=1)
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"not a midi file")
    with pytest.raises(BadInputError, match="cannot read it as music"):
        recipe.sample(runner, output=str(tmp_path / "x.mid"), seed=0, melody=str(broken), temperature=0.0, num=1)
    with pytest.raises(BadInputError, match="write .mid, .wav or .png"):
        recipe.sample(runner, output=str(tmp_path / "x.txt"), seed=0, melody=None, temperature=0.0, num=1)
    said = recipe.sample(runner, output=str(tmp_path / "x.png"), seed=0, melody="G4 A4", temperature=0.0, num=2)
    assert "held to fill 64" in said and (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"
