"""Exponential moving averages of weights: the steadier copy the GANs and the diffusion model sample with."""

from keras import ops


def update_moving_average(averages, weights, decay, step):
    """``average <- d * average + (1 - d) * weight`` for each pair, with warm-up.

    ``d = min(decay, (1 + step) / (10 + step))``, as ``tf.train.ExponentialMovingAverage``
    with ``num_updates``: early on the average follows the fast-changing weights
    instead of staying near the random initialisation.
    """
    step = ops.cast(step, "float32")
    d = ops.minimum(decay, (1.0 + step) / (10.0 + step))
    for average, weight in zip(averages, weights):
        average.assign(d * average + (1.0 - d) * weight)


def copy_weights(target, source):
    """Start an average (or any copy) at the source's current weights."""
    for average, weight in zip(target.weights, source.weights):
        average.assign(weight)
