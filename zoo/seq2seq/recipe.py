"""The seq2seq recipe: numbers read aloud and translated (English, Chinese), generated pairs, BLEU and exact match.

    python -m zoo train seq2seq                                  # the committed model
    python -m zoo export seq2seq                                 # runs/seq2seq -> exported/seq2seq/
    python -m zoo sample seq2seq --text "<norm> Call 555-0123 at 3:45"
    python -m zoo evaluate seq2seq                               # the held-out test set, per task and language

Every batch is drawn anew from ``zoo.core.data.spoken_numbers`` (``default_rng([seed, epoch, batch])``, so a
resumed run sees the batches an uninterrupted one would): ``<norm>`` sentences in both languages and
``<en2zh>``/``<zh2en>`` expressions, from the training frames and number ranges; the test set's frames and
ranges are never drawn in training. Adam with a cosine decay to 10% over the run, gradients clipped at global
norm 1.

Signatures (SavedModel and TFLite float32/float16/int8, builtin ops only, unless said):
- ``serving_default``: ``text`` int32 [batch, 64] (tagged UTF-8, zero padded) -> ``output`` int32 [batch, 128]
  (UTF-8, zero padded), greedy decoding in the graph;
- ``encode`` + ``decode_step``: the same, one byte per call, for an app's loop (``tflite_translate.py``);
- ``strings`` (SavedModel only, for TF Serving): ``text`` string [batch] -> ``output`` string [batch].
"""

import time

import numpy as np

from zoo.core import export as core_export
from zoo.core.data import spoken_numbers as numbers
from zoo.core.recipes.options import check_text
from zoo.core.recipes.recipe import EVAL_SEED, Option, Recipe, TrainingData
from zoo.core.recipes.registry import register
from zoo.core.runtime import utf8
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.files import write_text
from zoo.core.training.optimizers import CosineDecayAdam
from zoo.seq2seq.model import PRESETS, Seq2Seq

TAGS = tuple(tag + " " for tag in numbers.TASKS)  # what a source row starts with
SAMPLE_SOURCES = ("<norm> Call 555-0123 at 3:45", "<norm> 电话 138 0013", "<norm> It costs $12.50",
                  "<norm> 他生于1987年", "<en2zh> March 5, 2024", "<zh2en> 十二美元五十美分",
                  "<norm> The 21st runner won", "<en2zh> twelve dollars fifty")
# scored apart: (task, language of the source) -> the metric's suffix
GROUPS = {"norm en": "norm_en", "norm zh": "norm_zh", "en2zh": "en2zh", "zh2en": "zh2en"}
TARGET_LANGUAGE = {"norm_en": "en", "norm_zh": "zh", "en2zh": "zh", "zh2en": "en"}


def group_of(pair_group):
    """"norm en phone" -> "norm_en"; "en2zh date" -> "en2zh"."""
    words = pair_group.split()
    return GROUPS[" ".join(words[:2]) if words[0] == "norm" else words[0]]


def training_batch(seed, epoch, index, batch_size):
    """Batch ``index`` of ``epoch``, from ``default_rng([seed, epoch, index])`` alone (exact resume)."""
    rng = np.random.default_rng([seed, epoch, index])
    drawn = [numbers.draw_pair(rng) for _ in range(batch_size)]
    return (numbers.encode([d[0] for d in drawn], numbers.SOURCE_BYTES),
            trimmed(numbers.encode([d[1] for d in drawn], numbers.TARGET_BYTES)))


def trimmed(targets, multiple=16):
    """The target rows cut after the longest one's end byte (rounded up to ``multiple`` columns, so a run traces a
    handful of shapes): the decoder is causal, so the cut padding never changed the scored positions, and a
    batch of short pairs trains in half the time."""
    lengths = np.argmax(np.concatenate([targets, np.zeros((len(targets), 1), targets.dtype)], axis=1) == 0, axis=1)
    columns = min(targets.shape[1], -(-(int(lengths.max()) + 1) // multiple) * multiple)
    return np.ascontiguousarray(targets[:, :columns])


def pair_dataset(make_batch, batches):
    """A ``tf.data.Dataset`` of ``{"source", "target"}`` batches; ``make_batch(i)`` returns the two arrays."""
    import tensorflow as tf

    def load(index):
        source, target = tf.numpy_function(lambda i: make_batch(int(i)), [index], (tf.int32, tf.int32))
        source.set_shape([None, numbers.SOURCE_BYTES])
        target.set_shape([None, None])  # trimmed per batch (see trimmed)
        return {"source": source, "target": target}

    return tf.data.Dataset.range(batches).map(load).prefetch(2)


# === signatures ===============================================================================

def seq2seq_signatures(model):
    import tensorflow as tf

    text = (tf.TensorSpec([None, numbers.SOURCE_BYTES], tf.int32),
            f"UTF-8 bytes of the tagged source, zero padded to {numbers.SOURCE_BYTES}: '<norm> ', '<en2zh> ' or "
            "'<zh2en> ', then the text (a Chinese character is 3 bytes)")
    output = {"output": f"UTF-8 bytes of the result, zero padded to {numbers.TARGET_BYTES}, int32 [batch, "
                        f"{numbers.TARGET_BYTES}]"}
    checks = {"ranges": {"text": (0, 255)}, "encodings": {"text": utf8.ENCODING}, "prefixes": {"text": TAGS}}
    layers, heads = model.decoder_layers, model.num_heads

    def checked(rows):
        with tf.control_dependencies(utf8.row_checks(rows)):
            rows = tf.identity(rows)
        with tf.control_dependencies(utf8.prefix_checks(rows, TAGS)):
            return tf.identity(rows)

    # The encoder and the decoder step traced once, called by every signature (serving_default's loop, strings',
    # encode, decode_step): traced inside each, the SavedModel's graph held the encoder three times. Named
    # unlike the model's methods: autograph caches converted functions by name.
    shared_encode = tf.function(model.encode)
    shared_step = tf.function(model.decode_step)
    shared_translate = tf.function(lambda rows: model.greedy(shared_encode(rows)["memory"], shared_step))

    def translate_rows(text):
        return shared_translate(checked(text))

    def encode_rows(text):
        return shared_encode(checked(text))

    def checked_decode_step(token, position, cache, memory):
        checks = [tf.debugging.assert_non_negative(token, message="token must be 0..256 (256: the start)"),
                  tf.debugging.assert_less_equal(token, 256, message="token must be 0..256 (256: the start)"),
                  tf.debugging.assert_non_negative(position, message=f"position must be in 0..{model.target_length - 1}"),
                  tf.debugging.assert_less(position, model.target_length,
                                           message=f"position must be in 0..{model.target_length - 1}")]
        with tf.control_dependencies(checks):
            return shared_step(tf.identity(token), tf.identity(position), cache, memory)

    byte_strings = tf.constant([b""] + [bytes([i]) for i in range(1, 256)])

    def translate_strings(text):
        rows = utf8.string_rows(text, numbers.SOURCE_BYTES)
        with tf.control_dependencies(utf8.prefix_checks(rows, TAGS)):
            result = shared_translate(tf.identity(rows))["output"]
        return {"output": tf.strings.reduce_join(tf.gather(byte_strings, result), axis=1)}

    batch = [None]
    return [
        core_export.Signature("serving_default", translate_rows, {"text": text}, output,
                              example={"text": SAMPLE_SOURCES[0]}, **checks),
        core_export.Signature("encode", encode_rows, {"text": text}, {
            "memory": f"the source's cross-attention keys and values, float32 [batch, 2 x {layers} layers x "
                      f"{heads} heads, {model.source_length}, {model.head_dim}]: layer i's keys at channels "
                      "[2iH, (2i+1)H), its values next"}, example={"text": SAMPLE_SOURCES[0]}, **checks),
        core_export.Signature("decode_step", checked_decode_step, {
            "token": (tf.TensorSpec(batch, tf.int32), "the byte at position: 256 (start) at 0, then the byte "
                                                      "decode_step chose for the position before"),
            "position": (tf.TensorSpec(batch, tf.int32), f"the output position, 0..{model.target_length - 1}"),
            "cache": (tf.TensorSpec(model.cache_shape, tf.float32),
                      f"self-attention key/value cache [batch, 2 x {layers} x {heads}, {model.target_length}, "
                      f"{model.head_dim}], zeros at position 0"),
            "memory": (tf.TensorSpec(model.memory_shape, tf.float32), "encode's memory"),
        }, {"logits": "logits of the output byte at position, float32 [batch, 256] (0: the end)",
            "cache": "the cache with this position written"},
            ranges={"token": (0, 256), "position": (0, model.target_length - 1)}),
        core_export.Signature("strings", translate_strings, {
            "text": (tf.TensorSpec([None], tf.string), f"the tagged source as UTF-8 text, at most "
                                                       f"{numbers.SOURCE_BYTES} bytes")},
            {"output": "the result as UTF-8 text"}, tflite=False, example={"text": SAMPLE_SOURCES[1]}),
    ]


# === quality ===================================================================================

def translate_texts(runner, texts, batch_size=256):
    """Strings -> result strings through ``serving_default`` (any runtime)."""
    outputs = []
    for i in range(0, len(texts), batch_size):
        rows = numbers.encode(texts[i : i + batch_size], numbers.SOURCE_BYTES)
        outputs += numbers.decode(runner("serving_default", text=rows)["output"])
    return outputs


def translation_quality(runner, num_pairs, seed=EVAL_SEED):
    """Exact match, BLEU and chrF (sacrebleu), unacceptable errors per task and language on ``num_pairs`` held-out
    test pairs; digit strings read right; seconds per sentence."""
    import sacrebleu

    test = numbers.pairs("test", num_pairs, seed)
    started = time.perf_counter()
    outputs = translate_texts(runner, [p[0] for p in test])
    seconds = time.perf_counter() - started
    metrics, by_kind = {}, {}
    for group in sorted(set(TARGET_LANGUAGE)):
        chosen = [(p, out) for p, out in zip(test, outputs) if group_of(p[2]) == group]
        if not chosen:  # a handful of pairs (a quick check) may miss a group
            continue
        references = [p[1] for p, _ in chosen]
        hypotheses = [out for _, out in chosen]
        tokenize = "zh" if TARGET_LANGUAGE[group] == "zh" else "13a"
        metrics[f"exact_match_{group}"] = round(float(np.mean([h == r for h, r in zip(hypotheses, references)])), 4)
        metrics[f"bleu_{group}"] = round(sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score, 2)
        metrics[f"chrf_{group}"] = round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2)
        metrics[f"unacceptable_errors_{group}"] = round(float(np.mean([p[3] not in out for p, out in chosen])), 4)
        metrics[f"test_pairs_{group}"] = len(chosen)
    for pair, out in zip(test, outputs):
        by_kind.setdefault(pair[2], []).append(out == pair[1])
    digits = [pair[3] in out for pair, out in zip(test, outputs) if pair[2].split()[-1] in numbers.DIGIT_KINDS]
    metrics["exact_match"] = round(float(np.mean([p[1] == out for p, out in zip(test, outputs)])), 4)
    metrics["exact_match_worst"] = min(metrics[f"exact_match_{g}"] for g in TARGET_LANGUAGE
                                       if f"exact_match_{g}" in metrics)
    metrics["digit_strings_right"] = round(float(np.mean(digits)), 4) if digits else None
    metrics["digit_strings"] = len(digits)
    metrics["exact_match_by_kind"] = {kind: round(float(np.mean(v)), 4) for kind, v in sorted(by_kind.items())}
    metrics["seconds_per_sentence"] = round(seconds / len(test), 5)
    metrics["test_pairs"] = len(test)
    return metrics


def examples_text(runner, sources=SAMPLE_SOURCES):
    outputs = translate_texts(runner, list(sources))
    return "".join(f"{source}\n  -> {output}\n" for source, output in zip(sources, outputs))


class TranslationSamples:
    """After each epoch, the sample sources through the model's greedy loop: ``<run_dir>/samples/epoch-NNNN.txt``."""

    def __init__(self, run_dir):
        import os

        self.folder = os.path.join(run_dir, "samples")
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_epoch_end(self, epoch, logs):
        import os

        def runner(signature, text):  # the in-memory model's greedy loop, as a runner's serving_default
            return {"output": self.model.translate(text)["output"].numpy()}

        write_text(os.path.join(self.folder, f"epoch-{epoch + 1:04d}.txt"), examples_text(runner))


@register
class Seq2SeqRecipe(CosineDecayAdam, Recipe):
    name = "seq2seq"
    summary = ("text normalization and number translation, English and Chinese: tagged UTF-8 [batch, 64] -> "
               "UTF-8 [batch, 128], a byte-level Transformer encoder-decoder")
    paper = ("Vaswani et al. (2017), Attention Is All You Need, arXiv:1706.03762; Sproat & Jaitly (2016), RNN "
             "Approaches to Text Normalization: A Challenge, arXiv:1611.00068")
    model_class = Seq2Seq
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 14, "batch_size": 64, "learning_rate": 1e-3}
    sample_suffix = ".txt"
    sample_help = ("Read numbers aloud (<norm>) or translate them (<en2zh>, <zh2en>) with the exported model "
                   "(sha256-checked first); prints the result and writes it to --output.")
    evaluate_help = ("The held-out test set (sentence frames and number ranges never trained on): exact match, "
                     "BLEU and chrF (sacrebleu), unacceptable errors per task and language; digit strings read "
                     "right.")
    metrics = ["exact_match", "exact_match_worst", "digit_strings_right", "bleu_norm_en", "bleu_norm_zh"]

    options = (
        Option("text", str, SAMPLE_SOURCES[0], "the source: a task tag ('<norm>', '<en2zh>' or '<zh2en>'), a space, "
                                               f"the text; at most {numbers.SOURCE_BYTES} bytes of UTF-8",
               commands=("sample",), text=True),
        Option("num_pairs", int, 5600, "held-out test pairs to score", commands=("evaluate",), minimum=1),
        Option("num_eval_pairs", int, 5600, "held-out test pairs scored per runtime and variant",
               commands=("export",), minimum=1),
    )

    # === Training ===
    def training_data(self, model, *, batch_size, seed, limit):
        pairs = numbers.EPOCH_PAIRS if limit is None else limit
        batches = pairs // batch_size  # none: the core says the batch is larger than the data
        validation = numbers.pairs("validation", numbers.VALIDATION_PAIRS if limit is None else max(batch_size, limit // 8),
                                   seed=0)
        rows = (numbers.encode([p[0] for p in validation], numbers.SOURCE_BYTES),
                numbers.encode([p[1] for p in validation], numbers.TARGET_BYTES))
        size = 256

        def dataset_fn(epoch):
            return pair_dataset(lambda i: training_batch(seed, epoch, i, batch_size), batches)

        return TrainingData(
            dataset_fn,
            f"{pairs:,} new pairs an epoch from zoo.core.data.spoken_numbers (num2words, cn2an): <norm> sentences in "
            "English and Chinese, <en2zh>/<zh2en> expressions, from the training frames and number ranges",
            validation=pair_dataset(lambda i: (rows[0][i * size : (i + 1) * size],
                                               trimmed(rows[1][i * size : (i + 1) * size])),
                                    -(-len(validation) // size)),
            config={"pairs_per_epoch": pairs})

    def sample_callbacks(self, run_dir, seed):
        return [TranslationSamples(run_dir)]

    # === Export ===
    def signatures(self, model):
        return seq2seq_signatures(model)

    def export_plan(self, model, training, num_eval_pairs):
        keras_model = self.keras_model(model)

        def samples(runner, path):
            write_text(path, f"{self.name}: the sample sources through seq2seq.tflite (LiteRT)\n\n"
                       + examples_text(runner))

        return core_export.ExportPlan(
            name=self.name, signatures=self.signatures(keras_model),
            description="Reads numbers aloud (text normalization for speech) and translates number expressions "
                        "between English and Chinese: a byte-level Transformer encoder-decoder, greedy decoding.",
            paper=self.paper, training=training, keras_model=keras_model,
            evaluate=lambda runner: translation_quality(runner, num_eval_pairs, self.eval_seed),
            samples=samples, samples_file="samples.txt",
            primary_metric=self.metrics[0], metric_summary=self.metrics,
            notes={"tasks": list(numbers.TASKS), "held_out_ranges": numbers.HELD_OUT_RANGES,
                   "held_out_frames": numbers.HELD_OUT_FRAMES,
                   "held_out_translation_frames": {kind: list(frames) for kind, frames
                                                   in numbers.HELD_OUT_TRANSLATION_FRAMES.items()},
                   "sample_sources": list(SAMPLE_SOURCES), "metric_definitions": METRIC_DEFINITIONS},
        )

    # === Use ===
    def sample(self, runner, *, output, seed, text):
        check_text(text, "--text")
        if not text.startswith(TAGS):
            raise BadInputError(f"--text {text[:20]!r} must start with a task tag and a space: "
                                + ", ".join(repr(t) for t in TAGS) + " (e.g. --text \"<norm> Call 555-0123\")")
        utf8.encode_texts(text, numbers.SOURCE_BYTES)  # one clear error for a text too long
        (result,) = translate_texts(runner, [text])
        write_text(output, f"{text}\n{result}\n")
        return f"{text}\n  -> {result}\n(written to {output})"

    def evaluate(self, runner, *, seed, num_pairs):
        return translation_quality(runner, num_pairs, seed)


METRIC_DEFINITIONS = {
    "exact_match_<group>": "the fraction of held-out test pairs whose greedy output equals the reference byte for "
                           "byte; groups: norm_en, norm_zh (<norm> of English / Chinese sentences), en2zh, zh2en",
    "exact_match": "the same over all test pairs; exact_match_worst: the lowest of the four groups",
    "bleu_<group>": "sacrebleu's corpus BLEU (tokenize 'zh' for Chinese references, '13a' for English)",
    "chrf_<group>": "sacrebleu's corpus chrF",
    "unacceptable_errors_<group>": "the fraction of pairs whose output does not contain the reference's reading of "
                                   "the number (its spoken or translated words, verbatim): a number read as "
                                   "another number, or mangled (Sproat & Jaitly's unacceptable errors, counted "
                                   "strictly: any error inside the number counts)",
    "digit_strings_right": "of the phone numbers and codes (both languages), the fraction whose digit-by-digit "
                           "reading appears in the output exactly",
    "exact_match_by_kind": "exact match per task, language and kind (cardinal, ordinal, year, time, date, money, "
                           "phone, code)",
    "seconds_per_sentence": "wall time of serving_default over the test pairs in batches of 256, per pair",
    "test_set": "zoo.core.data.spoken_numbers.pairs('test', n, seed): held-out frames only (held_out_frames, "
                "held_out_translation_frames: a frame pair per kind that trains with the other kinds), numbers "
                "from held_out_ranges half of the time",
}
