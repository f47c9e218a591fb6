"""DCGAN (Radford et al. 2016) on MNIST."""

from zoo.core.registry import ModelSpec, register

SPEC = register(ModelSpec(
    name="dcgan",
    summary="convolutional GAN on MNIST: noise [batch, 64] -> digits [batch, 28, 28, 1]",
    paper="Radford, Metz & Chintala (2016), Unsupervised Representation Learning with "
          "Deep Convolutional GANs, arXiv:1511.06434",
    presets=("tiny", "base"),
    model="zoo.dcgan.model:DCGAN",
    train="zoo.dcgan.train:train",
    export="zoo.dcgan.export:export",
    sample="zoo.dcgan.export:sample",
    evaluate="zoo.dcgan.export:evaluate",
))
