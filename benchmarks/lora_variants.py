"""Why LoRA stays 5.9% above full fine-tuning on the GPT-to-Python task (issue 43): one LoRA training, no export.

    python -m benchmarks.lora_variants WEIGHT_DECAY LEARNING_RATE TAG [full]
    ALPHA=8 python -m benchmarks.lora_variants 0.1 0.02 alpha8          # adapter scale alpha (default: the rank)
    EXTRA_FULL=qkv/bias,mlp_hidden/bias python -m benchmarks.lora_variants 0.1 0.02 bitfit
    PISSA=1 NOLORADECAY=1 python -m benchmarks.lora_variants 0.1 0.02 pissa   # adapters from the top-4 SVD

The same data, steps (200), batch (32), seed and base as ``benchmarks/finetune.py``'s LoRA row (rank 4), with
one thing changed: AdamW's weight decay, the peak learning rate, the adapters' alpha, more weights trained in
full, or PiSSA's initialisation (A B = the kernel's top singular directions, the rest frozen). Prints the final
validation loss (nats per byte); runs go to /tmp/lora-variants/<TAG>.run.
"""
import os
import sys
import time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from benchmarks.finetune import python_corpus
from zoo.core.recipes import commands
from zoo.core.runtime.paths import EXPORTED_DIR
import zoo.gpt.recipe as gr


def main():
    wd = float(sys.argv[1]); lr = float(sys.argv[2]); tag = sys.argv[3]; full = len(sys.argv) > 4 and sys.argv[4] == "full"
    import keras
    undecayed = ("bias", "gamma", "beta") + (("lora",) if os.environ.get("NOLORADECAY") else ())
    original_compile = gr.adamw_with_warmup

    def patched(model, config):
        original_compile(model, config, weight_decay=wd, undecayed=undecayed)

    gr.adamw_with_warmup = patched
    work = "/tmp/lora-variants"; os.makedirs(work, exist_ok=True)
    data, _ = python_corpus(work)
    base = os.path.join(EXPORTED_DIR, "gpt")
    recipe = commands._recipe("gpt")
    extra = os.environ.get("EXTRA_FULL")
    if extra: type(recipe).lora_trains_in_full = tuple(recipe.lora_trains_in_full) + tuple(extra.split(","))
    print("in full", recipe.lora_trains_in_full)
    alpha = float(os.environ.get("ALPHA", "0"))
    if alpha:
        for cls in (keras.layers.Dense, keras.layers.EinsumDense):
            original = cls.enable_lora
            def enable_lora(self, rank, *a, _original=original, **k):
                k["lora_alpha"] = alpha
                return _original(self, rank, *a, **k)
            cls.enable_lora = enable_lora
    print("alpha", alpha)
    if os.environ.get("PISSA"):
        import numpy as np
        from zoo.core.nn import lora as lora_module
        original_enable = lora_module.enable
        def enable(model, rank, seed=0, train_in_full=()):
            original_enable(model, rank, seed, train_in_full)
            for layer in lora_module.adaptable_layers(model):
                if getattr(layer, "lora_enabled", False):
                    w = np.asarray(layer._kernel.numpy(), np.float64)
                    u, s_, vt = np.linalg.svd(w, full_matrices=False)
                    r = layer.lora_rank; scale = layer.lora_alpha / r
                    a = u[:, :r] * np.sqrt(s_[:r] / scale); b = np.sqrt(s_[:r])[:, None] * vt[:r]
                    layer.lora_kernel_a.assign(a.astype(np.float32)); layer.lora_kernel_b.assign(b.astype(np.float32))
                    layer._kernel.assign((w - scale * a @ b).astype(np.float32))
            print("PiSSA init", flush=True)
            return model
        lora_module.enable = enable
    t = time.time()
    state = commands.train(recipe, verbose=0, samples=False, validate_first=True, lora_rank=None if full else 4,
        fine_tune_from=base, text=data, steps=200, epochs=1, batch_size=32, learning_rate=lr, seed=0,
        run_dir=f"{work}/{tag}.run", fresh=True)
    print(tag, wd, lr, "val_loss", state["metrics"].get("val_loss"), "before", state.get("metrics_before"), round(time.time()-t), flush=True)


if __name__ == "__main__":
    main()
