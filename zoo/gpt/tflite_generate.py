"""Generate text with the exported GPT's TFLite file, as a phone app would: NumPy and LiteRT only.

    python -m zoo.gpt.tflite_generate exported/gpt/gpt.tflite --prompt "ROMEO:" --max-new-tokens 300

This file needs NumPy, ``ai_edge_litert``, ``zoo/core/apps/text_sampling.py`` (the
sampler and key/value-cache loop it shares with the other text models) and
``zoo/core/apps/manifest.py`` (the sha256 check): copy the three files next to ``gpt.tflite``
and its ``manifest.json`` in any project. It runs the ``prefill`` signature once on the prompt,
then ``decode_step_kv`` once per new byte, the key/value cache kept in LiteRT's own input buffers and
each byte's keys and values written there in place (each byte costs one position, not a re-run of the
prefix, and no cache is copied). Sampling is the same
inverse-CDF rule the in-graph ``generate`` signature uses, so with the same noise
both pick the same bytes.

When prompt plus output reach the model's context length, the in-graph
``generate`` stops; this loop (with ``slide=True``, the default) instead keeps
the last half of the context, prefills it again and goes on, so the output can
be as long as you like. Output bytes are decoded as UTF-8 with invalid or
cut-off sequences replaced by U+FFFD, never an exception.
"""

import argparse
import sys

try:  # in the repository (python -m zoo.gpt.tflite_generate)
    from zoo.core.apps.text_sampling import TFLiteDecoder, add_sampling_arguments, generate_tokens
except ImportError:  # copied into an app next to text_sampling.py and manifest.py
    from text_sampling import TFLiteDecoder, add_sampling_arguments, generate_tokens

TFLiteGPT = TFLiteDecoder  # the GPT's prefill/decode_step: the shared decoder runner


def generate_bytes(model, prompt_bytes, max_new_tokens, temperature=0.0, top_k=0, top_p=1.0, noise=None, seed=0,
                   slide=True, on_token=None):
    """Continue ``prompt_bytes`` by up to ``max_new_tokens`` bytes; returns the new bytes.

    :func:`text_sampling.generate_tokens` with bytes as tokens: ``noise`` (default from
    ``seed``), ``slide`` past the context and ``on_token`` are documented there.
    """
    return bytes(generate_tokens(model, list(prompt_bytes), max_new_tokens, temperature, top_k, top_p, noise=noise,
                                 seed=seed, slide=slide, on_token=on_token))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tflite", help="path of gpt.tflite (or a quantized variant)")
    add_sampling_arguments(parser)
    parser.add_argument("--no-slide", action="store_true", help="stop at the context limit")
    args = parser.parse_args(argv)
    try:
        model = TFLiteGPT(args.tflite, num_threads=args.threads)
        output = generate_bytes(model, args.prompt.encode("utf-8"), args.max_new_tokens, args.temperature,
                                args.top_k, args.top_p, seed=args.seed, slide=not args.no_slide)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(args.prompt + output.decode("utf-8", errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
