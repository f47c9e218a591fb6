"""A KerasHub causal language model (GPT-2, OPT) to the zoo's export contract: TF Serving and a phone.

    python -m zoo convert keras-hub gpt2_base_en --output exported/gpt2_base_en
    python -m zoo convert keras-hub path/to/preset_folder --output out/my-gpt2 --context-length 256

The preset (a KerasHub name, downloaded when online, or a folder written by
``save_to_preset``) is loaded with KerasHub; its weights are copied into the zoo's
:class:`zoo.core.nn.decoder.DecoderLM`, which has the same layout (pre-norm blocks,
learned positions, tied embeddings) but a key/value cache and a decoding loop that
convert to TFLite builtins. The export has the same signatures, input and output
names as ``exported/gpt`` (``prefill``, ``decode_step``, ``generate``, ``logits``),
so one app loop drives both; ``serving_default`` (SavedModel only) takes and returns
text, with KerasHub's BPE tokenizer in the graph. The tokenizer's files are written
beside the model for ``zoo/convert/bpe.py``, the app's pure-Python tokenizer.

Covered: :data:`ARCHITECTURES` (decoder-only, learned absolute positions, tied
embeddings, pre-norm). Rotary-position models (Llama, Mistral, Gemma, GPT-NeoX, ...)
are a different network and get an error naming the covered ones.
"""

import hashlib
import json
import os
import shlex
import shutil
import sys
import time

import numpy as np

from zoo.convert import bpe
from zoo.core.runtime.errors import ArtifactNotFoundError, BadInputError, ZooError

# KerasHub task class -> (MLP activation, end-of-text token attribute); every other
# detail (layer norm eps 1e-5, pre-norm, tied head) is shared and checked below.
ARCHITECTURES = {
    "GPT2CausalLM": "gelu_approximate",
    "OPTCausalLM": "relu",
}
PRESET_FILES = ("config.json", "metadata.json", "task.json", "model.weights.h5", "tokenizer.json")
REFERENCE_PROMPTS = ("The zoo", "Once upon a time, there was", "First Citizen:\nWe are", "1 + 1 =")
# the manifest's word on what loads <name>.keras: a converted model is no package of the zoo's registry
KERAS_LOADER = "zoo.convert.finetuning: KerasHubRecipe (the manifest's training.source names the KerasHub class)"
REFERENCE_TOKENS = 16  # greedy tokens per prompt compared with KerasHub's generate


def _check_preset_folder(folder):
    missing = [name for name in PRESET_FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise ArtifactNotFoundError(
            f"{folder} is not a complete KerasHub preset: missing {', '.join(missing)}. A causal LM preset "
            "folder is written by `causal_lm.save_to_preset(folder)` and holds config.json, task.json, "
            "tokenizer.json, model.weights.h5 and assets/tokenizer/.")
    with open(os.path.join(folder, "task.json"), encoding="utf-8") as f:
        task = json.load(f).get("class_name", "?")
    if task not in ARCHITECTURES:
        kind = "a causal LM" if task.endswith("CausalLM") else "not a causal LM"
        raise BadInputError(f"{folder} holds a KerasHub {task} ({kind}); the converter covers "
                            f"{', '.join(ARCHITECTURES)} (decoder-only, learned positions, tied embeddings)")


def load_causal_lm(preset):
    """The KerasHub causal LM of ``preset`` (a name or a local folder), checked to be a covered architecture."""
    import keras_hub

    if os.path.isdir(preset):
        _check_preset_folder(preset)
    elif os.sep in preset or preset.startswith("."):
        raise ArtifactNotFoundError(f"no preset folder at {preset}")
    try:
        causal_lm = keras_hub.models.CausalLM.from_preset(preset)
    except (ValueError, OSError, KeyError) as error:
        raise ArtifactNotFoundError(
            f"KerasHub could not load the preset {preset!r} ({error}). Give a KerasHub preset name "
            "(downloads need a network) or a folder written by save_to_preset.") from None
    name = type(causal_lm).__name__
    if name not in ARCHITECTURES:
        raise BadInputError(f"{preset!r} is a KerasHub {name}; the converter covers {', '.join(ARCHITECTURES)}")
    return causal_lm


def _weight(weights, path):
    if path not in weights:
        raise ZooError(f"the KerasHub model has no weight {path!r}: its layout differs from the covered ones")
    return np.asarray(weights[path])


def decoder_from_keras_hub(causal_lm, context_length=None):
    """A :class:`DecoderLM` with the KerasHub model's weights (positions cut to ``context_length``)."""
    from zoo.core.nn.decoder import DecoderLM

    backbone = causal_lm.backbone
    weights = {w.path.split("/", 1)[1] if w.path.startswith("embeddings/") else w.path: w.numpy()
               for w in backbone.weights}
    max_length = int(backbone.max_sequence_length)
    context = max_length if context_length is None else int(context_length)
    if not 2 <= context <= max_length:
        raise BadInputError(f"--context-length must be in 2..{max_length} (the preset's), got {context}")
    layer = backbone.transformer_layers[0]
    if not layer.normalize_first or abs(layer.layer_norm_epsilon - 1e-5) > 1e-12:
        raise ZooError("only pre-norm decoders with layer-norm epsilon 1e-5 convert")
    tokenizer = causal_lm.preprocessor.tokenizer
    model = DecoderLM(
        num_layers=backbone.num_layers, num_heads=backbone.num_heads, hidden_dim=backbone.hidden_dim,
        context_length=context, vocabulary_size=backbone.vocabulary_size,
        intermediate_dim=backbone.intermediate_dim, activation=ARCHITECTURES[type(causal_lm).__name__],
        stop_token=tokenizer.end_token_id, name="decoder_lm")
    hidden = backbone.hidden_dim
    model.token_embedding.embeddings.assign(_weight(weights, "token_embedding/embeddings"))
    model.position_embedding.embeddings.assign(_weight(weights, "position_embedding/embeddings")[:context])
    for i, block in enumerate(model.blocks):
        prefix = f"transformer_layer_{i}/"

        def get(name):
            return _weight(weights, prefix + name)

        kernels = [get(f"self_attention/{n}/kernel").reshape(hidden, hidden) for n in ("query", "key", "value")]
        biases = [get(f"self_attention/{n}/bias").reshape(hidden) for n in ("query", "key", "value")]
        block.qkv.set_weights([np.concatenate(kernels, axis=1), np.concatenate(biases)])
        block.attention_output.set_weights([get("self_attention/attention_output/kernel").reshape(hidden, hidden),
                                            get("self_attention/attention_output/bias")])
        block.attention_norm.set_weights([get("self_attention_layer_norm/gamma"),
                                          get("self_attention_layer_norm/beta")])
        block.mlp_hidden.set_weights([get("feedforward_intermediate_dense/kernel"),
                                      get("feedforward_intermediate_dense/bias")])
        block.mlp_output.set_weights([get("feedforward_output_dense/kernel"), get("feedforward_output_dense/bias")])
        block.mlp_norm.set_weights([get("feedforward_layer_norm/gamma"), get("feedforward_layer_norm/beta")])
    model.final_norm.set_weights([_weight(weights, "layer_norm/gamma"), _weight(weights, "layer_norm/beta")])
    return model


def tokenizer_files(causal_lm, folder):
    """Write ``vocabulary.json``, ``merges.txt``, ``tokenizer.json`` for :class:`zoo.convert.bpe.BytePairTokenizer`."""
    tokenizer = causal_lm.preprocessor.tokenizer
    tokenizer.save_assets(folder)
    start = tokenizer.start_token_id if causal_lm.preprocessor.add_start_token else None
    config = {"special_tokens": list(tokenizer.unsplittable_tokens or []), "start_token": start,
              "stop_token": tokenizer.end_token_id, "vocabulary_size": tokenizer.vocabulary_size()}
    with open(os.path.join(folder, bpe.CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
    return [bpe.VOCABULARY_FILE, bpe.MERGES_FILE, bpe.CONFIG_FILE]


def serving_signature(model, tokenizer, start_token):
    """``serving_default``: prompt strings -> continuation strings, KerasHub's tokenizer in the graph."""
    import tensorflow as tf

    from zoo.core.export import Signature
    from zoo.core.nn.text_generation import SAMPLING_RANGES, checked_sampling, row_noise, sampling_specs

    context = model.context_length
    with_start = " (with the start token)" if start_token is not None else ""
    if not tokenizer.built:  # ExportArchive tracks built layers only (the tokenizer has no weights to build)
        tokenizer.build(None)

    def serve(prompt, max_new_tokens, temperature, top_k, top_p, seed):
        ids = tf.cast(tokenizer(prompt), tf.int32)  # ragged [batch, None]: KerasHub's TF path
        if start_token is not None:
            ids = tf.concat([tf.fill([ids.nrows(), 1], start_token), ids], axis=1)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        checks = [tf.debugging.assert_positive(tf.strings.length(prompt),
                                               message="prompt is empty: give at least one character"),
                  tf.debugging.assert_less_equal(
                      lengths, context,
                      message=f"prompt is longer than the model's context of {context} tokens{with_start}; "
                              "shorten it")]
        with tf.control_dependencies(checks):
            tokens = ids.to_tensor(default_value=0, shape=[None, context])
        max_new_tokens, temperature, top_k, top_p = checked_sampling(max_new_tokens, temperature, top_k, top_p)
        out = model.generate(tokens, lengths, max_new_tokens, temperature, top_k, top_p, row_noise(seed, context))
        generated = tf.RaggedTensor.from_tensor(out["tokens"], lengths=out["num_tokens"])
        text = tokenizer.detokenize(generated)
        return {"text": tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")}

    inputs = {"prompt": (tf.TensorSpec([None], tf.string),
                         f"UTF-8 text to continue, at least 1 character and at most {context} tokens{with_start}"),
              **sampling_specs(f"tokens to generate per row (stops at the context, or at token {model.stop_token})",
                               unit="token"),
              "seed": (tf.TensorSpec([None], tf.int32), "seed of this row's sampling noise")}
    return Signature("serving_default", serve, inputs,
                     {"text": "the continuation only (not the prompt), UTF-8; a cut-off character becomes U+FFFD"},
                     tflite=False, resources=[tokenizer], ranges=SAMPLING_RANGES,
                     example={"prompt": "The zoo", "max_new_tokens": 20, "temperature": 0.8, "top_k": 40,
                              "top_p": 0.95, "seed": 0})


def write_samples(runner, tokenizer, name, prompts, path, stop_token):
    """``samples.txt``: a greedy and a sampled continuation of each prompt through ``runner``'s app loop."""
    from zoo.core.apps.text_sampling import generate_text
    from zoo.core.runtime.files import write_text

    text = [f"{name}: continuations from {name}.tflite (LiteRT) through prefill/decode_step with "
            "zoo/convert/bpe.py's tokenizer\n"]
    for prompt in prompts:
        for temperature in (0.0, 0.8):
            label = "greedy" if temperature == 0 else "temperature 0.8, top_k 40, seed 0"
            out = generate_text(runner, tokenizer, prompt, max_new_tokens=40, temperature=temperature, top_k=40,
                                top_p=1.0, seed=0, stop_token=stop_token)
            text.append(f"=== {label} ===\n{prompt}{out}\n")
    write_text(path, "\n".join(text))


def keras_hub_greedy(causal_lm, prompt_ids, max_new_tokens):
    """KerasHub's own greedy ``generate`` on token ids (the start token included): the new ids, up to the stop token."""
    import keras_hub

    preprocessor = causal_lm.preprocessor
    if not isinstance(getattr(causal_lm, "sampler", None), keras_hub.samplers.GreedySampler):
        causal_lm.compile(sampler=keras_hub.samplers.GreedySampler())  # compiling again drops the traced loop
    length = len(prompt_ids) + max_new_tokens
    token_ids = np.zeros((1, length), np.int32)
    token_ids[0, : len(prompt_ids)] = prompt_ids
    mask = np.zeros((1, length), bool)
    mask[0, : len(prompt_ids)] = True
    causal_lm.preprocessor = None  # token ids in, token ids out
    try:
        out = causal_lm.generate({"token_ids": token_ids, "padding_mask": mask},
                                 stop_token_ids=[preprocessor.tokenizer.end_token_id])
    finally:
        causal_lm.preprocessor = preprocessor
    new = [int(t) for t, m in zip(out["token_ids"][0, len(prompt_ids):], out["padding_mask"][0, len(prompt_ids):])
           if m]
    stop = preprocessor.tokenizer.end_token_id
    return new[: new.index(stop)] if stop in new else new


def runner_greedy(runner, prompt_ids, max_new_tokens, context_length):
    """Greedy ids from any runner's in-graph ``generate`` (the zoo's side of the parity)."""
    noise = np.zeros((1, context_length), np.float32)
    out = runner("generate", tokens=np.asarray([prompt_ids], np.int32),
                 lengths=np.asarray([len(prompt_ids)], np.int32),
                 max_new_tokens=np.asarray([max_new_tokens], np.int32), temperature=np.zeros(1, np.float32),
                 top_k=np.zeros(1, np.int32), top_p=np.ones(1, np.float32), noise=noise)
    return [int(t) for t in out["tokens"][0, : int(out["num_tokens"][0])]]


def greedy_agreement(runner, references, context_length):
    """Fraction of KerasHub's greedy tokens the runner reproduces (position by position, per prompt)."""
    same = total = 0
    for prompt_ids, want in references:
        got = runner_greedy(runner, prompt_ids, REFERENCE_TOKENS, context_length)
        total += max(len(want), len(got))
        same += sum(a == b for a, b in zip(got, want))
    return {"greedy_agreement_with_keras_hub": round(same / max(total, 1), 4), "greedy_tokens_compared": total}


def _preset_description(preset):
    if not os.path.isdir(preset):
        return {"preset": preset}
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(preset)):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                digest.update(name.encode() + f.read())
    return {"preset": os.path.abspath(preset), "preset_sha256": digest.hexdigest()}


def convert(preset, output, context_length=None):
    """Convert ``preset`` and export it to the folder ``output`` (written atomically). Returns ``output``."""
    import tempfile

    from zoo.core import export as core_export
    from zoo.core.nn.decoder import decoder_signatures

    started = time.time()
    causal_lm = load_causal_lm(preset)
    model = decoder_from_keras_hub(causal_lm, context_length)
    tokenizer = causal_lm.preprocessor.tokenizer
    start_token = tokenizer.start_token_id if causal_lm.preprocessor.add_start_token else None
    name = os.path.basename(os.path.normpath(output))
    assets = tempfile.mkdtemp(prefix="zoo-tokenizer-")
    files = tokenizer_files(causal_lm, assets)
    python_tokenizer = bpe.BytePairTokenizer.from_folder(assets)
    references = []
    for prompt in REFERENCE_PROMPTS:
        ids = python_tokenizer.encode(prompt)
        if len(ids) + REFERENCE_TOKENS <= model.context_length:
            references.append((ids, keras_hub_greedy(causal_lm, ids, REFERENCE_TOKENS)))
    architecture = type(causal_lm).__name__
    parameters = int(sum(np.prod(w.shape) for w in model.weights))

    def samples(runner, path):
        write_samples(runner, python_tokenizer, name, REFERENCE_PROMPTS[:2], path, model.stop_token)

    command = "python -m zoo convert keras-hub " + " ".join(shlex.quote(a) for a in sys.argv[3:]) \
        if sys.argv[1:3] == ["convert", "keras-hub"] else f"zoo.convert.keras_hub.convert({preset!r}, {output!r})"
    def signatures(decoder):
        return decoder_signatures(decoder, serving_signature(decoder, tokenizer, start_token), unit="token",
                                  token_meaning=f"{architecture[:-len('CausalLM')]} token ids")

    plan = core_export.ExportPlan(
        name=name,
        signatures=signatures(model),
        description=(f"KerasHub {architecture} ({parameters / 1e6:.1f} M parameters, context "
                     f"{model.context_length} tokens) converted by the zoo: key/value cache, builtin-only TFLite."),
        paper="Radford et al. (2019), Language Models are Unsupervised Multitask Learners",
        training={"command": command, "source": {"keras_hub_class": architecture, **_preset_description(preset)},
                  "data": "none: converted weights, not trained here", "parameters": parameters,
                  "context_length": model.context_length},
        evaluate=lambda runner: greedy_agreement(runner, references, model.context_length),
        samples=samples, samples_file="samples.txt",
        primary_metric="greedy_agreement_with_keras_hub",
        extra_files={f: os.path.join(assets, f) for f in files},
        keras_model=model, keras_signatures=signatures, keras_loader=KERAS_LOADER,  # `zoo finetune keras-hub`'s start
        savedmodel_imports=["tensorflow_text"],  # the tokenizer's regex split
        notes={"tokenizer": {"files": files, "python": "zoo/convert/bpe.py (standard library only)",
                             "start_token": start_token, "stop_token": model.stop_token},
               "metric_definitions": {"greedy_agreement_with_keras_hub": (
                   f"fraction of {architecture}.generate's greedy tokens (GreedySampler, {REFERENCE_TOKENS} new "
                   f"tokens after each of {len(references)} prompts) this runtime's in-graph generate reproduces, "
                   "position by position")}},
    )
    try:
        folder = core_export.export_model(plan, os.path.dirname(os.path.abspath(output)))
    finally:
        shutil.rmtree(assets, ignore_errors=True)  # the export holds its own copies
    print(f"converted in {time.time() - started:.0f} s")
    return folder


# --- random-weight presets: the tests' and the speed benchmark's stand-ins for a download ---------

def learn_merges(text, num_merges):
    """GPT-2-style BPE merges learned from ``text`` (plain BPE on its pre-tokenized words), most frequent first."""
    import collections

    characters = bpe.bytes_to_unicode()
    words = collections.Counter(tuple(characters[b] for b in word.encode("utf-8")) for word in bpe.split_words(text))
    merges = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda item: (item[1], item[0]))
        merges.append(f"{a} {b}")
        merged = collections.Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    return merges


def random_merges(num_merges, seed=0):
    """``num_merges`` arbitrary merges of existing tokens: a vocabulary of a real model's size, for speed tests."""
    rng = np.random.default_rng(seed)
    tokens = list(bpe.bytes_to_unicode().values())
    seen, merges = set(tokens), []
    while len(merges) < num_merges:
        a, b = tokens[rng.integers(len(tokens))], tokens[rng.integers(min(len(tokens), 4096))]
        if a + b not in seen and len(a + b) <= 12:
            seen.add(a + b)
            tokens.append(a + b)
            merges.append(f"{a} {b}")
    return merges


def vocabulary_of(merges, special_tokens=("<|endoftext|>",)):
    """The 256 byte characters, each merge's result, then the special tokens: token -> id."""
    tokens = list(bpe.bytes_to_unicode().values()) + ["".join(m.split(" ")) for m in merges]
    return {token: i for i, token in enumerate(tokens + list(special_tokens))}


def random_preset(folder, *, merges, architecture="GPT2", num_layers=2, num_heads=2, hidden_dim=64,
                  intermediate_dim=None, max_sequence_length=128, seed=0, embedding_scale=1.0):
    """Save a random-weight KerasHub causal LM (``GPT2`` or ``OPT``) as a preset folder; returns the task.

    ``embedding_scale`` multiplies the token embeddings: random GPT-2 logits are nearly
    flat, and a larger scale keeps greedy choices clear of float-rounding ties.
    """
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    special = ("<|endoftext|>",) if architecture == "GPT2" else ("<pad>", "</s>")
    vocabulary = vocabulary_of(merges, special)
    models = keras_hub.models
    backbone_class, tokenizer_class, preprocessor_class, task_class = {
        "GPT2": (models.GPT2Backbone, models.GPT2Tokenizer, models.GPT2CausalLMPreprocessor, models.GPT2CausalLM),
        "OPT": (models.OPTBackbone, models.OPTTokenizer, models.OPTCausalLMPreprocessor, models.OPTCausalLM),
    }[architecture]
    backbone = backbone_class(vocabulary_size=len(vocabulary), num_layers=num_layers, num_heads=num_heads,
                              hidden_dim=hidden_dim, intermediate_dim=intermediate_dim or 4 * hidden_dim,
                              max_sequence_length=max_sequence_length, dropout=0.0)
    embeddings = backbone.token_embedding.embeddings if architecture == "GPT2" else \
        backbone.embeddings.token_embedding.embeddings
    embeddings.assign(embeddings.numpy() * embedding_scale)
    tokenizer = tokenizer_class(vocabulary=vocabulary, merges=merges)
    task = task_class(backbone=backbone, preprocessor=preprocessor_class(tokenizer, sequence_length=max_sequence_length))
    task.save_to_preset(folder)
    return task
