"""Low-rank adaptation (LoRA, Hu et al. 2021, https://arxiv.org/abs/2106.09685) of any zoo model's Dense layers.

Fine-tuning with LoRA freezes every weight and learns, for each dense kernel W [in, out], a product
A [in, r] @ B [r, out] added to it (B starts at zero, so the adapted model starts as the base). Keras 3
builds the adapters into ``Dense`` and ``EinsumDense`` (``layer.enable_lora``); this module applies them to
a whole model with the zoo's checks and seeds, and merges them back into plain kernels (W + (alpha / r) A B),
so the fine-tuned model has the base's architecture and exports through the same code to every runtime.

    adapted = lora.enable(model, rank=8, seed=0)   # trains only the adapters from here
    lora.enable(model, rank=4, seed=0, train_in_full=("token_embedding", "_norm"))  # ... and these weights
    lora.enable(model, rank=6, seed=0, train_in_full=("_norm",), embedding_ranks={"token_embedding": 32})
    lora.enable(model, rank=6, seed=0, train_in_full=("_norm",), embedding_rows={"token_embedding": [9, 10, 32]})
    merged = lora.merged(model)                     # a model of the base's class and config
"""

import keras
import numpy as np
from keras import layers

from zoo.core.runtime.errors import BadInputError

# Dense / EinsumDense adapters, then Embedding ones (Keras names them so)
ADAPTER_NAMES = ("lora_kernel_a", "lora_kernel_b", "lora_embeddings_a", "lora_embeddings_b")


def adaptable_layers(model):
    """The model's Dense and EinsumDense layers with a 2-D kernel, in a fixed order (their paths)."""
    found = [layer for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, (layers.Dense, layers.EinsumDense)) and len(layer._kernel.shape) == 2]
    return sorted(found, key=lambda layer: layer._kernel.path)


def is_adapter(variable):
    return variable.path.rsplit("/", 1)[-1] in ADAPTER_NAMES


def check_rank(model, rank):
    """A :class:`BadInputError` for a rank no layer can take (``rank`` <= 0, or above a kernel's smaller side)."""
    targets = adaptable_layers(model)
    if not targets:
        raise BadInputError(f"{type(model).__name__} has no Dense layer for low-rank adapters; fine-tune it with --full")
    if not isinstance(rank, (int, np.integer)) or rank <= 0:
        raise BadInputError(f"--lora-rank must be a positive integer, got {rank!r}")
    smallest = min(targets, key=lambda layer: min(layer._kernel.shape))
    if rank > min(smallest._kernel.shape):
        raise BadInputError(f"--lora-rank {rank} is larger than layer {smallest._kernel.path.rsplit('/', 1)[0]}'s "
                            f"kernel {list(smallest._kernel.shape)} allows (at most {min(smallest._kernel.shape)}): "
                            "a rank that large adapts nothing a full fine-tune would not")
    return targets


def trained_in_full(variable, train_in_full):
    """Whether ``variable`` is a float weight whose path contains one of ``train_in_full``."""
    return str(variable.dtype).startswith("float") and any(part in variable.path for part in train_in_full)


def embeddings_named(model, part):
    """The model's Embedding layers whose table's path contains ``part``; a clear error for none."""
    found = [layer for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, layers.Embedding) and part in layer._embeddings.path]
    if not found:
        raise ValueError(f"{type(model).__name__} has no Embedding layer whose path contains {part!r}")
    return found


def embedding_layers(model, embedding_ranks):
    """``[(Embedding layer, rank)]`` for each part of ``embedding_ranks`` (layer-path part -> rank), in order."""
    found = []
    for part, rank in sorted((embedding_ranks or {}).items()):
        layers_named = embeddings_named(model, part)
        if not isinstance(rank, (int, np.integer)) or not 0 < rank <= min(layers_named[0]._embeddings.shape):
            raise BadInputError(f"embedding adapter rank {rank!r} for {part!r} must be in 1..."
                                f"{min(layers_named[0]._embeddings.shape)}")
        found += [(layer, int(rank)) for layer in layers_named]
    return found


def embedding_row_layers(model, embedding_rows):
    """``[(Embedding layer, sorted unique row ids)]`` for each part of ``embedding_rows`` (layer-path part -> ids)."""
    found = []
    for part, rows in sorted((embedding_rows or {}).items()):
        layers_named = embeddings_named(model, part)
        rows = np.unique(np.asarray(rows, np.int64))
        vocabulary = layers_named[0]._embeddings.shape[0]
        if rows.size == 0 or rows[0] < 0 or rows[-1] >= vocabulary:
            raise BadInputError(f"the rows of {part!r} to train must be token ids in 0...{vocabulary - 1}, "
                                f"got {rows.size} ids" + (f" from {rows[0]} to {rows[-1]}" if rows.size else ""))
        found += [(layer, rows) for layer in layers_named]
    return found


def enable(model, rank, seed=0, train_in_full=(), alpha=None, embedding_ranks=None, embedding_rows=None):
    """Add rank-``rank`` adapters to every adaptable layer and freeze every other weight, except those whose
    path contains one of ``train_in_full`` (a recipe's ``lora_trains_in_full``: small weights no adapter
    reaches, such as the GPT's layer norms); ``embedding_ranks`` (layer-path part -> rank, a recipe's
    ``lora_embedding_ranks``) adds adapters to those Embedding tables too (the GPT's byte embedding, which is
    also its output head); ``embedding_rows`` (layer-path part -> token ids, a recipe's ``lora_embedding_rows``)
    trains only those rows of an Embedding table, in full: an adapter whose A is the fixed one-hot choice of the
    rows [vocabulary, rows] and whose B [rows, width] is their change from zero, so tokens the fine-tune's data
    never shows keep their vectors and cost no trainable weight (it merges like any adapter); returns ``model``.

    The A matrices start from seeded He-uniform draws (so a run repeats), the B matrices at zero; the update is
    (``alpha`` / ``rank``) A B, ``alpha`` the rank unless given."""
    targets = check_rank(model, rank)
    unmatched = [part for part in train_in_full if not any(trained_in_full(v, (part,)) for v in model.weights)]
    if unmatched:
        raise ValueError(f"{type(model).__name__} has no weight whose path contains {unmatched[0]!r}")
    embeddings = embedding_layers(model, embedding_ranks)
    row_embeddings = embedding_row_layers(model, embedding_rows)
    if {id(layer) for layer, _ in embeddings} & {id(layer) for layer, _ in row_embeddings}:
        raise ValueError("an Embedding layer takes either a low-rank adapter or trained rows, not both")
    for i, layer in enumerate(targets):
        layer.enable_lora(int(rank), lora_alpha=alpha, a_initializer=keras.initializers.HeUniform(seed=seed * 1000 + i))
    for i, (layer, embedding_rank) in enumerate(embeddings):
        layer.enable_lora(embedding_rank, a_initializer=keras.initializers.HeUniform(seed=seed * 1000 + 900 + i))
    for layer, rows in row_embeddings:
        layer.enable_lora(int(rows.size))  # alpha = rank: the update is A B itself
        choice = np.zeros(layer._embeddings.shape[:1] + (rows.size,), np.float32)
        choice[rows, np.arange(rows.size)] = 1.0
        layer.lora_embeddings_a.assign(choice)
    for variable in model.variables:
        if not is_adapter(variable):
            variable.trainable = trained_in_full(variable, train_in_full)
    for layer, _ in row_embeddings:
        layer.lora_embeddings_a.trainable = False  # the choice of rows stays fixed
    return model


def parameter_counts(model):
    """``(trainable, base, adapters)``: the parameters training updates (adapters and weights trained in full),
    the model's without adapters, and the trained adapters' (not the fixed row choices of ``embedding_rows``)."""
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    base = sum(int(np.prod(v.shape)) for v in model.weights if not is_adapter(v))
    adapters = sum(int(np.prod(v.shape)) for v in model.weights if is_adapter(v) and v.trainable)
    return trainable, base, adapters


def merged_kernels(model):
    """``{id(kernel or embedding table variable): W + (alpha / r) A B}`` for every adapted layer (its dtype)."""
    merged = {}
    for layer in model._flatten_layers(include_self=False):
        if not getattr(layer, "lora_enabled", False):
            continue
        if isinstance(layer, layers.Embedding):
            table, a, b = layer._embeddings, layer.lora_embeddings_a, layer.lora_embeddings_b
        else:
            table, a, b = layer._kernel, layer.lora_kernel_a, layer.lora_kernel_b
        update = np.asarray(a.numpy(), np.float64) @ np.asarray(b.numpy(), np.float64)
        merged[id(table)] = (table.numpy() + (layer.lora_alpha / layer.lora_rank) * update).astype(table.dtype)
    return merged


def merged(model):
    """A model of ``model``'s class and config without adapters, its kernels W + (alpha / r) A B and every other
    weight the adapted model's: the same function, the base's architecture. Weights pair up in creation order
    (a layer Keras named itself, ``dense_120``, gets another name in a second model)."""
    kernels = merged_kernels(model)
    plain = type(model).from_config(model.get_config())
    adapted = [v for v in model.weights if not is_adapter(v)]
    if [tuple(v.shape) for v in adapted] != [tuple(v.shape) for v in plain.weights]:
        raise ValueError(f"a {type(model).__name__} built from the adapted model's config has other weights")
    for target, source in zip(plain.weights, adapted):
        target.assign(kernels.get(id(source), source.numpy()))
    return plain
