"""What the shared tests and benchmarks need to know about the conditional DCGAN (see ``zoo.core.recipes.spec``)."""

import os

import numpy as np

from zoo.core.recipes.spec import (GAN_TARGETS, IMAGE_GENERATOR_BENCHMARK, IMAGE_GENERATOR_QUICK, DigitDrawing,
                                   ModelSpec, Reproduce, Target)


def draw(runner, labels, seed):
    from zoo.cdcgan.recipe import labelled_samples

    return labelled_samples(runner, len(labels), seed, labels=labels)[0]


def label_out_of_range_is_refused_by_the_bare_tflite_file(manifest, model_dir):
    """A label outside 0-9 is refused by the committed TFLite file itself (no zoo runner in between)."""
    from ai_edge_litert.interpreter import Interpreter

    bare = Interpreter(os.path.join(model_dir, "cdcgan.tflite")).get_signature_runner("serving_default")
    try:
        bare(noise=np.zeros((1, 64), np.float32), labels=np.array([10], np.int32))
    except RuntimeError as error:
        assert "out of bounds" in str(error)
    else:
        raise AssertionError("the TFLite file accepted the label 10")


SPEC = ModelSpec(
    quick_options=IMAGE_GENERATOR_QUICK, benchmark_options=IMAGE_GENERATOR_BENCHMARK,
    targets=(*GAN_TARGETS,
             Target("label_accuracy", at_least=0.95, why="the classifier reads the asked digit")),
    reproduce=Reproduce("tflite", "float16", {"num_samples": 10000}, keys=("frechet_distance", "label_accuracy"),
                        tolerance=1e-3),
    cli_sample=("--digit", "3", "--num", "16"),
    checks=(label_out_of_range_is_refused_by_the_bare_tflite_file,),
    digits=DigitDrawing(draw, how="SavedModel serving_default, labels cycling 0-9", row_label="cdcgan"),
)
