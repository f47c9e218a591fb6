"""The manifest's schema of an exported function: named, typed, shaped inputs with their meaning and allowed values.

A :class:`Signature` is what a model exports (``zoo.core.export`` writes it); the
manifest's ``signatures`` entry (:func:`signatures_manifest`) is what every runner
checks a call against. Nothing here needs TensorFlow at import.
"""

import dataclasses
from typing import Callable, Dict, Optional


@dataclasses.dataclass
class Signature:
    """One exported function: named inputs to a dict of named outputs.

    Args:
        name: signature key, e.g. "serving_default".
        function: takes the inputs positionally, in ``inputs`` order; returns a dict.
        inputs: input name -> (``tf.TensorSpec`` without name, meaning).
        outputs: output name -> meaning.
        tflite: also in the TFLite files (False for SavedModel-only signatures,
            e.g. ones that take strings, which TFLite builtins cannot handle).
        example: one row of sensible inputs (name -> value), for ``python -m zoo serve``
            and the benchmarks; default: standard-normal floats and zero integers.
        encodings: input name -> row format, e.g. ``zoo.core.runtime.utf8.ENCODING`` for UTF-8
            bytes zero padded; recorded and checked like ``ranges``.
        prefixes: input name -> the texts a UTF-8 row must start with, one of them (a task tag such as
            ``"<norm> "``); recorded and checked like ``ranges`` (``utf8.prefix_checks`` in the graph).
        resources: objects holding TF resources the function uses (a tokenizer's
            lookup tables), tracked so the SavedModel saves them.
        ranges: input name -> (lowest, highest) allowed value, both included. Recorded
            in the manifest and checked by every runner, TFLite included (the converter
            drops a graph's asserts, so a TFLite file cannot refuse e.g. a label out of range).
        allowed: input name -> the intervals ``[(low, high), ...]`` its values must fall in (both
            included), where one range is not enough: e.g. ``[(0, 0), (57, 81)]`` for a rest or a
            pitch the soprano sings. Recorded in the manifest and checked like ``ranges``.
        padding: input name -> the value that pads a row after its last entry (the TTS's -1 after the last
            digit): every runner refuses a row that is all padding or has an entry after its padding.
        max_shapes: input name -> the largest size of each dimension (None: no limit),
            e.g. ``[None, 128]`` for tokens that must fit a 128-byte context; recorded
            and checked like ``ranges``.
    """

    name: str
    function: Callable
    inputs: Dict[str, tuple]
    outputs: Dict[str, str]
    tflite: bool = True
    example: Optional[dict] = None
    ranges: Optional[dict] = None
    allowed: Optional[dict] = None
    max_shapes: Optional[dict] = None
    encodings: Optional[dict] = None
    prefixes: Optional[dict] = None
    padding: Optional[dict] = None
    resources: Optional[list] = None


def spec_json(spec, meaning, value_range=None, max_shape=None, encoding=None, allowed=None, prefixes=None,
              padding=None):
    return {"dtype": spec.dtype.name, "shape": [None if d is None else int(d) for d in spec.shape],
            "meaning": meaning, **({"range": list(value_range)} if value_range is not None else {}),
            **({"allowed": [list(interval) for interval in allowed]} if allowed is not None else {}),
            **({"max_shape": list(max_shape)} if max_shape is not None else {}),
            **({"encoding": encoding} if encoding is not None else {}),
            **({"prefixes": list(prefixes)} if prefixes is not None else {}),
            **({"padding": padding} if padding is not None else {})}


def signatures_manifest(signatures):
    """The manifest's ``signatures`` entry (outputs filled in from the SavedModel by the export)."""
    return {
        s.name: {
            "inputs": {n: spec_json(spec, meaning, (s.ranges or {}).get(n), (s.max_shapes or {}).get(n),
                                     (s.encodings or {}).get(n), (s.allowed or {}).get(n),
                                     (s.prefixes or {}).get(n), (s.padding or {}).get(n))
                       for n, (spec, meaning) in s.inputs.items()},
            "outputs": {},
            "runtimes": ["savedmodel", "tflite", "keras"] if s.tflite else ["savedmodel", "keras"],
            **({"example": s.example} if s.example else {}),
        }
        for s in signatures
    }
