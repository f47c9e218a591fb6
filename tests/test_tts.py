"""The TTS model: the length regulator puts each frame in its digit, boundaries follow the durations, the app loop
(mel + step) is the in-graph loop, the utterances are built as the card says, held-out strings never train, and bad
digit strings are a clear error in every runtime, the app and the CLI."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import data_dir_set, shadow_the_zoo
from zoo.__main__ import main
from zoo.core.data import digit_strings as strings
from zoo.core.recipes.commands import load as load_exported
from zoo.core.recipes.registry import get_recipe
from zoo.core.recipes.spec import get_spec
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.paths import EXPORTED_DIR
from zoo.core.runtime.runners import SavedModelModel
from zoo.tts import recipe as tts_recipe
from zoo.tts.model import MAX_SAMPLES, boundaries

RECIPE = get_recipe("tts")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model():
    return get_spec("tts").make_test_model(RECIPE)


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export("tts")[1]


def test_every_frame_belongs_to_its_digit_and_the_phase_runs_through_the_speech(model):
    speech = tf.constant([[3, 2, 4, 0, 0, 0, 0, 0]])
    pause = tf.constant([[1, 2, 0, 0, 0, 0, 0, 0]])
    inside, features = model.frame_layout(speech, pause, 16)
    owner = np.where(inside.numpy()[0].sum(-1) > 0, inside.numpy()[0].argmax(-1), -1)
    np.testing.assert_array_equal(owner, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, -1, -1, -1, -1])
    speaking, pausing, phase = (features.numpy()[0, :, k] for k in range(3))
    np.testing.assert_array_equal(speaking, [1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(pausing, [0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(phase[:4], [0, 1 / 3, 2 / 3, 0], atol=1e-6)
    np.testing.assert_allclose(phase[8:12], [0, 0.25, 0.5, 0.75], atol=1e-6)


def test_boundaries_are_each_digits_first_sample_then_the_end(model):
    digits = tf.constant([[4, 2, 7, -1, -1, -1, -1, -1], [9] * 8])
    speech = tf.constant([[3, 2, 4, 0, 0, 0, 0, 0], [10] * 8])
    pause = tf.constant([[1, 2, 0, 0, 0, 0, 0, 0], [5] * 7 + [0]])
    marks = boundaries(digits, speech, pause).numpy()
    np.testing.assert_array_equal(marks[0], [0, 320, 640, 960, -1, -1, -1, -1, -1])
    np.testing.assert_array_equal(marks[1], [0, 1200, 2400, 3600, 4800, 6000, 7200, 8400, 9200])
    # generation rounds the predicted durations, pads with 0 and never pauses after the last digit
    rounded = model.round_durations(tf.math.log(tf.fill([2, 8, 2], 4.4)), digits)
    np.testing.assert_array_equal(rounded[0].numpy()[0], [4, 4, 4, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(rounded[1].numpy()[0], [3, 3, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(rounded[1].numpy()[1], [3] * 7 + [0])


def test_the_step_loop_an_app_drives_is_the_in_graph_loop(model):
    """``mel`` once, then the vocoder's ``step`` per sample: the same audio as ``serving_default`` from the same
    noise, zeros after the end, and the digits and speaker change the spectrogram."""
    digits = tf.constant([[3, 1, -1, -1, -1, -1, -1, -1], [0, 8, 2, -1, -1, -1, -1, -1]])
    speaker = tf.constant([0, 5])
    noise = tf.constant(np.random.default_rng(1).random((2, MAX_SAMPLES)), tf.float32)
    said = tf.function(model.speak)(digits, speaker, noise)
    frames = model.synthesize(digits, speaker)
    np.testing.assert_array_equal(said["boundaries"], frames["boundaries"])
    end = int(frames["boundaries"].numpy().max())
    step = tf.function(model.step)
    state, sample, out = model.vocoder.zero_state(2), tf.zeros([2]), []
    for t in range(end):
        result = step(frames["conditioning"][:, t // 80], sample, noise[:, t], state)
        sample, state = result["audio"], result["state"]
        out.append(sample.numpy())
    loop = np.stack(out, axis=1)
    for row in range(2):
        row_end = int(said["boundaries"].numpy()[row].max())
        np.testing.assert_array_equal(said["audio"].numpy()[row, :row_end], loop[row, :row_end])
        assert not said["audio"].numpy()[row, row_end:].any()
    other = model.synthesize(tf.constant([[3, 2, -1, -1, -1, -1, -1, -1]] * 2), tf.constant([0, 0]))["mel"]
    assert np.abs(other.numpy()[0] - frames["mel"].numpy()[0]).max() > 1e-3
    voiced = model.synthesize(digits, tf.constant([1, 5]))["mel"]
    assert np.abs(voiced.numpy()[0] - frames["mel"].numpy()[0]).max() > 1e-3


def test_utterances_lay_trimmed_takes_end_to_end_with_pauses(synthetic_data_dir):
    with data_dir_set(synthetic_data_dir):
        takes = strings.DigitTakes("train")
    assert not takes.missing and all(len(t) % 80 == 0 for v in takes.takes.values() for t in v)
    audio, speech, pause = takes.utterance((4, 0, 4), 2, np.random.default_rng(0))
    assert list(speech[3:]) == [0] * 5 and pause[2] == 0 and all(5 <= p <= 25 for p in pause[:2])
    marks = tts_recipe.true_boundaries(speech, pause, 3)
    for i in range(3):  # each digit's segment starts with its take's samples, and the pause is silence
        first = audio[marks[i] : marks[i] + speech[i] * 80]
        assert any(np.array_equal(first, take) for take in takes.takes[((4, 0, 4)[i], 2)])
    assert not audio[marks[0] + speech[0] * 80 : marks[1]].any() and not audio[marks[3] :].any()


def test_trimming_keeps_the_loud_part_with_a_frame_of_margin():
    samples = np.zeros(8000, np.float32)
    samples[1000:3000] = 0.5 * np.sin(np.arange(2000) * 0.3)
    first, last = strings.trimmed_frames(samples)
    assert (first, last) == (1000 // 80 - 1, 3000 // 80 + 2)


def test_training_never_draws_a_held_out_string_and_batches_repeat(synthetic_data_dir):
    held_out, speakers = strings.held_out_strings()
    assert len(held_out) == 300 and {len(s) for s in held_out} == set(range(1, 8)) and set(speakers) == set(range(6))
    rng = np.random.default_rng(0)
    drawn = {strings.draw_string(rng) for _ in range(20000)}
    assert not drawn & strings.HELD_OUT and len(strings.HELD_OUT) > 150
    with data_dir_set(synthetic_data_dir):
        takes = strings.DigitTakes("train")
    one, two = (strings.training_batch(takes, 0, 3, 5, 4) for _ in range(2))
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    other = strings.training_batch(takes, 0, 3, 6, 4)
    assert not np.array_equal(one[0], other[0])


def test_digit_strings_and_speakers_are_checked_before_any_runtime():
    np.testing.assert_array_equal(tts_recipe.parse_digits("555-0123"), [5, 5, 5, 0, 1, 2, 3, -1])
    for text, message in (("", "no digits"), (" - ", "no digits"), ("12a", "'a' is not a digit"),
                          ("123456789", "9 digits is more than the 8")):
        with pytest.raises(BadInputError, match=message):
            tts_recipe.parse_digits(text)
    assert tts_recipe.speaker_index("Theo") == 4 and tts_recipe.speaker_index(2) == 2
    with pytest.raises(BadInputError, match="unknown speaker 'bob'"):
        tts_recipe.speaker_index("bob")


def test_the_digits_said_in_a_normalized_text():
    digits = tts_recipe.digits_in_spoken_text
    assert digits("call five five five zero one two three at three forty-five") == "55501233"
    assert digits("请拨打 一 三 八 零 零 一 三 八 零 零 零") == "13800138000"
    assert digits("一千二百三十四") == "" and digits("twenty-one") == ""


BAD_ROWS = (
    ([[1, -1, 2, -1, -1, -1, -1, -1]], "after its padding"),
    ([[-1] * 8], "empty row"),
    ([[1, 2, 10, -1, -1, -1, -1, -1]], "must be in [-1, 9]"),
)


@pytest.mark.parametrize("runtime", ["keras", "savedmodel", "tflite"])
def test_bad_digit_rows_are_refused_by_every_runtime(exported, runtime):
    runner = load_exported(exported, runtime=runtime)
    noise = np.full((1, MAX_SAMPLES), 0.5, np.float32)
    for rows, message in BAD_ROWS:
        with pytest.raises(BadInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
            runner("serving_default", digits=np.array(rows, np.int32), speaker=np.array([0], np.int32), noise=noise)
        with pytest.raises(BadInputError):
            runner("mel", digits=np.array(rows, np.int32), speaker=np.array([0], np.int32))


def test_the_saved_model_refuses_a_digit_after_padding_on_its_own(exported):
    """TF Serving runs the graph without the zoo's runner: the graph's own checks must say what is wrong."""
    manifest = load_exported(exported, runtime="savedmodel").manifest
    raw = SavedModelModel(os.path.join(exported, "1"), manifest)
    for rows, message in (([[1, -1, 2, -1, -1, -1, -1, -1]], "-1 padding only after the last digit"),
                          ([[-1] * 8], "at least one digit")):
        with pytest.raises(BadInputError, match=message):
            raw.run("mel", {"digits": np.array(rows, np.int32), "speaker": np.array([0], np.int32)})


def test_the_app_loop_copied_into_an_app_streams_the_in_graph_audio(exported, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    for name in ("tts.tflite", "manifest.json"):
        shutil.copy(os.path.join(exported, name), app / name)
    shutil.copy(os.path.join(REPO_ROOT, "zoo", "tts", "tflite_speak.py"), app)
    for shared in ("manifest.py", "speech.py"):
        shutil.copy(os.path.join(REPO_ROOT, "zoo", "core", "apps", shared), app)
    shadow_the_zoo(str(app))
    script = [sys.executable, "tflite_speak.py", "tts.tflite", "--threads", "1"]
    done = subprocess.run(script + ["--digits", "407", "--speaker", "theo", "--output", "out.wav"],
                          capture_output=True, text=True, cwd=str(app))
    assert done.returncode == 0, done.stderr
    assert "digits starting at 0.00" in done.stdout
    for args, message in ((["--digits", "4x"], "'x' is not a digit"), (["--digits", ""], "no digits"),
                          (["--digits", "123456789"], "more than the 8"), (["--speaker", "bob"], "unknown speaker")):
        done = subprocess.run(script + args, capture_output=True, text=True, cwd=str(app))
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    # in this process: the app's class gives the in-graph loop's samples from the same noise
    from zoo.tts.tflite_speak import TFLiteSpeech

    speech = TFLiteSpeech(os.path.join(exported, "tts.tflite"), num_threads=1)
    noise = np.random.default_rng(3).random(MAX_SAMPLES, dtype=np.float32)
    frames, digits_heard = [], []
    audio, marks = speech.speak("407", "theo", noise=noise, on_frame=frames.append, on_digit=digits_heard.append)
    graph = load_exported(exported, runtime="tflite")("serving_default", digits=np.array([[4, 0, 7] + [-1] * 5],
                                                      np.int32), speaker=np.array([4], np.int32), noise=noise[None])
    np.testing.assert_array_equal(marks, graph["boundaries"][0])
    np.testing.assert_allclose(audio, graph["audio"][0, : len(audio)], atol=1e-6)
    assert len(frames) == len(audio) // 80 and digits_heard == [0, 1, 2]


def test_say_is_sample_tts_with_a_text(exported, synthetic_data_dir, tmp_path, capsys):
    output = tmp_path / "said.wav"
    with data_dir_set(synthetic_data_dir):
        code = main(["say", "--digits", "123456789012", "--speaker", "lucas", "--exported-dir",
                     os.path.dirname(exported), "--output", str(output)])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "123456789012 in lucas's voice" in out and "said as 2 calls of at most 8" in out
    code = main(["say", "--digits", "12", "--speaker", "bob", "--exported-dir", os.path.dirname(exported),
                 "--output", str(output)])
    assert code == 2 and "unknown speaker 'bob'" in capsys.readouterr().err
    # a text needs the seq2seq model beside the TTS export to read it: without one, a message, not a trace
    code = main(["say", "Call 555-0123", "--exported-dir", os.path.dirname(exported), "--output", str(output)])
    assert code == 2 and "--text needs the exported seq2seq model" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not all(os.path.isfile(os.path.join(EXPORTED_DIR, n, "manifest.json")) for n in ("seq2seq", "tts")),
                    reason="needs the committed seq2seq and tts exports")
def test_say_reads_a_text_through_the_committed_seq2seq_and_speaks_its_digits(tmp_path, capsys):
    # the example, and a Chinese one: the committed seq2seq reads the numbers, the TTS says the digits
    assert tts_recipe.digits_of_text("Call 555-0123")[1] == "5550123"
    assert tts_recipe.digits_of_text("电话 138 0013")[1] == "1380013"
    output = tmp_path / "call.wav"
    code = main(["say", "Call 555-0123", "--speaker", "jackson", "--output", str(output)])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "5550123 in jackson's voice" in out and "call five five five zero one two three" in out
    assert output.stat().st_size > 8000  # 16-bit samples at 8 kHz: more than half a second of speech
