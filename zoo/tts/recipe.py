"""The text-to-speech recipe: FSDD digit strings, ``serving_default``/``mel``/``step``/``wav``, digit error rate.

    python -m zoo train tts                            # needs exported/wavenet (the vocoder)
    python -m zoo export tts
    python -m zoo say "Call 555-0123" --speaker jackson --output call.wav
    python -m zoo sample tts --digits 5550123 --speaker jackson
    python -m zoo evaluate tts                         # digit error rate of 300 held-out strings
    python -m zoo.tts.tflite_speak exported/tts/tts.tflite --digits 5550123 --speaker jackson

Training utterances are built on the fly (``zoo.core.data.digit_strings``): 1-7 random
digits in one voice, each a random training take with its silence trimmed, 50-250 ms
pauses between them; the model learns each digit's frames and durations from the
utterance's log-mel spectrogram. Adam with a cosine decay to 10% over the run.
"""

import os
import re
import time

import numpy as np

from zoo.core import export as core_export
from zoo.core.data import digit_strings as strings
from zoo.core.data.audio import CLIP_SAMPLES, HOP_LENGTH, MEL_BINS, SAMPLE_RATE, write_wav
from zoo.core.recipes.recipe import EVAL_SEED, Option, Recipe, TrainingData
from zoo.core.recipes.registry import get_recipe, register
from zoo.core.recipes.speech import (SPEAKERS, checked_uniform_noise, seeded_noise, speaker_checks, speaker_index,
                                     vocoder_step_signature, wav_files)
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.progress import progress_bar
from zoo.core.training.optimizers import CosineDecayAdam
from zoo.tts.model import BOUNDARIES, MAX_DIGITS, MAX_FRAMES, MAX_SAMPLES, PRESETS, TextToSpeech

NAME = "tts"
EVAL_BATCH = 50


def vocoder(preset):
    """The WaveNet vocoder: the exported, trained one ("exported", sha256-checked through the registry's loader),
    or an untrained one of a WaveNet preset (tests); without its own mel predictor either way."""
    if preset != "exported":
        return get_recipe("wavenet").create_model(preset, seed=0).vocoder()
    from zoo.core.recipes.commands import load
    from zoo.core.runtime import paths

    return load("wavenet", runtime="keras", exported_dir=paths.EXPORTED_DIR).model.vocoder()


# === input checks (the app loop has its own NumPy copy: it imports no zoo) =========================

def parse_digits(text):
    """A digit string ("5550123", spaces and dashes allowed) -> ``int32 [8]`` padded with -1; a clear error for
    anything else, an empty string or more than 8 digits."""
    kept = [c for c in str(text) if c not in " -"]
    if not kept:
        raise BadInputError("no digits to say: give 1-8 digits, e.g. --digits 5550123")
    bad = [c for c in kept if c not in "0123456789"]
    if bad:
        raise BadInputError(f"{bad[0]!r} is not a digit: the model says the digits 0-9 (got {text!r})")
    if len(kept) > MAX_DIGITS:
        raise BadInputError(f"{len(kept)} digits is more than the {MAX_DIGITS} one call says; split the string "
                            "(`python -m zoo say` does)")
    return strings.padded([int(c) for c in kept])


DIGIT_WORDS = {w: i for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                            "nine"))}
ZH_DIGITS = "零一二三四五六七八九"


def digits_of_text(text, exported_dir=None):
    """``(spoken, digits)``: the exported seq2seq model's ``<norm>`` reading of ``text`` (English or Chinese) and
    the digits it says one by one: the words "zero" to "nine", and in Chinese the runs of 零-九 separated by spaces
    (how a digit string is read: "一 三 八 零"); "forty-five" and "三点" are not digits."""
    from zoo.core.data import spoken_numbers as numbers
    from zoo.core.recipes.commands import load
    from zoo.core.runtime import paths
    from zoo.core.runtime.errors import ArtifactNotFoundError

    try:
        seq2seq = load("seq2seq", runtime="tflite", variant="float32", exported_dir=exported_dir or paths.EXPORTED_DIR)
    except ArtifactNotFoundError as error:
        raise ArtifactNotFoundError(f"--text needs the exported seq2seq model to read the text ({error}); give the "
                                    "digits with --digits instead") from None
    source = numbers.encode([f"<norm> {text}"], numbers.SOURCE_BYTES)
    spoken = numbers.decode(seq2seq("serving_default", text=source)["output"])[0]
    return spoken, digits_in_spoken_text(spoken)


def digits_in_spoken_text(spoken):
    """The digits a normalized text says one by one (see :func:`digits_of_text`), as a string."""
    digits = "".join(str(DIGIT_WORDS[w]) for w in spoken.split() if w in DIGIT_WORDS)  # "forty-five" is one word
    for run in re.findall(f"[{ZH_DIGITS}](?: [{ZH_DIGITS}])+", spoken):  # Chinese digit strings
        digits += "".join(str(ZH_DIGITS.index(c)) for c in run.split())
    return digits


# === signatures ====================================================================================

def tts_signatures(model):
    import tensorflow as tf

    batch = [None]
    speakers = ", ".join(f"{i} {n}" for i, n in enumerate(SPEAKERS[: model.num_speakers]))
    who = {
        "digits": (tf.TensorSpec([None, MAX_DIGITS], tf.int32),
                   f"the digits to say, 0-9, then -1 after the last (1-{MAX_DIGITS} digits)"),
        "speaker": (tf.TensorSpec(batch, tf.int32), f"whose voice: an index into the manifest's speakers ({speakers})"),
    }
    ranges = {"digits": (-1, 9), "speaker": (0, model.num_speakers - 1)}
    padding = {"digits": strings.PADDING}
    noise = {"noise": (tf.TensorSpec([None, MAX_SAMPLES], tf.float32),
                       "uniform [0, 1) numbers, one per output sample: the vocoder's sampling randomness")}
    marks = (f"int32 [batch, {BOUNDARIES}]: the sample where each digit starts, then where the last one ends; -1 "
             "after that")

    def checked_who(digits, speaker, batch_of=None):
        """In-graph checks, so TF Serving clients get a clear error (TFLite drops them; every runner checks the
        manifest's ranges and padding instead)."""
        real = digits >= 0
        after_padding = tf.logical_and(real[:, 1:], tf.logical_not(real[:, :-1]))
        checks = [tf.debugging.assert_greater_equal(digits, -1, message="digits must be 0-9, then -1 padding"),
                  tf.debugging.assert_less_equal(digits, 9, message="digits must be 0-9, then -1 padding"),
                  tf.debugging.assert_equal(tf.reduce_any(after_padding), False,
                                            message="digits: -1 padding only after the last digit"),
                  tf.debugging.assert_equal(tf.reduce_all(real[:, 0]), True,
                                            message="digits: every row needs at least one digit (got an empty row)"),
                  *speaker_checks(speaker, model.num_speakers, digits, "digits")]
        if batch_of is not None:
            checks.append(tf.debugging.assert_equal(tf.shape(digits)[0], tf.shape(batch_of)[0],
                                                    message="digits and noise must have the same batch size"))
        with tf.control_dependencies(checks):
            return tf.identity(digits), tf.identity(speaker)

    # One traced copy of the acoustic model and one of the vocoder's loop, called by serving_default, mel and
    # wav: traced inside each signature, the SavedModel's graph held the loop twice and the network three times
    # (a megabyte of the 20 MB budget). Named unlike the model's methods: autograph caches converted functions
    # by name.
    shared_synthesis = tf.function(model.synthesize)
    shared_speech = tf.function(lambda digits, speaker, noise: model.voice(shared_synthesis(digits, speaker), noise))

    def say_digits(digits, speaker, noise):
        return shared_speech(*checked_who(digits, speaker, noise), checked_uniform_noise(noise))

    def spectrogram(digits, speaker):
        return shared_synthesis(*checked_who(digits, speaker))

    def say_wav(digits, speaker, seed):
        digits, speaker = checked_who(digits, speaker, seed)
        said = shared_speech(digits, speaker, seeded_noise(seed, MAX_SAMPLES))
        return {"wav": wav_files(said["audio"], tf.reduce_max(said["boundaries"], axis=1))}  # up to the last digit

    vocoder_ = model.vocoder
    return [
        core_export.Signature("serving_default", say_digits, {**who, **noise}, {
            "audio": f"the digits spoken, float32 [batch, {MAX_SAMPLES}] in [-1, 1] at {SAMPLE_RATE} Hz (8 s; zeros "
                     "after the last digit's end)",
            "boundaries": marks}, ranges={**ranges, "noise": (0.0, 1.0)}, padding=padding),
        core_export.Signature("mel", spectrogram, who, {
            "mel": f"the log-mel spectrogram [batch, {MAX_FRAMES}, {MEL_BINS}] (zoo.core.data.audio.log_mel's "
                   "features, 100 frames a second; silence after the end)",
            "conditioning": f"[batch, {MAX_FRAMES}, {vocoder_.conditioning_size}]: row t // {HOP_LENGTH} is the "
                            "`conditioning` input of step for sample t",
            "boundaries": marks}, ranges=ranges, padding=padding),
        vocoder_step_signature(vocoder_, model.step, "mel"),
        core_export.Signature("wav", say_wav, {
            **who, "seed": (tf.TensorSpec(batch, tf.int32), "any integer: the same seed gives the same audio")}, {
            "wav": f"a 16-bit mono WAV file at {SAMPLE_RATE} Hz per row, up to the last digit's end (bytes; base64 "
                   "in TF Serving's JSON)"},
            tflite=False, ranges=ranges, padding=padding,
            example={"digits": [5, 5, 5, 0, 1, 2, 3, -1], "speaker": 1, "seed": 0}),
    ]


# === speaking and scoring through any runner ===================================================

def speak(runner, rows, speakers, seed, batch_size=EVAL_BATCH, progress=False):
    """``(audio [n, 64000], boundaries [n, 9])`` of digit rows ``[n, 8]`` through ``serving_default``. The noise
    comes from ``numpy.random.default_rng(seed)``, a row per utterance in order; rows are grouped by length
    (the vocoder's loop runs as long as a batch's longest utterance)."""
    rows, speakers = np.asarray(rows, np.int32).reshape(-1, MAX_DIGITS), np.asarray(speakers, np.int32)
    noise = np.random.default_rng(seed).random((len(rows), MAX_SAMPLES), dtype=np.float32)
    order = np.argsort((rows >= 0).sum(axis=1), kind="stable")
    audio = np.zeros((len(rows), MAX_SAMPLES), np.float32)
    marks = np.zeros((len(rows), BOUNDARIES), np.int32)
    bar = progress_bar(len(rows), unit_name="utterance") if progress else None
    for start in range(0, len(rows), batch_size):
        part = order[start : start + batch_size]
        out = runner("serving_default", digits=rows[part], speaker=speakers[part], noise=noise[part])
        audio[part], marks[part] = out["audio"], out["boundaries"]
        if bar:
            bar.add(len(part))
    return audio, marks


def score_segments(quality, audio, marks, strings_, speakers):
    """Digit error rate and speaker accuracy of the spoken-digit classifier on each digit's segment."""
    clips, digits, voices, missing = [], [], [], 0
    for row_audio, row_marks, digit_string, speaker in zip(audio, marks, strings_, speakers):
        found = strings.segments(row_audio, row_marks)
        missing += len(digit_string) - len(found)
        clips += found[: len(digit_string)]
        digits += list(digit_string)[: len(found)]
        voices += [speaker] * min(len(found), len(digit_string))
    _, heard_digits, heard_speakers = quality.features_and_classes(np.stack(clips))
    wrong = int(np.sum(heard_digits != np.asarray(digits))) + missing
    total = len(digits) + missing
    return {"digit_error_rate": round(wrong / total, 4),
            "speaker_accuracy": round(float(np.mean(heard_speakers == np.asarray(voices))), 4),
            "digits_scored": total}


def quality(runner, seed=EVAL_SEED, count=strings.HELD_OUT_COUNT, progress=True):
    """The held-out strings spoken through ``runner``, each digit's segment (between consecutive boundaries) read by
    the zoo's spoken-digit classifier."""
    from zoo.core.metrics.spoken_digits import SpokenDigitQuality

    held_out, speakers = strings.held_out_strings(count, len(runner.manifest.get("speakers", SPEAKERS)))
    rows = np.stack([strings.padded(s) for s in held_out])
    audio, marks = speak(runner, rows, speakers, seed, progress=progress)
    metrics = score_segments(SpokenDigitQuality(), audio, marks, held_out, speakers)
    ends = marks.max(axis=1)
    metrics["seconds_of_audio"] = round(float(ends.sum()) / SAMPLE_RATE, 1)
    metrics["num_strings"] = len(held_out)
    return metrics


def reference_metrics(count=strings.HELD_OUT_COUNT, seed=EVAL_SEED):
    """The floor (real test recordings laid end to end as the training data is) and the baseline (the exported
    WaveNet saying one digit per second-long call), on the same held-out strings."""
    from zoo.core.metrics.spoken_digits import SpokenDigitQuality
    from zoo.core.recipes.commands import load
    from zoo.core.runtime import paths

    quality_ = SpokenDigitQuality()
    held_out, speakers = strings.held_out_strings(count)
    takes = strings.DigitTakes("test")
    rng = np.random.default_rng(seed)
    audio, marks = [], []
    for digit_string, speaker in zip(held_out, speakers):
        clip, speech, pause = takes.utterance(digit_string, speaker, rng)
        audio.append(clip)
        marks.append(true_boundaries(speech, pause, len(digit_string)))
    floor = score_segments(quality_, np.stack(audio), np.stack(marks), held_out, speakers)
    wavenet = load("wavenet", runtime="tflite", variant="float32", exported_dir=paths.EXPORTED_DIR)
    digits = np.concatenate([np.asarray(s, np.int32) for s in held_out])
    voices = np.concatenate([[v] * len(s) for s, v in zip(held_out, speakers)]).astype(np.int32)
    noise = np.random.default_rng(seed).random((len(digits), CLIP_SAMPLES), dtype=np.float32)
    said = np.concatenate([wavenet("serving_default", digit=digits[i : i + 60], speaker=voices[i : i + 60],
                                   noise=noise[i : i + 60])["audio"] for i in range(0, len(digits), 60)])
    # each one-second clip is one digit's segment, scored as the model's are
    baseline = score_segments(quality_, said, np.tile([0, CLIP_SAMPLES], (len(said), 1)), [(d,) for d in digits], voices)
    return {"real_test_recordings_concatenated": floor, "wavenet_one_digit_per_call": baseline,
            "classifier": {"model": quality_.manifest["model"], "sha256": quality_.manifest["files"][0]["sha256"]}}


def true_boundaries(speech, pause, count):
    """The boundaries of an utterance built from recordings: each digit's start, then the last one's end (samples)."""
    ends = np.cumsum(speech + pause)
    starts = ends - speech - pause
    marks = np.full(BOUNDARIES, -1, np.int32)
    marks[:count] = starts[:count] * HOP_LENGTH
    marks[count] = (starts[count - 1] + speech[count - 1]) * HOP_LENGTH
    return marks


def real_time_factor(runner, seed=EVAL_SEED, threads=1):
    """Seconds of compute per second of audio at batch 1 in LiteRT (``threads`` threads): one string of every length
    1-7 through the float32 file's ``serving_default``."""
    from zoo.core.runtime.runners import TFLiteModel

    single = TFLiteModel(runner.path, runner.manifest, num_threads=threads)
    rng = np.random.default_rng(seed)
    compute = audio = 0.0
    for length in range(1, 8):
        row = strings.padded(rng.integers(0, 10, length))[None]
        noise = rng.random((1, MAX_SAMPLES), dtype=np.float32)
        single("serving_default", digits=row, speaker=np.array([1], np.int32), noise=noise)  # warm
        start = time.perf_counter()
        out = single("serving_default", digits=row, speaker=np.array([1], np.int32), noise=noise)
        compute += time.perf_counter() - start
        audio += out["boundaries"].max() / SAMPLE_RATE
    return {"real_time_factor_batch1": round(compute / audio, 3), "threads": threads,
            "seconds_of_audio": round(audio, 2)}


def write_samples(runner, folder, seed=0):
    """A WAV per speaker (the same seven digits) and a picture of their spectrograms with the boundaries."""
    from zoo.core.data.audio import plot_spectrograms

    speakers = runner.manifest.get("speakers", SPEAKERS)
    rows = np.stack([strings.padded([5, 5, 5, 0, 1, 2, 3])] * len(speakers))
    audio, marks = speak(runner, rows, np.arange(len(speakers), dtype=np.int32), seed)
    for name, clip, row_marks in zip(speakers, audio, marks):
        write_wav(os.path.join(folder, f"5550123_{name}.wav"), clip[: row_marks.max()])
    seconds = int(np.ceil(marks.max() / SAMPLE_RATE))  # every utterance whole
    return plot_spectrograms(audio[:, : seconds * SAMPLE_RATE], [f"5550123 ({n})" for n in speakers],
                             os.path.join(folder, "spectrograms.png"), columns=2, seconds=float(seconds),
                             marks=[m[m >= 0] / SAMPLE_RATE for m in marks], dpi=60)


def utterance_dataset(make_batch, batches):
    """A ``tf.data.Dataset`` of training dicts; ``make_batch(i)`` returns digits, speaker, speech, pause, audio."""
    import tensorflow as tf

    from zoo.core.data.audio import log_mel

    def load(index):
        digits, speaker, speech, pause, audio = tf.numpy_function(
            lambda i: make_batch(int(i)), [index], (tf.int32, tf.int32, tf.int32, tf.int32, tf.float32))
        digits.set_shape([None, MAX_DIGITS])
        speaker.set_shape([None])
        speech.set_shape([None, MAX_DIGITS])
        pause.set_shape([None, MAX_DIGITS])
        audio.set_shape([None, None])
        return {"digits": digits, "speaker": speaker, "speech": speech, "pause": pause, "mel": log_mel(audio)}

    return tf.data.Dataset.range(batches).map(load).prefetch(2)


@register
class TextToSpeechRecipe(CosineDecayAdam, Recipe):
    name = NAME
    requires = ("wavenet",)
    summary = "text to speech: digit strings in six voices, FastSpeech-style durations + the WaveNet vocoder"
    paper = ("Ren et al. (2019), FastSpeech: Fast, Robust and Controllable Text to Speech, arXiv:1905.09263; Shen et "
             "al. (2018), Tacotron 2, arXiv:1712.05884")
    model_class = TextToSpeech
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 12, "batch_size": 32, "learning_rate": 1e-3}
    sample_suffix = ".wav"
    metrics = ["digit_error_rate", "speaker_accuracy"]
    sample_help = "Say a digit string in a speaker's voice with the exported model (sha256-checked) and write a WAV."
    evaluate_help = ("Say 300 held-out digit strings (1-7 digits) and report the spoken-digit classifier's digit "
                     "error rate and speaker accuracy on each digit's segment.")

    options = (
        Option("digits", str, "5550123", f"the digits to say (1-{MAX_DIGITS}; spaces and dashes are ignored)",
               commands=("sample",)),
        Option("text", str, None, "a text whose numbers to say, English or Chinese (the exported seq2seq model "
                                  "reads it aloud, <norm>; its digits are spoken); instead of --digits",
               commands=("sample",), text=True),
        Option("speaker", str, "jackson", f"whose voice: {', '.join(SPEAKERS)} or an index", commands=("sample",)),
        Option("num_strings", int, strings.HELD_OUT_COUNT, "held-out strings to say (300: all of them)",
               commands=("evaluate", "export"), minimum=1, maximum=strings.HELD_OUT_COUNT),
    )

    # === Model ===
    def create_model(self, preset="base", seed=0):
        if preset not in self.presets:
            raise BadInputError(f"unknown preset {preset!r} for {self.name}; choose from {', '.join(self.presets)}")
        config = dict(self.presets[preset])
        return TextToSpeech(vocoder(config.pop("vocoder_preset")), seed=seed, **config)

    # === Training ===
    def training_data(self, model, *, batch_size, seed, limit):
        # every digit in every voice must be there to build strings: --limit cuts the utterances, not the takes
        train, test = strings.DigitTakes("train"), strings.DigitTakes("test")
        for takes, split in ((train, "train"), (test, "test")):
            if takes.missing:
                raise BadInputError(f"the FSDD {split} split lacks recordings of {len(takes.missing)} (digit, speaker) "
                                    f"pairs, e.g. {takes.missing[0]}: is $ZOO_DATA_DIR/fsdd complete?")
        utterances = strings.EPOCH_UTTERANCES if limit is None else limit  # fewer than a batch: the core's error
        batches = utterances // batch_size
        held = strings.VALIDATION_UTTERANCES if limit is None else batch_size
        validation_batch = strings.training_batch(test, EVAL_SEED, 0, 0, held)

        def dataset_fn(epoch):
            return utterance_dataset(lambda i: strings.training_batch(train, seed, epoch, i, batch_size), batches)

        return TrainingData(
            dataset_fn,
            (f"{batches * batch_size:,} utterances an epoch built from the Free Spoken Digit Dataset's training takes "
             f"(5-49; zoo.core.data.digit_strings): 1-7 random digits in one of {train.num_speakers} voices, each "
             "recording trimmed of its silence (30 dB), 50-250 ms pauses between digits; validation: "
             f"{held} utterances of the test takes (0-4)"),
            validation=utterance_dataset(lambda i: validation_batch, 1),
            config={"utterances_per_epoch": batches * batch_size})

    # === Export ===
    def signatures(self, model):
        return tts_signatures(model)

    def export_plan(self, model, training, num_strings):
        keras_model = self.keras_model(model)
        return core_export.ExportPlan(
            name=NAME,
            signatures=self.signatures(keras_model),
            description="Says a string of 1-8 digits in one of six voices: a FastSpeech-style model predicts each "
                        "digit's duration and the log-mel frames, the zoo's WaveNet vocoder turns them into 8 kHz "
                        "audio; boundaries say where each digit starts.",
            paper=self.paper,
            training=training,
            keras_model=keras_model,
            evaluate=lambda runner: quality(runner, count=num_strings),
            detailed_evaluate=real_time_factor,
            detailed_runtime="tflite_float32",
            samples=lambda runner, path: write_samples(runner, os.path.dirname(path)),
            samples_file="samples/spectrograms.png",
            primary_metric="speaker_accuracy",
            metric_summary=self.metrics,
            notes={"speakers": list(SPEAKERS[: model.num_speakers]), "sample_rate": SAMPLE_RATE,
                   "max_digits": MAX_DIGITS, "max_samples": MAX_SAMPLES, "hop_length": HOP_LENGTH,
                   "state_size": model.vocoder.state_size, "conditioning_size": model.vocoder.conditioning_size,
                   "vocoder": "exported/wavenet's WaveNet without its mel predictor, frozen",
                   "reference_metrics": reference_metrics(num_strings),
                   "metric_definitions": {
                       "digit_error_rate": "share of the asked digits the zoo's spoken-digit classifier "
                                           "(exported/fsdd_classifier) does not hear in their segment (from a "
                                           "digit's boundary to the next, cut or padded to one second); a digit "
                                           "without a segment counts as wrong",
                       "speaker_accuracy": "share of segments the classifier attributes to the asked speaker",
                       "num_strings": f"held-out digit strings said (zoo.core.data.digit_strings.held_out_strings: "
                                      f"lengths 1-7, seed {strings.HELD_OUT_SEED}), noise from seed {EVAL_SEED}",
                       "real_time_factor_batch1": "seconds of compute per second of audio, batch 1, LiteRT float32, "
                                                  "one thread, one string of each length 1-7",
                   }},
        )

    # === Use ===
    def sample(self, runner, *, output, seed, digits, text, speaker):
        speakers = runner.manifest.get("speakers", SPEAKERS)
        voice = speaker_index(speaker, speakers)
        note = ""
        if text is not None:
            # the seq2seq model beside this one: exported/seq2seq for exported/tts
            beside = os.path.dirname(os.path.dirname(os.path.abspath(runner.path))) if hasattr(runner, "path") else None
            spoken, digits = digits_of_text(text, beside)
            if not digits:
                raise BadInputError(f"the text has no digits to say: the seq2seq model reads it as {spoken!r}")
            note = f"; the seq2seq model read the text as {spoken!r}"
            if any("\u4e00" <= c <= "\u9fff" for c in spoken):
                note += " (Chinese: its digits are spoken in English, the only language of the recordings)"
        kept = "".join(c for c in str(digits) if c not in " -")
        chunks = [kept[i : i + MAX_DIGITS] for i in range(0, len(kept), MAX_DIGITS)] or [""]
        if len(chunks) > 1:
            note += f"; {len(kept)} digits, said as {len(chunks)} calls of at most {MAX_DIGITS}, 0.3 s apart"
        rows = np.stack([parse_digits(chunk) for chunk in chunks])
        audio, marks = speak(runner, rows, [voice] * len(rows), seed)
        gap = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
        pieces = [piece for clip, row_marks in zip(audio, marks) for piece in (clip[: row_marks.max()], gap)][:-1]
        said = np.concatenate(pieces)
        write_wav(output, said)
        return (f"Wrote {kept} in {speakers[voice]}'s voice ({len(said) / SAMPLE_RATE:.2f} s at {SAMPLE_RATE} Hz, "
                f"seed {seed}) to {output}{note}")

    def evaluate(self, runner, *, seed, num_strings):
        return quality(runner, seed=seed, count=num_strings)
