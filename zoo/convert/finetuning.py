"""Fine-tune a converted KerasHub GPT-2 / OPT on your text, exported to the same contract as the conversion.

    python -m zoo convert keras-hub gpt2_base_en --output out/gpt2 --context-length 256
    python -m zoo finetune keras-hub --base out/gpt2 --data my_text.txt --output out/gpt2-mine --steps 300

The conversion's folder holds everything a fine-tune needs: the network as ``<name>.keras`` (the zoo's
:class:`zoo.core.nn.decoder.DecoderLM`, whose training step the byte-level GPT trains with) and the
tokenizer's files. The text is tokenized with them (``zoo/convert/bpe.py``, KerasHub's tokens exactly), its
first 90% trains and its last 10% validates (nats per token); the adapters merge into the kernels, and the
export is the conversion's again: ``serving_default`` with the tokenizer in the graph, ``logits``, ``prefill``,
``decode_step``, ``generate`` in every runtime, the tokenizer's files, the same app loop
(``zoo/convert/tflite_generate.py``).

This is :class:`KerasHubRecipe`, the recipe of a converted folder, not of a package of the zoo: the registry's
``CONVERTERS`` names this module, so ``zoo.finetune("keras-hub", base=...)`` gets it from
:func:`recipe_for_finetune` and ``zoo.load(folder, runtime="keras")`` from the folder's manifest
(:func:`is_converted`, :func:`recipe_for`).
"""

import functools
import json
import os

import numpy as np

from zoo.convert import bpe
from zoo.convert.keras_hub import KERAS_LOADER, serving_signature, write_samples
from zoo.core.data import datasets as data
from zoo.core.metrics.text import validation_loss
from zoo.core.nn.decoder import DecoderLM, decoder_signatures
from zoo.core.recipes.finetuning import FINE_TUNE_FROM, fine_tune_config, start_from
from zoo.core.recipes.recipe import Option, Recipe, TrainingData
from zoo.core.recipes.text import TEXT_OPTION, window_batches
from zoo.core.runtime.errors import ArtifactNotFoundError, BadInputError
from zoo.core.training.optimizers import adamw_with_warmup, warmup_cosine_config

NAME = "keras-hub"
TOKENIZER_FILES = (bpe.VOCABULARY_FILE, bpe.MERGES_FILE, bpe.CONFIG_FILE)
SAMPLE_PROMPTS = ("The zoo", "Once upon a time, there was")


def is_converted(manifest):
    """Whether an exported model's manifest is a conversion by ``zoo convert keras-hub`` (or a fine-tune of one)."""
    return "keras_hub_class" in (manifest.get("training") or {}).get("source", {})


def keras_hub_tokenizer(folder):
    """KerasHub's ``BytePairTokenizer`` from a converted folder's files: the TensorFlow tokenizer the SavedModel's
    ``serving_default`` runs (the files are the ones the conversion saved from the preset's)."""
    import keras_hub

    with open(os.path.join(folder, bpe.CONFIG_FILE), encoding="utf-8") as f:
        config = json.load(f)
    return keras_hub.tokenizers.BytePairTokenizer(
        vocabulary=os.path.join(folder, bpe.VOCABULARY_FILE), merges=os.path.join(folder, bpe.MERGES_FILE),
        unsplittable_tokens=config["special_tokens"] or None)


def text_tokens(tokenizer, text, what):
    """``text``'s token ids, int32; a piece the vocabulary lacks is an error, not a silent id."""
    ids = np.asarray(tokenizer.tokenize(text), np.int32)
    if (ids < 0).any():
        raise BadInputError(f"{what} has text the tokenizer's vocabulary cannot write (token {int(np.argmin(ids))})")
    return ids


class KerasHubRecipe(Recipe):
    """The fine-tuning recipe of a folder written by ``python -m zoo convert keras-hub`` (``folder``); the
    export's files are named ``export_name`` (the output folder's name, as the conversion names them)."""

    name = NAME
    summary = "a KerasHub GPT-2 / OPT converted by `python -m zoo convert keras-hub`, fine-tuned on your text"
    paper = "Radford et al. (2019), Language Models are Unsupervised Multitask Learners"
    model_class = DecoderLM
    presets = {"converted": {}}  # the one size: the converted folder's (create_training_model reads it)
    # batch 8 of a pretrained model's windows; 1e-4 and LoRA's 10x are the rates GPT-2 fine-tunes are commonly
    # run at (no pretrained preset can be downloaded here to measure them)
    defaults = {"preset": "converted", "batch_size": 8, "learning_rate": 1e-4}
    finetune_data_option = "text"
    # a pretrained model's vocabulary is large (GPT-2's embedding is 31% of its weights): only the layer norms
    # train in full beside the adapters
    lora_trains_in_full = ("_norm",)
    sample_suffix = ".txt"
    metrics = ["validation_loss"]
    options = (
        FINE_TUNE_FROM,
        TEXT_OPTION,
        Option("max_windows", int, None, "score only the first N validation windows (default: all)",
               commands=("export",), minimum=1),
    )

    def __init__(self, folder=None, export_name=None):
        self.folder = folder
        self.export_name = export_name or (os.path.basename(os.path.normpath(folder)) if folder else NAME)
        self._splits = {}  # text file -> its (train, validation) tokens: training and the export both read them

    def base_manifest(self):
        from zoo.core.runtime.runners import read_manifest

        return read_manifest(self.folder, verify=False)  # zoo.load verified every file before training

    @functools.cached_property
    def tokenizer(self):
        """The folder's tokenizer in Python (``bpe.py``: KerasHub's tokens, no TensorFlow)."""
        return bpe.BytePairTokenizer.from_folder(self.folder)

    # === Training ===
    def create_model(self, preset="base", seed=0):
        raise BadInputError("a converted KerasHub model starts from its folder: python -m zoo finetune keras-hub "
                            "--base FOLDER (written by python -m zoo convert keras-hub)")

    def create_training_model(self, preset, seed, fine_tune_from):
        if fine_tune_from is None:
            return self.create_model()  # raises: there is no model but the folder's
        return start_from(self, preset, seed, fine_tune_from)

    def text_split(self, text):
        """``(train, validation)`` token ids of the UTF-8 file ``text``: its first 90% and last 10% (by
        characters, so no character is cut), each tokenized."""
        key = os.path.abspath(text)
        if key not in self._splits:
            content = data.text_bytes(text).tobytes().decode("utf-8")
            cut = int(len(content) * data.TRAIN_FRACTION)
            self._splits[key] = (text_tokens(self.tokenizer, content[:cut], text),
                                 text_tokens(self.tokenizer, content[cut:], text))
        return self._splits[key]

    def training_data(self, model, *, batch_size, seed, limit, text):
        train_tokens, validation_tokens = self.text_split(text)
        dataset_fn, validation = window_batches(train_tokens, validation_tokens, window=model.context_length,
                                                batch_size=batch_size, seed=seed, limit=limit, what=text,
                                                unit="token", validation_batch=batch_size)
        return TrainingData(
            dataset_fn,
            (f"{text}: first 90% ({len(train_tokens):,} tokens) for training, last 10% ({len(validation_tokens):,} "
             f"tokens) for validation, tokenized by {self.folder}'s tokenizer"
             + ("" if limit is None else f"; at most {limit} windows an epoch")),
            validation=validation,
            config={"text": os.path.abspath(text), "train_tokens": int(len(train_tokens)), "limit": limit})

    def training_config(self, model, data, *, epochs, total_steps, max_steps, fine_tune_from):
        return {**warmup_cosine_config(epochs, total_steps, max_steps), **fine_tune_config(fine_tune_from, model)}

    def compile(self, model, config):
        adamw_with_warmup(model, config)

    # === Export ===
    def signatures(self, model):
        start_token = self.tokenizer.start_token
        architecture = self.base_manifest()["training"]["source"]["keras_hub_class"]
        return decoder_signatures(model, serving_signature(model, keras_hub_tokenizer(self.folder), start_token),
                                  unit="token", token_meaning=f"{architecture[:-len('CausalLM')]} token ids")

    def export_plan(self, model, training, max_windows):
        """The conversion's export of the fine-tuned weights, measured on the text's held-out 10%."""
        from zoo.core import export as core_export

        base = self.base_manifest()
        name, context = self.export_name, model.context_length
        validation = self.text_split(training["config"]["text"])[1]
        training = {**training, "source": base["training"]["source"]}  # what the base was converted from

        def samples(runner, path):
            write_samples(runner, self.tokenizer, name, SAMPLE_PROMPTS, path, model.stop_token)

        return core_export.ExportPlan(
            name=name,
            signatures=self.signatures(model),
            description=f"{base['description']} Fine-tuned on {os.path.basename(training['config']['text'])}.",
            paper=self.paper,
            training=training,
            keras_model=self.keras_model(model),
            keras_loader=KERAS_LOADER,
            evaluate=lambda runner: validation_loss(runner, validation, context, max_windows=max_windows,
                                                    unit="token"),
            samples=samples, samples_file="samples.txt",
            primary_metric=self.metrics[0],
            extra_files={f: os.path.join(self.folder, f) for f in TOKENIZER_FILES},
            savedmodel_imports=["tensorflow_text"],  # the tokenizer's regex split
            notes={"tokenizer": base["tokenizer"],
                   "metric_definitions": {
                       "validation_loss": "mean next-token cross-entropy in nats per token (lower is better) on "
                                          f"the last 10% of the fine-tuning text, as non-overlapping {context}-token "
                                          "windows; through the 'logits' signature",
                       "validation_tokens": "how many tokens were scored"}},
        )


def recipe_for(folder):
    return KerasHubRecipe(folder)


def recipe_for_finetune(base, output=None):
    """The recipe of ``finetune keras-hub --base BASE --output OUTPUT``, with a clear error for a ``base`` that is
    not a conversion (or one written before conversions kept their ``.keras`` file)."""
    from zoo.core.runtime.runners import read_manifest

    if base is None:
        raise BadInputError("--base is required for keras-hub: the folder `python -m zoo convert keras-hub` wrote")
    if not os.path.isfile(os.path.join(base, "manifest.json")):
        raise ArtifactNotFoundError(f"--base {base} is not an exported model (no manifest.json): give the folder "
                                    "`python -m zoo convert keras-hub PRESET --output FOLDER` wrote")
    manifest = read_manifest(base, verify=False)  # every file is verified when the model loads
    if not is_converted(manifest):
        raise BadInputError(f"--base {base} is the zoo's {manifest['model']}, not a KerasHub conversion: "
                            f"python -m zoo finetune {manifest['model']} --base {base} ...")
    if "keras" not in manifest:
        raise BadInputError(f"--base {base} has no .keras file (converted before conversions kept one): convert "
                            "the preset again with `python -m zoo convert keras-hub`")
    return KerasHubRecipe(base, export_name=os.path.basename(os.path.normpath(output)) if output else None)
