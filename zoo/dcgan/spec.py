"""What the shared tests and benchmarks need to know about the DCGAN (see ``zoo.core.recipes.spec``)."""

from zoo.core.recipes.spec import GAN_TARGETS, IMAGE_GENERATOR_BENCHMARK, IMAGE_GENERATOR_QUICK, ModelSpec, Reproduce

SPEC = ModelSpec(
    quick_options=IMAGE_GENERATOR_QUICK, benchmark_options=IMAGE_GENERATOR_BENCHMARK,
    targets=GAN_TARGETS,
    # float16: int8 would be the sharper check, but its 10,000 samples take 6 minutes on 2 cores
    reproduce=Reproduce("tflite", "float16", {"num_samples": 10000}, keys=("frechet_distance", "classes_covered"),
                        tolerance=1e-3),
    cli_sample=("--num", "64"))
