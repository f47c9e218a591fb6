"""What the shared tests and benchmarks need to know about the GAN (see ``zoo.core.recipes.spec``)."""

from zoo.core.recipes.spec import IMAGE_GENERATOR_BENCHMARK, IMAGE_GENERATOR_QUICK, ModelSpec, Target

GAN_TARGETS = (  # issue 21's target for the GANs, in every runtime and variant, on 10,000 samples
    Target("num_samples", at_least=10000, at_most=10000, why="the manifest's protocol"),
    Target("frechet_distance", at_most=6.0, why="issue 21: FD at most 6"),
    Target("classes_covered", at_least=10, why="issue 21: every digit"),
)

SPEC = ModelSpec(quick_options=IMAGE_GENERATOR_QUICK, benchmark_options=IMAGE_GENERATOR_BENCHMARK,
                 targets=GAN_TARGETS, cli_sample=("--num", "64"))
