"""What the shared tests and benchmarks need to know about the DCGAN (see ``zoo.core.recipes.spec``)."""

from zoo.core.recipes.spec import (IMAGE_GENERATOR_BENCHMARK, IMAGE_GENERATOR_QUICK, ModelSpec, Reproduce,
                                   Target)

SPEC = ModelSpec(
    quick_options=IMAGE_GENERATOR_QUICK, benchmark_options=IMAGE_GENERATOR_BENCHMARK,
    targets=(Target("num_samples", at_least=10000, at_most=10000, why="the manifest's protocol"),
             Target("frechet_distance", at_most=6.0, why="issue 21: FD at most 6"),
             Target("classes_covered", at_least=10, why="issue 21: every digit")),
    # float16: int8 would be the sharper check, but its 10,000 samples take 6 minutes on 2 cores
    reproduce=Reproduce("tflite", "float16", {"num_samples": 10000}, keys=("frechet_distance", "classes_covered"),
                        tolerance=1e-3),
    cli_sample=("--num", "64"))
