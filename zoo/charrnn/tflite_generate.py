"""Stream text of any length from the character LSTM's TFLite file, as a phone app would: NumPy and LiteRT only.

    python -m zoo.charrnn.tflite_generate exported/charrnn/charrnn.tflite --prompt "ROMEO:" --max-new-tokens 5000

This file needs NumPy, ``ai_edge_litert``, ``zoo/core/apps/text_sampling.py`` (the
byte sampler it shares with the GPT's loop) and ``zoo/core/apps/manifest.py`` (the sha256
check against ``manifest.json``): copy the three files next to ``charrnn.tflite`` and its
``manifest.json`` in any project. It calls the ``step`` signature once per
byte, prompt and output alike, with the state passed in and out: memory stays at
one ``[1, S]`` state however long the text grows (no context to fill or slide).
Sampling is the inverse-CDF rule of the in-graph ``generate`` signature, so with
the same noise both pick the same bytes. Bytes are printed as they come; invalid
or cut-off UTF-8 is replaced by U+FFFD, never an exception.
"""

import argparse
import codecs
import os
import sys

import numpy as np

try:  # in the repository (python -m zoo.charrnn.tflite_generate)
    from zoo.core.apps.manifest import verified_manifest
    from zoo.core.apps.text_sampling import add_sampling_arguments, check_token, stream_tokens
except ImportError:  # copied into an app next to text_sampling.py and manifest.py
    from manifest import verified_manifest
    from text_sampling import add_sampling_arguments, check_token, stream_tokens


class TFLiteCharRNN:
    """The ``step`` signature of a character-LSTM TFLite file."""

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.manifest = verified_manifest(path)  # the manifest beside the file, after its sha256 matched
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads or os.cpu_count())  # every core unless told
        if "step" not in self.interpreter.get_signature_list():
            raise ValueError(f"{path} has no 'step' signature: is it the character LSTM's TFLite file?")
        self.step_runner = self.interpreter.get_signature_runner("step")
        self.state_size = int(self.step_runner.get_input_details()["state"]["shape_signature"][1])

    def zero_state(self):
        return np.zeros((1, self.state_size), np.float32)

    def step(self, token, state):
        # The TFLite graph cannot refuse these (the converter drops asserts): a byte out of range
        # would read past the embedding table.
        check_token(token)
        state = np.asarray(state, np.float32)
        if state.shape != (1, self.state_size):
            raise ValueError(f"state must have shape [1, {self.state_size}], got {list(state.shape)}")
        out = self.step_runner(token=np.asarray([token], np.int32), state=state)
        return out["logits"][0], out["state"]


def generate_bytes(model, prompt_bytes, max_new_tokens, temperature=0.0, top_k=0, top_p=1.0, noise=None, seed=0,
                   on_token=None, state=None):
    """Continue ``prompt_bytes`` by ``max_new_tokens`` bytes through ``model.step``: :func:`text_sampling.stream_tokens`
    with bytes as tokens (``noise``, ``on_token`` and ``state`` are documented there); returns the new bytes."""
    return bytes(stream_tokens(model, prompt_bytes, max_new_tokens, temperature, top_k, top_p, noise=noise, seed=seed,
                               on_token=on_token, state=state))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tflite", help="path of charrnn.tflite (or a quantized variant)")
    add_sampling_arguments(parser, max_new_tokens=1000)
    args = parser.parse_args(argv)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def stream(token):
        sys.stdout.write(decoder.decode(bytes([token])))
        sys.stdout.flush()

    try:
        model = TFLiteCharRNN(args.tflite, num_threads=args.threads)
        sys.stdout.write(args.prompt)
        generate_bytes(model, args.prompt.encode("utf-8"), args.max_new_tokens, args.temperature, args.top_k,
                       args.top_p, seed=args.seed, on_token=stream)
    except (ValueError, OSError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(decoder.decode(b"", final=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
