"""Text as the models see it: UTF-8 bytes in a fixed-width int32 row, zero padded.

No tokenizer files: English and Chinese are just bytes ("七" is 3 of them), so the
same row format works on a phone without tokenizer ops (which are Flex in TFLite).
The text ends at its first zero byte; everything after it must be zero too.

Three checks of the same rule, one per place a row can come from:
- :func:`encode_texts` (host): strings -> rows, refusing text longer than the row;
- :func:`check_rows` (host, NumPy): rows from an app, refusing a character cut in
  two, bytes after the padding, values outside 0..255; every runner calls it;
- :func:`row_checks` (in the graph): the same as ``tf.debugging`` asserts, so TF
  Serving clients get the message too (the TFLite converter drops asserts, so
  there the runners' host check stands in).
"""

import numpy as np

from zoo.core.runtime.errors import BadInputError

TEXT_BYTES = 64
ENCODING = "utf8_zero_padded"  # the manifest's name for this row format (an input spec's "encoding")


def _excerpt(text, limit=24):
    """``text`` quoted for a message, cut with an ellipsis inside the quotes when long."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    return f'"{shown}"'


def encode_texts(texts, length=TEXT_BYTES):
    """Strings -> int32 ``[len(texts), length]`` UTF-8 bytes, zero padded."""
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    rows = np.zeros((len(texts), length), np.int32)
    for i, text in enumerate(texts):
        which = "the prompt" if len(texts) == 1 else f"prompt {i + 1} of {len(texts)}"
        try:
            data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        except UnicodeEncodeError:  # a terminal's undecodable bytes arrive as surrogates
            raise BadInputError(f"{which} is not valid UTF-8 (bytes that are not a character); check its "
                                "encoding") from None
        if len(data) > length:
            shown = _excerpt(text if isinstance(text, str) else data.decode("utf-8", "replace"))
            raise BadInputError(f"{which} {shown} is {len(data)} bytes in UTF-8; the model takes at most {length} "
                                "(a Chinese character is 3 bytes): shorten it")
        if b"\x00" in data:
            raise BadInputError(f"{which} contains a zero byte, which marks the end of the text")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadInputError(f"{which} is not valid UTF-8: {error}") from None
        rows[i, : len(data)] = np.frombuffer(data, np.uint8)
    return rows


def _length(row):
    zeros = np.flatnonzero(row == 0)
    return int(zeros[0]) if zeros.size else len(row)


def check_rows(rows, name="text"):
    """Refuse rows that are not UTF-8 text followed by zero padding, with the row and the reason."""
    rows = np.asarray(rows)
    if rows.size and (rows.min() < 0 or rows.max() > 255):
        raise BadInputError(f"input {name!r} must be bytes 0..255, got values from {rows.min()} to {rows.max()}")
    for i, row in enumerate(rows.reshape(-1, rows.shape[-1]) if rows.ndim else []):
        length = _length(row)
        if np.any(row[length:] != 0):
            raise BadInputError(f"input {name!r} row {i} has non-zero bytes after its zero padding (at "
                                f"{length + int(np.flatnonzero(row[length:])[0])}): the text ends at the first 0")
        try:
            bytes(int(b) for b in row[:length]).decode("utf-8")
        except UnicodeDecodeError as error:
            cut = " (a character cut at the end: the text was truncated inside a multi-byte character)" \
                if error.end == length or error.reason == "unexpected end of data" else ""
            raise BadInputError(f"input {name!r} row {i} is not valid UTF-8{cut}: {error.reason} at byte "
                                f"{error.start}") from None


def valid_rows(rows):
    """Per row, in the graph (dense ops only): ``(utf8_valid, padding_valid)``, both bool ``[batch]``.

    UTF-8 as Python's strict decoder reads it: lead bytes C2-DF, E0-EF, F0-F4 followed by
    exactly 1, 2, 3 continuation bytes (80-BF), no overlong forms (E0 80-9F, F0 80-8F),
    no surrogates (ED A0-BF), nothing above U+10FFFF (F4 90-BF). Padding: no non-zero
    byte after the first zero.
    """
    import tensorflow as tf

    length = tf.shape(rows)[1]
    padded = tf.pad(rows, [[0, 0], [0, 3]])  # the text may not end inside a character
    b, following = padded[:, :length], padded[:, 1:][:, :length]
    continuation = (b >= 0x80) & (b < 0xC0)
    need = (tf.cast((b >= 0xC2) & (b < 0xE0), tf.int32) + 2 * tf.cast((b >= 0xE0) & (b < 0xF0), tf.int32)
            + 3 * tf.cast((b >= 0xF0) & (b <= 0xF4), tf.int32))
    bad_byte = (b == 0xC0) | (b == 0xC1) | (b > 0xF4)
    bad_pair = (((b == 0xE0) & (following < 0xA0)) | ((b == 0xED) & (following >= 0xA0))
                | ((b == 0xF0) & (following < 0x90)) | ((b == 0xF4) & (following >= 0x90)))
    # how many lead bytes claim each position (3 past the end included) as one of their continuation bytes
    need_padded = tf.pad(need, [[0, 0], [3, 3]])
    claimed = sum(tf.cast(need_padded[:, 3 - k:][:, : length + 3] >= k, tf.int32) for k in (1, 2, 3))
    is_continuation = tf.pad(tf.cast(continuation, tf.int32), [[0, 0], [0, 3]])
    utf8_valid = ~tf.reduce_any(bad_byte | bad_pair, axis=1) & tf.reduce_all(tf.equal(claimed, is_continuation),
                                                                              axis=1)
    seen_zero = tf.cumsum(tf.cast(tf.equal(rows, 0), tf.int32), axis=1) > 0
    padding_valid = ~tf.reduce_any(seen_zero & tf.not_equal(rows, 0), axis=1)
    return utf8_valid, padding_valid


def row_checks(rows, name="text"):
    """``tf.debugging`` asserts of :func:`check_rows`'s rule on int32 ``[batch, length]`` rows."""
    import tensorflow as tf

    byte_message = f"{name} must be bytes 0..255"
    rows = tf.convert_to_tensor(rows)
    in_range = [tf.debugging.assert_non_negative(rows, message=byte_message),
                tf.debugging.assert_less_equal(rows, 255, message=byte_message)]
    with tf.control_dependencies(in_range):
        utf8_valid, padding_valid = valid_rows(tf.identity(rows))
    return in_range + [
        tf.debugging.assert_equal(padding_valid, True, message=f"{name} has non-zero bytes after its zero padding: "
                                                               "the text ends at the first 0"),
        tf.debugging.assert_equal(utf8_valid, True, message=f"{name} is not valid UTF-8 (e.g. a character cut in "
                                                            "two at the end of the row)"),
    ]


def string_rows(texts, length=TEXT_BYTES, name="text"):
    """In the graph: strings ``[batch]`` -> int32 rows, asserting length and UTF-8 (SavedModel-only signatures)."""
    import tensorflow as tf

    lengths = tf.strings.length(texts)
    checks = [
        tf.debugging.assert_less_equal(lengths, length, message=f"{name} is longer than {length} bytes in UTF-8 "
                                                                "(a Chinese character is 3 bytes): shorten it"),
        tf.debugging.assert_equal(tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace"), texts,
                                  message=f"{name} is not valid UTF-8"),
    ]
    with tf.control_dependencies(checks):
        return tf.cast(tf.io.decode_raw(texts, tf.uint8, fixed_length=length), tf.int32)


def prefix_message(name, prefixes):
    return f"{name} must start with one of {', '.join(repr(p) for p in prefixes)} (the task)"


def check_prefixes(rows, prefixes, name="text"):
    """Host check: every row starts with one of ``prefixes`` (e.g. a task tag ``"<norm> "``)."""
    encoded = [np.frombuffer(p.encode("utf-8"), np.uint8) for p in prefixes]
    for i, row in enumerate(np.asarray(rows).reshape(-1, np.shape(rows)[-1])):
        if not any(len(p) <= len(row) and np.array_equal(row[: len(p)], p) for p in encoded):
            start = bytes(int(b) for b in row[:12] if b).decode("utf-8", "replace")
            raise BadInputError(f"input {name!r} row {i} starts with {start!r}: " + prefix_message(name, prefixes))


def prefix_checks(rows, prefixes, name="text"):
    """The same rule as ``tf.debugging`` asserts, in the graph (dense ops only)."""
    import tensorflow as tf

    matches = []
    for prefix in prefixes:
        data = np.frombuffer(prefix.encode("utf-8"), np.uint8).astype(np.int32)
        matches.append(tf.reduce_all(tf.equal(rows[:, : len(data)], tf.constant(data)[None, :]), axis=1))
    found = tf.reduce_any(tf.stack(matches, axis=1), axis=1)
    return [tf.debugging.assert_equal(found, True, message=prefix_message(name, prefixes))]
