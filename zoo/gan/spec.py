"""What the shared tests and benchmarks need to know about the GAN (see ``zoo.core.recipes.spec``)."""

from zoo.core.recipes.spec import GAN_TARGETS, IMAGE_GENERATOR_BENCHMARK, IMAGE_GENERATOR_QUICK, ModelSpec

SPEC = ModelSpec(quick_options=IMAGE_GENERATOR_QUICK, benchmark_options=IMAGE_GENERATOR_BENCHMARK,
                 targets=GAN_TARGETS, cli_sample=("--num", "64"))
