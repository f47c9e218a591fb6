"""Export, sample and evaluate DCGAN: the GAN family's code with the DCGAN model.

    python -m zoo export dcgan
    python -m zoo sample dcgan
"""

import functools

from zoo.dcgan.model import DCGAN, PRESETS
from zoo.gan.export import evaluate as _evaluate
from zoo.gan.export import export_adversarial
from zoo.gan.export import sample as _sample

sample = functools.partial(_sample, "dcgan")
evaluate = functools.partial(_evaluate, "dcgan")


def export(**options):
    return export_adversarial(DCGAN, PRESETS, "dcgan", **options)
