"""In-graph loops that TFLite's int8 converter can calibrate."""

import tensorflow as tf


def while_loop_carrying(cond, body, loop_vars, invariants):
    """``tf.while_loop`` over ``loop_vars`` (the first an int32 counter counting up from 0) whose
    ``body(*loop_vars, *invariants)`` also reads ``invariants``, tensors the loop does not change; returns the
    final ``loop_vars``.

    The invariants travel as loop variables that each iteration re-emits plus ``min(counter, 0)``, a zero the
    converter cannot fold away. Read from outside (a capture), or passed through unchanged, a tensor becomes a
    WHILE operand that TFLite frees once prepared, and the int8 converter's calibrator then reads the freed
    memory and crashes (tensorflow#75140): the full-integer int8 files need this. It adds one element-wise
    addition per invariant and iteration and changes no value."""
    count = len(loop_vars)

    def body_carrying(*variables):
        zero = tf.minimum(variables[0], 0)
        return (*body(*variables), *(v + tf.cast(zero, v.dtype) for v in variables[count:]))

    results = tf.while_loop(lambda *variables: cond(*variables[:count]), body_carrying,
                            [*loop_vars, *invariants])
    return results[:count]
