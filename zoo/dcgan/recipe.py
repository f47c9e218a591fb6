"""The DCGAN's recipe: the noise -> images family's, with convolutional networks.

    python -m zoo train dcgan            # 80 epochs at batch 64: FD 5.41 after 87.5 minutes on 2 CPU cores
    python -m zoo export dcgan
    python -m zoo sample dcgan --num 64
"""

from zoo.core.recipes.images import ImageGeneratorRecipe
from zoo.core.recipes.registry import register
from zoo.dcgan.model import DCGAN, PRESETS


@register
class DCGANRecipe(ImageGeneratorRecipe):
    name = "dcgan"
    summary = "convolutional GAN on MNIST: noise [batch, 64] -> digits [batch, 28, 28, 1]"
    paper = ("Radford, Metz & Chintala (2016), Unsupervised Representation Learning with "
             "Deep Convolutional GANs, arXiv:1511.06434")
    model_class = DCGAN
    presets = PRESETS
    # batch 64 rather than the family's 128: twice the updates an epoch at well under twice the epoch's time
    # on a CPU; FD 5.41 after 80 epochs (benchmarks/gan_ablation.py, the card's ablation)
    defaults = {**ImageGeneratorRecipe.defaults, "epochs": 80, "batch_size": 64}
