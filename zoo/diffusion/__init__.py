"""Class-conditional DDPM on MNIST: U-Net noise predictor, DDIM sampling, classifier-free guidance."""

from zoo.core.registry import ModelSpec, register


def add_arguments(command, parser):
    """The diffusion model's own options."""
    if command == "sample":
        parser.add_argument("--digit", type=int, default=None, help="the digit to draw, 0-9 (default: a row each)")
        parser.add_argument("--guidance", type=float, default=2.0,
                            help="classifier-free guidance: 0 unconditional, 1 conditional, more: stronger")
        parser.add_argument("--steps", type=int, default=50,
                            help="sampling steps (default 50: DDIM runs the exported in-graph loop)")
        parser.add_argument("--sampler", choices=("ddim", "ddpm"), default="ddim",
                            help="ddim: deterministic (default); ddpm: ancestral, fresh noise at every step")
    if command == "evaluate":
        parser.add_argument("--guidance", type=float, default=2.0)
        parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the exported loop's 50)")
        parser.add_argument("--sampler", choices=("ddim", "ddpm"), default="ddim")

SPEC = register(ModelSpec(
    name="diffusion",
    summary="class-conditional DDPM on MNIST: noise + digit label + guidance -> digits (DDIM)",
    paper="Ho, Jain & Abbeel (2020), Denoising Diffusion Probabilistic Models, arXiv:2006.11239",
    presets=("tiny", "base"),
    model="zoo.diffusion.model:Diffusion",
    train="zoo.diffusion.train:train",
    export="zoo.diffusion.export:export",
    sample="zoo.diffusion.export:sample",
    evaluate="zoo.diffusion.export:evaluate",
    add_arguments=add_arguments,
))
