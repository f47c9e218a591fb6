"""The original GAN (Goodfellow et al. 2014) on MNIST."""

from zoo.core.registry import ModelSpec, register

SPEC = register(ModelSpec(
    name="gan",
    summary="fully-connected GAN on MNIST: noise [batch, 64] -> digits [batch, 28, 28, 1]",
    paper="Goodfellow et al. (2014), Generative Adversarial Nets, arXiv:1406.2661",
    presets=("tiny", "base"),
    model="zoo.gan.model:GAN",
    train="zoo.gan.train:train",
    export="zoo.gan.export:export",
    sample="zoo.gan.export:sample_gan",
    evaluate="zoo.gan.export:evaluate_gan",
))
