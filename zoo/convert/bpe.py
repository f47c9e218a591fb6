"""GPT-2's byte-level BPE tokenizer in pure Python (standard library only): KerasHub's tokens exactly.

Copy this file into an app next to the exported ``vocabulary.json``, ``merges.txt``
and ``tokenizer.json``; it needs no TensorFlow, no NumPy and no ``regex``::

    tokenizer = BytePairTokenizer.from_folder("exported/my-gpt2")
    ids = tokenizer.encode("The zoo")          # with the start token if the model wants one
    text = tokenizer.decode(ids)

It follows, step by step, what ``keras_hub.tokenizers.BytePairTokenizer`` does in
a TensorFlow graph (the path its SavedModel and ``tf.data`` use): the same two-pass
split with RE2's character classes (``\\s`` is ``[\\t\\n\\f\\r ]``; ``\\p{L}``, ``\\p{N}``
from :mod:`unicodedata`), the same marker trick for GPT-2's look-ahead, the same
merge order (the lowest-ranked pair, leftmost first): the graph is what TF Serving
runs (``zoo/convert/README.md``).
"""

import json
import os
import re
import sys
import unicodedata

VOCABULARY_FILE, MERGES_FILE, CONFIG_FILE = "vocabulary.json", "merges.txt", "tokenizer.json"
MARKER = "\u096c"  # "६", KerasHub's stand-in for GPT-2's look-ahead (RE2 has none)
SPECIAL_SPACES = "\u00a0\u2009\u202f\u3000"
RE2_SPACE = "\t\n\f\r "  # RE2's \s


def _category_class(prefix):
    """A regex character class of every code point whose Unicode category starts with ``prefix``."""
    ranges, start = [], None
    for code in range(sys.maxunicode + 2):
        inside = code <= sys.maxunicode and unicodedata.category(chr(code)).startswith(prefix)
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            ranges.append((start, code - 1))
            start = None
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


_PATTERNS = {}


def _patterns():
    """(leading-space rule, trailing rule, first split, second split), compiled once (~1 s)."""
    if not _PATTERNS:
        letters, numbers = _category_class("L"), _category_class("N")
        space = re.escape(RE2_SPACE)
        special = re.escape(SPECIAL_SPACES)
        _PATTERNS["lead"] = re.compile(f"( )([^{space}{special}])")
        # KerasHub writes this class without brackets: whitespace followed by the four special spaces in a row
        _PATTERNS["trail"] = re.compile(f"([{space}]{special})\\Z")
        _PATTERNS["split1"] = re.compile(
            "'s|'t|'re|'ve|'m|'ll|'d"
            f"|[{space}{special}]+[\\n\\r\\t\\f{MARKER}{special}]| ?[{letters}]+"
            f"| ?[{numbers}]+| ?[^{space}{letters}{numbers}{special}]+")
        _PATTERNS["split2"] = re.compile(f"[ \\t\\r\\f\\x0b{MARKER}{special}]\\Z")
    return _PATTERNS


def _regex_split(text, pattern):
    """``tensorflow_text.regex_split`` keeping the delimiters: the pieces between matches and the matches."""
    pieces, end = [], 0
    for match in pattern.finditer(text):
        if match.start() > end:
            pieces.append(text[end:match.start()])
        pieces.append(match.group())
        end = match.end()
    if end < len(text):
        pieces.append(text[end:])
    return pieces


def _special_alternates(count):
    # KerasHub's stand-ins for unsplittable tokens: "ĴA", "ĴB", ..., "ĴBA" (digits as letters)
    return ["\u0134" + "".join(chr(ord("A") + int(d)) for d in str(i)) for i in range(count)]


def split_words(text, special_tokens=()):
    """GPT-2's pre-tokenization: the words BPE then merges (special tokens stay whole)."""
    patterns = _patterns()
    text = patterns["lead"].sub(MARKER + r"\1\2", text)
    text = patterns["trail"].sub(r"\1" + MARKER, text)
    pieces = [text]
    alternates = _special_alternates(len(special_tokens))
    for token, alternate in zip(special_tokens, alternates):
        escaped = re.compile(re.escape(token))
        pieces = [part.replace(token, alternate) for piece in pieces for part in _regex_split(piece, escaped)]
    words = [part for piece in pieces for word in _regex_split(piece, patterns["split1"])
             for part in _regex_split(word, patterns["split2"])]
    for token, alternate in zip(special_tokens, alternates):
        words = [word.replace(alternate, token) for word in words]
    return [word for word in words if word != MARKER]


def bytes_to_unicode():
    """GPT-2's map from the 256 bytes to printable characters (spaces and controls moved above 255)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    characters, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            characters[byte] = chr(byte)
        else:
            characters[byte] = chr(256 + extra)
            extra += 1
    return characters


class BytePairTokenizer:
    """Encode text to token ids and back with a GPT-2 ``vocabulary`` (token -> id) and ``merges`` ("a b" lines).

    Args:
        special_tokens: never split, e.g. ``["<|endoftext|>"]``.
        start_token: id put before every prompt by :meth:`encode` (KerasHub's
            causal-LM preprocessors add it), or None.
    """

    def __init__(self, vocabulary, merges, special_tokens=(), start_token=None):
        self.vocabulary = dict(vocabulary)
        self.tokens = {i: token for token, i in self.vocabulary.items()}
        self.ranks = {}
        for rank, merge in enumerate(merges):
            if "#version:" in merge.lstrip():
                continue
            self.ranks.setdefault(merge, rank)
        self.special_tokens = list(special_tokens)
        self.start_token = start_token
        self.byte_characters = bytes_to_unicode()
        self.character_bytes = {c: b for b, c in self.byte_characters.items()}
        self._cache = {token: [token] for token in self.special_tokens}

    @classmethod
    def from_folder(cls, folder):
        """Read ``vocabulary.json``, ``merges.txt`` and ``tokenizer.json`` (special tokens, start token)."""
        paths = [os.path.join(folder, name) for name in (VOCABULARY_FILE, MERGES_FILE, CONFIG_FILE)]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"tokenizer files missing: {', '.join(missing)}")
        with open(paths[0], encoding="utf-8") as f:
            vocabulary = json.load(f)
        with open(paths[1], encoding="utf-8") as f:
            merges = [line.rstrip() for line in f]
        with open(paths[2], encoding="utf-8") as f:
            config = json.load(f)
        return cls(vocabulary, merges, config["special_tokens"], config.get("start_token"))

    def _merge(self, word):
        if word in self._cache:
            return self._cache[word]
        parts = [self.byte_characters[b] for b in word.encode("utf-8")]
        while len(parts) > 1:
            ranks = [self.ranks.get(f"{a} {b}") for a, b in zip(parts, parts[1:])]
            found = [(rank, i) for i, rank in enumerate(ranks) if rank is not None]
            if not found:
                break
            _, i = min(found)
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        self._cache[word] = parts
        return parts

    def tokenize(self, text):
        """Token ids of ``text`` (-1 for a piece the vocabulary lacks, as KerasHub gives)."""
        return [self.vocabulary.get(piece, -1) for word in split_words(text, self.special_tokens)
                for piece in self._merge(word)]

    def encode(self, text):
        """Token ids of a prompt, with the start token when the model has one."""
        ids = self.tokenize(text)
        return ids if self.start_token is None else [self.start_token] + ids

    def decode_bytes(self, ids):
        """The bytes of token ids (unknown ids and characters give nothing, as in KerasHub)."""
        characters = "".join(self.tokens.get(int(i), "") for i in ids)
        return bytes(self.character_bytes[c] for c in characters if c in self.character_bytes)

    def decode(self, ids):
        """Text of token ids; a character cut at the end becomes U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")
