"""Draw digits with the exported diffusion model's TFLite file, as a phone app would: NumPy and LiteRT only.

    python -m zoo.diffusion.tflite_sample exported/diffusion/diffusion.tflite --digit 7 --guidance 2 --steps 50

This file needs NumPy, ``ai_edge_litert`` and three modules of ``zoo/core/apps/``
(``ddim.py``, the sampler every diffusion app shares, ``png.py`` and ``manifest.py``, the
sha256 check): copy the four next to ``diffusion.tflite`` and its ``manifest.json`` (which holds the noise schedule,
``alpha_bars``) in any project. It calls the ``denoise_step`` signature once per step and
does the sampler's arithmetic in NumPy, so an app can show progress, stop early or
choose its own step count:

- ``ddim_loop``: deterministic DDIM (Song et al. 2021, eta = 0). With the same
  noise and step count it reproduces the in-graph ``generate`` signature.
- ``ddpm_loop``: ancestral DDPM sampling (Ho et al. 2020), which adds fresh noise
  at every step; with fewer steps than the model was trained with it uses the
  respaced schedule of Nichol & Dhariwal (2021).
- ``inpaint_loop``: restoration (RePaint, Lugmayr et al. 2022): ``--inpaint digit.npy --mask bottom``
  fills the hidden half; with the manifest's step and resampling counts it reproduces ``inpaint``. Without
  ``--digit`` the app first asks the ``read_digit`` signature which digit the known pixels show and completes
  the image as that digit (what ``inpaint`` does with label 10); ``--guidance 0`` fills it unconditionally.

Images are in [-1, 1] inside the loop and returned in [0, 1].
"""

import argparse
import os
import sys

import numpy as np

try:  # in the repository (python -m zoo.diffusion.tflite_sample)
    from zoo.core.apps import ddim, png
    from zoo.core.apps.manifest import add_threads_argument, verified_manifest
except ImportError:  # copied into an app next to ddim.py, png.py and manifest.py
    import ddim
    import png
    from manifest import add_threads_argument, verified_manifest

NUM_CLASSES = 10
NULL_LABEL = 10  # "no label": the unconditional model


timesteps = ddim.timesteps
write_png = png.write_png


def check_inputs(noise, labels, guidance):
    """A ValueError that says what to change, for inputs the model cannot take."""
    noise, labels, guidance = np.asarray(noise), np.asarray(labels), np.asarray(guidance)
    if noise.ndim != 4 or noise.shape[1:] != (28, 28, 1):
        raise ValueError(f"noise must have shape [batch, 28, 28, 1], got {list(noise.shape)}")
    if labels.shape != (len(noise),) or guidance.shape != (len(noise),):
        raise ValueError(f"labels and guidance must have shape [batch] = [{len(noise)}], "
                         f"got {list(labels.shape)} and {list(guidance.shape)}")
    if labels.size and (labels.min() < 0 or labels.max() > NULL_LABEL):
        raise ValueError(f"labels must be digits 0-{NUM_CLASSES - 1} or {NULL_LABEL} (no label), "
                         f"got values from {labels.min()} to {labels.max()}")
    if not (np.all(np.isfinite(guidance)) and np.all(np.isfinite(noise))):
        raise ValueError("noise and guidance must be finite")
    if guidance.size and guidance.min() < 0:
        raise ValueError(f"guidance must be at least 0 (0: unconditional), got {guidance.min()}")


def _conditioned(denoise_step, noise, labels, guidance):
    check_inputs(noise, labels, guidance)
    labels, guidance = np.asarray(labels, np.int32), np.asarray(guidance, np.float32)
    return lambda x, t: denoise_step(x, t, labels, guidance)


def ddim_loop(denoise_step, alpha_bars, noise, labels, guidance, steps=50, on_step=None):
    """Deterministic DDIM over ``denoise_step(images_t, timestep, labels, guidance) -> eps``
    (:func:`ddim.ddim_loop`; ``on_step(i, x0_estimate, images)`` after each step)."""
    return ddim.ddim_loop(_conditioned(denoise_step, noise, labels, guidance), alpha_bars, noise, steps, on_step)


def ddpm_loop(denoise_step, alpha_bars, noise, labels, guidance, steps=None, seed=0, on_step=None):
    """Ancestral DDPM (:func:`ddim.ddpm_loop`), respaced when ``steps`` is fewer than the model's timesteps."""
    return ddim.ddpm_loop(_conditioned(denoise_step, noise, labels, guidance), alpha_bars, noise, steps, seed,
                          on_step)


def inpaint_loop(denoise_step, alpha_bars, images, mask, noise, labels, guidance, steps=25, resample=10,
                 on_step=None):
    """Fill the pixels of ``images`` (in [0, 1]) where ``mask`` is 0, keeping the others exactly: RePaint
    (:func:`ddim.inpaint_loop`). With the manifest's ``inpaint_steps`` and ``inpaint_resample`` it reproduces
    the in-graph ``inpaint`` signature."""
    return ddim.inpaint_loop(_conditioned(denoise_step, noise, labels, guidance), alpha_bars, images, mask, noise,
                             steps, resample, on_step)


class TFLiteDenoiser:
    """The ``denoise_step`` signature of a ``.tflite`` file as a NumPy function, and the schedule from its manifest."""

    def __init__(self, tflite_path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.manifest = verified_manifest(tflite_path)  # the manifest beside the file, after its sha256 matched
        self.alpha_bars = np.asarray(self.manifest["alpha_bars"], np.float32)
        self.interpreter = Interpreter(model_path=tflite_path, num_threads=num_threads or os.cpu_count())  # every core unless told
        self._denoise = self.interpreter.get_signature_runner("denoise_step")
        self._generate = self.interpreter.get_signature_runner("generate")
        self._read_digit = (self.interpreter.get_signature_runner("read_digit")
                            if "read_digit" in self.interpreter.get_signature_list() else None)

    def __call__(self, images_t, timestep, labels, guidance):
        return self._denoise(images_t=images_t, timestep=timestep, labels=labels, guidance=guidance)["predicted_noise"]

    def read_digit(self, images, mask):
        """The digit ``int32 [b]`` the file's recognizer reads from the known pixels (``mask`` 1) of ``images``."""
        if self._read_digit is None:
            raise ValueError("this diffusion.tflite has no read_digit signature (exported before it): give --digit")
        ddim.check_inpaint_inputs(images, mask, np.zeros_like(images))
        return self._read_digit(images=images, mask=mask)["digits"].astype(np.int32)

    def generate(self, noise, labels, guidance):
        """The in-graph loop (the step count the file was exported with)."""
        check_inputs(noise, labels, guidance)
        return self._generate(noise=noise, labels=labels, guidance=guidance)["images"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tflite", help="path of diffusion.tflite (manifest.json must be next to it)")
    parser.add_argument("--digit", type=int, default=None, help="0-9 (default: a row of each digit)")
    parser.add_argument("--guidance", type=float, default=2.0, help="0 unconditional, 1 conditional, more: stronger")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--sampler", choices=("ddim", "ddpm"), default="ddim")
    parser.add_argument("--num", type=int, default=None, help="how many images (default 16 of a digit, else 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join("samples", "diffusion.png"),
                        help="the PNG to write (default samples/diffusion.png)")
    parser.add_argument("--inpaint", default=None,
                        help="complete this digit instead (a .npy file of 28 x 28 values in [0, 1], white on black)")
    parser.add_argument("--mask", default="bottom", help="with --inpaint: which pixels to fill: bottom, top, left or right half, or random (half the pixels)")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    try:
        if args.digit is not None and not 0 <= args.digit < NUM_CLASSES:
            raise ValueError(f"--digit must be 0-{NUM_CLASSES - 1}, got {args.digit}")
        num = args.num or (16 if args.digit is not None else 100)
        labels = (np.full(num, args.digit) if args.digit is not None else np.arange(num) * 10 // num).astype(np.int32)
        noise = np.random.default_rng(args.seed).standard_normal((num, 28, 28, 1)).astype(np.float32)
        guidance = np.full(num, args.guidance, np.float32)
        check_inputs(noise, labels, guidance)
        denoiser = TFLiteDenoiser(args.tflite, num_threads=args.threads)
        if args.inpaint is not None:
            digit = np.load(args.inpaint, allow_pickle=False).astype(np.float32)
            if digit.size != 28 * 28:
                raise ValueError(f"--inpaint must hold a 28 x 28 digit, got shape {list(digit.shape)}")
            digit = digit.reshape(28, 28, 1)
            steps = denoiser.manifest["inpaint_steps"]
            images, mask = np.repeat(digit[None], num, axis=0), ddim.named_mask(args.mask, num)
            if args.digit is None:  # the digit the known pixels show (guidance 0: unconditional anyway)
                labels = (denoiser.read_digit(images, mask) if args.guidance > 0
                          else np.full(num, NULL_LABEL, np.int32))
                print(f"the known pixels read as a {labels[0]}" if args.guidance > 0 else "unconditional",
                      file=sys.stderr)
            images = inpaint_loop(
                denoiser, denoiser.alpha_bars, images, mask, noise, labels, guidance, steps,
                denoiser.manifest["inpaint_resample"],
                on_step=lambda i, *_: print(f"\rstep {i + 1}/{steps}", end="", file=sys.stderr))
        else:
            loop = ddim_loop if args.sampler == "ddim" else ddpm_loop
            images = loop(denoiser, denoiser.alpha_bars, noise, labels, guidance, steps=args.steps,
                          on_step=lambda i, *_: print(f"\rstep {i + 1}/{args.steps}", end="", file=sys.stderr))
    except (ValueError, OSError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 2
    write_png(images, args.output, columns=int(np.ceil(np.sqrt(num))) if args.digit is not None else 10)
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
