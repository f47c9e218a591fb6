"""Seq2seq: the data's conventions and held-out split, the cached step against the whole pass, the app loop
against the graph, and bad sources refused in every runtime, the app and the CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest

import shutil

from tests.conftest import data_dir_set, shadow_the_zoo
from zoo.core.apps.greedy_bytes import greedy_bytes
from zoo.core.apps.text_rows import text_rows
from zoo.core.data import spoken_numbers as numbers
from zoo.core.recipes.commands import load as load_exported
from zoo.core.recipes.registry import get_recipe
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.runners import SavedModelModel

RECIPE = get_recipe("seq2seq")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_issue_examples_follow_the_conventions():
    # "Call 555-0123 at 3:45" -> "call five five five zero one two three at three forty-five"
    assert numbers.en_digits("5550123") == "five five five zero one two three"
    assert numbers.en_time(3, 45) == "three forty-five"
    assert numbers._en_sentence("Call {}", "555-0123", numbers.en_digits("5550123")) == \
        ("Call 555-0123", "call five five five zero one two three")
    # "电话 138 0013" -> "电话 一 三 八 零 零 一 三": digit by digit, zero as 零, never 幺
    assert numbers._zh_sentence("电话 {}", "138 0013", numbers.zh_digits("1380013", " ")) == \
        ("电话 138 0013", "电话 一 三 八 零 零 一 三")
    rng = np.random.default_rng(0)
    assert numbers._translation("date", (2024, 3, 5), rng) == ("March 5, 2024", "2024年3月5日")
    assert numbers.en_money(12, 50, with_cents_word=False) == "twelve dollars fifty"
    assert numbers.zh_dollars(12, 50) == "十二美元五十美分"
    assert numbers.en_cardinal(1234) == "one thousand two hundred and thirty-four"  # num2words, comma dropped
    assert numbers.zh_cardinal(1234) == "一千二百三十四"


def test_pairs_fit_the_rows_and_are_deterministic():
    drawn = numbers.pairs("train", 3000, seed=3)
    assert drawn == numbers.pairs("train", 3000, seed=3) and drawn != numbers.pairs("train", 3000, seed=4)
    for source, target, group, span in drawn:
        assert numbers.task_of(source) is not None
        assert len(source.encode()) <= numbers.SOURCE_BYTES and len(target.encode()) < numbers.TARGET_BYTES
        assert span in target, (source, target, span)
    groups = {" ".join(p[2].split()[:2]) for p in drawn}
    assert {"norm en", "norm zh"} <= groups and any(g.startswith("en2zh") for g in groups)
    kinds = {p[2].split()[-1] for p in drawn}
    assert kinds == set(numbers.KINDS)
    # digit strings are read digit by digit: no "oh", no 幺 (in the number's reading: a second number in the
    # sentence may be a time, "eight oh six")
    for source, target, group, span in drawn:
        if group.split()[-1] in numbers.DIGIT_KINDS:
            assert " oh " not in f" {span} " and "幺" not in span
            digits = "".join(c for c in source if c.isdigit())[:len(span.split())]  # the first number's
            read = numbers.en_digits(digits) if group.split()[1] == "en" else numbers.zh_digits(digits, " ")
            assert span == read, (source, span)


def test_some_training_sentences_hold_two_numbers_and_speak_both_while_the_test_holds_one(monkeypatch):
    made = []  # the one-number sentences each <norm> pair was built from
    one_number = numbers._one_number_pair
    monkeypatch.setattr(numbers, "_one_number_pair", lambda *args: made.append(one_number(*args)) or made[-1])
    rng, two = np.random.default_rng(5), 0
    for i in range(2000):
        made.clear()
        source, target, span = numbers.norm_pair(rng, ("en", "zh")[i % 2], numbers.KINDS[i % 8], False)
        assert len(made) in (1, 2)
        if len(made) == 2:
            two += 1
            (first_source, first_target, first_span), (second_source, second_target, _) = made
            assert source.startswith(first_source) and source.endswith(second_source), source
            assert target.startswith(first_target) and target.endswith(second_target), target
            assert span == first_span
    assert 0.1 < two / 2000 < 0.2
    sentences = []
    norm_pair = numbers.norm_pair
    monkeypatch.setattr(numbers, "norm_pair", lambda *args: sentences.append(norm_pair(*args)) or sentences[-1])
    made.clear()
    numbers.pairs("test", 500, seed=1)
    assert len(sentences) > 100 and len(made) == len(sentences)


def test_training_never_draws_a_held_out_frame_or_range_and_the_test_set_always_uses_held_out_frames(monkeypatch):
    frames, translation_frames = [], []  # every <norm> frame and (kind, translation frame pair) drawn
    choose, choose_translation = numbers._frame, numbers._translation_frames
    monkeypatch.setattr(numbers, "_frame", lambda *args: frames.append(choose(*args)) or frames[-1])
    monkeypatch.setattr(numbers, "_translation_frames", lambda rng, kind, held_out: translation_frames.append(
        (kind, choose_translation(rng, kind, held_out))) or translation_frames[-1][1])
    held_out_norm = {f for language in ("en", "zh") for f in numbers.HELD_OUT_FRAMES[language].values()}
    for split in ("train", "validation"):
        frames.clear(), translation_frames.clear()
        numbers.pairs(split, 20_000, seed=1)
        assert frames and not held_out_norm & set(frames)
        assert not {f.lower() for f in frames} & numbers.HELD_OUT_FRAME_SET
        # not the kind's held-out frame pair, nor its words inside a two-prefix frame
        for kind, (english, chinese) in translation_frames:
            held_english, held_chinese = numbers.HELD_OUT_TRANSLATION_FRAMES[kind]
            assert held_english[:-3] not in english[:-3].split() and held_chinese[:-2] not in chinese, (kind, english)
        # many words before a translated expression, of many lengths, so that its digits sit anywhere in the row
        assert len({f for _, f in translation_frames}) > 100
        assert len({len(english) for _, (english, _) in translation_frames}) > 10
        # most sentences join two frames' words (learning to copy what surrounds a number): far more frames
        assert len(set(frames)) > 300
    frames.clear(), translation_frames.clear()
    numbers.pairs("test", 3000, seed=1)
    assert set(frames) <= held_out_norm
    assert all(f == numbers.HELD_OUT_TRANSLATION_FRAMES[kind] for kind, f in translation_frames)
    # each held-out translation frame pair is one the other kinds train with: new combinations, known words
    translation_frames.clear()
    numbers.pairs("train", 3000, seed=2)
    trained = set(translation_frames)
    for kind, frame in numbers.HELD_OUT_TRANSLATION_FRAMES.items():
        assert (kind, frame) not in trained and any(f == frame for _, f in trained), (kind, frame)
    # values: training draws none of the held-out ranges; the test set draws them half of the time
    rng = np.random.default_rng(2)
    for kind, ranges in numbers.HELD_OUT_RANGES.items():
        def key(value):
            return value if isinstance(value, int) else value[0]
        train = [key(numbers._draw(rng, kind, False)) for _ in range(3000)]
        assert not any(low <= v <= high for v in train for low, high in ranges), kind
        held = [key(numbers._draw(rng, kind, True)) for _ in range(200)]
        assert all(any(low <= v <= high for low, high in ranges) for v in held), kind


def test_bare_digit_strings_keep_the_words_that_say_how_to_read_them(monkeypatch):
    """"41955" is a cardinal after "She scored", a code after "ticket": training sentences of those kinds join
    pieces of their own kind's frames only (once, any frame's pieces: the model read held-out cardinals as codes)."""
    drawn = []  # (language, kind, frame)
    choose = numbers._frame
    monkeypatch.setattr(numbers, "_frame", lambda rng, frames, held_out, language, kind: drawn.append(
        (language, kind, choose(rng, frames, held_out, language, kind))) or drawn[-1][2])
    numbers.pairs("train", 20_000, seed=4)
    other_kinds_mixed = 0
    for language, kind, frame in drawn:
        before, after = numbers._pieces([frame], language)[0]
        own = numbers.KIND_PIECES[language][kind]
        if kind in numbers.BARE_DIGIT_KINDS[language]:
            assert before in {p[0] for p in own} and after in {p[1] for p in own}, (language, kind, frame)
        else:
            other_kinds_mixed += before not in {p[0] for p in own} or after not in {p[1] for p in own}
    assert other_kinds_mixed > 1000  # the other kinds still learn to copy any words around a number


def test_text_rows_refuse_what_does_not_fit():
    rows = text_rows(["<norm> 电话 138"], 64, prefixes=("<norm> ",))
    assert rows.shape == (1, 64) and rows[0, len("<norm> 电话 138".encode())] == 0
    with pytest.raises(ValueError, match="must start with one of '<norm> '"):
        text_rows(["Call 555"], 64, prefixes=("<norm> ",))
    with pytest.raises(ValueError, match="70 bytes of UTF-8; the model takes at most 64"):
        text_rows(["<norm> " + "x" * 63], 64)


def test_the_cached_step_gives_the_whole_teacher_forced_pass():
    """decode_step at positions 0..n-1 with its own cache == the teacher-forced decoder's logits."""
    import tensorflow as tf

    from zoo.core.nn.encoder_decoder import teacher_forcing

    model = RECIPE.create_model("tiny", seed=0)
    drawn = numbers.pairs("train", 3, seed=0)
    source = numbers.encode([p[0] for p in drawn], numbers.SOURCE_BYTES)
    target = numbers.encode([p[1] for p in drawn], numbers.TARGET_BYTES)[:, :12]
    whole = model((source, teacher_forcing(tf.constant(target)))).numpy()
    memory = model.encode(source)["memory"]
    cache = np.zeros([3, *model.cache_shape[1:]], np.float32)
    tokens = teacher_forcing(tf.constant(target)).numpy()
    for position in range(12):
        step = model.decode_step(tokens[:, position], np.full(3, position, np.int32), cache, memory)
        np.testing.assert_allclose(step["logits"].numpy(), whole[:, position], atol=2e-4)
        cache = step["cache"]


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export("seq2seq")[1]


@pytest.mark.slow
def test_the_app_loop_writes_what_the_graph_writes(exported):
    from zoo.seq2seq.tflite_translate import TFLiteTranslator

    app = TFLiteTranslator(os.path.join(exported, "seq2seq.tflite"))
    sources = [p[0] for p in numbers.pairs("test", 4, seed=5)]
    graph = load_exported(exported, runtime="tflite")("serving_default", text=app.rows(sources))["output"]
    assert app.translate(sources) == numbers.decode(graph)
    keras_model = load_exported(exported, runtime="keras")
    looped = greedy_bytes(lambda s: keras_model("encode", text=s),
                          lambda token, position, cache, memory: keras_model(
                              "decode_step", token=token, position=position, cache=cache, memory=memory),
                          app.rows(sources), app.target_bytes, app.cache_shape)
    np.testing.assert_array_equal(looped, keras_model("serving_default", text=app.rows(sources))["output"])
    with pytest.raises(ValueError, match="must start with one of"):
        app.translate(["Call 555-0123"])


@pytest.mark.slow
def test_bad_sources_are_refused_in_every_runtime_and_in_the_graph(exported):
    untagged = numbers.encode(["<nrm> Call 555-0123", "<norm> fine"], numbers.SOURCE_BYTES)
    cut = numbers.encode(["<norm> 电话", "<norm> fine"], numbers.SOURCE_BYTES)
    cut[0, len("<norm> 电话".encode()) - 1] = 0  # the last character cut short
    for runtime in ("tflite", "savedmodel", "keras"):
        runner = load_exported(exported, runtime=runtime)
        for signature in ("serving_default", "encode"):
            with pytest.raises(BadInputError, match="must start with one of '<norm> '"):
                runner(signature, text=untagged)
            with pytest.raises(BadInputError, match="not valid UTF-8"):
                runner(signature, text=cut)
    saved = load_exported(exported, runtime="savedmodel")
    for signature in ("serving_default", "encode"):  # the graph's own checks, as TF Serving runs them
        with pytest.raises(BadInputError, match="must start with one of"):
            SavedModelModel.run(saved, signature, {"text": untagged})
    with pytest.raises(BadInputError, match="must start with one of"):
        SavedModelModel.run(saved, "strings", {"text": np.array(["Call 555-0123"], object)})
    with pytest.raises(BadInputError, match="longer than 64 bytes"):
        SavedModelModel.run(saved, "strings", {"text": np.array(["<norm> " + "七" * 20], object)})
    strings = saved("strings", text=np.array(["<norm> 电话 138 0013", "<en2zh> March 5, 2024"], object))["output"]
    rows = saved("serving_default", text=numbers.encode(["<norm> 电话 138 0013", "<en2zh> March 5, 2024"],
                                                        numbers.SOURCE_BYTES))["output"]
    # an untrained model writes any bytes: compared as bytes, decoded the same lenient way
    assert [s.decode("utf-8", "replace") for s in strings] == numbers.decode(rows)


@pytest.mark.slow
def test_the_app_script_and_the_cli_refuse_bad_sources(exported, synthetic_data_dir, capsys, tmp_path):
    from zoo.__main__ import main

    # as an app runs it: the script and the files its docstring names, copied beside the model, no zoo
    app = tmp_path / "app"
    app.mkdir()
    for name in ("seq2seq.tflite", "manifest.json"):
        shutil.copy(os.path.join(exported, name), app / name)
    shutil.copy(os.path.join(REPO_ROOT, "zoo", "seq2seq", "tflite_translate.py"), app)
    for shared in ("greedy_bytes.py", "text_rows.py", "manifest.py"):
        shutil.copy(os.path.join(REPO_ROOT, "zoo", "core", "apps", shared), app)
    shadow_the_zoo(str(app))
    script = [sys.executable, "tflite_translate.py", "seq2seq.tflite"]
    done = subprocess.run(script + ["<norm> Call 555-0123", "<zh2en> 十二美元"], capture_output=True, text=True,
                          cwd=str(app))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("  -> ") == 2
    for text, message in (("Call 555-0123", "must start with one of '<norm> '"),
                          ("<norm> " + "七" * 20, "67 bytes of UTF-8; the model takes at most 64")):
        done = subprocess.run(script + [text], capture_output=True, text=True, cwd=str(app))
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    with data_dir_set(synthetic_data_dir):
        for text, message in (("Call 555-0123", "must start with a task tag"),
                              ("<norm> " + "七" * 20, "at most 64")):
            code = main(["sample", "seq2seq", "--exported-dir", os.path.dirname(exported), "--text", text,
                         "--output", str(tmp_path / "out.txt")])
            assert code == 2 and message in capsys.readouterr().err
