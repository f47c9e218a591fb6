"""What both sides of ``benchmarks/gpt.py`` are measured by: one scorer, one clock, one time-budget rule.

NumPy only, so nanoGPT's side (a Python with torch, ``benchmarks/nanogpt_side.py``) and the
zoo's side (TensorFlow) import the same code.

- **Scorer**: the whole validation split (the last 10% of tiny Shakespeare), cut into
  non-overlapping windows of the context length (the tail a shorter window), every position
  predicted from the positions before it in its window; mean cross-entropy in nats per
  character, in float64 from each side's logits (``zoo.core.metrics.mnist.cross_entropy_sum``, which
  the GPT recipe's own validation loss uses too).
- **Clock**: seconds of training since the first training step began, evaluation and
  checkpoint writing excluded, on both sides (:class:`TrainingClock`). The zoo's first step
  includes its graph tracing; neither side's start-up (imports, building the model) counts.
- **Time budget**: given a budget T and a side's mean step time and one-off overhead (measured
  by a short calibration run of that side), :func:`plan_iterations` gives the iteration count
  whose learning-rate schedule (warm-up, cosine decay to 10%) ends at T. Each side then runs all its iterations:
  a schedule is never cut short, and the plan never leaves more than 10% of T unused.
"""

import contextlib
import time

import numpy as np

from zoo.core.metrics.mnist import cross_entropy_sum  # noqa: E402  (NumPy only, like this file; the GPT recipe's too)

MAX_UNUSED_FRACTION = 0.10


def validation_windows(tokens, context):
    """The split as inputs+targets windows: ``[n, context + 1]`` non-overlapping ones, and the tail
    (fewer than ``context`` predicted positions) as one shorter window, or None."""
    tokens = np.asarray(tokens)
    full = (len(tokens) - 1) // context
    windows = tokens[np.arange(full)[:, None] * context + np.arange(context + 1)[None, :]]
    rest = tokens[full * context:]
    return windows, (rest[None, :] if len(rest) > 1 else None)


def score(logits_of, tokens, context, batch_size=128):
    """Nats per token of ``logits_of(inputs [b, t] int64) -> logits [b, t, vocab]`` on the whole split."""
    windows, tail = validation_windows(tokens, context)
    total, count = 0.0, 0
    for part in [windows[i : i + batch_size] for i in range(0, len(windows), batch_size)] + [tail]:
        if part is None:
            continue
        total += cross_entropy_sum(logits_of(part[:, :-1].astype(np.int64)), part[:, 1:])
        count += part[:, 1:].size
    return {"loss": round(total / count, 4), "tokens_scored": count}


def plan_iterations(budget_seconds, step_seconds, evaluations=8, overhead_seconds=0.0):
    """The iterations (a multiple of ``evaluations``, so evaluation points fall evenly and the last
    one on the end) that fill ``budget_seconds`` at ``step_seconds`` a step, after a one-off
    ``overhead_seconds`` (the zoo's graph tracing), without passing it.

    Raises ValueError where no such count leaves at most 10% of the budget unused (a budget of
    fewer than about ``10 * evaluations`` steps): a plan that cannot meet the rule is refused, not run.
    """
    if budget_seconds <= 0 or step_seconds <= 0 or overhead_seconds < 0:
        raise ValueError(f"budget and step time must be positive, got {budget_seconds} and {step_seconds}")
    fits = max(0, int((budget_seconds - overhead_seconds) / step_seconds))
    iterations = fits - fits % evaluations
    unused = budget_seconds - overhead_seconds - iterations * step_seconds
    if iterations < evaluations or unused > MAX_UNUSED_FRACTION * budget_seconds:
        raise ValueError(f"a {budget_seconds:.0f} s budget at {step_seconds:.3f} s a step holds {fits} steps: too few "
                         f"for {evaluations} evaluation points within {MAX_UNUSED_FRACTION:.0%} of the budget; "
                         f"give at least {10 * evaluations * step_seconds * 1.2:.0f} s")
    return iterations


class TrainingClock:
    """Training seconds: wall time since ``start()``, less the time between ``pause()`` and ``resume()``.

    Both sides call ``start()`` as their first training step begins and pause the clock around
    evaluation and checkpoint writing (``with clock.excluded():``, or the two calls from hooks).
    ``step()`` marks each step's end; the median gap between marks is the step time.
    """

    def __init__(self, now=time.perf_counter):
        self.now = now
        self.started = self.paused_at = None
        self.excluded_seconds = 0.0
        self.step_ends = []  # clock readings

    def start(self):
        self.started = self.now()

    def seconds(self):
        """Training seconds so far (while paused: up to the pause)."""
        now = self.paused_at if self.paused_at is not None else self.now()
        return now - self.started - self.excluded_seconds

    def step(self):
        self.step_ends.append(self.seconds())

    def pause(self):
        if self.paused_at is None:
            self.paused_at = self.now()

    def resume(self):
        if self.paused_at is not None:
            self.excluded_seconds += self.now() - self.paused_at
            self.paused_at = None

    @contextlib.contextmanager
    def excluded(self):
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def calibration(self, skip=5):
        """``{"step_seconds", "overhead_seconds"}`` of a short run: the mean step after the first
        ``skip`` (the mean, not the median: a budget is spent by the sum of the steps, slow ones
        included), and what the first ``skip`` cost beyond that (tracing, warm-up)."""
        if len(self.step_ends) <= skip:
            raise ValueError(f"{len(self.step_ends)} steps timed: too few to calibrate (skipping {skip})")
        step = (self.step_ends[-1] - self.step_ends[skip - 1]) / (len(self.step_ends) - skip)
        return {"step_seconds": round(step, 5), "overhead_seconds": round(max(0.0, self.step_ends[skip - 1]
                                                                                   - skip * step), 3)}

    def median_step_seconds(self, skip=5):
        """The median gap between step ends, the first ``skip`` (warm-up, tracing) left out."""
        readings = [0.0] + self.step_ends
        gaps = [b - a for a, b in zip(readings, readings[1:])]
        if len(gaps) <= skip:
            raise ValueError(f"{len(gaps)} steps timed: too few for a step time (skipping {skip})")
        return float(np.median(gaps[skip:]))
