"""CLIP's recipe: captioned MNIST in English and Chinese, ``encode_text``/``encode_image``, zero-shot metrics.

    python -m zoo train clip                          # the committed model
    python -m zoo export clip                         # runs/clip -> exported/clip/
    python -m zoo sample clip --prompt "一个粗体的七"    # the test digits closest to a prompt
    python -m zoo evaluate clip                       # zero-shot accuracy and retrieval recall

Every epoch draws a new caption for every training digit (``zoo.core.data.captions``,
from the seed and the epoch, so a resumed run sees the same batches). Adam with a
cosine decay to 10% over the run, gradients clipped at global norm 1.

Signatures (TFLite float32/float16/int8, builtin ops only, and SavedModel):
- ``encode_text``: ``text`` int32 [batch, 64], UTF-8 bytes zero padded -> ``embedding`` [batch, D], unit length;
- ``encode_image``: ``images`` [batch, 28, 28, 1] in [0, 1] -> ``embedding`` [batch, D], unit length;
- ``serving_default`` (SavedModel only, for TF Serving): ``text`` as strings [batch] -> ``embedding``.
"""

import numpy as np

from zoo.core.data import captions
from zoo.core import export as core_export
from zoo.core.runtime import utf8
from zoo.core.training.optimizers import CosineDecayAdam
from zoo.core.data.plotting import prompt_label, save_image_grid
from zoo.core.recipes.recipe import EVAL_SEED, Option, Recipe, TrainingData
from zoo.core.recipes.registry import register
from zoo.clip.model import CLIP, PRESETS

RETRIEVAL_IMAGES = 1000
SAMPLE_PROMPTS = ("a bold seven", "一个细体的七", "the digit 2", "数字五", "a three leaning right", "向左倾斜的一")


def image_checks(images):
    """In-graph: pixels in [0, 1] (TF Serving's clear error; runners check the manifest's range)."""
    import tensorflow as tf

    return [tf.debugging.assert_greater_equal(images, 0.0, message="images must be in [0, 1]"),
            tf.debugging.assert_less_equal(images, 1.0, message="images must be in [0, 1]")]


def clip_signatures(model):
    import tensorflow as tf

    text_encoder, image_encoder = model.text_encoder, model.image_encoder
    embedding = {"embedding": f"unit-length embedding, float32 [batch, {model.embedding_dim}]"}
    text = (tf.TensorSpec([None, utf8.TEXT_BYTES], tf.int32),
            f"UTF-8 bytes of the text, zero padded to {utf8.TEXT_BYTES} (a Chinese character is 3 bytes)")

    def embed_text(text):
        with tf.control_dependencies(utf8.row_checks(text)):
            return {"embedding": text_encoder(tf.identity(text))}

    def embed_image(images):
        with tf.control_dependencies(image_checks(images)):
            return {"embedding": image_encoder(tf.identity(images))}

    def embed_strings(text):
        return {"embedding": text_encoder(utf8.string_rows(text))}

    return [
        core_export.Signature("serving_default", embed_strings, {
            "text": (tf.TensorSpec([None], tf.string), f"UTF-8 text, at most {utf8.TEXT_BYTES} bytes")},
            embedding, tflite=False, example={"text": "一个粗体的七"}),
        core_export.Signature("encode_text", embed_text, {"text": text}, embedding, example={"text": "a bold seven"},
                              ranges={"text": (0, 255)}, encodings={"text": utf8.ENCODING}),
        core_export.Signature("encode_image", embed_image, {
            "images": (tf.TensorSpec([None, 28, 28, 1], tf.float32), "digits, [batch, 28, 28, 1] in [0, 1]")},
            embedding, ranges={"images": (0.0, 1.0)}),
    ]


def encode_prompts(runner, prompts, batch_size=256):
    """Unit embeddings of strings through ``encode_text`` (any runtime)."""
    rows = utf8.encode_texts(list(prompts))
    return np.concatenate([runner("encode_text", text=rows[i : i + batch_size])["embedding"]
                           for i in range(0, len(rows), batch_size)])


def encode_images(runner, images, batch_size=500):
    return np.concatenate([runner("encode_image", images=np.asarray(images[i : i + batch_size], np.float32))[
        "embedding"] for i in range(0, len(images), batch_size)])


def zero_shot_accuracy(image_embeddings, labels, runner, prompts):
    """The fraction of images whose most similar of the 10 ``prompts`` (digit 0..9) names their digit."""
    prompt_embeddings = encode_prompts(runner, prompts)
    return float(np.mean(np.argmax(image_embeddings @ prompt_embeddings.T, axis=1) == labels))


def family_key(language, family):
    return f"zero_shot_held_out_{language}_{family.replace(' ', '_')}"


def clip_quality(runner, limit=None, retrieval_images=RETRIEVAL_IMAGES, seed=EVAL_SEED):
    """Zero-shot accuracy on the MNIST test digits per language, with the headline class prompts
    ("the digit seven" / "数字七") and per held-out sentence family (the mean over its frames, each frame's
    prompts "someone wrote a seven" ...), and text-to-image retrieval recall@1/@5 of each image's own caption
    among ``retrieval_images`` images."""
    images, labels, ink, slant = captions.captioned_mnist("test", limit=limit)
    image_embeddings = encode_images(runner, images)
    metrics = {}
    for language in captions.LANGUAGES:
        metrics[f"zero_shot_accuracy_{language}"] = round(zero_shot_accuracy(
            image_embeddings, labels, runner, captions.class_prompts(language)), 4)
        for family, frames in captions.HELD_OUT_FAMILIES[language].items():
            metrics[family_key(language, family)] = round(float(np.mean([zero_shot_accuracy(
                image_embeddings, labels, runner, captions.held_out_prompts(frame, language)) for frame in frames])), 4)
    metrics["zero_shot_accuracy"] = min(metrics["zero_shot_accuracy_en"], metrics["zero_shot_accuracy_zh"])
    metrics["zero_shot_accuracy_held_out"] = min(metrics[family_key(language, family)]
                                                 for language in captions.LANGUAGES
                                                 for family in captions.HELD_OUT_FAMILIES[language])
    n = min(retrieval_images, len(images))
    rows, _ = captions.caption_rows(labels[:n], ink[:n], slant[:n], seed=seed)
    text_embeddings = np.concatenate([runner("encode_text", text=rows[i : i + 250])["embedding"]
                                      for i in range(0, n, 250)])
    similarity = text_embeddings @ image_embeddings[:n].T
    own = similarity[np.arange(n), np.arange(n)]
    rank = np.sum(similarity > own[:, None], axis=1)  # images more similar to the caption than its own image
    top = np.argmax(similarity, axis=1)
    metrics.update({"retrieval_recall_at_1": round(float(np.mean(rank < 1)), 4),
                    "retrieval_recall_at_5": round(float(np.mean(rank < 5)), 4),
                    "retrieval_top1_right_digit": round(float(np.mean(labels[top] == labels[:n])), 4),
                    "retrieval_images": n, "test_images": int(len(images))})
    return metrics


def nearest_images(runner, prompts, num=8, limit=None):
    """For each prompt, the ``num`` MNIST test digits most similar to it: ``[len(prompts) * num, 28, 28, 1]``."""
    images, _ = _test_images(limit)
    similarity = encode_prompts(runner, prompts) @ encode_images(runner, images).T
    best = np.argsort(-similarity, axis=1)[:, :num]
    return images[best.reshape(-1)]


def _test_images(limit=None):
    from zoo.core.data.datasets import mnist_images

    return mnist_images("test", limit=limit)


@register
class CLIPRecipe(CosineDecayAdam, Recipe):
    name = "clip"
    summary = "CLIP-style dual encoder on captioned MNIST (English and Chinese): text <-> image embeddings"
    paper = "Radford et al. (2021), Learning Transferable Visual Models From Natural Language Supervision, " \
            "arXiv:2103.00020"
    model_class = CLIP
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 10, "batch_size": 256, "learning_rate": 1e-3}
    sample_help = ("Find the MNIST test digits closest to a prompt, in English or Chinese, and write them as a "
                   "PNG (what zero-shot retrieval looks like).")
    evaluate_help = ("Zero-shot accuracy (each language; the headline prompts and each held-out sentence family) "
                     "and retrieval recall.")
    metrics = ["zero_shot_accuracy", "zero_shot_accuracy_held_out", "zero_shot_accuracy_en", "zero_shot_accuracy_zh",
               "retrieval_recall_at_5"]

    options = (
        Option("prompt", str, "一个粗体的七", "what to look for, English or Chinese, at most 64 bytes of UTF-8",
               commands=("sample",), text=True),
        Option("num", int, 16, "how many digits to show", commands=("sample",), minimum=1),
        Option("limit", int, None, "search the first N test digits only (default: all 10,000)",
               commands=("sample",), minimum=1),
        Option("limit", int, None, "measure on the first N test digits only (default: all 10,000)",
               commands=("evaluate", "export"), minimum=1),
    )

    # === Training ===
    def training_data(self, model, *, batch_size, seed, limit):
        train = captions.captioned_mnist("train", limit=limit)
        validation = captions.captioned_dataset(
            "test", batch_size=min(batch_size, 500), seed=EVAL_SEED, shuffle=False,
            limit=None if limit is None else max(limit // 6, batch_size))

        def dataset_fn(epoch):
            return captions.captioned_dataset("train", batch_size=batch_size, seed=seed, epoch=epoch, data=train)

        return TrainingData(
            dataset_fn, ("MNIST train split (60,000 digits), a new caption per digit and epoch: a sentence of one of "
                         "the training families around the digit, English, Chinese or mixed, with the measured "
                         "ink/slant at times (zoo.core.data.captions)") if not limit
            else f"first {limit} MNIST training digits, captioned", validation=validation,
            config={"train_examples": len(train[0])})

    # === Export ===
    def signatures(self, model):
        return clip_signatures(model)

    def export_plan(self, model, training, limit):
        def samples(runner, path):
            save_image_grid(nearest_images(runner, SAMPLE_PROMPTS, num=8, limit=limit), path, columns=8,
                            title="clip: the 8 test digits closest to each prompt, a row each: "
                                  + " / ".join(prompt_label(p, captions.gloss(p)) for p in SAMPLE_PROMPTS))

        return core_export.ExportPlan(
            name=self.name, signatures=self.signatures(model),
            description="CLIP-style dual encoder on captioned MNIST: UTF-8 text (English, Chinese) and digits "
                        "to unit embeddings in one space.",
            paper=self.paper, training=training, keras_model=self.keras_model(model),
            evaluate=lambda runner: clip_quality(runner, limit=limit), samples=samples,
            primary_metric="zero_shot_accuracy", metric_summary=self.metrics,
            notes={"sample_prompts": list(SAMPLE_PROMPTS), "class_prompts": captions.CLASS_PROMPTS,
                   "held_out_families": captions.HELD_OUT_FAMILIES,
                   "held_out_noun_phrases": captions.HELD_OUT_NOUN_PHRASES,
                   "metric_definitions": {
                       "zero_shot_accuracy_<language>": "fraction of MNIST test digits whose most similar class "
                                                        "prompt (class_prompts) names their digit",
                       "zero_shot_held_out_<language>_<family>": "the same with each frame of a held-out "
                                                                 "sentence family (held_out_families, never "
                                                                 "trained on; {np} = held_out_noun_phrases), "
                                                                 "averaged over the family's frames",
                       "zero_shot_accuracy_held_out": "the lowest of the held-out families' accuracies",
                       "zero_shot_accuracy": "the lower of the two languages' headline accuracies",
                       "retrieval_recall_at_k": f"each of the first {RETRIEVAL_IMAGES} test digits gets a caption "
                                                f"(seed {EVAL_SEED}); the fraction whose own digit is among the k "
                                                "digits most similar to the caption. Captions name a digit and at "
                                                "most two attributes, so ~100 digits fit each: recall@1 is low by "
                                                "construction",
                       "retrieval_top1_right_digit": "the fraction whose most similar digit shows the caption's "
                                                     "digit"}},
        )

    # === Use ===
    def sample(self, runner, *, output, seed, prompt, num, limit):
        utf8.encode_texts(prompt)  # one clear error for a prompt too long, before any work
        images = nearest_images(runner, [prompt], num=num, limit=limit)
        shown = len(images)  # --limit fewer test digits than --num: all of them
        save_image_grid(images, output,
                        title=f"clip: the {shown} test digits closest to {prompt_label(prompt, captions.gloss(prompt))}")
        return f"Wrote the {shown} test digits closest to {prompt!r} to {output}" + (
            f" (only {limit} searched: --limit)" if shown < num else "")

    def evaluate(self, runner, *, seed, limit):
        return clip_quality(runner, limit=limit, seed=seed)
