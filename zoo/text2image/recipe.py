"""Text-to-image's recipe: captioned MNIST, CLIP's frozen text encoder, DDIM with guidance, prompt metrics.

    python -m zoo train text2image                    # needs exported/clip (python -m zoo export clip)
    python -m zoo export text2image
    python -m zoo sample text2image --prompt "一个粗体的七"
    python -m zoo.text2image.tflite_sample exported/text2image/text2image.tflite --prompt "a thin three"

Signatures (TFLite float32/float16/int8, builtin ops only, and SavedModel):
- ``serving_default``: ``text`` int32 [b, 64] UTF-8 bytes zero padded, ``noise`` [b, 28, 28, 1] standard
  normal, ``guidance`` [b] -> ``images`` [b, 28, 28, 1] in [0, 1]: the text encoder and the whole DDIM loop;
- ``encode_text``: ``text`` -> ``text_embedding`` [b, D] (CLIP's);
- ``denoise_step``: ``images_t``, ``timestep``, ``text_embedding``, ``guidance`` -> ``predicted_noise``, for
  an app's own loop (``tflite_sample.py``);
- ``serving_strings`` (SavedModel only, for TF Serving): ``serving_default`` with ``text`` as strings [b].
"""

import time

import numpy as np

from zoo.core.data import captions
from zoo.core import export as core_export
from zoo.core.recipes import inpainting
from zoo.core.recipes.finetuning import FINE_TUNE_FROM, fine_tune_config
from zoo.core.recipes.images import denoiser_calibration
from zoo.core.runtime import utf8
from zoo.core.runtime.errors import BadInputError
from zoo.core.training.optimizers import CosineDecayAdam
from zoo.core.data.plotting import prompt_label, save_image_grid
from zoo.core.runtime.progress import progress_bar
from zoo.core.recipes.recipe import EVAL_SEED, Option, Recipe, TrainingData
from zoo.core.recipes.registry import get_recipe, register
from zoo.core.nn.unet import IMAGE_SHAPE
from zoo.text2image.model import PRESETS, TextToImage

DEFAULT_GUIDANCE = 3.0
DEFAULT_PROMPT = "一个粗体的七"
INPAINT_STEPS, INPAINT_RESAMPLE = 25, 10  # RePaint's loop for `inpaint`, as the diffusion model's
SAMPLE_PROMPTS = ("the digit 0", "一", "a bold two", "一个细体的三", "four", "数字五", "a six leaning right",
                  "一个粗体的七", "a thin eight", "手写的九")


def text2image_signatures(model):
    import tensorflow as tf

    batch = [None]
    last_timestep = model.num_timesteps - 1
    text = (tf.TensorSpec([None, utf8.TEXT_BYTES], tf.int32),
            f"the prompt's UTF-8 bytes, zero padded to {utf8.TEXT_BYTES} (a Chinese character is 3 bytes)")
    noise = (tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32), "standard-normal starting noise x_T")
    guidance = (tf.TensorSpec(batch, tf.float32),
                f"classifier-free guidance: 0 unconditional, 1 conditional, more: stronger ({DEFAULT_GUIDANCE} "
                "is the default)")
    embedding = (tf.TensorSpec([None, model.embedding_dim], tf.float32),
                 f"the prompt's CLIP text embedding (encode_text), unit length, [batch, {model.embedding_dim}]")
    images = {"images": "digits, float32 [batch, 28, 28, 1] in [0, 1]"}
    guidance_range = {"guidance": (0.0, None)}
    text_checks = {"ranges": {"text": (0, 255), **guidance_range}, "encodings": {"text": utf8.ENCODING}}

    def checked_guidance(guidance, timestep=None):
        checks = [tf.debugging.assert_all_finite(guidance, message="guidance must be finite"),
                  tf.debugging.assert_non_negative(guidance, message="guidance must be at least 0 (0: unconditional)")]
        if timestep is not None:
            checks += [tf.debugging.assert_non_negative(timestep, message=f"timestep must be in 0..{last_timestep}"),
                       tf.debugging.assert_less_equal(timestep, last_timestep,
                                                      message=f"timestep must be in 0..{last_timestep}")]
        return checks

    # Named unlike the model's methods: autograph caches converted functions by name (see the diffusion recipe).
    def text_to_images(text, noise, guidance):
        with tf.control_dependencies(utf8.row_checks(text) + checked_guidance(guidance)):
            return model.generate(tf.identity(text), noise, tf.identity(guidance))

    def strings_to_images(text, noise, guidance):
        with tf.control_dependencies(checked_guidance(guidance)):
            return model.generate(utf8.string_rows(text), noise, tf.identity(guidance))

    def embed_text(text):
        with tf.control_dependencies(utf8.row_checks(text)):
            return {"text_embedding": model.encode_text(tf.identity(text))}

    def guided_step(images_t, timestep, text_embedding, guidance):
        with tf.control_dependencies(checked_guidance(guidance, timestep)):
            return model.denoise_step(images_t, tf.identity(timestep), text_embedding, tf.identity(guidance))

    def text_inpaint(text, images, mask, noise, guidance):
        checks = utf8.row_checks(text) + checked_guidance(guidance) + inpainting.graph_checks(images, mask, noise)
        with tf.control_dependencies(checks):
            return model.inpaint(tf.identity(text), images, mask, noise, tf.identity(guidance), INPAINT_STEPS,
                                 INPAINT_RESAMPLE)

    def read_digit(images, mask):
        return inpainting.read_digit_outputs(model, images, mask)

    inpaint_inputs, inpaint_ranges, inpaint_allowed = inpainting.signature_inputs()
    example = {"text": "一个粗体的七", "guidance": DEFAULT_GUIDANCE}
    return [
        core_export.Signature("serving_default", text_to_images, {"text": text, "noise": noise, "guidance": guidance},
                              images, example=example, **text_checks),
        core_export.Signature("encode_text", embed_text, {"text": text}, {
            "text_embedding": f"CLIP's unit text embedding, [batch, {model.embedding_dim}]"},
            example={"text": "a bold seven"}, ranges={"text": (0, 255)}, encodings={"text": utf8.ENCODING}),
        core_export.Signature("denoise_step", guided_step, {
            "images_t": (tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32), "the noisy images x_t, in [-1, 1] scale"),
            "timestep": (tf.TensorSpec(batch, tf.int32), f"t, 0..{last_timestep}"),
            "text_embedding": embedding, "guidance": guidance,
        }, {"predicted_noise": "guided noise estimate eps, [batch, 28, 28, 1]"},
            ranges={"timestep": (0, last_timestep), **guidance_range},
            example={"timestep": min(500, last_timestep), "guidance": DEFAULT_GUIDANCE}),
        core_export.Signature("serving_strings", strings_to_images, {
            "text": (tf.TensorSpec(batch, tf.string), f"the prompt, UTF-8, at most {utf8.TEXT_BYTES} bytes"),
            "noise": noise, "guidance": guidance}, images, tflite=False, example=example, ranges=guidance_range),
        core_export.Signature("inpaint", text_inpaint, {
            "text": (text[0], f"{text[1]}; all zeros (the empty prompt): complete the image as the digit the model "
                              "reads from the known pixels (read_digit's likeliest, as 'the digit D'; with guidance "
                              "0 the unconditional model fills the hole)"),
            **inpaint_inputs, "guidance": guidance},
            {"images": "the completed digits, [batch, 28, 28, 1] in [0, 1]: the known pixels exactly as given"},
            ranges={**text_checks["ranges"], **inpaint_ranges}, allowed=inpaint_allowed,
            encodings=text_checks["encodings"], example={"text": "", "guidance": DEFAULT_GUIDANCE}),
        *([inpainting.read_digit_signature(read_digit)] if model.recognizer is not None else []),
    ]


def draw(runner, prompts, noise, guidance=DEFAULT_GUIDANCE, batch_size=100, progress=False):
    """Images of ``prompts`` (strings) from ``noise`` through ``serving_default``; also returns the seconds taken."""
    rows = utf8.encode_texts(list(prompts))
    images, started = [], time.perf_counter()
    bar = progress_bar(len(rows), unit_name="image") if progress else None
    for start in range(0, len(rows), batch_size):
        end = start + batch_size
        images.append(runner("serving_default", text=rows[start:end], noise=noise[start:end],
                             guidance=np.full(len(rows[start:end]), guidance, np.float32))["images"])
        if bar:
            bar.add(len(rows[start:end]))
    return np.concatenate(images), time.perf_counter() - started


def ink(images):
    return np.asarray(images, np.float64).reshape(len(images), -1).sum(axis=1)


def _classes(quality, images):
    return quality.features_and_classes(images)[1]


def prompt_quality(runner, per_prompt=5, guidance=DEFAULT_GUIDANCE, seed=EVAL_SEED, progress=True, quality=None):
    """Does the picture show what the prompt asks? Over the captions' own kinds of prompt, both languages,
    ``per_prompt`` images each:

    - ``prompt_accuracy``: the zoo's MNIST classifier reads the asked digit, over the class prompts
      ("the digit seven", "数字七"), the bare digit ("seven", "七") and the ink prompts ("a bold seven",
      "一个细体的七"); also per language;
    - ``bold_thin_ink_ratio``: ink of "a bold D" / "一个粗体的D" over "a thin D" / "一个细体的D" images drawn from
      the same noise (per digit and language; the mean of the ratios);
    - FD (classifier features) of the class and bare-digit images against the MNIST test digits;
    - ``seconds_per_image`` of the whole in-graph loop in this runtime.
    """
    from zoo.core.metrics.mnist import MnistQuality

    quality = quality or MnistQuality()
    rng = np.random.default_rng(seed)
    prompts, digits, languages = [], [], []
    for language in captions.LANGUAGES:
        for template in (captions.CLASS_PROMPTS[language], "{d}"):
            for digit in range(10):
                prompts += [captions.fill(template, digit, language)] * per_prompt
                digits += [digit] * per_prompt
                languages += [language] * per_prompt
    noise = rng.standard_normal((len(prompts), *IMAGE_SHAPE)).astype(np.float32)
    images, seconds = draw(runner, prompts, noise, guidance, progress=progress)
    features, classes = quality.features_and_classes(images)
    metrics = quality.evaluate_features(features, classes)
    metrics["seconds_per_image"] = round(seconds / len(prompts), 4)

    ink_prompts = []
    for language in captions.LANGUAGES:
        for digit in range(10):
            for weight in (captions.BOLD, captions.THIN):
                ink_prompts += [captions.ink_prompt(digit, language, weight)] * per_prompt
                digits += [digit] * per_prompt
                languages += [language] * per_prompt
    shared = rng.standard_normal((per_prompt, *IMAGE_SHAPE)).astype(np.float32)
    ink_images, _ = draw(runner, ink_prompts, np.tile(shared, (len(ink_prompts) // per_prompt, 1, 1, 1)),
                         guidance, progress=progress)
    right = np.concatenate([classes, _classes(quality, ink_images)]) == np.asarray(digits)
    languages = np.array(languages)
    metrics["prompt_accuracy"] = round(float(np.mean(right)), 4)
    for language in captions.LANGUAGES:
        metrics[f"prompt_accuracy_{language}"] = round(float(np.mean(right[languages == language])), 4)
    metrics["ink_prompt_accuracy"] = round(float(np.mean(right[len(images):])), 4)
    amounts = ink(ink_images).reshape(-1, 2, per_prompt)  # [language x digit, bold/thin, noise]
    pairs = amounts[:, 0].mean(axis=1) / np.maximum(amounts[:, 1].mean(axis=1), 1e-6)
    metrics["bold_thin_ink_ratio"] = round(float(np.mean(pairs)), 4)
    metrics["bold_more_ink_fraction"] = round(float(np.mean(amounts[:, 0] > amounts[:, 1])), 4)
    metrics.update({"guidance": guidance, "steps": runner.manifest.get("generate_steps"),
                    "images_per_prompt": per_prompt})
    return metrics


def held_out_metric(language, family):
    """The manifest key of one held-out sentence family's prompt accuracy (``savedmodel_detailed``)."""
    return f"prompt_accuracy_held_out_{language}_{family.replace(' ', '_')}"


def unseen_phrasing_quality(runner, per_prompt=2, guidance=DEFAULT_GUIDANCE, seed=EVAL_SEED, quality=None):
    """``prompt_accuracy`` over CLIP's held-out sentence families (``captions.HELD_OUT_FAMILIES``: whole sentence
    shapes no training caption has, "someone wrote a seven"), per language, family and frame: how far the frozen
    text encoder's generalisation carries the pictures."""
    from zoo.core.metrics.mnist import MnistQuality

    quality = quality or MnistQuality()
    rng = np.random.default_rng(seed + 1)
    metrics = {}
    for language in captions.LANGUAGES:
        scores = {}
        for family, frames in captions.HELD_OUT_FAMILIES[language].items():
            right = []
            for frame in frames:
                prompts = [p for p in captions.held_out_prompts(frame, language) for _ in range(per_prompt)]
                noise = rng.standard_normal((len(prompts), *IMAGE_SHAPE)).astype(np.float32)
                images, _ = draw(runner, prompts, noise, guidance)
                hits = _classes(quality, images) == np.repeat(np.arange(10), per_prompt)
                scores[frame] = round(float(np.mean(hits)), 4)
                right.append(hits)
            metrics[held_out_metric(language, family)] = round(float(np.mean(np.concatenate(right))), 4)
        metrics[f"prompt_accuracy_unseen_phrasings_{language}"] = round(float(np.mean(list(scores.values()))), 4)
        metrics[f"per_phrasing_{language}"] = scores
    metrics["images_per_prompt"] = per_prompt
    return metrics


@register
class TextToImageRecipe(CosineDecayAdam, Recipe):
    name = "text2image"
    requires = ("clip",)
    summary = "text-to-image diffusion on MNIST: a prompt (English or Chinese) + noise -> digits, CLIP-conditioned"
    paper = ("Rombach et al. (2022), High-Resolution Image Synthesis with Latent Diffusion Models, arXiv:2112.10752; "
             "Ho & Salimans (2022), Classifier-Free Diffusion Guidance")
    model_class = TextToImage
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 8, "batch_size": 128, "learning_rate": 5e-4}
    sample_help = "Draw digits for a prompt, in English or Chinese, and write them as a PNG."
    evaluate_help = "Prompt accuracy (the classifier reads the asked digit), bold/thin ink ratio, FD, speed."
    metrics = ["prompt_accuracy", "bold_thin_ink_ratio", "frechet_distance", "seconds_per_image"]

    # === Model ===
    def create_model(self, preset="base", seed=0):
        if preset not in self.presets:
            raise BadInputError(f"unknown preset {preset!r} for {self.name}; choose from {', '.join(self.presets)}")
        config = dict(self.presets[preset])
        return TextToImage(text_encoder(config.pop("text_encoder_preset")), seed=seed, **config)

    options = (
        Option("prompt", str, None, f"what to draw, English or Chinese, at most 64 bytes of UTF-8 (default "
                                    f"{DEFAULT_PROMPT}; with --inpaint: none, the digit the model reads from the "
                                    "known pixels)", commands=("sample",), text=True),
        Option("num", int, 16, "how many images", commands=("sample",), minimum=1),
        Option("guidance", float, DEFAULT_GUIDANCE, "0 unconditional, 1 conditional, more: stronger",
               commands=("sample",), minimum=0.0),
        *inpainting.sample_options(),
        FINE_TUNE_FROM,
        inpainting.RECOGNIZER_ONLY,
        Option("per_prompt", int, 5, "images per prompt (5: 200 prompt images, 200 bold/thin images)",
               commands=("evaluate", "export"), minimum=1),
    )

    # === Training ===
    def create_training_model(self, preset, seed, fine_tune_from, recognizer_only):
        return inpainting.create_training_model(self, preset, seed, fine_tune_from, recognizer_only)

    def training_data(self, model, *, batch_size, seed, limit):
        train = captions.captioned_mnist("train", limit=limit)
        with_digits = model.recognizer is not None  # what the recognizer learns to read
        validation = captions.captioned_dataset(
            "test", batch_size=min(batch_size, 500), seed=EVAL_SEED, shuffle=False, value_range=(-1.0, 1.0),
            drop_remainder=False, limit=None if limit is None else max(limit // 6, 1), with_digits=with_digits)

        def dataset_fn(epoch):
            return captions.captioned_dataset("train", batch_size=batch_size, seed=seed, epoch=epoch,
                                              value_range=(-1.0, 1.0), data=train, with_digits=with_digits)

        return TrainingData(
            dataset_fn, ("MNIST train split (60,000 digits), pixels in [-1, 1], a new caption per digit and epoch "
                         "(zoo.core.data.captions)") if not limit else f"first {limit} MNIST training digits, captioned",
            validation=validation, config={"train_examples": len(train[0])})

    def training_config(self, model, data, *, epochs, total_steps, max_steps=None, fine_tune_from, recognizer_only):
        return {**super().training_config(model, data, epochs=epochs, total_steps=total_steps, max_steps=max_steps),
                "text_encoder_sha256": text_encoder_fingerprint(model.text_encoder),
                **fine_tune_config(fine_tune_from, model),
                **({"recognizer_only": True} if recognizer_only else {})}

    def epoch_samples(self, model, seed):
        """Two images per sample prompt, the exported DDIM step count, guidance 3."""
        if model.denoiser_frozen:  # --recognizer-only: the samples would not change
            return None
        rows = utf8.encode_texts([p for p in SAMPLE_PROMPTS for _ in range(2)])
        noise = np.random.default_rng(seed).standard_normal((len(rows), *IMAGE_SHAPE)).astype(np.float32)
        guidance = np.full(len(rows), DEFAULT_GUIDANCE, np.float32)
        return lambda m: m.generate(rows, noise, guidance)["images"]

    # === Export ===
    def signatures(self, model):
        return text2image_signatures(model)

    def export_plan(self, model, training, per_prompt):
        from zoo.core.metrics.mnist import MnistQuality

        quality = MnistQuality()

        def samples(runner, path):
            prompts = [p for p in SAMPLE_PROMPTS for _ in range(8)]
            noise = np.random.default_rng(0).standard_normal((len(prompts), *IMAGE_SHAPE)).astype(np.float32)
            images, _ = draw(runner, prompts, noise)
            save_image_grid(images, path, columns=8,
                            title="text2image, a row per prompt: "
                                  + " / ".join(prompt_label(p, captions.gloss(p)) for p in SAMPLE_PROMPTS))

        prompts = captions.random_captions(np.random.default_rng(1), core_export.REPRESENTATIVE_ROWS)
        rows = utf8.encode_texts(prompts)
        embeddings = model.encode_text(rows).numpy()

        def conditioning(signature, i):  # random captions of every digit, both languages; guidance 0-3 in turn
            row, guidance = np.s_[i % len(rows): i % len(rows) + 1], np.array([i % 4], np.float32)
            if signature == "encode_text":
                return {"text": rows[row]}
            if signature == "denoise_step":
                return {"text_embedding": embeddings[row], "guidance": guidance}
            return {"text": rows[row], "guidance": guidance}

        representative, representative_data = denoiser_calibration(model.alpha_bars.numpy(), conditioning)
        return core_export.ExportPlan(
            name=self.name, signatures=self.signatures(model),
            representative_inputs=representative, integer_products=True,
            representative_data=representative_data + f"; {len(prompts)} random captions (seed 1) and their CLIP "
                                                       "embeddings, guidance 0-3 in turn",
            description="Text-to-image diffusion on MNIST: a U-Net conditioned by FiLM on CLIP's frozen text "
                        "embedding, classifier-free guidance, DDIM in the graph.",
            paper=self.paper, training=training, keras_model=self.keras_model(model),
            evaluate=lambda runner: prompt_quality(runner, per_prompt, quality=quality),
            detailed_evaluate=lambda runner: unseen_phrasing_quality(runner, max(1, per_prompt // 2),
                                                                     quality=quality),
            samples=samples, primary_metric="prompt_accuracy", metric_summary=self.metrics,
            notes={"alpha_bars": [float(a) for a in model.alpha_bars.numpy()], "generate_steps": model.generate_steps,
                   "default_guidance": DEFAULT_GUIDANCE, "sample_prompts": list(SAMPLE_PROMPTS),
                   "inpaint_steps": INPAINT_STEPS, "inpaint_resample": INPAINT_RESAMPLE,
                   "held_out_phrasings": captions.HELD_OUT, "held_out_families": captions.HELD_OUT_FAMILIES,
                   "held_out_noun_phrases": captions.HELD_OUT_NOUN_PHRASES,
                   "text_encoder": {"from": "exported clip (zoo registry), frozen",
                                    "sha256_of_weights": text_encoder_fingerprint(model.text_encoder)},
                   "metric_definitions": {
                       "prompt_accuracy": "fraction of images the zoo's MNIST classifier reads as the prompt's digit; "
                                          "prompts, both languages: the class prompts ('the digit seven', '数字七'), "
                                          "the bare digit ('seven', '七') and the ink prompts ('a bold seven', "
                                          "'一个细体的七'), per_prompt images each",
                       "prompt_accuracy_unseen_phrasings_<language>": "savedmodel_detailed: the same over the "
                                                                      "frames of CLIP's held-out sentence families "
                                                                      "(held_out_families, {np} = "
                                                                      "held_out_noun_phrases)",
                       "prompt_accuracy_held_out_<language>_<family>": "savedmodel_detailed: the same over one "
                                                                       "held-out family's frames",
                       "bold_thin_ink_ratio": "mean over digits and languages of ink('a bold D') / ink('a thin D'), "
                                              "the same noise for both",
                       "frechet_distance": "classifier FD of the prompt images to the MNIST test digits (few "
                                           "samples bias it upwards)",
                       "seconds_per_image": "wall time of serving_default per image in this runtime, batches of "
                                            "up to 100, on the export machine"}},
        )

    # === Use ===
    def sample(self, runner, *, output, seed, prompt, num, guidance, inpaint, mask):
        """Images of the prompt; with ``--inpaint FILE`` completions of that digit as the prompt asks (without a
        prompt: as the digit the model reads from the known pixels)."""
        if prompt is None:
            prompt = "" if inpaint is not None else DEFAULT_PROMPT
        utf8.encode_texts(prompt)  # one clear error for a prompt too long, before any work
        if inpaint is not None:
            inpainting.sample_completions(
                lambda images, masks, noise: runner(
                    "inpaint", text=utf8.encode_texts([prompt] * len(images)), images=images, mask=masks, noise=noise,
                    guidance=np.full(len(images), guidance, np.float32))["images"],
                inpaint, mask, num, seed, output,
                f"text2image inpainting ({mask}) as "
                + (prompt_label(prompt, captions.gloss(prompt)) if prompt else
                   "the digit the model reads" if guidance else "no prompt, unconditional")
                + f": the digit, its known pixels, {num} completions")
            return f"Wrote {inpaint}, its {mask} mask and {num} completions to {output}"
        noise = np.random.default_rng(seed).standard_normal((num, *IMAGE_SHAPE)).astype(np.float32)
        images, _ = draw(runner, [prompt] * num, noise, guidance)
        save_image_grid(images, output, title=f"text2image: {prompt_label(prompt, captions.gloss(prompt))}, guidance "
                                              f"{guidance}, {runner.manifest.get('generate_steps')} DDIM steps")
        return f"Wrote {num} images of {prompt!r} to {output}"

    def evaluate(self, runner, *, seed, per_prompt):
        return prompt_quality(runner, per_prompt, seed=seed)


def text_encoder(preset):
    """CLIP's text encoder: the exported, trained one ("exported", sha256-checked through the registry's
    loader), or an untrained one of a CLIP preset (tests)."""
    if preset != "exported":
        return get_recipe("clip").create_model(preset, seed=0).text_encoder
    from zoo.core.runtime import paths
    from zoo.core.recipes.commands import load

    return load("clip", runtime="keras", exported_dir=paths.EXPORTED_DIR).model.text_encoder


def text_encoder_fingerprint(encoder):
    """sha256 of a text encoder's weights: which CLIP a run or an export was conditioned on."""
    import hashlib

    digest = hashlib.sha256()
    for weight in encoder.weights:
        digest.update(np.asarray(weight).tobytes())
    return digest.hexdigest()
