"""Generate text with the exported GPT's TFLite file, as a phone app would: NumPy and LiteRT only.

    python zoo/gpt/tflite_generate.py exported/gpt/gpt.tflite --prompt "ROMEO:" --max-new-tokens 300

This file needs NumPy, ``ai_edge_litert`` and ``zoo/core/litert_text.py`` (the
byte sampler it shares with the character LSTM's loop): copy the two files next
to ``gpt.tflite`` in any project. It runs the ``prefill`` signature once on the prompt,
then ``decode_step`` once per new byte with the key/value cache passed in and out
(each byte costs one position, not a re-run of the prefix). Sampling is the same
inverse-CDF rule the in-graph ``generate`` signature uses, so with the same noise
both pick the same bytes.

When prompt plus output reach the model's context length, the in-graph
``generate`` stops; this loop (with ``slide=True``, the default) instead keeps
the last half of the context, prefills it again and goes on, so the output can
be as long as you like. Output bytes are decoded as UTF-8 with invalid or
cut-off sequences replaced by U+FFFD, never an exception.
"""

import argparse
import os
import sys

import numpy as np

try:
    from zoo.core.litert_text import (add_sampling_arguments, check_generation_options, check_token, sample_token,
                                      sampling_noise)
except ImportError:  # run as a script in the repository, or copied into an app next to litert_text.py
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "core"))
    from litert_text import add_sampling_arguments, check_generation_options, check_token, sample_token, sampling_noise


class TFLiteGPT:
    """The ``prefill`` and ``decode_step`` signatures of a GPT TFLite file."""

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        self.prefill_runner = self.interpreter.get_signature_runner("prefill")
        self.decode_runner = self.interpreter.get_signature_runner("decode_step")
        cache = self.decode_runner.get_input_details()["cache"]
        self.context_length = int(cache["shape_signature"][2])

    def prefill(self, tokens):
        out = self.prefill_runner(tokens=np.asarray([tokens], np.int32),
                                  lengths=np.asarray([len(tokens)], np.int32))
        return out["logits"][0], out["cache"]

    def decode_step(self, token, position, cache):
        # The TFLite graph cannot refuse these (the converter drops asserts): a position
        # past the context would fail deep inside a GATHER, one below 0 run silently wrong.
        if not 0 <= int(position) < self.context_length:
            raise ValueError(f"position must be in 0..{self.context_length - 1} (the context), got {position}")
        check_token(token)
        out = self.decode_runner(token=np.asarray([token], np.int32), position=np.asarray([position], np.int32),
                                 cache=cache)
        return out["logits"][0], out["cache"]


def generate_bytes(model, prompt_bytes, max_new_tokens, temperature=0.0, top_k=0, top_p=1.0, noise=None, seed=0,
                   slide=True, on_token=None):
    """Continue ``prompt_bytes`` by up to ``max_new_tokens`` bytes; returns the new bytes.

    Args:
        noise: ``[max_new_tokens]`` uniform numbers in [0, 1), the randomness of
            each step (default: ``numpy.random.default_rng(seed)``).
        slide: at the context limit, re-prefill the last half of the context and
            go on (True), or stop there as the in-graph ``generate`` does (False).
        on_token: called with each new byte (e.g. to stream it to the screen).
    """
    prompt_bytes = list(prompt_bytes)
    context = model.context_length
    check_generation_options(prompt_bytes, max_new_tokens, temperature, top_k, top_p, context_length=context)
    noise = sampling_noise(noise, seed, max_new_tokens)
    text = list(prompt_bytes)
    generated = []
    logits, cache = model.prefill(text)
    while len(generated) < max_new_tokens:
        token = sample_token(logits, temperature, top_k, top_p, noise[len(generated)])
        generated.append(token)
        text.append(token)
        if on_token is not None:
            on_token(token)
        if len(generated) == max_new_tokens:
            break
        if len(text) == context:  # the cache is full
            if not slide:
                break
            text = text[-(context // 2):]
            logits, cache = model.prefill(text)
        else:
            logits, cache = model.decode_step(token, len(text) - 1, cache)
    return bytes(generated)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tflite", help="path of gpt.tflite (or a quantized variant)")
    add_sampling_arguments(parser)
    parser.add_argument("--no-slide", action="store_true", help="stop at the context limit")
    args = parser.parse_args(argv)
    try:
        model = TFLiteGPT(args.tflite)
        output = generate_bytes(model, args.prompt.encode("utf-8"), args.max_new_tokens, args.temperature,
                                args.top_k, args.top_p, seed=args.seed, slide=not args.no_slide)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(args.prompt + output.decode("utf-8", errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
