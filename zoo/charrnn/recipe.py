"""The character LSTM's recipe: tiny Shakespeare as bytes, truncated BPTT, ``step``/``generate``/text, nats per byte.

    python -m zoo train charrnn                       # the committed model
    python -m zoo export charrnn                      # runs/charrnn -> exported/charrnn/
    python -m zoo sample charrnn --prompt "ROMEO:" --max-new-tokens 2000
    python -m zoo evaluate charrnn                    # the whole validation text through `step`, from a zero state
    python -m zoo.charrnn.tflite_generate exported/charrnn/charrnn.tflite --max-new-tokens 5000

Each epoch reads the training text (first 90%) once, as examples of
``window x windows_per_example`` consecutive bytes (shifted by a random offset
and shuffled from the seed and the epoch, so a resumed run sees the same
batches). Adam with a cosine decay to 10% over the run, gradient clipping at
global norm 5 (char-rnn's), dropout between the layers.

Signatures (SavedModel and TFLite, builtin ops only, except ``serving_default``):
- ``step``: ``token int32 [b]`` (0..255), ``state [b, S]`` -> ``logits [b, 256]``, ``state [b, S]``: one byte,
  for an app's streaming loop (``tflite_generate.py``); zeros are the state at the start of a text.
- ``generate``: the GPT's inputs (``tokens``, ``lengths``, ``max_new_tokens``, ``temperature``, ``top_k``,
  ``top_p``, ``noise``); feeds the prompts and samples in the graph, as long as the noise.
- ``serving_default`` (SavedModel only: strings): prompt text in, continuation text out, for TF Serving.
"""

import os

import numpy as np

from zoo.core.data import datasets as data
from zoo.core import export as core_export
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.files import write_text
from zoo.core.training.optimizers import CosineDecayAdam
from zoo.core.runtime.progress import progress_bar
from zoo.core.recipes.recipe import Option, Recipe, TrainingData
from zoo.core.apps.text_sampling import stream_tokens
from zoo.core.recipes.options import check_text
from zoo.core.recipes.registry import register
from zoo.core.recipes.finetuning import FINE_TUNE_FROM, fine_tune_config, start_from
from zoo.core.recipes.text import TEXT_OPTION, sampling_options, training_text
from zoo.core.nn.text_generation import (SAMPLING_DEFAULTS, SAMPLING_RANGES, SERVING_EXAMPLE, VOCAB_SIZE, TextSamples, checked_sampling,
                                      sampling_specs, serving_text_function, serving_text_inputs,
                                      write_continuation)
from zoo.charrnn.model import PRESETS, CharRNN

NAME = "charrnn"
SERVING_MAX_NEW_TOKENS = 2000  # the most bytes one TF Serving request generates
SAMPLE_PROMPTS = ("ROMEO:", "First Citizen:\nWe are", "JULIET:\nO", "月")


def checked_tokens(token=None, tokens=None, lengths=None):
    """The inputs, after in-graph asserts that give TF Serving clients a clear error (TFLite drops them;
    the manifest records the ranges and every runner and the app loop check them)."""
    import tensorflow as tf

    byte_message = "token values must be bytes, 0..255"
    checks = []
    for value in (token, tokens):
        if value is not None:
            checks += [tf.debugging.assert_non_negative(value, message=byte_message),
                       tf.debugging.assert_less(value, VOCAB_SIZE, message=byte_message)]
    if lengths is not None:
        checks += [tf.debugging.assert_positive(lengths, message="lengths must be at least 1 (an empty prompt)"),
                   tf.debugging.assert_less_equal(lengths, tf.shape(tokens)[1],
                                                  message="lengths must not exceed the tokens' time dimension")]
    with tf.control_dependencies(checks):
        return [tf.identity(t) for t in (token, tokens, lengths) if t is not None]


def charrnn_signatures(model):
    import tensorflow as tf

    batch = [None]
    state = (tf.TensorSpec([None, model.state_size], tf.float32),
             f"every layer's h then c, concatenated: [batch, {model.state_size}] = 2 x {model.num_layers} layers x "
             f"{model.units} units; zeros at the start of a text")
    byte_range = (0, VOCAB_SIZE - 1)

    # Named unlike the model's methods: autograph caches converted functions by name.
    def checked_step(token, state):
        return model.step(*checked_tokens(token=token), model.check_state(state))

    def checked_generate(tokens, lengths, max_new_tokens, temperature, top_k, top_p, noise):
        tokens, lengths = checked_tokens(tokens=tokens, lengths=lengths)
        return model.generate(tokens, lengths, *checked_sampling(max_new_tokens, temperature, top_k, top_p), noise)

    return [
        core_export.Signature(
            "serving_default",
            serving_text_function(model.generate, max_prompt_bytes=None, max_new_tokens=SERVING_MAX_NEW_TOKENS),
            serving_text_inputs(None, SERVING_MAX_NEW_TOKENS),
            {"text": "the continuation only (not the prompt), UTF-8; a cut-off character becomes U+FFFD"},
            tflite=False, example=SERVING_EXAMPLE, ranges=SAMPLING_RANGES),
        core_export.Signature("step", checked_step, {
            "token": (tf.TensorSpec(batch, tf.int32), "the current byte, 0..255"),
            "state": state,
        }, {"logits": "logits of the next byte, [batch, 256]", "state": "the state after this byte"},
            ranges={"token": byte_range}),
        core_export.Signature("generate", checked_generate, {
            "tokens": (tf.TensorSpec([None, None], tf.int32),
                       "prompt bytes, right-padded to a common length, [batch, time]; any length"),
            "lengths": (tf.TensorSpec(batch, tf.int32), "each prompt's length in bytes (1..time)"),
            **sampling_specs("bytes to generate per row (at most noise's length)"),
            "noise": (tf.TensorSpec([None, None], tf.float32),
                      "uniform [0, 1) numbers, one per step: the sampling randomness; its length bounds the output"),
        }, {"tokens": "generated bytes [batch, steps], 0 after each row's num_tokens",
            "num_tokens": "bytes generated per row: min(max_new_tokens, steps)"},
            ranges={"tokens": byte_range, "lengths": (1, None), **SAMPLING_RANGES}),
    ]


class RunnerRNN:
    """``step`` of any runner, for :func:`zoo.core.apps.text_sampling.stream_tokens`."""

    def __init__(self, runner):
        self.runner = runner
        self.state_size = runner.signatures["step"]["inputs"]["state"]["shape"][1]

    def zero_state(self):
        return np.zeros((1, self.state_size), np.float32)

    def step(self, token, state):
        out = self.runner("step", token=np.asarray([token], np.int32), state=state)
        return out["logits"][0], out["state"]


def stream_loss(runner, text_bytes, max_bytes=None, progress=True):
    """Mean next-byte cross-entropy (nats per byte) of ``text_bytes`` streamed through ``step`` from a zero state.

    One byte per call at batch 1, as an app streams: each byte is predicted from
    everything before it in the text, so this is the model's own long-context loss.
    """
    text = np.asarray(text_bytes[: None if max_bytes is None else max_bytes + 1], np.int32)
    if len(text) < 2:
        raise BadInputError("need at least 2 bytes of text to score")
    model = RunnerRNN(runner)
    state = model.zero_state()
    total = 0.0
    bar = progress_bar(len(text) - 1, unit_name="byte") if progress else None
    for i in range(len(text) - 1):
        logits, state = model.step(int(text[i]), state)
        logits = logits.astype(np.float64)
        top = logits.max()
        total += top + np.log(np.exp(logits - top).sum()) - logits[text[i + 1]]
        if bar and (i + 1) % 1000 == 0:
            bar.add(1000)
    return {"validation_loss": round(float(total / (len(text) - 1)), 4), "validation_bytes": int(len(text) - 1)}


def generate_text(runner, prompt, *, max_new_tokens=200, temperature=SAMPLING_DEFAULTS["temperature"],
                  top_k=SAMPLING_DEFAULTS["top_k"], top_p=SAMPLING_DEFAULTS["top_p"], seed=0,
                  on_token=None):
    """The continuation (str) of ``prompt`` through any runner's ``step``."""
    check_text(prompt, "the prompt")
    try:
        out = bytes(stream_tokens(RunnerRNN(runner), prompt.encode("utf-8"), max_new_tokens, temperature, top_k,
                                  top_p, seed=seed, on_token=on_token))
    except ValueError as error:
        raise BadInputError(str(error)) from None
    return out.decode("utf-8", errors="replace")


def _samples_text(runner):
    parts = []
    for prompt in SAMPLE_PROMPTS:
        for temperature, label in ((0.0, "greedy"), (0.8, "temperature 0.8, top_p 0.95, seed 0")):
            out = generate_text(runner, prompt, max_new_tokens=300, temperature=temperature, top_p=0.95, seed=0)
            parts.append(f"=== {label} ===\n{prompt}{out}\n")
    return "\n".join(parts)


@register
class CharRNNRecipe(CosineDecayAdam, Recipe):
    name = NAME
    summary = "byte-level multi-layer LSTM on tiny Shakespeare: streams text of any length in a fixed-size state"
    paper = ("Karpathy (2015), The Unreasonable Effectiveness of Recurrent Neural Networks (char-rnn); "
             "Hochreiter & Schmidhuber (1997), Long Short-Term Memory")
    model_class = CharRNN
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 10, "batch_size": 64, "learning_rate": 2e-3}
    sample_suffix = ".txt"
    sample_help = ("Continue a prompt with the exported character LSTM (sha256-checked first), one byte per `step` "
                   "call with the state carried; any length. Print it and write it to a .txt file.")
    evaluate_help = ("Validation loss (nats per byte) of the exported model: tiny Shakespeare's last 10% streamed "
                     "through `step` from a zero state, one byte per call.")
    metrics = ["validation_loss"]
    finetune_data_option = "text"

    options = (
        FINE_TUNE_FROM,
        TEXT_OPTION,
        *sampling_options("the text to continue, any length", max_new_tokens=500),
        Option("max_bytes", int, None, "score only the first N validation bytes (default: all 111,540)",
               commands=("evaluate", "export"), minimum=1),
    )

    # === Training ===
    def create_training_model(self, preset, seed, fine_tune_from):
        return start_from(self, preset, seed, fine_tune_from)

    def training_data(self, model, *, batch_size, seed, limit, text):
        train_bytes, validation_bytes = training_text(text)
        length = model.window * model.windows_per_example
        if len(validation_bytes) < length:
            raise BadInputError(f"the validation part (last 10%) of the text has {len(validation_bytes)} bytes; "
                                f"at least {length} (one example of {model.windows_per_example} windows of "
                                f"{model.window} bytes) are needed. Use a longer text.")

        def dataset_fn(epoch):
            return data.text_dataset(train_bytes, window=length, batch_size=batch_size, seed=seed, epoch=epoch,
                                     limit=limit)

        validation = data.text_dataset(validation_bytes, window=length, batch_size=64, shuffle=False,
                                       drop_remainder=False, limit=None if limit is None else max(limit // 4, 1))
        what = "tiny Shakespeare" if text is None else f"{text}"
        return TrainingData(
            dataset_fn,
            (f"{what}: first 90% ({len(train_bytes):,} bytes) for training, last 10% "
             f"({len(validation_bytes):,} bytes) for validation, as UTF-8 bytes; examples of {model.windows_per_example}"
             f" consecutive {model.window}-byte windows, the state carried across them"
             + ("" if limit is None else f"; at most {limit} examples an epoch")),
            validation=validation,
            config={"train_bytes": int(len(train_bytes)), "limit": limit,
                    **({"text": os.path.abspath(text)} if text else {})})  # export validates on its last 10%

    def training_config(self, model, data_, *, epochs, total_steps, max_steps=None, fine_tune_from):
        # one optimizer update per window
        return {**super().training_config(model, data_, epochs=epochs,
                                          total_steps=total_steps * model.windows_per_example, max_steps=max_steps),
                **fine_tune_config(fine_tune_from, model)}

    def sample_callbacks(self, run_dir, seed):
        return [TextSamples(run_dir, seed)]

    # === Export ===
    def signatures(self, model):
        return charrnn_signatures(model)

    def export_plan(self, model, training, max_bytes):
        """Every runtime streams the validation text (or its first ``max_bytes``) through ``step``: tiny
        Shakespeare's, or the last 10% of the text the run trained on."""
        validation = training_text(training.get("config", {}).get("text"))[1]

        def samples(runner, path):
            write_text(path, f"{NAME}: continuations from charrnn.tflite (LiteRT), one `step` call per byte\n\n"
                             + _samples_text(runner))

        return core_export.ExportPlan(
            name=NAME,
            signatures=self.signatures(model),
            description="Byte-level multi-layer LSTM trained on tiny Shakespeare; continues UTF-8 text, any language, "
                        "any length, in a fixed-size state.",
            paper=self.paper,
            training=training,
            keras_model=self.keras_model(model),
            evaluate=lambda runner: stream_loss(runner, validation, max_bytes=max_bytes),
            samples=samples,
            samples_file="samples.txt",
            primary_metric=self.metrics[0],
            notes={"state_size": model.state_size, "metric_definitions": {
                "validation_loss": "mean next-byte cross-entropy in nats per byte (lower is better) on the last 10% of "
                                   "tiny Shakespeare, streamed through the 'step' signature one byte at a time from a "
                                   "zero state (each byte predicted from all the validation text before it)",
                "validation_bytes": "how many bytes were scored",
            }},
        )

    # === Use ===
    def sample(self, runner, *, output, seed, prompt, max_new_tokens, temperature, top_k, top_p):
        return write_continuation(output, prompt, generate_text(
            runner, prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
            seed=seed))

    def evaluate(self, runner, *, seed, max_bytes):
        return stream_loss(runner, data.tiny_shakespeare("validation"), max_bytes=max_bytes)
