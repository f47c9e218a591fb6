"""The app's loop around an encoder-decoder's ``encode`` and ``decode_step`` TFLite signatures: NumPy only.

An app copies this file beside the model (``import greedy_bytes``); ``zoo/seq2seq/tflite_translate.py`` is
such an app. The loop is the graph's ``serving_default`` step for step: the source's cross-attention keys and
values once, then the most likely byte at each position until every row has written its end byte (0).
"""

import numpy as np

START = 256  # the decoder's input before the first byte


def greedy_bytes(encode, decode_step, source, target_length, cache_shape):
    """``encode(source) -> {"memory"}`` and ``decode_step(token, position, cache, memory) -> {"logits", "cache"}``
    (callables of NumPy arrays) -> int32 ``[batch, target_length]``: each row's bytes up to its end, zero
    padded. ``cache_shape``: the manifest's ``[batch, channels, target_length, head_dim]``."""
    source = np.asarray(source, np.int32)
    memory = encode(source)["memory"]
    batch = source.shape[0]
    cache = np.zeros([batch, *cache_shape[1:]], np.float32)
    token = np.full(batch, START, np.int32)
    output = np.zeros((batch, target_length), np.int32)
    running = np.ones(batch, bool)
    for position in range(target_length):
        step = decode_step(token, np.full(batch, position, np.int32), cache, memory)
        best = np.argmax(step["logits"], axis=-1).astype(np.int32)
        running &= best != 0
        output[:, position] = np.where(running, best, 0)
        token, cache = output[:, position], step["cache"]
        if not running.any():
            break
    return output
