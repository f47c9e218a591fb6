"""Text -> the UTF-8 rows the zoo's text models take (CLIP, text-to-image, seq2seq): NumPy only.

An app copies this file beside the model (``import text_rows``). There is no tokenizer: a row is the text's
UTF-8 bytes, zero padded, so the check that the text fits is the app's, before any model call.
"""

import numpy as np


def text_rows(texts, length=64, prefixes=None, what="the text"):
    """Strings -> int32 ``[n, length]`` UTF-8 bytes, zero padded. A ValueError, saying what to change, for a
    text longer than ``length`` bytes, one with a zero byte (it marks the end), or one that starts with none of
    ``prefixes`` (e.g. the task tags ``"<norm> "``) when they are given."""
    rows = np.zeros((len(texts), length), np.int32)
    for i, text in enumerate(texts):
        if prefixes and not text.startswith(tuple(prefixes)):
            raise ValueError(f"{what} {text[:20]!r} must start with one of "
                             + ", ".join(repr(p) for p in prefixes) + " (the task)")
        data = text.encode("utf-8")
        if len(data) > length:
            raise ValueError(f"{what} is {len(data)} bytes of UTF-8; the model takes at most {length} "
                             "(a Chinese character is 3 bytes)")
        if b"\x00" in data:
            raise ValueError(f"{what} contains a zero byte, which marks the end of the text")
        rows[i, : len(data)] = np.frombuffer(data, np.uint8)
    return rows


def row_texts(rows):
    """int32 rows -> strings, each up to its first zero byte (invalid UTF-8 replaced, as a model may write it)."""
    texts = []
    for row in np.asarray(rows):
        zeros = np.flatnonzero(row == 0)
        end = int(zeros[0]) if zeros.size else len(row)
        texts.append(bytes(int(b) for b in row[:end]).decode("utf-8", "replace"))
    return texts
