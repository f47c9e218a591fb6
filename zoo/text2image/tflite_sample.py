"""Type a prompt, get digits: the exported text-to-image model's TFLite file as a phone app runs it (NumPy + LiteRT).

    python -m zoo.text2image.tflite_sample exported/text2image/text2image.tflite --prompt "一个粗体的七"

This file needs NumPy, ``ai_edge_litert`` and ``zoo/core/apps/ddim.py``, ``png.py`` (the
DDIM loop and PNG writer every diffusion app shares), ``text_rows.py`` and ``manifest.py`` (the sha256
check): copy the five next to
``text2image.tflite`` and its ``manifest.json`` (which holds the noise schedule, ``alpha_bars``). The prompt becomes UTF-8 bytes on the host (no tokenizer), one
``encode_text`` call embeds it, and the app drives the DDIM loop itself with
``denoise_step``, so it can show progress, stop early or choose its own step count.
With the exported step count it reproduces the in-graph ``serving_default``.
"""

import argparse
import os
import sys

import numpy as np

try:  # in the repository (python -m zoo.text2image.tflite_sample)
    from zoo.core.apps import ddim, png, text_rows
    from zoo.core.apps.manifest import add_threads_argument, verified_manifest
except ImportError:  # copied into an app next to ddim.py, png.py, text_rows.py and manifest.py
    import ddim
    import png
    import text_rows
    from manifest import add_threads_argument, verified_manifest

TEXT_BYTES = 64


def prompt_bytes(prompts, length=TEXT_BYTES):
    """Strings -> int32 ``[n, 64]`` UTF-8 bytes, zero padded; a ValueError for text that does not fit."""
    return text_rows.text_rows(prompts, length, what="the prompt")


write_png = png.write_png


class TextToImage:
    """``encode_text`` and ``denoise_step`` of a ``.tflite`` file, and the schedule from its manifest."""

    def __init__(self, tflite_path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        manifest = verified_manifest(tflite_path)  # the manifest beside the file, after its sha256 matched
        self.alpha_bars = np.asarray(manifest["alpha_bars"], np.float32)
        self.generate_steps = manifest["generate_steps"]
        self.interpreter = Interpreter(model_path=tflite_path, num_threads=num_threads or os.cpu_count())  # every core unless told
        self._encode = self.interpreter.get_signature_runner("encode_text")
        self._denoise = self.interpreter.get_signature_runner("denoise_step")
        self._generate = self.interpreter.get_signature_runner("serving_default")

    def encode(self, prompts):
        return self._encode(text=prompt_bytes(prompts))["text_embedding"]

    def ddim(self, prompts, noise, guidance, steps=None, on_step=None):
        """DDIM (eta = 0) over ``denoise_step``; ``on_step(i, x0_estimate, images)`` after each step, in [0, 1]."""
        noise, guidance = np.asarray(noise, np.float32), np.asarray(guidance, np.float32)
        if noise.shape != (len(prompts), 28, 28, 1) or guidance.shape != (len(prompts),):
            raise ValueError(f"noise must be [{len(prompts)}, 28, 28, 1] and guidance [{len(prompts)}], got "
                             f"{list(noise.shape)} and {list(guidance.shape)}")
        embedding = self.encode(prompts)

        def denoise(x, t):
            return self._denoise(images_t=x, timestep=t, text_embedding=embedding, guidance=guidance)["predicted_noise"]

        return ddim.ddim_loop(denoise, self.alpha_bars, noise, steps or self.generate_steps, on_step)

    def generate(self, prompts, noise, guidance):
        """The in-graph loop (the step count the file was exported with), one call."""
        return self._generate(text=prompt_bytes(prompts), noise=np.asarray(noise, np.float32),
                              guidance=np.asarray(guidance, np.float32))["images"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tflite", help="path of text2image.tflite (manifest.json must be next to it)")
    parser.add_argument("--prompt", default="一个粗体的七", help="English or Chinese, at most 64 bytes of UTF-8")
    parser.add_argument("--guidance", type=float, default=3.0, help="0 unconditional, 1 conditional, more: stronger")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the exported loop's)")
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join("samples", "text2image.png"),
                        help="the PNG to write (default samples/text2image.png)")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    try:
        if args.num < 1:
            raise ValueError("--num must be at least 1")
        if not np.isfinite(args.guidance) or args.guidance < 0:
            raise ValueError(f"--guidance must be a finite number, at least 0 (0: unconditional), got {args.guidance}")
        if not args.prompt:
            raise ValueError("--prompt is empty: give at least one character")
        prompts = [args.prompt] * args.num
        prompt_bytes(prompts[:1])  # a clear error before loading anything
        noise = np.random.default_rng(args.seed).standard_normal((args.num, 28, 28, 1)).astype(np.float32)
        model = TextToImage(args.tflite, num_threads=args.threads)
        steps = args.steps or model.generate_steps
        images = model.ddim(prompts, noise, np.full(args.num, args.guidance, np.float32), steps=steps,
                            on_step=lambda i, *_: print(f"\rstep {i + 1}/{steps}", end="", file=sys.stderr))
    except (ValueError, OSError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 2
    write_png(images, args.output, columns=int(np.ceil(np.sqrt(args.num))))
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
