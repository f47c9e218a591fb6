"""The GPT's recipe: tiny Shakespeare (or your text) as bytes, nanoGPT's optimizer, five signatures, nats per byte.

    python -m zoo train gpt                                 # the committed model (25 epochs)
    python -m zoo train gpt --fine-tune-from exported/gpt --text my.txt --epochs 2 --run-dir runs/my-gpt
    python -m zoo export gpt                                # runs/gpt -> exported/gpt/
    python -m zoo sample gpt --prompt "ROMEO:" --max-new-tokens 300 --temperature 0.8 --top-p 0.95
    python -m zoo evaluate gpt --variant int8               # validation loss, nats per byte

Each epoch reads the training text once, as non-overlapping windows of
``context_length`` bytes, shifted by a random offset and shuffled (both from the
seed and the epoch, so a resumed run sees the batches an uninterrupted one would).
The learning rate warms up linearly, then follows a cosine decay to 10% over the
whole run, so ``--epochs`` is part of the run's config. AdamW with gradient
clipping (global norm 1) and weight decay on the matrices only, as nanoGPT does.

Signatures (``zoo/gpt/README.md`` has the table, generated from the manifest):

- SavedModel only (strings): ``serving_default``, prompt text in, continuation text out.
- SavedModel and TFLite: ``logits`` (score text), ``prefill`` + ``decode_step``
  (the key/value cache as an explicit input and output, for an app's own loop)
  and ``generate`` (the whole loop in the graph, noise as an input).
  The SavedModel checks every input's range in the graph; TFLite drops such
  checks, so the manifest records the ranges and every runner (and the app loop) checks them.
"""

import hashlib
import os

import numpy as np

from zoo.core.data import datasets as data
from zoo.core import export as core_export
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.files import write_text
from zoo.core.metrics.text import validation_loss
from zoo.core.training.optimizers import WARMUP_FRACTION, adamw_with_warmup, warmup_cosine_config
from zoo.core.recipes.recipe import Option, Recipe, TrainingData
from zoo.core.recipes.options import check_text
from zoo.core.recipes.finetuning import FINE_TUNE_FROM, fine_tune_config, start_from
from zoo.core.recipes.registry import register
from zoo.core.recipes.text import TEXT_OPTION, sampling_options, training_text, window_batches
from zoo.core.nn.decoder import decoder_signatures
from zoo.core.apps.text_sampling import RunnerDecoder, generate_tokens
from zoo.core.nn.text_generation import (SAMPLING_DEFAULTS, SAMPLING_RANGES, SERVING_EXAMPLE, TextSamples, serving_text_function,
                                      serving_text_inputs, write_continuation)
from zoo.gpt.model import GPT, PRESETS

NAME = "gpt"
SAMPLE_PROMPT = "\n"
SAMPLE_BYTES = 300
SAMPLE_PROMPTS = ("ROMEO:", "First Citizen:\nWe are", "JULIET:\nO", "月")


def gpt_signatures(model):
    context = model.context_length
    return decoder_signatures(model, core_export.Signature(
        "serving_default",
        serving_text_function(model.generate, max_prompt_bytes=context, max_new_tokens=context),
        serving_text_inputs(context, context),
        {"text": "the continuation only (not the prompt), UTF-8; a cut-off character becomes U+FFFD"},
        tflite=False, example=SERVING_EXAMPLE, ranges=SAMPLING_RANGES))


def context_length_of(runner):
    return runner.signatures["decode_step"]["inputs"]["cache"]["shape"][2]


def _samples_text(runner, context_length):
    model = RunnerDecoder(runner, context_length)
    parts = []
    for i, prompt in enumerate(SAMPLE_PROMPTS):
        for temperature, label in ((0.0, "greedy"), (0.8, "temperature 0.8, top_p 0.95, seed 0")):
            out = bytes(generate_tokens(model, list(prompt.encode("utf-8")), 300, temperature, 0, 0.95, seed=0))
            parts.append(f"=== {label} ===\n{prompt}{out.decode('utf-8', errors='replace')}\n")
    return "\n".join(parts)


def generate_text(runner, prompt, *, max_new_tokens=200, temperature=SAMPLING_DEFAULTS["temperature"],
                  top_k=SAMPLING_DEFAULTS["top_k"], top_p=SAMPLING_DEFAULTS["top_p"], seed=0,
                  slide=True):
    """The continuation (str) of ``prompt`` through any runner's ``prefill``/``decode_step``.

    Raises :class:`BadInputError` for an empty or too-long prompt and invalid sampling options.
    """
    check_text(prompt, "the prompt")
    try:
        out = bytes(generate_tokens(RunnerDecoder(runner, context_length_of(runner)), list(prompt.encode("utf-8")),
                                    max_new_tokens, temperature, top_k, top_p, seed=seed, slide=slide))
    except ValueError as error:
        raise BadInputError(str(error)) from None
    return out.decode("utf-8", errors="replace")


@register
class GPTRecipe(Recipe):
    name = NAME
    summary = "byte-level GPT on tiny Shakespeare: UTF-8 prompt -> continuation (key/value cache)"
    paper = ("Radford et al. (2018/2019), Improving Language Understanding by Generative Pre-Training; "
             "Language Models are Unsupervised Multitask Learners")
    model_class = GPT
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 25, "batch_size": 64, "learning_rate": 1.5e-3}
    sample_suffix = ".txt"
    sample_help = ("Continue a prompt with the exported GPT (sha256-checked first) through prefill and decode_step "
                   "with the key/value cache, sliding past the context; print it and write it to a .txt file.")
    evaluate_help = "Validation loss (nats per byte) of the exported GPT on tiny Shakespeare's last 10%."
    metrics = ["validation_loss"]
    finetune_data_option = "text"
    # a new kind of text needs new byte statistics: the layer norms train in full beside the adapters, and so
    # do the embedding's rows (also the output head's) of the bytes the new text holds (Python source: 96 of
    # 256, 18,432 weights): the rest keep their vectors, and the weights saved pay for rank 6 instead of 4
    # within 5% of the base preset's 2.7 M (Python source, 200 steps: 1.518 -> 1.503 nats per byte;
    # benchmarks/lora_variants.py)
    lora_trains_in_full = ("_norm",)
    lora_embedding_rows = ("token_embedding",)
    lora_rank = 6
    lora_learning_rate = 2e-2  # the best of 1e-2, 2e-2 and 3e-2 for rank 4 on Python source, 200 steps
    # a fine-tune sees its text for about an epoch: the base's dropout (0.1) only slows the fit (Python source,
    # 200 steps: LoRA 1.554 -> 1.518, full 1.468 -> 1.432 nats per byte; benchmarks/lora_variants.py)
    finetune_model_config = {"dropout": 0.0}

    options = (
        FINE_TUNE_FROM,
        TEXT_OPTION,
        Option("warmup_steps", int, None, f"learning-rate warm-up steps (default {WARMUP_FRACTION * 100:.0f}%% of "
                                          "the run's steps, at least 10; nanoGPT's recipe: 100)",
               commands=("train",), minimum=1),
        *sampling_options("the text to continue", max_new_tokens=200),
        Option("max_windows", int, None, "score only the first N validation windows (default: all)",
               commands=("evaluate", "export"), minimum=1),
    )

    # === Training ===
    def create_training_model(self, preset, seed, fine_tune_from):
        return start_from(self, preset, seed, fine_tune_from)

    def training_data(self, model, *, batch_size, seed, limit, text):
        train_bytes, validation_bytes = training_text(text)
        dataset_fn, validation = window_batches(train_bytes, validation_bytes, window=model.context_length,
                                                batch_size=batch_size, seed=seed, limit=limit,
                                                what=text or "tiny Shakespeare")
        what = "tiny Shakespeare" if text is None else f"{text}"
        return TrainingData(
            dataset_fn,
            (f"{what}: first 90% ({len(train_bytes):,} bytes) for training, last 10% "
             f"({len(validation_bytes):,} bytes) for validation, as UTF-8 bytes"
             + ("" if limit is None else f"; at most {limit} windows an epoch")),
            validation=validation,
            config={"train_bytes": int(len(train_bytes)),
                    "text_sha256": hashlib.sha256(train_bytes.tobytes()).hexdigest(),
                    **({"text": os.path.abspath(text)} if text else {}),  # export validates on its last 10%
                    "limit": limit},
            token_ids=np.unique(train_bytes))

    def training_config(self, model, data, *, epochs, total_steps, max_steps, fine_tune_from, warmup_steps):
        return {**warmup_cosine_config(epochs, total_steps, max_steps, warmup_steps),
                **fine_tune_config(fine_tune_from, model)}

    def compile(self, model, config):
        adamw_with_warmup(model, config)

    def sample_callbacks(self, run_dir, seed):
        return [TextSamples(run_dir, seed, prompt=SAMPLE_PROMPT, num_bytes=SAMPLE_BYTES)]

    # === Export ===
    def signatures(self, model):
        return gpt_signatures(model)

    def export_plan(self, model, training, max_windows):
        """The validation loss of every runtime, on the text the run validated on."""
        validation = training_text(training.get("config", {}).get("text"))[1]
        context = model.context_length

        def samples(runner, path):
            write_text(path, f"{NAME}: continuations from gpt.tflite (LiteRT) through prefill/decode_step, "
                             f"sliding past the {context}-byte context\n\n" + _samples_text(runner, context))

        return core_export.ExportPlan(
            name=NAME,
            signatures=self.signatures(model),
            description="Byte-level GPT trained on tiny Shakespeare; continues UTF-8 text, any language.",
            paper=self.paper,
            training=training,
            keras_model=self.keras_model(model),
            evaluate=lambda runner: validation_loss(runner, validation, context, max_windows=max_windows),
            samples=samples,
            samples_file="samples.txt",
            primary_metric=self.metrics[0],
            notes={"metric_definitions": {
                "validation_loss": "mean next-byte cross-entropy in nats per byte (lower is better) on the last 10% "
                                   f"of the text, as non-overlapping {context}-byte windows, each byte predicted "
                                   "from the bytes before it in its window; through the 'logits' signature",
                "validation_bytes": "how many bytes were scored",
            }},
        )

    # === Use ===
    def sample(self, runner, *, output, seed, prompt, max_new_tokens, temperature, top_k, top_p):
        return write_continuation(output, prompt, generate_text(
            runner, prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
            seed=seed))

    def evaluate(self, runner, *, seed, max_windows):
        return validation_loss(runner, data.tiny_shakespeare("validation"), context_length_of(runner),
                               max_windows=max_windows)
