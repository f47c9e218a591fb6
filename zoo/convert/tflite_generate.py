"""Generate text with a converted KerasHub model's TFLite file, as a phone app would: no TensorFlow.

    python -m zoo.convert.tflite_generate out/my-gpt2/my-gpt2.tflite --prompt "The zoo" --max-new-tokens 40

Needs NumPy, ``ai_edge_litert``, ``zoo/core/apps/text_sampling.py`` (the sampler and
key/value-cache loop the zoo's own GPT app uses, unchanged: the signatures have the
same names) and ``zoo/convert/bpe.py`` (GPT-2's tokenizer in pure Python, reading
``vocabulary.json``, ``merges.txt`` and ``tokenizer.json`` beside the ``.tflite``).
Copy the three files and the model folder into any project. Generation stops at the
model's end-of-text token, as KerasHub's ``generate`` does.
"""

import argparse
import json
import os
import sys

try:  # in the repository (python -m zoo.convert.tflite_generate)
    from zoo.convert.bpe import CONFIG_FILE, BytePairTokenizer
    from zoo.core.apps.text_sampling import TFLiteDecoder, add_sampling_arguments, generate_tokens
except ImportError:  # copied into an app next to bpe.py and text_sampling.py
    from bpe import CONFIG_FILE, BytePairTokenizer
    from text_sampling import TFLiteDecoder, add_sampling_arguments, generate_tokens


def stop_token_of(folder):
    with open(os.path.join(folder, CONFIG_FILE), encoding="utf-8") as f:
        return json.load(f).get("stop_token")


def generate_text(model, tokenizer, prompt, *, max_new_tokens=40, temperature=0.8, top_k=40, top_p=1.0, seed=0,
                  noise=None, stop_token=None, slide=True):
    """The continuation (str) of ``prompt``: ``tokenizer.encode`` (start token included), the cache loop, decode.

    ``model``: a :class:`text_sampling.TFLiteDecoder`, or any object with ``prefill``,
    ``decode_step``, ``context_length``, or a zoo runner (wrapped in :class:`text_sampling.RunnerDecoder`).
    """
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("the prompt is empty: give at least one character to continue")
    if not hasattr(model, "prefill"):  # a zoo runner: its manifest gives the sizes
        from zoo.core.apps.text_sampling import RunnerDecoder

        decode = model.signatures["decode_step"]
        model = RunnerDecoder(model, decode["inputs"]["cache"]["shape"][2], decode["outputs"]["logits"]["shape"][-1])
    ids = tokenizer.encode(prompt)
    if len(ids) > model.context_length:
        raise ValueError(f"the prompt is {len(ids)} tokens (with the start token), longer than the model's context "
                         f"of {model.context_length}; shorten it")
    new = generate_tokens(model, ids, max_new_tokens, temperature, top_k, top_p, noise=noise, seed=seed,
                          slide=slide, stop_token=stop_token)
    return tokenizer.decode(new)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tflite", help="path of the converted model's .tflite (or a quantized variant)")
    add_sampling_arguments(parser, prompt="The zoo", max_new_tokens=40)
    args = parser.parse_args(argv)
    folder = os.path.dirname(os.path.abspath(args.tflite))
    try:
        tokenizer = BytePairTokenizer.from_folder(folder)
        model = TFLiteDecoder(args.tflite)
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
