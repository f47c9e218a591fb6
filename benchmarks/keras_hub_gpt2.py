"""A GPT-2 of the real ``gpt2_base_en`` shape, converted: LiteRT with the key/value cache against KerasHub's
own ``generate()``, tokens per second at batch 1 on this CPU, with file sizes (what a phone would get).

    python benchmarks/keras_hub_gpt2.py                      # context 1024 (GPT-2's), 64 new tokens
    python benchmarks/keras_hub_gpt2.py --context-length 256 --new-tokens 32

No download: a random-weight GPT2CausalLM of the real shape (12 layers, 12 heads, 768 wide, 3072 MLP,
50,257 tokens, 124 M parameters; a random BPE vocabulary of the real size) is saved as a local preset and
converted by ``python -m zoo convert keras-hub`` (its code, in-process). Speed does not depend on the
weights' values. Measured, greedy, batch 1, after the prompt "The zoo is a place where people come" (37 tokens
with the random vocabulary), ``--new-tokens`` new tokens (stop token off on both sides), best of ``--repeats``,
after one warm-up run:

- KerasHub: ``GPT2CausalLM.generate(prompt, max_length=prompt + new tokens)`` with its greedy sampler (the
  call a KerasHub user makes; it compiles its decoding loop with XLA on the first call, which the warm-up
  absorbs, and sizes its key/value cache to ``max_length``, not to the context);
- LiteRT, each of float32, float16, int8, with 2 threads, the cache fixed at ``--context-length``: the app loop (``zoo/convert/tflite_generate.py``:
  ``prefill`` once, then ``decode_step`` per token, the cache passed in and out through NumPy) and the
  in-graph ``generate`` signature (the whole loop in one call, builtin ``WHILE``).

Writes ``benchmarks/results/keras_hub_gpt2.json``; BENCHMARKS.md and ``zoo/convert/README.md`` quote it.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.core.runtime.paths import REPO_ROOT  # noqa: E402
from benchmarks.timing import best_time  # noqa: E402

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "keras_hub_gpt2.json")
PROMPT = "The zoo is a place where people come"
GPT2_BASE = {"num_layers": 12, "num_heads": 12, "hidden_dim": 768, "intermediate_dim": 3072,
             "max_sequence_length": 1024}
GPT2_MERGES = 50000  # + 256 bytes + <|endoftext|> = GPT-2's 50,257 tokens


def keras_hub_speed(preset, prompt_ids, new_tokens, repeats):
    import keras_hub

    causal_lm = keras_hub.models.CausalLM.from_preset(preset)
    causal_lm.compile(sampler="greedy")
    max_length = len(prompt_ids) + new_tokens

    def run():
        causal_lm.generate(PROMPT, max_length=max_length, stop_token_ids=None)

    seconds = best_time(run, repeats)
    return {"tokens_per_second": round(new_tokens / seconds, 2), "seconds": round(seconds, 3),
            "what": f"GPT2CausalLM.generate(prompt, max_length={max_length}), greedy sampler, stop token off"}


def litert_speed(folder, manifest, variant, prompt_ids, new_tokens, repeats, threads):
    from zoo.core.apps.text_sampling import TFLiteDecoder, generate_tokens

    path = os.path.join(folder, manifest["tflite"][variant]["path"])
    app = TFLiteDecoder(path, num_threads=threads)
    app_seconds = best_time(lambda: generate_tokens(app, prompt_ids, new_tokens, slide=False), repeats)
    del app
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    generate = interpreter.get_signature_runner("generate")
    context = manifest["signatures"]["generate"]["inputs"]["noise"]["shape"][1]
    inputs = dict(tokens=np.asarray([prompt_ids], np.int32), lengths=np.asarray([len(prompt_ids)], np.int32),
                  max_new_tokens=np.asarray([new_tokens], np.int32), temperature=np.zeros(1, np.float32),
                  top_k=np.zeros(1, np.int32), top_p=np.ones(1, np.float32), noise=np.zeros((1, context), np.float32))
    graph_seconds = best_time(lambda: generate(**inputs), repeats)
    return {"file_megabytes": round(os.path.getsize(path) / 1e6, 1),
            "app_loop_tokens_per_second": round(new_tokens / app_seconds, 2),
            "in_graph_generate_tokens_per_second": round(new_tokens / graph_seconds, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--context-length", type=int, default=1024)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work-dir", default=None, help="keep the preset and the export here (default: a temp dir)")
    args = parser.parse_args(argv)

    from zoo.convert import keras_hub as converter
    from zoo.convert.bpe import BytePairTokenizer
    from zoo.core.runtime.runners import read_manifest

    work = args.work_dir or tempfile.mkdtemp(prefix="zoo-gpt2-bench-")
    preset = os.path.join(work, "gpt2_base_shape_random")
    output = os.path.join(work, f"gpt2-{args.context_length}")
    started = time.time()
    if not os.path.isdir(preset):
        converter.random_preset(preset, merges=converter.random_merges(GPT2_MERGES), **GPT2_BASE)
    timings = {"preset_seconds": round(time.time() - started, 1)}
    started = time.time()
    if not os.path.isfile(os.path.join(output, "manifest.json")):
        converter.convert(preset, output, context_length=args.context_length)
        timings["convert_seconds"] = round(time.time() - started, 1)
    else:
        timings["convert_seconds"] = None  # converted by an earlier run with the same --work-dir
    manifest = read_manifest(output)
    prompt_ids = BytePairTokenizer.from_folder(output).encode(PROMPT)

    results = {"model": "random-weight GPT2CausalLM of gpt2_base_en's shape", **GPT2_BASE,
               "parameters": manifest["training"]["parameters"], "vocabulary_size": GPT2_MERGES + 257,
               "context_length": args.context_length, "prompt_tokens": len(prompt_ids), "new_tokens": args.new_tokens,
               "threads": args.threads, **timings}
    print("KerasHub generate ...", flush=True)
    results["keras_hub_generate"] = keras_hub_speed(preset, prompt_ids, args.new_tokens, args.repeats)
    print(results["keras_hub_generate"], flush=True)
    sizes = {f["path"]: f["bytes"] for f in manifest["files"]}
    results["savedmodel_megabytes"] = round(sum(b for p, b in sizes.items() if p.startswith("1/")) / 1e6, 1)
    for variant in ("float32", "float16", "int8"):
        print(f"LiteRT {variant} ...", flush=True)
        results[f"litert_{variant}"] = litert_speed(output, manifest, variant, prompt_ids, args.new_tokens,
                                                    args.repeats, args.threads)
        print(results[f"litert_{variant}"], flush=True)
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    existing = {}
    if os.path.isfile(RESULTS):
        with open(RESULTS) as f:
            existing = json.load(f)
    existing[f"context_{args.context_length}"] = results
    with open(RESULTS, "w") as f:
        json.dump(existing, f, indent=2)
    print(json.dumps(results, indent=2))
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
