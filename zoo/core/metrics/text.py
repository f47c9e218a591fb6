"""A language model's quality: its mean next-token cross-entropy on held-out text (the byte-level GPT's, a
fine-tuned converted GPT-2's), through any runtime's ``logits`` signature."""

import numpy as np

from zoo.core.metrics.mnist import cross_entropy_sum

EVAL_BATCH = 64


def validation_loss(runner, data, context_length, max_windows=None, batch_size=EVAL_BATCH, unit="byte"):
    """Mean next-``unit`` cross-entropy (nats per ``unit``) over non-overlapping ``context_length`` windows of
    ``data`` (bytes or token ids); returns ``validation_loss`` and ``validation_<unit>s`` (how many were scored).

    The windows are those training validates on (``text_dataset`` without shuffle),
    so the number compares with the run's ``val_loss``.
    """
    from zoo.core.data.datasets import window_starts

    starts = window_starts(len(data), context_length, shuffle=False)[:max_windows]
    windows = np.asarray(data)[starts[:, None] + np.arange(context_length + 1)[None, :]].astype(np.int32)
    total = 0.0
    for i in range(0, len(windows), batch_size):
        chunk = windows[i : i + batch_size]
        total += cross_entropy_sum(runner("logits", tokens=chunk[:, :-1])["logits"], chunk[:, 1:])
    return {"validation_loss": round(float(total / windows[:, 1:].size), 4),
            f"validation_{unit}s": int(windows[:, 1:].size)}
