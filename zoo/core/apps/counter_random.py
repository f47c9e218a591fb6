"""Uniform numbers from (seed, counter) with integer arithmetic only, the same in NumPy, TensorFlow and LiteRT.

An exported sampler that takes a ``seed`` cannot call ``tf.random`` (Flex in TFLite, and not the same
numbers in every runtime). This hash is three Wichmann-Hill streams (moduli near 30,300, so every
product fits in int32 exactly) mixed by four rounds of squaring, summed modulo the first modulus, and
scaled by one float multiplication: integers until the last step, so the in-graph sampler, LiteRT and
an app's NumPy loop draw identical numbers (summing three float fractions, as Wichmann-Hill do, let
TensorFlow's fused kernels differ from NumPy in the last bit). It is written with operators only
(``*``, ``+``, ``%``: floor modulo in both libraries). Not cryptographic: enough to pick which notes
to resample and to break ties in sampling; the resolution is 1 / 30269.

    >>> u = counter_uniform(np.array([[7]]), np.arange(4)[None, :], lambda x: x.astype(np.float32))
"""

PRIMES = (30269, 30307, 30323)
MULTIPLIERS = (171, 172, 170)
ROUNDS = 4


def counter_uniform(seed, counter, to_float):
    """``seed`` and ``counter`` integer arrays or int32 tensors (broadcasting) -> float32 uniform in (0, 1)
    (``(h + 0.5) / 30269`` for an integer h, so never 0 or 1: a Gumbel draw takes log(-log(u))).

    ``to_float`` casts an integer array to float32 (``lambda x: x.astype(np.float32)`` in NumPy,
    ``lambda x: tf.cast(x, tf.float32)`` in TensorFlow)."""
    total = 0
    for prime, multiplier in zip(PRIMES, MULTIPLIERS):
        state = seed % prime + 1
        x = (state * multiplier + counter % prime) % prime
        for round_index in range(ROUNDS):
            x = (x * x + state + round_index * multiplier) % prime
        total = total + x  # < 3 * 30323: no overflow
    return (to_float(total % PRIMES[0]) + 0.5) * (1.0 / PRIMES[0])
