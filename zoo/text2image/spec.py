"""What the shared tests and benchmarks need to know about text-to-image (see ``zoo.core.recipes.spec``).

Its full re-measurement is a benchmark: ``python -m benchmarks.reproduce_committed``."""

import os

import numpy as np

from zoo.core.data import captions
from zoo.core.nn.unet import IMAGE_SHAPE, randomize_ema_unet
from zoo.core.recipes import inpainting
from zoo.core.recipes.spec import DigitDrawing, ModelSpec, Target
from zoo.core.runtime import utf8
from zoo.text2image.recipe import held_out_metric, text_encoder, text_encoder_fingerprint

GUIDANCE = 2.0  # the generated-data study's (the diffusion model's default)


def test_inputs(signature, manifest_entry, batch, seed):
    rng = np.random.default_rng(seed)
    texts = captions.random_captions(rng, batch)
    inputs = {"noise": rng.standard_normal((batch, *IMAGE_SHAPE)).astype(np.float32),
              "guidance": rng.uniform(0, 4, batch).astype(np.float32)}
    if signature == "serving_default":
        return {"text": utf8.encode_texts(texts), **inputs}
    if signature == "serving_strings":
        return {"text": np.array(texts, object), **inputs}
    if signature == "encode_text":
        return {"text": utf8.encode_texts(texts)}
    if signature == "inpaint":
        return inpainting.random_test_inputs({"text": utf8.encode_texts(texts), **inputs}, seed)
    if signature == "read_digit":
        return inpainting.random_test_inputs({"images": inputs["noise"]}, seed)  # its shape; images, mask drawn
    dim = manifest_entry["inputs"]["text_embedding"]["shape"][-1]
    embedding = rng.standard_normal((batch, dim)).astype(np.float32)
    return {"images_t": inputs["noise"], "timestep": rng.integers(0, 50, batch).astype(np.int32),
            "text_embedding": embedding / np.linalg.norm(embedding, axis=1, keepdims=True),
            "guidance": inputs["guidance"]}


def draw(runner, labels, seed):
    from zoo.core.data.captions import CLASS_PROMPTS, digit_name
    from zoo.text2image.recipe import draw as draw_prompts

    prompts = [CLASS_PROMPTS["en"].format(d=digit_name(int(d), "en")) for d in labels]
    noise = np.random.default_rng(seed).standard_normal((len(labels), 28, 28, 1)).astype(np.float32)
    return draw_prompts(runner, prompts, noise, guidance=GUIDANCE, batch_size=250)[0]


def conditioned_on_the_committed_clip(manifest, model_dir):
    from zoo.core.runtime.runners import read_manifest

    clip = read_manifest(os.path.join(os.path.dirname(model_dir), "clip"), verify=False)
    assert manifest["text_encoder"]["from"].startswith("exported clip")
    assert clip["training"]["command"].startswith("python -m zoo train clip")
    # the encoder inside this export is the committed CLIP's (a retrained CLIP means retraining this model too)
    assert manifest["text_encoder"]["sha256_of_weights"] == text_encoder_fingerprint(text_encoder("exported")), \
        "text2image was trained on another CLIP than exported/clip: train and export it again"
    unseen = manifest["metrics"]["savedmodel_detailed"]
    assert set(unseen["per_phrasing_en"]) | set(unseen["per_phrasing_zh"]) == {
        t for language in ("en", "zh") for t in manifest["held_out_phrasings"][language]}


SPEC = ModelSpec(
    test_model=lambda recipe: randomize_ema_unet(recipe.create_model("tiny", seed=0)),
    test_inputs=test_inputs,
    # as in diffusion: the int8 network within 0.3; 1% of an image's pixels may lie outside the tolerance
    parity_tolerances={"tflite_int8": 0.3},
    parity_outliers={"images": 0.01},
    quick_options={"export": {"per_prompt": 1}, "evaluate": {"per_prompt": 1},
                   "sample": {"num": 2, "prompt": "一个粗体的七"}},
    benchmark_signature="denoise_step",
    benchmark_options={"per_prompt": 2},
    targets=(Target("prompt_accuracy_en", at_least=0.90, why="the issue's target: the asked digit, English"),
             Target("prompt_accuracy_zh", at_least=0.90, why="the issue's target: the asked digit, Chinese"),
             Target("bold_thin_ink_ratio", at_least=1.25, why="the sentences issue's target: bold gives more ink"),
             Target("bold_more_ink_fraction", at_least=0.9, why="from the same noise, most of the time"),
             *(Target(held_out_metric(language, family), at_least=0.90, runtimes=("savedmodel_detailed",),
                      why="the sentences issue's target: every sentence family no caption has")
               for language, families in captions.HELD_OUT_FAMILIES.items() for family in families)),
    cli_sample=("--prompt", "一个粗体的七", "--num", "4"),
    checks=(conditioned_on_the_committed_clip,),
    digits=DigitDrawing(draw, how=f"SavedModel serving_default, prompt 'the digit <name>', guidance {GUIDANCE}",
                        row_label='text2image (prompt "the digit <name>", guidance 2, 25 steps)'),
)
