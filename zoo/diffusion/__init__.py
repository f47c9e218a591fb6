"""Class-conditional DDPM on MNIST: U-Net noise predictor, DDIM sampling, classifier-free guidance."""

from zoo.core.registry import ModelSpec, register

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
))
