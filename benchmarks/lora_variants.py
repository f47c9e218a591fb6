"""Why LoRA stays 5.9% above full fine-tuning on the GPT-to-Python task (issue 43): one LoRA training, no export.

    python -m benchmarks.lora_variants baseline                             # the recipe's settings
    python -m benchmarks.lora_variants wd0 --weight-decay 0                 # AdamW's weight decay (default 0.1)
    python -m benchmarks.lora_variants alpha8 --alpha 8                     # adapter scale (default: the rank, 4)
    python -m benchmarks.lora_variants bitfit --train-in-full qkv/bias mlp_hidden/bias
    python -m benchmarks.lora_variants pissa --pissa --undecayed-adapters --learning-rate 0.02
    python -m benchmarks.lora_variants loraplus4 --a-scale 4                # LoRA+: B learns 4x faster than A
    python -m benchmarks.lora_variants full-lr-0.25 --full-weights-lr-factor 0.25   # embedding and norms slower
    python -m benchmarks.lora_variants dora --dora attention_output mlp_hidden mlp_output   # DoRA magnitudes
    python -m benchmarks.lora_variants dropout0 --dropout 0                 # the base's dropout (0.1) off
    python -m benchmarks.lora_variants full-dropout0 --full --dropout 0     # full fine-tuning, the same change

The same data, steps (200), batch (32), seed (0 unless ``--seed``) and base as ``benchmarks/finetune.py``'s LoRA row as it was before
the recipe's embedding rows (rank 4, the byte embedding and the layer norms trained in full, the base's dropout), with
one thing changed: AdamW's weight decay, the peak learning rate, the adapters' alpha, more weights trained in
full beside the recipe's ``lora_trains_in_full``, their learning rate apart from the adapters', PiSSA's initialisation (A B = the kernel's top singular
directions, the kernel keeps the rest), or LoRA+ (Hayou et al. 2024: B's learning rate a multiple of A's). Adam
moves each weight about the learning rate a step whatever its scale, so A started ``--a-scale`` times larger
gives B's steps that many times the effect on A B while A's own steps keep theirs: LoRA+ at that ratio.
``--embedding-rank R`` adapts the byte embedding (also the output head) with a rank-R product instead of
training it in full, leaving its 49,152 weights' share of the budget to the kernels' adapters (``--rank``).
``--embedding-rows-seen`` trains only the embedding rows of the bytes the training text holds (96 of 256).
``--dropout`` replaces the base's dropout rate (0.1) for the run; ``--full`` trains every weight instead
(at the GPT's 1.5e-3 unless ``--learning-rate``), to see a change on both sides. ``--dora LAYER...`` adds DoRA's magnitudes (Liu et al. 2024: each adapted kernel's columns rescaled to a
learned length, ``m * V / ||V||`` with V = W + A B; m starts at W's column norms) to the adapted layers whose
path contains one of the names. Prints the final validation loss (nats per byte); runs go to /tmp/lora-variants/<TAG>.run.
"""

import argparse
import functools
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import zoo.gpt.recipe as gpt_recipe  # noqa: E402
from benchmarks.finetune import python_corpus  # noqa: E402
from zoo.core.nn import lora  # noqa: E402
from zoo.core.recipes import commands  # noqa: E402
from zoo.core.runtime.paths import EXPORTED_DIR  # noqa: E402

WORK_DIR = "/tmp/lora-variants"
RANK = 4


def pissa(model):
    """Move each adapted kernel's top-``rank`` singular directions into its adapters (PiSSA): the same function,
    the adapters starting where the kernel varies most."""
    for layer in lora.adaptable_layers(model):
        if getattr(layer, "lora_enabled", False):
            kernel = np.asarray(layer._kernel.numpy(), np.float64)
            u, singular, vt = np.linalg.svd(kernel, full_matrices=False)
            rank, scale = layer.lora_rank, layer.lora_alpha / layer.lora_rank
            a = u[:, :rank] * np.sqrt(singular[:rank] / scale)
            b = np.sqrt(singular[:rank])[:, None] * vt[:rank]
            layer.lora_kernel_a.assign(a.astype(np.float32))
            layer.lora_kernel_b.assign(b.astype(np.float32))
            layer._kernel.assign((kernel - scale * a @ b).astype(np.float32))


def slower(optimizer, factor):
    """Make ``optimizer`` step every weight that is not an adapter at ``factor`` times its learning rate (Adam's
    step; AdamW's decay keeps the full rate)."""
    update_step = optimizer.update_step

    def update_step_with_factor(gradient, variable, learning_rate):
        # the TensorFlow backend passes its own variable here: the name tells an adapter
        if variable.name.split(":")[0].rsplit("/", 1)[-1] not in lora.ADAPTER_NAMES:
            learning_rate = learning_rate * factor
        return update_step(gradient, variable, learning_rate)

    optimizer.update_step = update_step_with_factor


def enable_dora(model, names):
    """DoRA's magnitude vectors on the adapted Dense layers whose path contains one of ``names``; returns how
    many weights they add. Dense's ``kernel`` (what its ``call`` multiplies by) is wrapped for this study."""
    import keras
    from keras import layers, ops

    if not getattr(layers.Dense, "_dora_wrapped", False):
        lora_kernel = layers.Dense.kernel

        def kernel(self):
            adapted = lora_kernel.fget(self)
            magnitude = getattr(self, "dora_magnitude", None)
            if magnitude is None:
                return adapted
            return adapted * (magnitude / ops.sqrt(ops.sum(ops.square(adapted), axis=0)))

        layers.Dense.kernel = property(kernel)
        layers.Dense._dora_wrapped = True
    added = 0
    for layer in lora.adaptable_layers(model):
        if getattr(layer, "lora_enabled", False) and any(name in layer._kernel.path for name in names):
            norms = np.sqrt((layer._kernel.numpy().astype(np.float64) ** 2).sum(axis=0)).astype(np.float32)
            layer._tracker.unlock()
            layer.dora_magnitude = layer.add_weight(name="dora_magnitude", shape=norms.shape,
                                                    initializer=keras.initializers.Constant(norms))
            layer._tracker.lock()
            added += norms.size
    return added


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tag", help="the run's name")
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="peak rate (default: the recipe's LoRA rate, or its training rate with --full)")
    parser.add_argument("--alpha", type=float, default=None)
    parser.add_argument("--train-in-full", nargs="*", default=[], help="more weight-path parts trained in full")
    parser.add_argument("--pissa", action="store_true")
    parser.add_argument("--a-scale", type=float, default=1.0, help="A's initial draws times this (LoRA+ ratio)")
    parser.add_argument("--undecayed-adapters", action="store_true", help="no weight decay on the adapters")
    parser.add_argument("--dropout", type=float, default=None, help="the run's dropout rate (the base's: 0.1)")
    parser.add_argument("--rank", type=int, default=RANK, help=f"the adapters' rank (the benchmark's: {RANK})")
    parser.add_argument("--embedding-rank", type=int, default=None,
                        help="a low-rank adapter of this rank on the byte embedding (also the output head) instead "
                             "of training it in full")
    parser.add_argument("--embedding-rows-seen", action="store_true",
                        help="train only the byte embedding's rows of the bytes the training text holds (row adapters)")
    parser.add_argument("--seed", type=int, default=0, help="the adapters' draws and the batches' order")
    parser.add_argument("--full", action="store_true", help="full fine-tuning instead of the adapters")
    parser.add_argument("--dora", nargs="*", default=None, help="DoRA magnitudes on the adapted layers named")
    parser.add_argument("--full-weights-lr-factor", type=float, default=1.0,
                        help="the weights trained in full (not the adapters) learn at this times the rate")
    args = parser.parse_args(argv)

    undecayed = ("bias", "gamma", "beta", "dora_magnitude") + (("lora",) if args.undecayed_adapters else ())
    compile_with_adamw = functools.partial(gpt_recipe.adamw_with_warmup, weight_decay=args.weight_decay,
                                           undecayed=undecayed)

    def compile_variant(model, config):
        compile_with_adamw(model, config)
        if args.full_weights_lr_factor != 1.0:
            slower(model.optimizer, args.full_weights_lr_factor)

    gpt_recipe.adamw_with_warmup = compile_variant
    enable = lora.enable

    def enable_variant(model, rank, seed=0, train_in_full=(), embedding_rows=None, **_):
        # the study's baseline is the recipe it was measured against: the whole byte embedding in full
        if not (args.embedding_rank or args.embedding_rows_seen):
            train_in_full = ("token_embedding", *train_in_full)
        rows = embedding_rows if args.embedding_rows_seen else None  # the recipe's: the training bytes' rows
        enable(model, rank, seed, (*train_in_full, *args.train_in_full), alpha=args.alpha, embedding_rows=rows)
        if args.embedding_rank:
            model.token_embedding.enable_lora(args.embedding_rank,
                                              a_initializer=keras.initializers.HeUniform(seed=seed * 1000 + 999))
        if args.pissa:
            pissa(model)
        for layer in lora.adaptable_layers(model):
            layer.lora_kernel_a.assign(layer.lora_kernel_a * args.a_scale)
        if args.dora:
            added = enable_dora(model, args.dora)
            trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
            print(f"DoRA magnitudes: {added:,} weights; trainable now {trainable:,}")
        return model

    lora.enable = enable_variant
    start_from = gpt_recipe.start_from

    def start_from_variant(recipe, preset, seed, path):
        model = start_from(recipe, preset, seed, path)
        if args.dropout is None:
            return model
        variant = type(model).from_config({**model.get_config(), "dropout": args.dropout})
        variant.set_weights(model.get_weights())
        return variant

    gpt_recipe.start_from = start_from_variant
    recipe = gpt_recipe.GPTRecipe
    learning_rate = args.learning_rate or (recipe.defaults["learning_rate"] if args.full else recipe.lora_learning_rate)
    os.makedirs(WORK_DIR, exist_ok=True)
    data, _ = python_corpus(WORK_DIR)
    started = time.time()
    state = commands.train("gpt", verbose=0, samples=False, validate_first=True, lora_rank=None if args.full else args.rank,
                           fine_tune_from=os.path.join(EXPORTED_DIR, "gpt"), text=data, steps=200, epochs=1,
                           batch_size=32, learning_rate=learning_rate, seed=args.seed,
                           run_dir=os.path.join(WORK_DIR, f"{args.tag}.run"), fresh=True)
    print(f"{args.tag}: validation loss {state['metrics']['val_loss']:.4f} nats per byte (base "
          f"{state['metrics_before']['val_loss']:.4f}), {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
