"""What the byte-level text generators share in the graph: sampling, its input checks, TF Serving's text signature.

A text model (the GPT, the character LSTM) exports ``generate(tokens, lengths,
max_new_tokens, temperature, top_k, top_p, noise)`` with the names and meanings
of :func:`sampling_specs`; :func:`serving_text_function` wraps it into TF Serving's
``serving_default``: prompt strings in, continuation strings out.
"""

import os

import numpy as np

VOCAB_SIZE = 256  # byte values
# How the text models sample unless told otherwise: the CLI, TF Serving's example, the samples drawn in training
# (the NumPy apps in zoo/core/apps keep a copy, since they import nothing; a test compares them)
SAMPLING_DEFAULTS = {"temperature": 0.8, "top_k": 0, "top_p": 0.95}


def sample_token(logits, temperature, top_k, top_p, uniform):
    """One token per row from ``logits [batch, vocabulary]``, by inverse-CDF sampling with ``uniform [batch]``.

    The tokens (bytes for the zoo's own models) are sorted by probability (``top_k``
    with k = the vocabulary), cut to the
    ``top_k`` most likely and to the smallest set whose probability reaches
    ``top_p``; the chosen one is the first whose cumulative kept probability
    exceeds ``uniform`` times their total. Temperature <= 0 is greedy (argmax). One
    uniform number per byte and builtin TFLite ops only;
    :func:`zoo.core.apps.text_sampling.sample_token` does the same in NumPy.
    """
    import tensorflow as tf

    vocabulary = int(logits.shape[-1])
    greedy = tf.cast(tf.argmax(logits, axis=-1), tf.int32)
    scaled = logits / tf.expand_dims(tf.maximum(temperature, 1e-6), 1)
    sorted_logits, order = tf.math.top_k(scaled, k=vocabulary)
    probs = tf.nn.softmax(sorted_logits, axis=-1)
    rank = tf.expand_dims(tf.range(vocabulary), 0)
    top_k, top_p = tf.expand_dims(top_k, 1), tf.expand_dims(top_p, 1)
    keep_k = tf.logical_or(top_k <= 0, rank < top_k)
    keep_p = (tf.cumsum(probs, axis=-1) - probs) < top_p  # the byte that crosses top_p is kept
    # the most likely byte always stays, so out-of-range top_k/top_p (which the hosts
    # reject with an error) can never pick from an empty set in the graph
    keep = tf.logical_or(tf.logical_and(keep_k, keep_p), rank == 0)
    kept = probs * tf.cast(keep, tf.float32)
    cumulative = tf.cumsum(kept, axis=-1)
    threshold = tf.expand_dims(uniform, 1) * cumulative[:, -1:]
    index = tf.minimum(tf.reduce_sum(tf.cast(cumulative <= threshold, tf.int32), axis=-1), vocabulary - 1)
    sampled = tf.reduce_sum(order * tf.one_hot(index, vocabulary, dtype=tf.int32), axis=-1)
    return tf.where(temperature > 0, sampled, greedy)


# The allowed values of the sampling inputs, recorded in the manifest and checked by every runner: what
# checked_sampling asserts in the graph (top_p's open lower bound as its smallest useful value).
SAMPLING_RANGES = {"max_new_tokens": (0, None), "temperature": (0.0, None), "top_k": (0, None), "top_p": (1e-6, 1.0)}


def sampling_specs(max_new_tokens_meaning="bytes to generate per row", unit="byte"):
    """The ``generate`` signature's sampling inputs: name -> (spec, meaning); ``unit``: "byte" or "token"."""
    import tensorflow as tf

    batch = [None]
    return {
        "max_new_tokens": (tf.TensorSpec(batch, tf.int32), max_new_tokens_meaning),
        "temperature": (tf.TensorSpec(batch, tf.float32), "0 = greedy; > 0 divides the logits"),
        "top_k": (tf.TensorSpec(batch, tf.int32), f"sample among the k most likely {unit}s; 0 = all"),
        "top_p": (tf.TensorSpec(batch, tf.float32), f"nucleus: smallest set of {unit}s with this mass, in (0, 1]"),
    }


def checked_sampling(max_new_tokens, temperature, top_k, top_p):
    """The sampling options, after in-graph asserts that give TF Serving clients a clear error.

    The TFLite converter drops asserts; the zoo's runners and app loops check the same limits on the host.
    """
    import tensorflow as tf

    checks = [
        tf.debugging.assert_non_negative(max_new_tokens, message="max_new_tokens must be >= 0"),
        tf.debugging.assert_greater_equal(temperature, 0.0, message="temperature must be >= 0 (0 = greedy)"),
        tf.debugging.assert_non_negative(top_k, message="top_k must be >= 0 (0 = no limit)"),
        tf.debugging.assert_greater(top_p, 0.0, message="top_p must be in (0, 1]"),
        tf.debugging.assert_less_equal(top_p, 1.0, message="top_p must be in (0, 1]"),
    ]
    with tf.control_dependencies(checks):
        return [tf.identity(t) for t in (max_new_tokens, temperature, top_k, top_p)]


def serving_text_function(generate, *, max_prompt_bytes, max_new_tokens):
    """``serving_default``: prompts (UTF-8 strings) -> continuations, with input checks in the graph.

    Args:
        generate: the model's ``generate(tokens, lengths, max_new_tokens, temperature, top_k, top_p, noise)``.
        max_prompt_bytes: the longest prompt (the GPT's context), or None for any length.
        max_new_tokens: the most bytes one request generates (the noise drawn per row).

    Noise comes from ``tf.random.stateless_uniform`` seeded per row by ``seed``,
    so a TF Serving request is reproducible. Invalid UTF-8 at the end of a
    continuation (a character cut by ``max_new_tokens``) becomes U+FFFD.
    """
    import tensorflow as tf

    byte_strings = tf.constant([bytes([i]) for i in range(VOCAB_SIZE)])

    def serve(prompt, max_new_tokens_, temperature, top_k, top_p, seed):
        lengths = tf.strings.length(prompt)  # in bytes
        checks = [tf.debugging.assert_positive(lengths, message="prompt is empty: give at least one character")]
        if max_prompt_bytes is not None:
            checks.append(tf.debugging.assert_less_equal(
                lengths, max_prompt_bytes,
                message=f"prompt is longer than the model's context of {max_prompt_bytes} bytes (UTF-8); shorten it"))
        with tf.control_dependencies(checks):
            # right-padded with zero bytes to the model's context, or to the longest prompt
            width = max_prompt_bytes if max_prompt_bytes is not None else tf.reduce_max(lengths)
            tokens = tf.cast(tf.io.decode_raw(prompt, tf.uint8, fixed_length=width), tf.int32)
        max_new_tokens_, temperature, top_k, top_p = checked_sampling(max_new_tokens_, temperature, top_k, top_p)
        noise = row_noise(seed, max_new_tokens)
        out = generate(tokens, lengths, max_new_tokens_, temperature, top_k, top_p, noise)
        pieces = tf.RaggedTensor.from_tensor(tf.gather(byte_strings, out["tokens"]), lengths=out["num_tokens"])
        text = tf.strings.unicode_transcode(tf.strings.reduce_join(pieces, axis=1), "UTF-8", "UTF-8",
                                            errors="replace")
        return {"text": text}

    return serve


def row_noise(seed, steps):
    """``float32 [batch, steps]`` uniform numbers, row i from ``seed[i]`` (TF Serving: reproducible requests)."""
    import tensorflow as tf

    return tf.map_fn(lambda s: tf.random.stateless_uniform([steps], seed=tf.stack([s, 0])),
                     tf.cast(seed, tf.int64), fn_output_signature=tf.float32)


def serving_text_inputs(max_prompt_bytes, max_new_tokens):
    """``serving_default``'s inputs: name -> (spec, meaning)."""
    import tensorflow as tf

    batch = [None]
    limit = f"1..{max_prompt_bytes} bytes" if max_prompt_bytes is not None else "at least 1 byte"
    return {
        "prompt": (tf.TensorSpec(batch, tf.string), f"UTF-8 text to continue, {limit}"),
        **sampling_specs(f"bytes to generate per row (at most {max_new_tokens})"),
        "seed": (tf.TensorSpec(batch, tf.int32), "seed of this row's sampling noise"),
    }


SERVING_EXAMPLE = {"prompt": "ROMEO:", "max_new_tokens": 100, **SAMPLING_DEFAULTS,
                   "seed": 0}


def continue_text(model, prompt, *, noise, temperature=0.8, top_k=0, top_p=1.0, max_prompt_bytes=None):
    """A Keras model's continuation of one prompt (str) through its ``generate``, decoded leniently."""
    prompt_bytes = np.frombuffer(prompt.encode("utf-8"), np.uint8).astype(np.int32)
    if max_prompt_bytes is not None:
        prompt_bytes = prompt_bytes[-max_prompt_bytes:]
    out = model.generate(prompt_bytes[None, :], np.array([len(prompt_bytes)], np.int32),
                         np.array([noise.shape[1]], np.int32), np.array([temperature], np.float32),
                         np.array([top_k], np.int32), np.array([top_p], np.float32), noise)
    count = int(out["num_tokens"][0])
    return bytes(np.asarray(out["tokens"][0, :count]).astype(np.uint8)).decode("utf-8", errors="replace")


class TextSamples:
    """After each epoch, continue ``prompt`` (:data:`SAMPLING_DEFAULTS`) into ``<run_dir>/samples/epoch-NNNN.txt``."""

    def __init__(self, run_dir, seed, prompt="\n", num_bytes=300, max_prompt_bytes=None):
        self.folder = os.path.join(run_dir, "samples")
        self.noise = np.random.default_rng(seed).uniform(size=(1, num_bytes)).astype(np.float32)
        self.prompt, self.max_prompt_bytes = prompt, max_prompt_bytes
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_epoch_end(self, epoch, logs):
        import tensorflow as tf

        from zoo.core.nn.distribute import is_chief
        from zoo.core.runtime.files import write_text

        if not is_chief(tf.distribute.get_strategy()):
            return
        text = continue_text(self.model, self.prompt, noise=self.noise, **SAMPLING_DEFAULTS,
                             max_prompt_bytes=self.max_prompt_bytes)
        write_text(os.path.join(self.folder, f"epoch-{epoch + 1:04d}.txt"), text)
        excerpt = text.strip().splitlines()[:3]
        print("sample: " + " / ".join(excerpt)[:160])


def write_continuation(output, prompt, continuation):
    """Print prompt + continuation, write it to ``output``; the ``sample`` command's one-line report."""
    from zoo.core.runtime.files import write_text

    text = prompt + continuation
    print(text)
    write_text(output, text + "\n")
    return f"Wrote {len(text.encode('utf-8'))} bytes of text to {output}"
