"""nanoGPT's side of ``benchmarks/gpt.py``: its own ``train.py``, unmodified, observed by hooks.

Run by a Python with torch (not a zoo dependency), from ``benchmarks/gpt.py``:

    python -m benchmarks.nanogpt_side --nanogpt-dir ~/nanoGPT --output run.json --seed 0 -- [train.py flags]

The hooks only observe and keep: the shared training clock
(``gpt_protocol.TrainingClock``) starts when train.py's first evaluation ends and is paused
from each later ``model.eval()`` (its evaluation) until its checkpoint is written; every
optimizer step is marked; each checkpoint train.py saves is scored, while the clock is paused,
by the shared scorer (``gpt_protocol.score``: the whole validation split) through nanoGPT's
own ``model.py``; ``--seed S`` adds S to train.py's ``torch.manual_seed(1337)`` (train.py
has no seed flag). train.py's checkpoint file itself is written as it always is.
"""

import argparse
import json
import os
import runpy
import sys
import time

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))

from benchmarks import gpt_protocol  # noqa: E402


def load_module(path, name):
    """The Python file at ``path`` imported as module ``name`` (and kept in ``sys.modules`` under it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def validation_tokens(nanogpt_dir):
    """The last 10% of the text, encoded as nanoGPT's prepare.py encodes it (sorted characters)."""
    with open(os.path.join(nanogpt_dir, "data", "shakespeare_char", "input.txt"), encoding="utf-8") as f:
        text = f.read()
    index = {c: i for i, c in enumerate(sorted(set(text)))}
    return [index[c] for c in text[int(len(text) * 0.9):]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nanogpt-dir", required=True)
    parser.add_argument("--output", required=True, help="the run's JSON: checkpoints' clock and loss, step time")
    parser.add_argument("--seed", type=int, default=0, help="added to train.py's torch.manual_seed(1337)")
    parser.add_argument("flags", nargs="*", help="train.py's own flags (after --)")
    args = parser.parse_args()
    import numpy as np
    import torch

    output = os.path.abspath(args.output)  # before train.py's folder becomes the working directory
    os.chdir(args.nanogpt_dir)
    # nanoGPT's model.py, under the name its train.py imports it by (`from model import ...`)
    nanogpt_model = load_module(os.path.join(args.nanogpt_dir, "model.py"), "model")
    GPT, GPTConfig = nanogpt_model.GPT, nanogpt_model.GPTConfig

    clock = gpt_protocol.TrainingClock()
    tokens = np.asarray(validation_tokens(args.nanogpt_dir))
    checkpoints = []

    original_train, original_save, original_seed = GPT.train, torch.save, torch.manual_seed

    def train(self, mode=True):  # the end of train.py's estimate_loss(), or nn.Module.eval()'s call
        result = original_train(self, mode)
        if mode:
            clock.start() if clock.started is None else clock.resume()
        elif clock.started is not None:
            clock.pause()
        return result

    def save(obj, path, *a, **k):
        if not (isinstance(obj, dict) and "iter_num" in obj):
            return original_save(obj, path, *a, **k)
        with clock.excluded():
            original_save(obj, path, *a, **k)
            model = GPT(GPTConfig(**obj["model_args"]))
            model.load_state_dict(obj["model"])
            model.eval()
            context = obj["model_args"]["block_size"]

            @torch.no_grad()
            def logits_of(inputs):
                x = torch.from_numpy(inputs)
                return model(x, x)[0].numpy()  # with targets, nanoGPT returns every position's logits

            result = gpt_protocol.score(logits_of, tokens, context)
            checkpoints.append({"iteration": obj["iter_num"], "seconds": round(clock.seconds(), 2), **result})
            print(f"[benchmark] iteration {obj['iter_num']}: {clock.seconds():.1f} s of training, "
                  f"validation loss {result['loss']:.4f} (shared protocol)", flush=True)

    GPT.train = train
    torch.save = save
    torch.manual_seed = lambda seed: original_seed(seed + args.seed)
    from torch.optim.optimizer import register_optimizer_step_post_hook

    register_optimizer_step_post_hook(lambda *a: clock.step())
    sys.argv = ["train.py", *args.flags]
    started = time.time()
    runpy.run_path("train.py", run_name="__main__")
    result = {"side": "nanoGPT train.py (commit of --nanogpt-dir) " + " ".join(args.flags), "seed": args.seed,
              "checkpoints": checkpoints, "steps": len(clock.step_ends),
              "median_step_seconds": round(clock.median_step_seconds(), 5), **clock.calibration(),
              "training_seconds": round(clock.step_ends[-1], 2), "process_seconds": round(time.time() - started, 1),
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    with open(output, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
