"""Export, sample and evaluate the byte-level GPT.

    python -m zoo export gpt                                   # runs/gpt -> exported/gpt/
    python -m zoo sample gpt --prompt "ROMEO:" --max-new-tokens 300 --temperature 0.8 --top-p 0.95
    python -m zoo evaluate gpt --variant int8                  # validation loss, nats per byte

Signatures (``zoo/gpt/README.md`` has the full table):

- SavedModel only (strings): ``serving_default``, prompt text in, continuation text out.
- SavedModel and TFLite: ``logits`` (score text), ``prefill`` + ``decode_step``
  (the key/value cache as an explicit input and output, for an app's own loop)
  and ``generate`` (the whole loop in the graph, noise as an input).
"""

import json
import os

import numpy as np

from zoo.core import export as core_export
from zoo.core.artifacts import KerasFileModel, assertion_message, load_exported
from zoo.core.errors import BadInputError
from zoo.core.files import write_text
from zoo.core.paths import EXPORTED_DIR
from zoo.gpt import tflite_generate
from zoo.gpt.model import VOCAB_SIZE

NAME = "gpt"
EVAL_BATCH = 64
SAMPLE_PROMPTS = ("ROMEO:", "First Citizen:\nWe are", "JULIET:\nO", "月")


def serving_text_function(model):
    """``serving_default``: prompts (UTF-8 strings) -> continuations, with input checks in the graph.

    Noise comes from ``tf.random.stateless_uniform`` seeded per row by ``seed``,
    so a TF Serving request is reproducible. Invalid UTF-8 at the end of a
    continuation (a character cut by ``max_new_tokens`` or the context) becomes U+FFFD.
    """
    import tensorflow as tf

    context = model.context_length
    byte_strings = tf.constant([bytes([i]) for i in range(VOCAB_SIZE)])

    def serve(prompt, max_new_tokens, temperature, top_k, top_p, seed):
        lengths = tf.strings.length(prompt)  # in bytes
        checks = [
            tf.debugging.assert_positive(lengths, message="prompt is empty: give at least one character"),
            tf.debugging.assert_less_equal(
                lengths, context,
                message=f"prompt is longer than the model's context of {context} bytes (UTF-8); shorten it"),
            tf.debugging.assert_non_negative(max_new_tokens, message="max_new_tokens must be >= 0"),
            tf.debugging.assert_greater_equal(temperature, 0.0, message="temperature must be >= 0 (0 = greedy)"),
            tf.debugging.assert_non_negative(top_k, message="top_k must be >= 0 (0 = no limit)"),
            tf.debugging.assert_greater(top_p, 0.0, message="top_p must be in (0, 1]"),
            tf.debugging.assert_less_equal(top_p, 1.0, message="top_p must be in (0, 1]"),
        ]
        with tf.control_dependencies(checks):
            tokens = tf.cast(tf.io.decode_raw(prompt, tf.uint8, fixed_length=context), tf.int32)
        noise = tf.map_fn(lambda s: tf.random.stateless_uniform([context], seed=tf.stack([s, 0])),
                          tf.cast(seed, tf.int64), fn_output_signature=tf.float32)
        out = model.generate(tokens, lengths, max_new_tokens, temperature, top_k, top_p, noise)
        pieces = tf.RaggedTensor.from_tensor(tf.gather(byte_strings, out["tokens"]), lengths=out["num_tokens"])
        text = tf.strings.unicode_transcode(tf.strings.reduce_join(pieces, axis=1), "UTF-8", "UTF-8",
                                            errors="replace")
        return {"text": text}

    return serve


def signatures(model):
    import tensorflow as tf

    batch = [None]
    context, cache_shape = model.context_length, model.cache_shape
    tokens = (tf.TensorSpec([None, None], tf.int32), "bytes of UTF-8 text, int32 in 0..255, [batch, time]")
    prompts = (tf.TensorSpec([None, None], tf.int32),
               f"prompt bytes, right-padded to a common length (1..{context}), [batch, time]")
    lengths = (tf.TensorSpec(batch, tf.int32), "each prompt's length in bytes (1..time)")
    cache = (tf.TensorSpec(cache_shape, tf.float32),
             f"key/value cache [batch, 2 x {model.num_layers} layers x {model.num_heads} heads, {context}, "
             f"{model.head_dim}]: layer i's keys at channels [2iH, (2i+1)H), its values next")
    sampling = {
        "max_new_tokens": (tf.TensorSpec(batch, tf.int32), "bytes to generate per row (stops at the context)"),
        "temperature": (tf.TensorSpec(batch, tf.float32), "0 = greedy; > 0 divides the logits"),
        "top_k": (tf.TensorSpec(batch, tf.int32), "sample among the k most likely bytes; 0 = all"),
        "top_p": (tf.TensorSpec(batch, tf.float32), "nucleus: smallest set of bytes with this mass, in (0, 1]"),
    }
    return [
        core_export.Signature("serving_default", serving_text_function(model), {
            "prompt": (tf.TensorSpec(batch, tf.string), f"UTF-8 text to continue, 1..{context} bytes"),
            **sampling,
            "seed": (tf.TensorSpec(batch, tf.int32), "seed of this row's sampling noise"),
        }, {"text": "the continuation only (not the prompt), UTF-8; a cut-off character becomes U+FFFD"},
            tflite=False, example={"prompt": "ROMEO:", "max_new_tokens": 100, "temperature": 0.8, "top_k": 0,
                                   "top_p": 0.95, "seed": 0}),
        core_export.Signature("logits", model.logits, {"tokens": tokens}, {
            "logits": "next-byte logits at every position, float32 [batch, time, 256]"}),
        core_export.Signature("prefill", model.prefill, {"tokens": prompts, "lengths": lengths}, {
            "logits": "logits of the byte after each prompt, [batch, 256]",
            "cache": "the filled key/value cache, for decode_step"}),
        core_export.Signature("decode_step", model.decode_step, {
            "token": (tf.TensorSpec(batch, tf.int32), "the byte at position"),
            "position": (tf.TensorSpec(batch, tf.int32), f"its position, 0..{context - 1}"),
            "cache": cache,
        }, {"logits": "logits of the byte at position + 1, [batch, 256]", "cache": "the updated cache"}),
        core_export.Signature("generate", model.generate, {
            "tokens": prompts, "lengths": lengths, **sampling,
            "noise": (tf.TensorSpec([None, context], tf.float32),
                      "uniform [0, 1) numbers, one per step: the sampling randomness"),
        }, {"tokens": f"generated bytes [batch, {context}], 0 after each row's num_tokens",
            "num_tokens": "bytes generated per row: min(max_new_tokens, context - length)"}),
    ]


def _run_signature(model, signature, inputs):
    if signature == "serving_default":
        import tensorflow as tf

        if not hasattr(model, "_zoo_serving_function"):  # traced once, as the SavedModel's is
            model._zoo_serving_function = tf.function(serving_text_function(model))
        outputs = model._zoo_serving_function(**inputs)
    else:
        outputs = getattr(model, signature)(*inputs.values())
    return {name: np.asarray(value) for name, value in outputs.items()}


class KerasGPT(KerasFileModel):
    """Runs the exported signatures from ``gpt.keras``."""

    def run(self, signature, inputs):
        import tensorflow as tf

        try:
            return _run_signature(self.model, signature, inputs)
        except tf.errors.InvalidArgumentError as error:
            raise BadInputError(f"signature {signature!r} refused its input: {assertion_message(error)}") from None


class InMemoryGPT:
    """The runners' interface, ``runner(signature, **inputs)``, on a GPT in memory."""

    def __init__(self, model):
        self.model = model

    def __call__(self, signature="serving_default", **inputs):
        return _run_signature(self.model, signature, inputs)


class RunnerGPT:
    """``prefill``/``decode_step`` of any runner, for :func:`tflite_generate.generate_bytes`."""

    def __init__(self, runner, context_length):
        self.runner, self.context_length = runner, context_length

    def prefill(self, tokens):
        out = self.runner("prefill", tokens=np.asarray([tokens], np.int32),
                          lengths=np.asarray([len(tokens)], np.int32))
        return out["logits"][0], out["cache"]

    def decode_step(self, token, position, cache):
        out = self.runner("decode_step", token=np.asarray([token], np.int32),
                          position=np.asarray([position], np.int32), cache=cache)
        return out["logits"][0], out["cache"]


def context_length_of(runner):
    if isinstance(runner, InMemoryGPT):
        return runner.model.context_length
    return runner.signatures["decode_step"]["inputs"]["cache"]["shape"][2]


def validation_loss(runner, data, context_length, max_windows=None, batch_size=EVAL_BATCH):
    """Mean next-byte cross-entropy (nats per byte) over non-overlapping ``context_length`` windows.

    The windows are those training validates on (``text_dataset`` without shuffle),
    so the number compares with the run's ``val_loss``.
    """
    from zoo.core.data import window_starts

    starts = window_starts(len(data), context_length, shuffle=False)[:max_windows]
    windows = data[starts[:, None] + np.arange(context_length + 1)[None, :]].astype(np.int32)
    total = 0.0
    for i in range(0, len(windows), batch_size):
        chunk = windows[i : i + batch_size]
        logits = runner("logits", tokens=chunk[:, :-1])["logits"].astype(np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        total += -np.take_along_axis(log_probs, chunk[:, 1:, None], axis=-1).sum()
    return {"validation_loss": round(float(total / windows[:, 1:].size), 4),
            "validation_bytes": int(windows[:, 1:].size)}


def _samples_text(runner, context_length):
    model = RunnerGPT(runner, context_length)
    parts = []
    for i, prompt in enumerate(SAMPLE_PROMPTS):
        for temperature, label in ((0.0, "greedy"), (0.8, "temperature 0.8, top_p 0.95, seed 0")):
            out = tflite_generate.generate_bytes(model, prompt.encode("utf-8"), 300, temperature, 0, 0.95, seed=0)
            parts.append(f"=== {label} ===\n{prompt}{out.decode('utf-8', errors='replace')}\n")
    return "\n".join(parts)


def export(*, run_dir=None, output_dir=EXPORTED_DIR, version=1, num_eval_samples=None, max_windows=None):
    """Export the newest checkpoint of a GPT run; measure the validation loss of every runtime.

    ``num_eval_samples`` is the CLI's generic option; for the GPT, ``max_windows``
    (validation windows scored per runtime, default all) plays its part.
    """
    from zoo.gpt.train import load_trained, training_text

    run_dir = run_dir or os.path.join("runs", NAME)
    model, run, state = load_trained(run_dir)
    validation = training_text(run["config"].get("text"))[1]
    context = model.context_length

    def evaluate_fn(runner):
        return validation_loss(runner, validation, context, max_windows=max_windows)

    def samples_fn(runner, path):
        write_text(path, f"{NAME}: continuations from gpt.tflite (LiteRT) through prefill/decode_step, "
                         f"sliding past the {context}-byte context\n\n" + _samples_text(runner, context))

    return core_export.export_model(
        NAME,
        signatures=signatures(model),
        output_dir=output_dir,
        version=version,
        description="Byte-level GPT trained on tiny Shakespeare; continues UTF-8 text, any language.",
        paper=_paper(),
        training=core_export.training_record(run, state),
        keras_model=core_export.inference_copy(model),
        keras_loader="zoo.gpt.export:KerasGPT",
        evaluate_fn=evaluate_fn,
        samples_fn=samples_fn,
        samples_file="samples.txt",
        primary_metric="validation_loss",
        notes={"metric_definitions": {
            "validation_loss": "mean next-byte cross-entropy in nats per byte (lower is better) on the last 10% "
                               f"of the text, as non-overlapping {context}-byte windows, each byte predicted "
                               "from the bytes before it in its window; through the 'logits' signature",
            "validation_bytes": "how many bytes were scored",
        }},
    )


def _paper():
    from zoo.core.registry import get_model

    return get_model(NAME).paper


def generate_text(runner, prompt, *, max_new_tokens=200, temperature=0.8, top_k=0, top_p=0.95, seed=0,
                  slide=True):
    """The continuation (str) of ``prompt`` through any runner's ``prefill``/``decode_step``.

    Raises :class:`BadInputError` for an empty or too-long prompt and invalid sampling options.
    """
    if not isinstance(prompt, str):
        raise BadInputError(f"the prompt must be text (str), got {type(prompt).__name__}")
    try:
        out = tflite_generate.generate_bytes(RunnerGPT(runner, context_length_of(runner)), prompt.encode("utf-8"),
                                             max_new_tokens, temperature, top_k, top_p, seed=seed, slide=slide)
    except ValueError as error:
        raise BadInputError(str(error)) from None
    return out.decode("utf-8", errors="replace")


def sample(*, prompt="ROMEO:", max_new_tokens=200, temperature=0.8, top_k=0, top_p=0.95, seed=0, output=None,
           runtime="tflite", variant="float32", exported_dir=EXPORTED_DIR, num=None, noise=None):
    """Continue ``prompt`` with the exported GPT; print it and write it to ``output`` (default samples/gpt.txt)."""
    if noise is not None:
        raise BadInputError("--noise is for image models; the GPT takes --seed")
    runner = load_exported(NAME, runtime=runtime, variant=variant, exported_dir=exported_dir)
    text = prompt + generate_text(runner, prompt, max_new_tokens=max_new_tokens, temperature=temperature,
                                  top_k=top_k, top_p=top_p, seed=seed)
    print(text)
    output = output or os.path.join("samples", f"{NAME}.txt")
    write_text(output, text + "\n")
    return output


def evaluate(*, runtime="tflite", variant="float32", max_windows=None, exported_dir=EXPORTED_DIR, num_samples=None,
             seed=None):
    """Validation loss (nats per byte) of the exported GPT on tiny Shakespeare's last 10%."""
    from zoo.core.data import tiny_shakespeare

    runner = load_exported(NAME, runtime=runtime, variant=variant, exported_dir=exported_dir)
    metrics = validation_loss(runner, tiny_shakespeare("validation"), context_length_of(runner),
                              max_windows=max_windows)
    print(json.dumps({"model": NAME, "runtime": runtime, "variant": variant, **metrics}, indent=2))
    return metrics
