"""nanoGPT's CPU recipe re-implemented in PyTorch: ``benchmarks/gpt.py --offline-fallback`` only.

``benchmarks/gpt.py`` runs nanoGPT's own ``train.py`` (https://github.com/karpathy/nanoGPT);
this file is the fallback where no checkout can be had. It re-implements, from nanoGPT's
README and configuration, the run its README gives for a CPU:

    python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
        --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
        --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0

that is: a character-level GPT (65 characters), pre-norm blocks with LayerNorm and Linear layers
without biases, GELU MLPs 4x wide, learned positions, tied input/output embeddings, normal(0.02)
initialization (residual projections 0.02 / sqrt(2 * layers)); AdamW (betas 0.9/0.99, weight
decay 0.1 on matrices and embeddings), learning rate 1e-3 with 100 warm-up iterations and cosine
decay to 1e-4 at iteration 2000, gradient clipping at norm 1; random windows of 64 characters,
batch 12; a 20-batch estimate of the train and validation loss every ``--eval-interval``
iterations. It follows ``gpt_protocol``'s clock and scorer as ``nanogpt_side.py`` does.

    python -m benchmarks.nanogpt_recipe --data input.txt --output result.json [--max-iters N --eval-interval K]

Needs ``torch`` (not a zoo dependency).
"""

import argparse
import json
import math
import time

START = time.time()

import numpy as np  # noqa: E402

from benchmarks import gpt_protocol  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402


class Block(nn.Module):
    def __init__(self, width, heads, layers):
        super().__init__()
        self.heads = heads
        self.norm_1 = nn.LayerNorm(width, bias=False)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.attention_projection = nn.Linear(width, width, bias=False)
        self.norm_2 = nn.LayerNorm(width, bias=False)
        self.hidden = nn.Linear(width, 4 * width, bias=False)
        self.mlp_projection = nn.Linear(4 * width, width, bias=False)
        for projection in (self.attention_projection, self.mlp_projection):
            nn.init.normal_(projection.weight, std=0.02 / math.sqrt(2 * layers))

    def forward(self, x):
        batch, time_, width = x.shape
        q, k, v = self.qkv(self.norm_1(x)).split(width, dim=2)
        q, k, v = (t.view(batch, time_, self.heads, width // self.heads).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attention_projection(attended.transpose(1, 2).contiguous().view(batch, time_, width))
        return x + self.mlp_projection(F.gelu(self.hidden(self.norm_2(x))))


class CharGPT(nn.Module):
    def __init__(self, vocab, context, width, heads, layers):
        super().__init__()
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Embedding(context, width)
        nn.init.normal_(self.token.weight, std=0.02)
        nn.init.normal_(self.position.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(width, heads, layers) for _ in range(layers))
        for block in self.blocks:
            for linear in (block.qkv, block.hidden):
                nn.init.normal_(linear.weight, std=0.02)
        self.norm = nn.LayerNorm(width, bias=False)

    def logits(self, idx):
        x = self.token(idx) + self.position(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.token.weight.T  # tied embeddings

    def forward(self, idx, targets):
        logits = self.logits(idx)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="tinyshakespeare/input.txt")
    parser.add_argument("--output", required=True)
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="added to nanoGPT's seed, 1337")
    parser.add_argument("--eval-interval", type=int, default=250)
    args = parser.parse_args()
    torch.manual_seed(1337 + args.seed)
    text = open(args.data, encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    encoded = np.array([index[c] for c in text], dtype=np.int64)
    cut = int(0.9 * len(encoded))
    splits = {"train": torch.from_numpy(encoded[:cut]), "val": torch.from_numpy(encoded[cut:])}
    context, batch_size, iters = 64, 12, args.max_iters
    lr, min_lr, warmup, decay_iters = 1e-3, 1e-4, 100, args.max_iters
    model = CharGPT(len(chars), context, 128, 4, 4)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.99))

    def batch(split):
        data = splits[split]
        starts = torch.randint(len(data) - context, (batch_size,))
        return (torch.stack([data[i : i + context] for i in starts]),
                torch.stack([data[i + 1 : i + 1 + context] for i in starts]))

    def learning_rate(it):
        if it < warmup:
            return lr * (it + 1) / (warmup + 1)
        if it > decay_iters:
            return min_lr
        ratio = (it - warmup) / (decay_iters - warmup)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)

    @torch.no_grad()
    def estimate(split, batches=20):
        model.eval()
        losses = [model(*batch(split)).mean().item() for _ in range(batches)]
        model.train()
        return float(np.mean(losses))

    clock = gpt_protocol.TrainingClock()
    val_tokens = splits["val"].numpy()

    @torch.no_grad()
    def logits_of(inputs):
        x = torch.from_numpy(inputs)
        return model.logits(x).numpy()

    history, checkpoints = [], []
    for it in range(iters + 1):
        if it % args.eval_interval == 0 or it == iters:
            with clock.excluded():
                history.append({"iter": it, "train_loss": estimate("train"), "val_loss": estimate("val")})
                print(f"step {it}: train loss {history[-1]['train_loss']:.4f}, val loss {history[-1]['val_loss']:.4f}",
                      flush=True)
                if it > 0:
                    model.eval()
                    checkpoints.append({"iteration": it, "seconds": round(clock.seconds(), 2),
                                        **gpt_protocol.score(logits_of, val_tokens, context)})
                    model.train()
        if it == 0:
            clock.start()
        if it == iters:
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(it)
        x, y = batch("train")
        loss = model(x, y).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        clock.step()
    result = {"side": "nanoGPT CPU recipe (PyTorch re-implementation, benchmarks/nanogpt_recipe.py; offline fallback)",
              "seed": args.seed, "checkpoints": checkpoints, "steps": len(clock.step_ends),
              "median_step_seconds": round(clock.median_step_seconds(), 5), **clock.calibration(),
              "training_seconds": round(clock.step_ends[-1], 2), "process_seconds": round(time.time() - START, 1),
              "final_val_estimate": round(history[-1]["val_loss"], 4), "torch": torch.__version__,
              "threads": torch.get_num_threads()}
    with open(args.output, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "checkpoints"}))


if __name__ == "__main__":
    main()
