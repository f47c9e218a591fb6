"""The GAN's recipe: the noise -> images family's, with the MLP networks.

    python -m zoo train gan --epochs 100
    python -m zoo export gan
    python -m zoo sample gan --num 64
"""

from zoo.core.recipes.images import ImageGeneratorRecipe
from zoo.core.recipes.registry import register
from zoo.gan.model import GAN, PRESETS


@register
class GANRecipe(ImageGeneratorRecipe):
    name = "gan"
    summary = "fully-connected GAN on MNIST: noise [batch, 64] -> digits [batch, 28, 28, 1]"
    paper = "Goodfellow et al. (2014), Generative Adversarial Nets, arXiv:1406.2661"
    model_class = GAN
    presets = PRESETS
    defaults = {**ImageGeneratorRecipe.defaults, "epochs": 100}
