"""DDIM and DDPM sampling loops in NumPy around a TFLite ``denoise_step``: the one copy phone apps use.

``denoise(images_t, timestep) -> predicted noise`` is any function (a LiteRT signature runner
with the conditioning bound in); ``alpha_bars`` is the model's noise schedule (its
``manifest.json``). The arithmetic is the graph's (``zoo.core.nn.unet.DDIMSampling``) in float32,
so with the same noise and step count the loop reproduces the exported in-graph one. Images are
in [-1, 1] inside the loop and returned in [0, 1]. Imports NumPy only.
"""

import numpy as np


def timesteps(num_timesteps, steps):
    """The ``steps`` timesteps a sampler visits, from T-1 down to 0, evenly spaced."""
    if int(steps) < 1:
        raise ValueError(f"the number of sampling steps must be at least 1, got {steps}")
    return np.linspace(num_timesteps - 1, 0, int(steps)).round().astype(np.int32)


def predict_x0(x, eps, alpha_bar):
    """The clean image implied by ``eps``, clipped to the data range, and the noise consistent with it."""
    signal, spread = np.sqrt(alpha_bar), np.sqrt(np.float32(1) - alpha_bar)
    x0 = np.clip((x - spread * eps) / signal, -1, 1)
    return x0, (x - signal * x0) / spread


def run_loop(denoise, alpha_bars, noise, steps, update, on_step=None):
    """Visit :func:`timesteps`; ``update(x, x0, eps, alpha_bar, alpha_previous, last) -> x_{t-1}``."""
    alpha_bars = np.asarray(alpha_bars, np.float32)
    schedule = list(timesteps(len(alpha_bars), steps)) + [-1]
    x = np.asarray(noise, np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("noise must be finite")
    for i in range(int(steps)):
        t, previous = schedule[i], schedule[i + 1]
        eps = np.asarray(denoise(x, np.full(len(x), t, np.int32)), np.float32)
        alpha_bar, alpha_previous = alpha_bars[t], (alpha_bars[previous] if previous >= 0 else np.float32(1.0))
        x0, eps = predict_x0(x, eps, alpha_bar)
        x = update(x, x0, eps, alpha_bar, alpha_previous, last=previous < 0).astype(np.float32)
        if on_step is not None:
            on_step(i, (x0 + 1) / 2, (x + 1) / 2)
    return (np.clip(x, -1, 1) + 1) / 2


def ddim_loop(denoise, alpha_bars, noise, steps=50, on_step=None):
    """Deterministic DDIM (Song et al. 2021, eta = 0).

    ``on_step(i, x0_estimate, images)`` is called after each step with the current guess of the
    final images and the current noisy images x_{t-1}, both scaled as [0, 1] (the noisy ones go
    beyond that range).
    """

    def update(x, x0, eps, alpha_bar, alpha_previous, last):
        return np.sqrt(alpha_previous) * x0 + np.sqrt(np.float32(1) - alpha_previous) * eps

    return run_loop(denoise, alpha_bars, noise, steps, update, on_step)


def ddpm_loop(denoise, alpha_bars, noise, steps=None, seed=0, on_step=None):
    """Ancestral DDPM (Ho et al. 2020): the posterior mean of x_{t-1} given x_t and the predicted x_0, plus
    fresh noise. ``steps`` defaults to every training timestep; fewer respace the schedule (Nichol &
    Dhariwal 2021: betas recomputed from ``alpha_bars`` at the visited timesteps)."""
    rng = np.random.default_rng(seed)
    steps = len(alpha_bars) if steps is None else steps

    def update(x, x0, eps, alpha_bar, alpha_previous, last):
        beta = 1 - alpha_bar / alpha_previous
        mean = (np.sqrt(alpha_previous) * beta / (1 - alpha_bar) * x0
                + np.sqrt(1 - beta) * (1 - alpha_previous) / (1 - alpha_bar) * x)
        if last:
            return mean
        variance = beta * (1 - alpha_previous) / (1 - alpha_bar)
        return mean + np.sqrt(variance) * rng.standard_normal(x.shape).astype(np.float32)

    return run_loop(denoise, alpha_bars, noise, steps, update, on_step)
