"""Export, sample and evaluate the diffusion model (work in progress: see issue 5).

    python -m zoo export diffusion
    python -m zoo sample diffusion --digit 7 --guidance 2.0 --steps 50

Signatures (SavedModel and TFLite, builtin ops only):
- ``serving_default`` / ``generate``: ``noise [b, 28, 28, 1]``, ``labels int32 [b]`` (NULL_LABEL = 10 for
  unconditional), ``guidance float32 [b]`` -> ``images`` in [0, 1], DDIM with GENERATE_STEPS steps in the graph;
- ``denoise_step``: ``images_t``, ``timestep int32 [b]``, ``labels``, ``guidance`` -> ``predicted_noise``, for an
  app's own loop (``reference_loop`` below, in NumPy, reproduces ``generate``).
"""

import functools

import numpy as np

from zoo.core import export as core_export
from zoo.core.artifacts import KerasFileModel
from zoo.core.errors import BadInputError
from zoo.diffusion.model import IMAGE_SHAPE, NULL_LABEL, NUM_CLASSES

NAME = "diffusion"
GENERATE_STEPS = 50


def signatures(model, steps=GENERATE_STEPS):
    import tensorflow as tf

    batch = [None]
    noise = (tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32), "standard-normal starting noise x_T")
    labels = (tf.TensorSpec(batch, tf.int32), f"digit 0-9, or {NULL_LABEL} for no label (unconditional)")
    guidance = (tf.TensorSpec(batch, tf.float32), "classifier-free guidance weight: 0 unconditional, 1 conditional")

    def generate(noise, labels, guidance):
        return model.generate(noise, labels, guidance, steps=steps)

    generated = {"images": "digits, float32 [batch, 28, 28, 1] in [0, 1]"}
    inputs = {"noise": noise, "labels": labels, "guidance": guidance}
    return [
        core_export.Signature("serving_default", generate, inputs, generated),
        core_export.Signature("generate", generate, inputs, generated),
        core_export.Signature("denoise_step", model.denoise_step, {
            "images_t": (tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32), "the noisy images x_t, in [-1, 1] scale"),
            "timestep": (tf.TensorSpec(batch, tf.int32), f"t, 0..{model.num_timesteps - 1}"),
            "labels": labels, "guidance": guidance,
        }, {"predicted_noise": "guided noise estimate eps, [batch, 28, 28, 1]"}),
    ]


def check_labels_and_guidance(labels, guidance):
    labels, guidance = np.asarray(labels), np.asarray(guidance)
    if labels.size and (labels.min() < 0 or labels.max() > NULL_LABEL):
        raise BadInputError(f"labels must be digits 0-{NUM_CLASSES - 1} or {NULL_LABEL} (no label), "
                            f"got values from {labels.min()} to {labels.max()}")
    if not np.all(np.isfinite(guidance)):
        raise BadInputError("guidance must be finite")


def ddim_timesteps(num_timesteps, steps):
    if steps < 1:
        raise BadInputError(f"the number of DDIM steps must be at least 1, got {steps}")
    return np.linspace(num_timesteps - 1, 0, steps).round().astype(np.int32)


def reference_loop(denoise_step, alpha_bars, noise, labels, guidance, steps=GENERATE_STEPS, on_step=None):
    """DDIM (eta = 0) in NumPy over a ``denoise_step(images_t, timestep, labels, guidance) -> eps`` callable.

    What an app does with the ``denoise_step`` signature; with the same noise it
    reproduces ``generate``. ``on_step(i, x0_estimate)`` can show progress.
    """
    check_labels_and_guidance(labels, guidance)
    alpha_bars = np.asarray(alpha_bars, np.float32)
    schedule = list(ddim_timesteps(len(alpha_bars), steps)) + [-1]
    x = np.asarray(noise, np.float32)
    batch = len(x)
    for i in range(steps):
        t, previous = schedule[i], schedule[i + 1]
        eps = denoise_step(x, np.full(batch, t, np.int32), labels, guidance)
        alpha_bar, alpha_previous = alpha_bars[t], (alpha_bars[previous] if previous >= 0 else np.float32(1.0))
        x0 = np.clip((x - np.sqrt(1 - alpha_bar) * eps) / np.sqrt(alpha_bar), -1, 1)
        eps = (x - np.sqrt(alpha_bar) * x0) / np.sqrt(1 - alpha_bar)
        x = np.sqrt(alpha_previous) * x0 + np.sqrt(1 - alpha_previous) * eps
        if on_step is not None:
            on_step(i, (x0 + 1) / 2)
    return (np.clip(x, -1, 1) + 1) / 2


class KerasDiffusion(KerasFileModel):
    def run(self, signature, inputs):
        model = self.model
        if signature in ("serving_default", "generate"):
            out = model.generate(inputs["noise"], inputs["labels"], inputs["guidance"], steps=GENERATE_STEPS)
        else:
            out = model.denoise_step(*inputs.values())
        return {k: np.asarray(v) for k, v in out.items()}


def export(*, run_dir=None, output_dir=None, version=1, num_eval_samples=10000):
    raise NotImplementedError("the diffusion export is work in progress (issue 5)")


def sample(**options):
    raise NotImplementedError("the diffusion sampler is work in progress (issue 5)")


evaluate = functools.partial(sample)
