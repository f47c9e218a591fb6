"""Generate text with a converted KerasHub model's TFLite file, as a phone app would: no TensorFlow.

    python -m zoo.convert.tflite_generate out/my-gpt2/my-gpt2.tflite --prompt "The zoo" --max-new-tokens 40

Needs NumPy, ``ai_edge_litert``, ``zoo/core/apps/text_sampling.py`` (the sampler and
key/value-cache loop the zoo's own GPT app uses, unchanged: the signatures have the
same names) and ``zoo/convert/bpe.py`` (GPT-2's tokenizer in pure Python, reading
``vocabulary.json``, ``merges.txt`` and ``tokenizer.json`` beside the ``.tflite``).
With ``zoo/core/apps/manifest.py`` (the sha256 check of the ``.tflite`` against the folder's
``manifest.json``), copy the four files and the model folder into any project. Generation stops at the
model's end-of-text token, as KerasHub's ``generate`` does.
"""

import argparse
import json
import os
import sys

try:  # in the repository (python -m zoo.convert.tflite_generate)
    from zoo.convert.bpe import CONFIG_FILE, BytePairTokenizer
    from zoo.core.apps.text_sampling import TFLiteDecoder, add_sampling_arguments, generate_text
except ImportError:  # copied into an app next to bpe.py, text_sampling.py and manifest.py
    from bpe import CONFIG_FILE, BytePairTokenizer
    from text_sampling import TFLiteDecoder, add_sampling_arguments, generate_text


def stop_token_of(folder):
    with open(os.path.join(folder, CONFIG_FILE), encoding="utf-8") as f:
        return json.load(f).get("stop_token")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tflite", help="path of the converted model's .tflite (or a quantized variant)")
    add_sampling_arguments(parser, prompt="The zoo", max_new_tokens=40)
    args = parser.parse_args(argv)
    folder = os.path.dirname(os.path.abspath(args.tflite))
    try:
        tokenizer = BytePairTokenizer.from_folder(folder)
        model = TFLiteDecoder(args.tflite, num_threads=args.threads)
        output = generate_text(model, tokenizer, args.prompt, max_new_tokens=args.max_new_tokens,
                               temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                               stop_token=stop_token_of(folder))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(args.prompt + output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
