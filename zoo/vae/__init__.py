"""Convolutional VAE (Kingma & Welling 2014) on binarized MNIST, with TFP distributions."""

from zoo.core.registry import ModelSpec, register


def add_arguments(command, parser):
    """The VAE's own command-line options."""
    if command == "evaluate":
        parser.add_argument("--iwae-samples", type=int, default=1000,
                            help="importance samples per test digit for the NLL bound (default 1000; "
                                 "10,000 digits x 1000 takes about 20 minutes on 2 CPU cores)")

SPEC = register(ModelSpec(
    name="vae",
    summary="convolutional VAE on binarized MNIST: latents [batch, 32] <-> digits [batch, 28, 28, 1]",
    paper="Kingma & Welling (2014), Auto-Encoding Variational Bayes, arXiv:1312.6114",
    presets=("tiny", "base", "latent2"),
    model="zoo.vae.model:VAE",
    train="zoo.vae.train:train",
    export="zoo.vae.export:export",
    sample="zoo.vae.export:sample",
    evaluate="zoo.vae.export:evaluate",
    add_arguments=add_arguments,
))
