"""The WaveNet: causality, the cached step = the convolutional pass, mu-law and WAV round trips, the app loop,
the WAV signature, and clear errors for bad input (digit, speaker, noise, a corrupt recording)."""

import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import data_dir_set, shadow_the_zoo, write_synthetic_fsdd
from zoo.core.data import audio
from zoo.core.data import datasets as data
from zoo.core.recipes.commands import load as load_exported
from zoo.core.runtime.errors import BadInputError, DataNotFoundError
from zoo.core.runtime.paths import REPO_ROOT
from zoo.core.recipes.registry import get_recipe
from zoo.wavenet.model import PRESETS, WaveNet, quantize, shift_right
from zoo.wavenet.recipe import crop_starts, speaker_index


@pytest.fixture(scope="module")
def model():
    """The tiny preset, untrained: weights that make every layer matter (no near-constant output)."""
    model = WaveNet(**PRESETS["tiny"], seed=3)
    for weight in model.trainable_weights:
        weight.assign(weight * 2.0)
    return model


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export("wavenet")[1]


def _clip_and_conditioning(model, batch=2, samples=480, seed=0):
    rng = np.random.default_rng(seed)
    clip = quantize(tf.constant(rng.uniform(-0.6, 0.6, (batch, samples)), tf.float32))
    mel = tf.constant(rng.normal(size=(batch, samples // 80, 40)), tf.float32)
    return clip, model.conditioning(mel)


def test_changing_the_audio_after_t_changes_no_output_before_t(model):
    clip, conditioning = _clip_and_conditioning(model)
    logits = model.forward(shift_right(clip), conditioning).numpy()
    t = 300
    changed = tf.concat([clip[:, :t], -clip[:, t:]], axis=1)
    changed_logits = model.forward(shift_right(changed), conditioning).numpy()
    np.testing.assert_array_equal(changed_logits[:, : t + 1], logits[:, : t + 1])  # sample t is predicted from < t
    assert np.abs(changed_logits[:, t + 1 :] - logits[:, t + 1 :]).max() > 1e-3  # and after it, it matters


def test_the_cached_step_loop_equals_the_convolutional_pass_under_teacher_forcing(model):
    clip, conditioning = _clip_and_conditioning(model, samples=560)
    logits = model.forward(shift_right(clip), conditioning).numpy()
    step = tf.function(model.step_logits)
    state, previous = model.zero_state(2), tf.zeros([2])
    for t in range(clip.shape[1]):  # 560 samples: past the receptive field (15) many times over
        step_logits, state = step(conditioning[:, t // 80], previous, state)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-4, err_msg=f"sample {t}")
        previous = clip[:, t]


def test_generate_is_the_step_signature_driven_sample_by_sample(model):
    """The in-graph loop (serving_default) and an app's loop over `step` make the same clip from the same noise."""
    digits, speakers = tf.constant([3, 8]), tf.constant([0, 5])
    noise = tf.constant(np.random.default_rng(1).random((2, 8000)), tf.float32)
    generated = tf.function(model.generate)(digits, speakers, noise).numpy()
    conditioning = model.condition(digits, speakers)["conditioning"]
    step = tf.function(model.step)
    state, sample, out = model.zero_state(2), tf.zeros([2]), []
    for t in range(8000):
        result = step(conditioning[:, t // 80], sample, noise[:, t], state)
        sample, state = result["audio"], result["state"]
        out.append(sample.numpy())
    np.testing.assert_array_equal(np.stack(out, axis=1), generated)
    assert len(np.unique(generated)) > 20, "a clip of many levels, not a constant"


def test_mu_law_round_trips():
    levels = np.arange(256)
    np.testing.assert_array_equal(audio.mu_law_encode(audio.mu_law_decode(levels)), levels)
    x = np.linspace(-1, 1, 10001)
    decoded = audio.mu_law_decode(audio.mu_law_encode(x))
    # mu-law steps are small near 0 and large near +-1: the error is relative to the amplitude
    assert np.all(np.abs(decoded - x) <= 0.002 + 0.03 * np.abs(x))
    tf_levels = audio.mu_law_encode(tf.constant(x, tf.float32)).numpy()
    assert np.mean(tf_levels == audio.mu_law_encode(x)) > 0.999  # float32 against float64 at the rounding edges
    np.testing.assert_allclose(audio.mu_law_decode(tf.constant(levels)).numpy(), audio.mu_law_decode(levels),
                               atol=1e-6)


def test_wav_writer_and_reader_round_trip(tmp_path):
    clip = np.sin(np.linspace(0, 200, 8000)).astype(np.float32) * 0.8
    path = audio.write_wav(str(tmp_path / "tone.wav"), clip)
    back = audio.read_wav(path)
    assert back.shape == (8000,)
    np.testing.assert_allclose(back, clip, atol=2.0 / 32767)  # rounding, and read as k / 32768
    decoded, rate = tf.audio.decode_wav(open(path, "rb").read())  # TensorFlow reads what the zoo writes
    assert int(rate) == 8000
    np.testing.assert_allclose(decoded.numpy()[:, 0], back, atol=1e-6)
    with pytest.raises(BadInputError, match="one mono clip"):
        audio.wav_bytes(np.zeros((2, 8000)))


def test_a_corrupt_or_foreign_recording_is_named_in_the_error(tmp_path):
    folder = tmp_path / "fsdd" / "recordings"
    write_synthetic_fsdd(str(folder), takes=(0, 5))
    with data_dir_set(str(tmp_path)):
        assert len(data.spoken_digits("train")) == 60
        (folder / "3_theo_7.wav").write_bytes(b"RIFF\x00\x00not a wave file")
        with pytest.raises(DataNotFoundError, match="3_theo_7.wav"):
            data.spoken_digits("train")
        stereo = io.BytesIO()
        import wave

        with wave.open(stereo, "wb") as f:
            f.setnchannels(2), f.setsampwidth(2), f.setframerate(44100), f.writeframes(b"\x00" * 400)
        (folder / "3_theo_7.wav").write_bytes(stereo.getvalue())
        with pytest.raises(DataNotFoundError, match="3_theo_7.wav.*16-bit mono at 8000 Hz"):
            data.spoken_digits("train")
        (folder / "3_theo_7.wav").unlink()
        (folder / "seven.wav").write_bytes(b"")
        with pytest.raises(DataNotFoundError, match="seven.wav"):
            data.spoken_digits("train")


def test_clips_are_padded_or_trimmed_to_one_second_and_counted(tmp_path):
    folder = tmp_path / "fsdd" / "recordings"
    write_synthetic_fsdd(str(folder), takes=(0,))
    audio.write_wav(str(folder / "1_lucas_0.wav"), np.full(9000, 0.25))
    with data_dir_set(str(tmp_path)):
        test = data.spoken_digits("test")
    assert test.audio.shape == (60, 8000) and test.num_trimmed == 1
    index = test.files.index("1_lucas_0.wav")
    assert test.lengths[index] == 9000 and np.allclose(test.audio[index], 0.25, atol=1e-4)
    short = int(test.lengths[0])
    assert short < 8000 and not test.audio[0, short:].any()
    assert test.speaker_names == ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


def test_training_crops_start_on_frames_inside_the_spoken_part():
    lengths = np.array([1000, 3500, 8000, 12000])
    rng = np.random.default_rng(0)
    for _ in range(50):
        starts = crop_starts(lengths, 2400, rng)
        assert np.all(starts % 80 == 0) and np.all(starts >= 0) and np.all(starts + 2400 <= 8000)
        assert np.all(starts <= np.maximum(np.minimum(lengths, 8000) - 1200, 0))


def test_speakers_by_name_or_index_and_a_clear_error_otherwise():
    assert speaker_index("jackson") == 1 and speaker_index("Theo") == 4 and speaker_index(5) == 5
    assert speaker_index("2") == 2
    for bad in ("bob", 6, -1, None):
        with pytest.raises(BadInputError, match="unknown speaker"):
            speaker_index(bad)


def test_bad_requests_get_clear_errors_in_every_runtime(exported):
    ok = {"digit": np.array([7], np.int32), "speaker": np.array([1], np.int32),
          "noise": np.full((1, 8000), 0.5, np.float32)}
    for runtime in ("tflite", "savedmodel", "keras"):
        runner = load_exported(exported, runtime=runtime)
        with pytest.raises(BadInputError, match="digit"):
            runner("serving_default", **{**ok, "digit": np.array([10], np.int32)})
        with pytest.raises(BadInputError, match="speaker"):
            runner("serving_default", **{**ok, "speaker": np.array([6], np.int32)})
        with pytest.raises(BadInputError, match="noise.*8000"):
            runner("serving_default", **{**ok, "noise": np.full((1, 4000), 0.5, np.float32)})
        with pytest.raises(BadInputError, match="batch"):
            runner("serving_default", **{**ok, "digit": np.array([7, 7], np.int32)})


def test_the_wav_signature_returns_the_clip_of_its_seed_as_a_wav_file(exported):
    runner = load_exported(exported, runtime="savedmodel")
    digits, speakers, seeds = np.array([2, 9], np.int32), np.array([3, 0], np.int32), np.array([5, 11], np.int32)
    wavs = runner("wav", digit=digits, speaker=speakers, seed=seeds)["wav"]
    noise = np.stack([tf.random.stateless_uniform([8000], seed=[int(s), 0]).numpy() for s in seeds])
    clips = runner("serving_default", digit=digits, speaker=speakers, noise=noise)["audio"]
    for wav, clip in zip(wavs, clips):
        np.testing.assert_allclose(audio.read_wav(bytes(wav)), clip, atol=2.0 / 32767)


def test_the_app_loop_matches_serving_default_and_runs_without_the_zoo(exported, tmp_path):
    from zoo.wavenet import tflite_sample
    app = tflite_sample.TFLiteWaveNet(os.path.join(exported, "wavenet.tflite"))
    noise = np.random.default_rng(2).random((2, 8000), dtype=np.float32)
    frames = []
    clips = app.speak([4, 0], ["nicolas", 2], noise=noise, on_frame=frames.append)
    expected = load_exported(exported, runtime="tflite")("serving_default", digit=np.array([4, 0], np.int32),
                                                        speaker=np.array([3, 2], np.int32), noise=noise)["audio"]
    np.testing.assert_array_equal(clips, expected)
    assert len(frames) == 100 and frames[0].shape == (2, 80)
    for bad, message in (({"digits": [10]}, "0-9"), ({"speakers": ["bob"]}, "unknown speaker"),
                         ({"noise": noise[:, :100]}, "noise")):
        with pytest.raises(ValueError, match=message):
            app.speak(**{"digits": [4], "speakers": ["theo"], "noise": noise[:1], **bad})

    folder = tmp_path / "app"
    shutil.copytree(exported, folder, ignore=shutil.ignore_patterns("1", "*.keras"))
    shutil.copy(os.path.join(REPO_ROOT, "zoo", "wavenet", "tflite_sample.py"), folder)
    for shared in ("manifest.py", "speech.py"):  # the sha256 check, voices and WAV files it shares
        shutil.copy(os.path.join(REPO_ROOT, "zoo", "core", "apps", shared), folder)
    shadow_the_zoo(folder)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "tflite_sample.py", "wavenet.tflite", "--digit", "5", "--speaker",
                             "theo", "--output", "five.wav"], cwd=folder, capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert audio.read_wav(str(folder / "five.wav")).shape == (8000,)
    result = subprocess.run([sys.executable, "tflite_sample.py", "wavenet.tflite", "--speaker", "bob"], cwd=folder,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and "unknown speaker 'bob'" in result.stderr
    with open(folder / "wavenet.tflite", "ab") as f:
        f.write(b"tampered")
    result = subprocess.run([sys.executable, "tflite_sample.py", "wavenet.tflite"], cwd=folder,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and "sha256" in result.stderr


def test_the_cli_says_a_digit_and_refuses_bad_ones(exported, tmp_path, capsys):
    from zoo.__main__ import main

    parent = os.path.dirname(exported)
    output = str(tmp_path / "seven.wav")
    assert main(["sample", "wavenet", "--exported-dir", parent, "--digit", "7", "--speaker", "jackson",
                 "--output", output]) == 0
    assert audio.read_wav(output).shape == (8000,)
    assert main(["sample", "wavenet", "--exported-dir", parent, "--digit", "10", "--output", output]) == 2
    assert "--digit: must be at most 9, got 10" in capsys.readouterr().err
    assert main(["sample", "wavenet", "--exported-dir", parent, "--speaker", "bob", "--output", output]) == 2
    assert "unknown speaker 'bob'" in capsys.readouterr().err


def test_the_samples_are_a_wav_per_digit_and_their_spectrograms(exported):
    files = sorted(os.listdir(os.path.join(exported, "samples")))
    assert "spectrograms.png" in files
    wavs = [f for f in files if f.endswith(".wav")]
    assert sorted(int(f.split("_")[0]) for f in wavs) == list(range(10))
    for name in wavs:
        assert audio.read_wav(os.path.join(exported, "samples", name)).shape == (8000,)


def test_the_recipe_lists_the_speakers_in_the_manifest(exported):
    manifest = load_exported(exported, runtime="tflite").manifest
    assert manifest["speakers"] == ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    assert get_recipe("wavenet").presets["base"]["num_speakers"] == len(manifest["speakers"])
    floor = manifest["reference_metrics"]["real_train_clips"]
    assert set(floor) >= {"digit_accuracy", "speaker_accuracy", "frechet_distance"}
