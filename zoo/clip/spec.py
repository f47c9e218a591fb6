"""What the shared tests and benchmarks need to know about CLIP (see ``zoo.core.recipes.spec``)."""

import numpy as np

from zoo.core.data import captions
from zoo.core.recipes.spec import ModelSpec, Reproduce, Target
from zoo.core.runtime import utf8


def test_inputs(signature, manifest_entry, batch, seed):
    rng = np.random.default_rng(seed)
    if signature == "encode_image":
        return {"images": rng.uniform(0, 1, (batch, 28, 28, 1)).astype(np.float32)}
    texts = captions.random_captions(rng, batch)
    return {"text": np.array(texts, object) if signature == "serving_default" else utf8.encode_texts(texts)}


SPEC = ModelSpec(
    test_inputs=test_inputs,
    quick_options={"export": {"limit": 40}, "evaluate": {"limit": 40}, "sample": {"num": 4, "limit": 40}},
    benchmark_signature="encode_image",
    targets=(Target("test_images", at_least=10000, at_most=10000, why="all 10,000 test digits"),
             Target("zero_shot_accuracy_en", at_least=0.97, why="the CLIP issue's target"),
             Target("zero_shot_accuracy_zh", at_least=0.97, why="the CLIP issue's target"),
             Target("zero_shot_accuracy_held_out", at_least=0.97,
                    why="the sentences issue's target: every held-out sentence family, the worst one")),
    reproduce=Reproduce("tflite", "float32", {"limit": None}),
    cli_sample=("--prompt", "一个粗体的七", "--num", "8"),
)
