"""What is special to CLIP and the text rows it reads (the shared checks are in test_every_model.py)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import data_dir_set
from zoo.core.data import captions
from zoo.core.runtime import utf8
from zoo.core.runtime.runners import SavedModelModel
from zoo.core.recipes.commands import load as load_exported
from zoo.core.runtime.errors import BadInputError
from zoo.core.recipes.registry import get_recipe

RECIPE = get_recipe("clip")


@pytest.fixture(scope="module")
def tiny():
    return RECIPE.create_model("tiny", seed=0)


def test_padding_is_absent_from_the_text_embedding(tiny):
    text = utf8.encode_texts(["a bold seven", "一个粗体的七"], length=64)
    lengths = [len("a bold seven"), len("一个粗体的七".encode())]
    for row, length in zip(text, lengths):
        ten, forty = row[None, : length + 10], np.pad(row[None, :length], [[0, 0], [0, 40]])
        np.testing.assert_allclose(tiny.text_encoder(ten), tiny.text_encoder(forty), atol=1e-6)
        np.testing.assert_allclose(tiny.text_encoder(ten), tiny.text_encoder(row[None]), atol=1e-6)
    # and the bytes themselves matter: a different text is a different embedding
    other = utf8.encode_texts(["a thin seven"])
    assert np.abs(tiny.text_encoder(other) - tiny.text_encoder(text[:1])).max() > 1e-3


def test_embeddings_are_unit_length(tiny):
    images = np.random.default_rng(0).uniform(0, 1, (3, 28, 28, 1)).astype(np.float32)
    for embedding in (tiny.image_encoder(images), tiny.text_encoder(utf8.encode_texts(["", "7", "数字七"]))):
        np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow  # trains
def test_contrastive_loss_falls_on_a_tiny_synthetic_set():
    """Eight 'digits' (bars at different places) with their captions: the loss must fall well below chance."""
    import keras

    model = RECIPE.create_model("tiny", seed=0)
    images = np.zeros((8, 28, 28, 1), np.float32)
    for i in range(8):
        images[i, 3 * i : 3 * i + 3, 4:24] = 1.0
    text = utf8.encode_texts([f"bar {i}" if i % 2 else f"横线{i}" for i in range(8)])
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    step = tf.function(model.train_step)
    first = float(step((images, text))["loss"])
    for _ in range(150):
        model.loss_tracker.reset_state()
        last = float(step((images, text))["loss"])
    assert first > 1.8 and last < 0.5 * first, (first, last)


def test_utf8_rows_refuse_long_text_cut_characters_and_bytes_after_the_padding():
    with pytest.raises(BadInputError, match="at most 64"):
        utf8.encode_texts(["七" * 22])  # 66 bytes
    utf8.encode_texts(["七" * 21])  # 63 bytes fit
    cut = utf8.encode_texts(["一个粗体的七"])
    cut[0, 17] = 0  # the last character loses its last byte
    with pytest.raises(BadInputError, match="cut"):
        utf8.check_rows(cut)
    after = utf8.encode_texts(["seven"])
    after[0, 10] = 65
    with pytest.raises(BadInputError, match="after its zero padding"):
        utf8.check_rows(after)


def test_in_graph_utf8_check_agrees_with_python():
    """``row_checks`` (the SavedModel's) accepts exactly the rows Python's strict decoder accepts."""
    rng = np.random.default_rng(0)
    interesting = [0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE4, 0xED, 0xEF, 0xF0, 0xF4, 0xF5]
    rows = np.zeros((3000, 8), np.int32)
    for row in rows:
        length = rng.integers(0, 7)
        row[:length] = rng.choice(interesting, length)
        row[:length][row[:length] == 0] = 0x41
    expected = []
    for row in rows:
        try:
            utf8.check_rows(row[None])
            expected.append(True)
        except BadInputError:
            expected.append(False)

    utf8_valid, padding_valid = utf8.valid_rows(tf.constant(rows))
    got = list((utf8_valid & padding_valid).numpy())
    assert got == expected
    assert 0.1 < np.mean(expected) < 0.9  # both kinds were tried


def test_stroke_attributes_measure_ink_and_slant():
    images = np.zeros((6, 28, 28), np.float32)
    images[0, 4:24, 13:15] = 1.0  # thin upright bar
    images[1, 4:24, 11:17] = 1.0  # thick upright bar
    images[2, 4:24, 12:16] = 1.0  # middle
    for row in range(4, 24):  # leaning right: the top is further right
        images[3, row, 20 - (row - 4) // 2 : 22 - (row - 4) // 2] = 1.0
        images[4, row, 6 + (row - 4) // 2 : 8 + (row - 4) // 2] = 1.0  # leaning left
    images[5, 4:24, 12:14] = 1.0
    labels = np.array([1, 1, 1, 7, 7, 7])
    ink, slant = captions.stroke_attributes(images, labels)
    assert ink[1] == captions.BOLD and ink[0] == captions.THIN
    assert slant[3] == captions.RIGHT and slant[4] == captions.LEFT and slant[0] == captions.UPRIGHT


def test_captions_fit_the_row_and_mention_what_was_measured():
    rng = np.random.default_rng(0)
    attribute_words = {"bold": captions.BOLD, "thick": captions.BOLD, "heavy": captions.BOLD, "dark": captions.BOLD,
                       "粗": captions.BOLD, "thin": captions.THIN, "faint": captions.THIN, "细": captions.THIN}
    slant_words = {"right": captions.RIGHT, "右": captions.RIGHT, "left": captions.LEFT, "左": captions.LEFT}
    texts = []
    for _ in range(3000):
        digit, ink, slant = int(rng.integers(10)), int(rng.integers(-1, 2)), int(rng.integers(-1, 2))
        text = captions.random_caption(rng, digit, ink, slant)
        texts.append(text)
        assert len(text.encode()) <= utf8.TEXT_BYTES
        lower = text.lower()
        for word, value in attribute_words.items():
            assert word not in lower or ink == value, text
        for word, value in slant_words.items():
            assert word not in lower or slant == value, text
        names = (captions.EN_WORDS[digit], captions.ZH_CHARS[digit], str(digit))
        assert any(name in lower for name in names), text  # the digit is always named
    # variety: many distinct sentences, both languages, capitals, the two languages mixed
    assert len(set(texts)) > 2500
    assert any(t.isupper() for t in texts) and any(t[:1].isupper() and not t.isupper() for t in texts)
    assert any(not t.isascii() and any(w in t for w in captions.EN_WORDS) for t in texts)
    assert captions.gloss("一个粗体的七") == "a bold seven"


def test_no_training_caption_has_a_held_out_sentence_shape():
    """The held-out families are whole sentence shapes: no training caption opens with a held-out frame's text
    before {np} and closes with its text after it (after any filler prefix), and the words that carry those
    shapes ("someone", "please", "吗", "有人") are in no training caption at all."""
    rng = np.random.default_rng(1)
    texts = [captions.random_caption(rng, int(rng.integers(10)), int(rng.integers(-1, 2)),
                                     int(rng.integers(-1, 2))).lower() for _ in range(20000)]
    prefixes = tuple(p.lower() for language in captions.LANGUAGES for p in captions.PREFIXES[language])
    bodies = [t[len(next((p for p in prefixes if t.startswith(p)), "")):] for t in texts]
    for language in captions.LANGUAGES:
        trained = {f for frames in captions.FAMILIES[language].values() for f in frames}
        for family, frames in captions.HELD_OUT_FAMILIES[language].items():
            assert not set(frames) & trained
            for frame in frames:
                before, after = (part.strip(" ?？") for part in frame.lower().split("{np}"))
                assert not [b for b in bodies if b.startswith(before) and b.rstrip(" ?？.!。！…").endswith(after)], \
                    (family, frame)
    for word in ("someone", "sister", "student", "please", "show me", "find", "could", "吗", "有人", "妹妹", "学生",
                 "请", "给我", "帮我"):
        assert not [t for t in texts if word in t], word
    prompts = captions.held_out_prompts("someone wrote {np}", "en")
    assert prompts[7] == "someone wrote a seven" and prompts[8] == "someone wrote an eight"
    assert captions.held_out_prompts("有人写了{np}", "zh")[7] == "有人写了一个七"


def test_noise_words_carry_no_digit_no_attribute_and_no_held_out_word():
    """The clauses around a third of the captions say nothing about the image and keep the held-out families
    unseen: no number, no ink or slant word, no character or word of a held-out frame."""
    held_out_zh = {c for frames in captions.HELD_OUT_FAMILIES["zh"].values() for frame in frames for c in frame}
    numbers = set("〇零一二三四五六七八九十百千万两壹贰叁肆伍陆柒捌玖拾")
    attributes_zh = {c for words in captions.INK_WORDS["zh"].values() for w in words for c in w} | set("左右倾斜歪")
    assert len(captions.NOISE_CHARACTERS_ZH) > 3500
    assert not set(captions.NOISE_CHARACTERS_ZH) & (held_out_zh | numbers | attributes_zh)
    assert "妹" not in captions.NOISE_CHARACTERS_ZH and "吗" not in captions.NOISE_CHARACTERS_ZH
    forbidden_en = [w for words in captions.INK_WORDS["en"].values() for w in words] + ["right", "left"] + [
        w for frames in captions.HELD_OUT_FAMILIES["en"].values() for frame in frames
        for w in frame.replace("{np}", "").replace("?", "").split()
        if w not in {"is", "this", "it", "that", "a", "on", "i", "me", "for", "be", "or", "not", "do", "my"}]
    assert {"someone", "yesterday", "you", "draw"} <= set(forbidden_en) and len(captions.NOISE_WORDS_EN) >= 250
    for word in captions.NOISE_WORDS_EN:
        assert word not in captions.EN_WORDS and not any(f in word for f in forbidden_en), word
    rng = np.random.default_rng(3)
    texts = [captions.random_caption(rng, 7, captions.PLAIN, captions.UPRIGHT) for _ in range(2000)]
    with_noise = [t for t in texts if any(w in t.lower().split(" ") for w in captions.NOISE_WORDS_EN[40:])]
    assert 0.05 < len(with_noise) / len(texts) < 0.3  # about a third of English captions carry a clause


@pytest.mark.slow
def test_cut_characters_are_refused_in_every_runtime(tiny_export):
    _, exported = tiny_export("clip")
    cut = utf8.encode_texts(["一个粗体的七", "seven"])
    cut[0, 17] = 0
    for runtime in ("tflite", "savedmodel", "keras"):
        with pytest.raises(BadInputError, match="not valid UTF-8"):
            load_exported(exported, runtime=runtime)("encode_text", text=cut)
    saved = load_exported(exported, runtime="savedmodel")
    with pytest.raises(BadInputError, match="not valid UTF-8"):
        SavedModelModel.run(saved, "encode_text", {"text": cut})  # the graph's own check, as TF Serving runs it
    with pytest.raises(BadInputError, match="longer than 64 bytes"):
        SavedModelModel.run(saved, "serving_default", {"text": np.array(["七" * 22], object)})
    strings = saved("serving_default", text=np.array(["一个粗体的七", "seven"], object))["embedding"]
    rows = saved("encode_text", text=utf8.encode_texts(["一个粗体的七", "seven"]))["embedding"]
    np.testing.assert_allclose(strings, rows, atol=1e-6)


@pytest.mark.slow
def test_cli_refuses_a_prompt_longer_than_the_row(tiny_export, synthetic_data_dir, capsys, tmp_path):
    from zoo.__main__ import main

    _, exported = tiny_export("clip")
    with data_dir_set(synthetic_data_dir):
        code = main(["sample", "clip", "--exported-dir", os.path.dirname(exported), "--prompt", "七" * 22,
                     "--output", str(tmp_path / "x.png"), "--limit", "40"])
    assert code == 2 and "at most 64" in capsys.readouterr().err


def test_sentence_report_finds_the_digit_a_frame_gets_wrong_and_what_it_is_read_as():
    from benchmarks.clip_sentences import frame_report

    labels = np.repeat(np.arange(10), 20)
    images = np.eye(10, dtype=np.float32)[labels]  # a digit's embedding: its own axis

    class Runner:  # "... a one?" lands on the four's axis; every other prompt on its own digit's
        def __call__(self, signature, text):
            texts = [bytes(row[row > 0].astype(np.uint8)).decode() for row in text]
            digits = [next(d for d in range(10) if t.endswith(captions.EN_WORDS[d] + "?")) for t in texts]
            return {"embedding": np.eye(10, dtype=np.float32)[[4 if d == 1 else d for d in digits]]}

    report = frame_report(Runner(), images, labels, "is this {np}?", "en")
    # the ones fit no prompt (the first digit wins the tie), and the fours fit two: the first of them, "one", wins
    assert report["accuracy"] == 0.8 and report["per_digit"][1] == 0.0 and report["per_digit"][4] == 0.0
    assert sorted(report["weak_digits"]) == ["is this a four?", "is this a one?"]
    assert report["weak_digits"]["is this a one?"]["read_as"][0] == 20
    four = report["weak_digits"]["is this a four?"]
    assert four["read_as"][1] == 20 and four["prompt_similarity"][1] == 1.0 and four["prompt_similarity"][0] == 0.0
