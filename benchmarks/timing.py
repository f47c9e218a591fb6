"""Timing calls: one way for every benchmark."""

import time


def call_times(function, repeats, warmup=1):
    """``(seconds of each of repeats calls of function(), the last call's result)``, after ``warmup``
    untimed calls (XLA compilation, an interpreter's first allocations)."""
    for _ in range(warmup):
        function()
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return times, result


def best_time(function, repeats, warmup=1):
    """Seconds of the fastest of ``repeats`` timed calls: the one least disturbed by other work."""
    return min(call_times(function, repeats, warmup)[0])
