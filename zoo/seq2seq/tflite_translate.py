"""Read numbers aloud or translate them with the seq2seq model's TFLite file, as a phone app would: NumPy and
LiteRT only, one ``decode_step`` call per output byte.

    python -m zoo.seq2seq.tflite_translate exported/seq2seq/seq2seq.tflite "<norm> Call 555-0123 at 3:45"
    python -m zoo.seq2seq.tflite_translate exported/seq2seq/seq2seq.tflite "<en2zh> March 5, 2024" "<zh2en> 十二美元五十美分"

Copy this file and ``zoo/core/apps/greedy_bytes.py``, ``text_rows.py`` and ``manifest.py`` next to
``seq2seq.tflite`` and its ``manifest.json`` in any project. The in-graph ``serving_default`` decodes a whole
batch in one call; this loop calls ``encode`` once and ``decode_step`` once a byte, so an app can show the
words as they come or stop early. It chooses the same bytes as the graph (tested).
"""

import argparse
import os
import sys
import time

try:  # in the repository (python -m zoo.seq2seq.tflite_translate)
    from zoo.core.apps.greedy_bytes import greedy_bytes
    from zoo.core.apps.manifest import add_threads_argument, verified_manifest
    from zoo.core.apps.text_rows import row_texts, text_rows
except ImportError:  # copied into an app next to greedy_bytes.py, text_rows.py and manifest.py
    from greedy_bytes import greedy_bytes
    from manifest import add_threads_argument, verified_manifest
    from text_rows import row_texts, text_rows


class TFLiteTranslator:
    """``encode`` and ``decode_step`` of the seq2seq model's TFLite file, and the greedy loop around them."""

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        manifest = verified_manifest(path)
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads or os.cpu_count())  # every core unless told
        found = self.interpreter.get_signature_list()
        if not {"encode", "decode_step"} <= set(found):
            raise ValueError(f"{path} has no encode/decode_step signatures: is it the seq2seq model's TFLite file?")
        self.encode_runner = self.interpreter.get_signature_runner("encode")
        self.step_runner = self.interpreter.get_signature_runner("decode_step")
        text = manifest["signatures"]["encode"]["inputs"]["text"]
        self.source_bytes, self.tags = int(text["shape"][1]), tuple(text["prefixes"])
        self.cache_shape = manifest["signatures"]["decode_step"]["inputs"]["cache"]["shape"]
        self.target_bytes = int(self.cache_shape[2])

    def rows(self, texts):
        """Tagged strings -> the source rows; a ValueError for a missing tag or a text too long."""
        return text_rows(texts, self.source_bytes, prefixes=self.tags, what="the source")

    def translate(self, texts):
        """Tagged strings ("<norm> Call 555-0123") -> the results, one string each."""
        output = greedy_bytes(lambda source: self.encode_runner(text=source),
                              lambda token, position, cache, memory: self.step_runner(
                                  token=token, position=position, cache=cache, memory=memory),
                              self.rows(texts), self.target_bytes, self.cache_shape)
        return row_texts(output)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Read numbers aloud or translate them (NumPy + LiteRT only).")
    parser.add_argument("model", help="path to seq2seq.tflite (its manifest.json beside it)")
    parser.add_argument("texts", nargs="+", help="sources, each starting with a task tag: '<norm> ', '<en2zh> ' "
                                                 "or '<zh2en> '")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    try:
        translator = TFLiteTranslator(args.model, num_threads=args.threads)
        started = time.perf_counter()
        results = translator.translate(args.texts)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for source, result in zip(args.texts, results):
        print(f"{source}\n  -> {result}")
    print(f"({(time.perf_counter() - started) * 1000:.0f} ms for {len(results)} on {args.threads} threads)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
