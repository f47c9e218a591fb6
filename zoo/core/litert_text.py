"""Byte sampling for the text models' phone-app loops: NumPy only, no TensorFlow, no zoo.

``zoo/gpt/tflite_generate.py`` and ``zoo/charrnn/tflite_generate.py`` import this
file; to ship one of them in an app without the zoo, copy it together with this
file next to the ``.tflite``. :func:`sample_token` is the NumPy twin of the
in-graph :func:`zoo.core.text_generation.sample_token`: with the same uniform
number both pick the same byte.
"""

import numpy as np

VOCAB_SIZE = 256  # byte values


def check_generation_options(prompt_bytes, max_new_tokens, temperature, top_k, top_p, context_length=None):
    """A ValueError that says what to change, for any option the model cannot honour.

    ``context_length``: the longest prompt the model takes (None: any length, as a recurrent model).
    """
    if len(prompt_bytes) == 0:
        raise ValueError("the prompt is empty: give at least one character to continue")
    if context_length is not None and len(prompt_bytes) > context_length:
        raise ValueError(f"the prompt is {len(prompt_bytes)} bytes (UTF-8), longer than the model's context of "
                         f"{context_length} bytes; shorten it (e.g. keep its last {context_length} bytes)")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if not temperature >= 0:  # also rejects NaN
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = no limit), got {top_k}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1 = no limit), got {top_p}")


def check_token(token):
    if not 0 <= int(token) < VOCAB_SIZE:
        raise ValueError(f"token must be a byte, 0..{VOCAB_SIZE - 1}, got {token}")


def sample_token(logits, temperature, top_k, top_p, uniform):
    """One byte from ``logits [256]`` by inverse-CDF sampling with one ``uniform`` number in [0, 1)."""
    logits = np.asarray(logits, np.float32)
    if temperature <= 0:
        return int(np.argmax(logits))
    scaled = logits / np.float32(max(temperature, 1e-6))
    order = np.argsort(-scaled, kind="stable")  # like top_k: ties keep the lower byte first
    sorted_logits = scaled[order]
    exp = np.exp(sorted_logits - sorted_logits[0])
    probs = (exp / exp.sum(dtype=np.float32)).astype(np.float32)
    rank = np.arange(VOCAB_SIZE)
    keep_k = np.full(VOCAB_SIZE, True) if top_k <= 0 else rank < top_k
    keep_p = (np.cumsum(probs, dtype=np.float32) - probs) < np.float32(top_p)
    kept = probs * ((keep_k & keep_p) | (rank == 0))
    cumulative = np.cumsum(kept, dtype=np.float32)
    threshold = np.float32(uniform) * cumulative[-1]
    index = min(int(np.sum(cumulative <= threshold)), VOCAB_SIZE - 1)
    return int(order[index])


def sampling_noise(noise, seed, max_new_tokens):
    """``noise`` (checked to be long enough) or ``max_new_tokens`` uniform numbers from ``default_rng(seed)``."""
    if noise is None:
        return np.random.default_rng(seed).uniform(size=max_new_tokens).astype(np.float32)
    if len(noise) < max_new_tokens:
        raise ValueError(f"noise has {len(noise)} numbers, max_new_tokens is {max_new_tokens}")
    return noise


def add_sampling_arguments(parser, prompt="ROMEO:", max_new_tokens=300):
    """The app scripts' shared command-line options."""
    parser.add_argument("--prompt", default=prompt)
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
