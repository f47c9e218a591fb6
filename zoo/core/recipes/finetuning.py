"""Starting a run from a trained model: what ``train --fine-tune-from`` and ``python -m zoo finetune`` share.

A recipe that can fine-tune declares :data:`FINE_TUNE_FROM` among its options, builds its training model with
:func:`start_from` and adds :func:`fine_tune_config` to its run config (so a resumed run refuses another
source); ``Recipe.finetune_data_option`` then names the option that reads the user's data.
"""

import hashlib
import os

import numpy as np

from zoo.core.recipes.options import Option
from zoo.core.runtime.errors import ArtifactNotFoundError

FINE_TUNE_FROM = Option("fine_tune_from", str, None, "start from a trained model: an exported folder (e.g. "
                                                      "exported/<model>) or a run directory (e.g. runs/<model>), "
                                                      "instead of random weights", commands=("train",))


def source_model(name, path):
    """The model at ``path``: an exported folder (its ``.keras`` file, sha256-checked, ``safe_mode=True``) or a
    training run of the model ``name`` (its newest intact checkpoint)."""
    from zoo.core.recipes.commands import load, load_run

    if os.path.isfile(os.path.join(path, "manifest.json")):
        return load(path, runtime="keras").model
    if os.path.isfile(os.path.join(path, "run.json")):
        return load_run(name, path)[0]
    raise ArtifactNotFoundError(f"--fine-tune-from {path!r} is neither an exported {name} folder (with "
                                "manifest.json) nor a training run directory (with run.json)")


def start_from(recipe, preset, seed, path):
    """A new model for a run: ``recipe.create_model(preset, seed)``, or with ``path`` a copy of that model's
    weights in a model of its class and size (``seed`` then seeds the run's noise and dropout)."""
    if path is None:
        return recipe.create_model(preset, seed)
    source = source_model(recipe.name, path)
    model = type(source).from_config({**source.get_config(), "seed": seed})
    model.set_weights(source.get_weights())
    return model


def weights_sha256(model):
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def fine_tune_config(path, model):
    """The run config's entries for a run started from ``path`` (``model`` before its first step): ``preset``
    "fine-tuned" (the model is sized by its source, not by a preset) and ``fine_tune_from``, the source and a
    hash of the weights it copied, and for an exported source its manifest's training record (without the
    learning curve), so the export of this run still says how the weights it kept were trained; none for a run
    from random weights."""
    if path is None:
        return {}
    source_training = {}
    if os.path.isfile(os.path.join(path, "manifest.json")):
        from zoo.core.runtime.runners import read_manifest

        description = f"exported model {path}"
        training = read_manifest(path, verify=False)["training"]  # source_model verified the file it loaded
        source_training = {"source_training": {k: v for k, v in training.items() if k != "learning_curve"}}
    else:
        from zoo.core.training.trainer import CheckpointDirectory

        description = f"run {path} at step {CheckpointDirectory(path).steps()[-1]}"
    return {"preset": "fine-tuned", "fine_tune_from": {"source": description, "weights_sha256": weights_sha256(model),
                                                       **source_training}}
