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


def add_noise(x0, eps, alpha_bar):
    """``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``: the forward noising that :func:`predict_x0` inverts."""
    return np.sqrt(alpha_bar) * x0 + np.sqrt(1.0 - alpha_bar) * eps


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


# Inpainting (RePaint, Lugmayr et al. 2022, on the DDIM schedule). RePaint draws fresh noise at every step;
# an exported graph cannot draw (TFLite has no reproducible random op), so the fresh noise is the caller's
# noise with its 784 pixels permuted again at each draw: pixel i of draw k+1 is pixel
# (NOISE_MULTIPLIER * i + NOISE_INCREMENT) mod n of draw k. The values stay independent standard normals
# at every pixel (a permutation of iid noise), and no pixel sees the same value twice in a row.
NOISE_MULTIPLIER, NOISE_INCREMENT = 389, 1


def noise_permutation(size):
    """Indices that :func:`inpaint_loop` gathers the flattened noise through for each fresh draw."""
    return (NOISE_MULTIPLIER * np.arange(size) + NOISE_INCREMENT) % size


MASKS = ("bottom", "top", "left", "right", "random")


def named_mask(name, num, seed=0, shape=(28, 28, 1)):
    """``float32 [num, *shape]``: 1 where the pixel is known. ``bottom`` hides the bottom half (rows 14-27 of
    28), ``top``, ``left`` and ``right`` likewise, ``random`` each pixel with probability 1/2 (``seed``)."""
    mask = np.ones((num, *shape), np.float32)
    rows, columns = shape[0] // 2, shape[1] // 2
    hidden = {"bottom": np.s_[:, rows:], "top": np.s_[:, :rows], "left": np.s_[:, :, :columns],
              "right": np.s_[:, :, columns:]}
    if name == "random":
        return (np.random.default_rng(seed).random(mask.shape) < 0.5).astype(np.float32)
    if name not in hidden:
        raise ValueError(f"unknown mask {name!r}: choose from {', '.join(MASKS)}")
    mask[hidden[name]] = 0
    return mask


def check_inpaint_inputs(images, mask, noise):
    """A ValueError that says what to change, for inputs :func:`inpaint_loop` cannot take."""
    images, mask, noise = (np.asarray(a) for a in (images, mask, noise))
    for name, value in (("images", images), ("mask", mask), ("noise", noise)):
        if value.ndim != 4 or value.shape[1:] != (28, 28, 1):
            raise ValueError(f"{name} must have shape [batch, 28, 28, 1], got {list(value.shape)}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} contains NaN or infinity")
    if not images.shape == mask.shape == noise.shape:
        raise ValueError(f"images, mask and noise must have the same shape, got {list(images.shape)}, "
                         f"{list(mask.shape)} and {list(noise.shape)}")
    if images.min() < 0 or images.max() > 1:
        raise ValueError(f"images must be in [0, 1], got values from {images.min()} to {images.max()}")
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"mask must be 0 (fill) or 1 (known) at every pixel, got {mask[(mask != 0) & (mask != 1)][0]}")


def inpaint_loop(denoise, alpha_bars, images, mask, noise, steps, resample, on_step=None):
    """Fill the pixels where ``mask`` is 0 so that they agree with the known pixels (``mask`` 1).

    ``images`` are in [0, 1]; each of the ``steps`` DDIM steps runs ``resample`` times: the known pixels are
    noised to the step's level, the model denoises the whole image one step, and (except on the last
    repetition) the result is noised back up with fresh noise, so the generated part can adjust to the
    known part (RePaint's resampling). Returns images in [0, 1] whose known pixels are exactly the input's.
    The arithmetic is the graph's (``zoo.core.nn.unet.DDIMSampling.inpaint_loop``).
    """
    check_inpaint_inputs(images, mask, noise)
    alpha_bars = np.asarray(alpha_bars, np.float32)
    if int(resample) < 1:
        raise ValueError(f"resample must be at least 1, got {resample}")
    schedule = list(timesteps(len(alpha_bars), steps)) + [-1]
    known = np.asarray(images, np.float32) * 2 - 1
    mask = np.asarray(mask, np.float32)
    z = np.asarray(noise, np.float32)
    shape = z.shape
    permutation = noise_permutation(int(np.prod(shape[1:])))

    def fresh(z):
        return z.reshape(len(z), -1)[:, permutation].reshape(shape)

    def scale(t):
        return (np.sqrt(alpha_bars[t]), np.sqrt(np.float32(1) - alpha_bars[t])) if t >= 0 else (np.float32(1),
                                                                                            np.float32(0))
    x = z
    for i in range(int(steps)):
        t, previous = schedule[i], schedule[i + 1]
        signal, spread = scale(t)
        signal_previous, spread_previous = scale(previous)
        ratio = signal / signal_previous
        beta = np.float32(1) - ratio * ratio
        for u in range(int(resample) if previous >= 0 else 1):  # the last step runs once
            z = fresh(z)
            x = mask * (signal * known + spread * z) + (1 - mask) * x
            eps = np.asarray(denoise(x, np.full(len(x), t, np.int32)), np.float32)
            x0 = np.clip((x - spread * eps) / signal, -1, 1)
            # the ancestral (DDPM) posterior of x_prev given x_t and x0, with fresh noise, as RePaint: a
            # deterministic DDIM step keeps the unknown pixels on their first noise's path and they don't
            # adjust to the known ones (bottom halves: 0.66 of completions read right, against 0.78)
            z = fresh(z)
            x = (signal_previous * beta / (spread * spread) * x0
                 + ratio * spread_previous * spread_previous / (spread * spread) * x
                 + np.sqrt(beta) * spread_previous / spread * z)
            if u + 1 < int(resample) and previous >= 0:
                # back up to t with fresh noise: x_t = sqrt(abar_t / abar_prev) x_prev + sqrt(1 - that) z
                z = fresh(z)
                x = ratio * x + np.sqrt(beta) * z
        if on_step is not None:
            on_step(i, (x0 + 1) / 2, (x + 1) / 2)
    # the known pixels exactly as given (mask is 0/1): not through the [-1, 1] round trip, which rounds
    return (mask * np.asarray(images, np.float32) + (1 - mask) * (np.clip(x, -1, 1) + 1) / 2).astype(np.float32)
