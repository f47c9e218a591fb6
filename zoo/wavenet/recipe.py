"""The WaveNet's recipe: FSDD clips, random crops, ``serving_default``/``condition``/``step``/``wav``, classifier metrics.

    python -m zoo train wavenet                       # the committed model
    python -m zoo export wavenet                      # runs/wavenet -> exported/wavenet/
    python -m zoo sample wavenet --digit 7 --speaker jackson
    python -m zoo evaluate wavenet                    # the spoken-digit classifier's view of generated clips
    python -m zoo.wavenet.tflite_sample exported/wavenet/wavenet.tflite --digit 7 --speaker jackson

Each epoch takes one random crop of ``crop`` samples (starting on a frame boundary,
within the spoken part) from every training clip, in an order drawn from the seed
and the epoch, so a resumed run sees the same batches. The mel predictor sees every
clip's whole second. Adam with a cosine decay to 10% over the run, gradients clipped
at global norm 1.
"""

import os

import numpy as np

from zoo.core.data import datasets as data
from zoo.core import export as core_export
from zoo.core.data.audio import CLIP_SAMPLES, HOP_LENGTH, MEL_BINS, MEL_FRAMES, SAMPLE_RATE, plot_spectrograms, write_wav
from zoo.core.runtime.errors import BadInputError
from zoo.core.training.optimizers import CosineDecayAdam
from zoo.core.runtime.progress import progress_bar
from zoo.core.recipes.recipe import EVAL_SEED, Option, Recipe, TrainingData
from zoo.core.recipes.registry import register
from zoo.core.recipes.speech import (SPEAKERS, checked_uniform_noise, seeded_noise, speaker_checks, speaker_index,
                                     vocoder_step_signature, wav_files)
from zoo.wavenet.model import PRESETS, WaveNet

NAME = "wavenet"
EVAL_BATCH = 60


def wavenet_signatures(model):
    import tensorflow as tf

    batch = [None]
    speakers = ", ".join(f"{i} {n}" for i, n in enumerate(SPEAKERS[: model.num_speakers]))
    who = {
        "digit": (tf.TensorSpec(batch, tf.int32), "the digit to say, 0-9"),
        "speaker": (tf.TensorSpec(batch, tf.int32), f"whose voice: an index into the manifest's speakers ({speakers})"),
    }
    noise = {"noise": (tf.TensorSpec([None, CLIP_SAMPLES], tf.float32),
                       "uniform [0, 1) numbers, one per output sample: the sampling randomness")}
    ranges = {"digit": (0, 9), "speaker": (0, model.num_speakers - 1)}
    noise_range = {"noise": (0.0, 1.0)}

    def checked_who(digit, speaker, batch_of=None):
        """In-graph checks, so TF Serving clients get a clear error (TFLite drops them; every runner checks the
        manifest's ranges instead)."""
        checks = [tf.debugging.assert_non_negative(digit, message="digit must be 0-9"),
                  tf.debugging.assert_less_equal(digit, 9, message="digit must be 0-9"),
                  *speaker_checks(speaker, model.num_speakers, digit, "digit")]
        if batch_of is not None:
            checks.append(tf.debugging.assert_equal(tf.shape(digit)[0], tf.shape(batch_of)[0],
                                                    message="digit and noise must have the same batch size"))
        with tf.control_dependencies(checks):
            return tf.identity(digit), tf.identity(speaker)

    # Named unlike the model's methods: autograph caches converted functions by name.
    def speak(digit, speaker, noise):
        return {"audio": model.generate(*checked_who(digit, speaker, noise), checked_uniform_noise(noise))}

    def condition_frames(digit, speaker):
        return model.condition(*checked_who(digit, speaker))

    def speak_wav(digit, speaker, seed):
        digit, speaker = checked_who(digit, speaker, seed)
        return {"wav": wav_files(model.generate(digit, speaker, seeded_noise(seed, CLIP_SAMPLES)))}

    return [
        core_export.Signature("serving_default", speak, {**who, **noise}, {
            "audio": f"one second of speech, float32 [batch, {CLIP_SAMPLES}] in [-1, 1] at {SAMPLE_RATE} Hz"},
            ranges={**ranges, **noise_range}),
        core_export.Signature("condition", condition_frames, who, {
            "mel": f"the predicted log-mel spectrogram [batch, {MEL_FRAMES}, {MEL_BINS}] (zoo.core.data.audio.log_mel's "
                   "features: 100 frames a second, 40 bands)",
            "conditioning": f"[batch, {MEL_FRAMES}, {model.conditioning_size}]: row t // {HOP_LENGTH} is the "
                            "`conditioning` input of step for sample t"}, ranges=ranges),
        vocoder_step_signature(model, model.step, "condition"),
        core_export.Signature("wav", speak_wav, {
            **who, "seed": (tf.TensorSpec(batch, tf.int32), "any integer: the same seed gives the same clip")}, {
            "wav": f"a 16-bit mono WAV file at {SAMPLE_RATE} Hz per row (bytes; base64 in TF Serving's JSON)"},
            tflite=False, ranges=ranges, example={"digit": 7, "speaker": 1, "seed": 0}),
    ]


def check_digit(digit):
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= digit <= 9:
        raise BadInputError(f"digit must be an integer 0-9, got {digit!r}")
    return int(digit)


def speak(runner, digits, speakers, seed, batch_size=EVAL_BATCH, progress=False):
    """Clips ``[n, 8000]`` of ``digits`` in ``speakers``' voices through any runner's ``serving_default``.

    The noise comes from ``numpy.random.default_rng(seed)``, one row per clip in order, so a clip
    depends only on its position in the request and the seed, not on ``batch_size``."""
    digits, speakers = np.asarray(digits, np.int32), np.asarray(speakers, np.int32)
    noise = np.random.default_rng(seed).random((len(digits), CLIP_SAMPLES), dtype=np.float32)
    bar = progress_bar(len(digits), unit_name="clip") if progress else None
    clips = []
    for start in range(0, len(digits), batch_size):
        part = slice(start, start + batch_size)
        clips.append(runner("serving_default", digit=digits[part], speaker=speakers[part], noise=noise[part])["audio"])
        if bar:
            bar.add(len(clips[-1]))
    return np.concatenate(clips)


def quality(runner, seed=EVAL_SEED, per_pair=5, progress=True):
    """The spoken-digit classifier's view of ``per_pair`` clips of every digit in every voice (300 by default)."""
    from zoo.core.metrics.spoken_digits import SpokenDigitQuality, evaluation_requests

    speakers_known = len(runner.manifest.get("speakers", SPEAKERS))
    digits, speakers = evaluation_requests(per_pair, speakers_known)
    clips = speak(runner, digits, speakers, seed, progress=progress)
    return SpokenDigitQuality().evaluate(clips, digits, speakers)


def write_digit_samples(runner, folder, seed=0):
    """A WAV per digit (digit d in speaker d mod 6's voice) and a picture of their spectrograms, in ``folder``."""
    speakers = runner.manifest.get("speakers", SPEAKERS)
    digits = np.arange(10, dtype=np.int32)
    voices = (digits % len(speakers)).astype(np.int32)
    clips = speak(runner, digits, voices, seed)
    titles = []
    for digit, voice, clip in zip(digits, voices, clips):
        write_wav(os.path.join(folder, f"{digit}_{speakers[voice]}.wav"), clip)
        titles.append(f"{digit} ({speakers[voice]})")
    return plot_spectrograms(clips, titles, os.path.join(folder, "spectrograms.png"))


def crop_starts(lengths, crop, rng=None):
    """A crop start per clip, a multiple of 80, inside the spoken part (at most half the crop past its end)."""
    last = np.clip(np.minimum(lengths, CLIP_SAMPLES) - crop // 2, 0, CLIP_SAMPLES - crop) // HOP_LENGTH
    if rng is None:  # validation: the middle of the allowed range
        return (last // 2) * HOP_LENGTH
    return rng.integers(0, last + 1) * HOP_LENGTH


def crop_batches(clips, features, crop, batch_size, *, rng=None, drop_remainder=True):
    """A ``tf.data.Dataset`` of training dicts: digit, speaker, mel (whole clip), crop_mel and audio (the crop)."""
    import tensorflow as tf

    starts = crop_starts(clips.lengths, crop, rng)
    order = rng.permutation(len(clips)) if rng is not None else np.arange(len(clips))
    frames = crop // HOP_LENGTH
    frame_index = (starts // HOP_LENGTH)[:, None] + np.arange(frames)[None, :]
    sample_index = starts[:, None] + np.arange(crop)[None, :]
    columns = {
        "digit": clips.digits, "speaker": clips.speakers, "mel": features,
        "crop_mel": np.take_along_axis(features, frame_index[..., None], axis=1),
        "audio": np.take_along_axis(clips.audio, sample_index, axis=1),
    }
    dataset = tf.data.Dataset.from_tensor_slices({k: v[order] for k, v in columns.items()})
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


@register
class WaveNetRecipe(CosineDecayAdam, Recipe):
    name = NAME
    summary = "WaveNet on spoken digits: digit + speaker -> one second of 8 kHz speech (mel predictor + vocoder)"
    paper = ("van den Oord et al. (2016), WaveNet: A Generative Model for Raw Audio, arXiv:1609.03499; Paine et al. "
             "(2016), Fast Wavenet Generation Algorithm, arXiv:1611.09482; Shen et al. (2018), Tacotron 2, "
             "arXiv:1712.05884")
    model_class = WaveNet
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 20, "batch_size": 16, "learning_rate": 2e-3}
    # XLA fuses the dilated stack's many small convolutions and gates: 1.96x the examples per second of the plain
    # graph on the 2-core CPU (benchmarks/training_speed.py); every other model measured slower with it
    jit_compile = True
    sample_suffix = ".wav"

    # === Training ===
    def training_data(self, model, *, batch_size, seed, limit):
        from zoo.core.data.audio import log_mel

        train, test = data.spoken_digits("train", limit=limit), data.spoken_digits("test", limit=limit)
        train_features, test_features = (np.asarray(log_mel(c.audio)) for c in (train, test))

        def dataset_fn(epoch):
            return crop_batches(train, train_features, model.crop, batch_size, rng=np.random.default_rng([seed, epoch]))

        validation = crop_batches(test, test_features, model.crop, 50, drop_remainder=False)
        return TrainingData(
            dataset_fn,
            (f"Free Spoken Digit Dataset (8 kHz, 6 speakers): takes 5-49 for training ({len(train):,} clips), takes "
             f"0-4 for validation ({len(test):,}); one second per clip, zero-padded ({train.num_trimmed + test.num_trimmed}"
             f" of {len(train) + len(test):,} recordings are longer and trimmed); one random {model.crop}-sample crop "
             "per clip and epoch for the WaveNet, the whole second for the mel predictor"
             + ("" if limit is None else f"; at most {limit} clips per split")),
            validation=validation, config={"train_clips": len(train), "limit": limit})

    # === Export ===
    def signatures(self, model):
        return wavenet_signatures(model)

    def export_plan(self, model, training, per_pair, temperature):
        """Every runtime speaks ``per_pair`` clips of every digit in every voice for the classifier.

        ``temperature`` (default: the model's own, 1) is baked into the exported sampling."""
        if temperature is not None:
            if not 0 < temperature <= 2:
                raise BadInputError(f"--temperature must be in (0, 2], got {temperature}")
            model.temperature = float(temperature)
        from zoo.core.metrics.spoken_digits import SpokenDigitQuality, evaluation_requests, griffin_lim_baseline

        def reference_metrics():
            quality_ = SpokenDigitQuality()
            digits, speakers = evaluation_requests(per_pair, model.num_speakers)
            return {"real_train_clips": quality_.real_data_floor(),
                    "griffin_lim_digit_means": quality_.evaluate(griffin_lim_baseline(digits, speakers), digits,
                                                                 speakers),
                    "classifier": {"model": quality_.manifest["model"], "sha256": quality_.manifest["files"][0]["sha256"],
                                   **{k: quality_.manifest[k] for k in ("test_digit_accuracy", "test_speaker_accuracy")}}}

        return core_export.ExportPlan(
            name=NAME,
            signatures=self.signatures(model),
            description="Says a digit in one of six voices: a mel predictor and a WaveNet vocoder with the "
                        "fast-WaveNet cache, one second of 8 kHz speech per call.",
            paper=self.paper,
            training=training,
            keras_model=self.keras_model(model),
            evaluate=lambda runner: quality(runner, per_pair=per_pair),
            samples=lambda runner, path: write_digit_samples(runner, os.path.dirname(path)),
            samples_file="samples/spectrograms.png",
            primary_metric=self.metrics[0],
            metric_summary=self.metrics,
            notes={"speakers": list(SPEAKERS[: model.num_speakers]), "sample_rate": SAMPLE_RATE,
                   "sampling_temperature": model.temperature,
                   "state_size": model.state_size, "conditioning_size": model.conditioning_size,
                   "receptive_field": model.receptive_field, "hop_length": HOP_LENGTH,
                   "step_multiply_adds": model.step_multiply_adds,
                   "reference_metrics": reference_metrics(),
                   "metric_definitions": {
                       "digit_accuracy": "share of generated clips in which the zoo's spoken-digit classifier "
                                         "(exported/fsdd_classifier) hears the asked digit",
                       "speaker_accuracy": "share it attributes to the asked speaker",
                       "frechet_distance": "Fréchet distance between the classifier's 128-d features of the "
                                           "generated clips and of the 300 real test clips (lower is better; "
                                           "reference_metrics has the real-data floor and the Griffin-Lim baseline)",
                       "num_samples": f"clips generated: {per_pair} per digit and speaker, noise from seed "
                                      f"{EVAL_SEED}",
                   }},
        )

    # === Use ===
    metrics = ["digit_accuracy", "speaker_accuracy", "frechet_distance"]
    sample_help = ("Say a digit in a speaker's voice with the exported WaveNet (sha256-checked first) and write a "
                   "16-bit WAV at 8 kHz.")
    evaluate_help = ("Generate 5 clips of every digit in every voice (300) and report the spoken-digit classifier's "
                     "digit and speaker accuracy and Fréchet distance to the real test clips.")

    options = (
        Option("digit", int, 7, "the digit to say", commands=("sample",), minimum=0, maximum=9),
        Option("speaker", str, "jackson", f"whose voice: {', '.join(SPEAKERS)} or an index", commands=("sample",)),
        Option("per_pair", int, 5, "clips per digit and speaker (5: 300 clips, as many as the real test set)",
               commands=("evaluate", "export"), minimum=1),
        Option("temperature", float, None, "the sampling temperature baked into the export (default: the model's, "
                                           "1.0)", commands=("export",), above=0.0, maximum=2.0),
    )

    def sample(self, runner, *, output, seed, digit, speaker):
        speakers = runner.manifest.get("speakers", SPEAKERS)
        digit, voice = check_digit(digit), speaker_index(speaker, speakers)
        clip = speak(runner, [digit], [voice], seed)[0]
        write_wav(output, clip)
        return f"Wrote '{digit}' in {speakers[voice]}'s voice (1 s at {SAMPLE_RATE} Hz, seed {seed}) to {output}"

    def evaluate(self, runner, *, seed, per_pair):
        return quality(runner, seed=seed, per_pair=per_pair)

