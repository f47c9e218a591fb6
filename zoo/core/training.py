"""What every model's training shares: seeding, resumable checkpoints, a guard
against NaN losses, TensorBoard, sample pictures per epoch and a time budget.

A model's ``train.py`` builds its model and dataset and calls :func:`fit`; the
model itself owns ``train_step`` and its optimizers (as attributes, so
``save_weights`` stores their state with the weights).
"""

import json
import os
import re
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from zoo.core.errors import ArtifactNotFoundError, BadInputError, IntegrityError, TrainingDivergedError, ZooError
from zoo.core.files import atomic_directory, sha256_of, write_json
from zoo.core.plotting import save_image_grid

WEIGHTS_FILE = "checkpoint.weights.h5"
STATE_FILE = "state.json"
_CHECKPOINT_NAME = re.compile(r"^epoch-(\d{4,})$")


def set_seed(seed, deterministic=True):
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TF ops deterministic.

    With the same seed and data, training on the same machine gives the same weights.
    """
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def build_from_preset(model_class, presets, preset, seed):
    """``model_class(**presets[preset], seed=seed)``, with a clear error for an unknown preset."""
    if preset not in presets:
        raise BadInputError(f"unknown preset {preset!r}; choose from {', '.join(presets)}")
    return model_class(**presets[preset], seed=seed)


def check_positive(**options):
    """A clear error for the first option that is not > 0 (epochs, batch size, learning rate...)."""
    for option, value in options.items():
        if value is not None and not value > 0:
            raise BadInputError(f"{option.replace('_', ' ')} must be positive, got {value}")


def load_run(model_class, presets, run_dir):
    """``(model, run, state)``: the model rebuilt from ``run.json``'s config and the newest intact checkpoint.

    The model is compiled without optimizers' hyper-parameters mattering: its
    weights (and optimizer slots) come from the checkpoint.
    """
    checkpoints = CheckpointDirectory(run_dir)
    if not checkpoints.epochs():
        raise ArtifactNotFoundError(f"no checkpoint in {run_dir}; train first (python -m zoo train ...)")
    with open(os.path.join(run_dir, "run.json")) as f:
        run = json.load(f)
    config = run["config"]
    model = build_from_preset(model_class, presets, config["preset"], config["seed"])
    model.compile()
    state = checkpoints.restore_latest(model, config)
    return model, run, state


class CheckpointDirectory:
    """Epoch checkpoints under ``<run_dir>/checkpoints/epoch-NNNN/``.

    Each holds the model's weights with its optimizers' state (one ``.weights.h5``)
    and ``state.json`` (epoch, step, config, the weights' sha256). A checkpoint is
    written to a temporary directory and renamed into place, so a crash mid-write
    leaves the previous one intact; a checkpoint whose hash does not match is
    skipped in favour of the one before it.
    """

    def __init__(self, run_dir, keep=2):
        self.path = os.path.join(run_dir, "checkpoints")
        self.keep = keep

    def epochs(self):
        if not os.path.isdir(self.path):
            return []
        found = [_CHECKPOINT_NAME.match(name) for name in os.listdir(self.path)]
        return sorted(int(m.group(1)) for m in found if m)

    def _dir(self, epoch):
        return os.path.join(self.path, f"epoch-{epoch:04d}")

    def save(self, model, state):
        final = self._dir(state["epoch"])
        with atomic_directory(final) as tmp:
            weights = os.path.join(tmp, WEIGHTS_FILE)
            model.save_weights(weights)
            write_json(os.path.join(tmp, STATE_FILE), {**state, "weights_sha256": sha256_of(weights)})
        for old in self.epochs()[: -self.keep]:
            shutil.rmtree(self._dir(old), ignore_errors=True)
        return final

    def read_state(self, epoch):
        """The checkpoint's state, after checking its weights against their hash."""
        folder = self._dir(epoch)
        try:
            with open(os.path.join(folder, STATE_FILE)) as f:
                state = json.load(f)
            digest = sha256_of(os.path.join(folder, WEIGHTS_FILE))
        except (OSError, ValueError) as error:
            raise IntegrityError(f"checkpoint {folder} is unreadable: {error}") from None
        if digest != state.get("weights_sha256"):
            raise IntegrityError(f"checkpoint {folder} is corrupt: its weights do not match their sha256")
        return state

    def restore_latest(self, model, config):
        """Load the newest intact checkpoint into ``model``; return its state or None."""
        for epoch in reversed(self.epochs()):
            try:
                state = self.read_state(epoch)
            except IntegrityError as error:
                print(f"warning: {error}; trying the checkpoint before it", file=sys.stderr)
                continue
            if state.get("config") != config:
                raise ZooError(
                    f"the checkpoint in {self._dir(epoch)} was trained with another configuration "
                    f"({state.get('config')}) than this run ({config}). Train in a new --run-dir, "
                    "or pass --fresh to discard it."
                )
            model.load_weights(os.path.join(self._dir(epoch), WEIGHTS_FILE))
            return state
        return None


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stop at the first NaN or Inf in *any* logged loss, naming the loss and step.

    Keras' ``TerminateOnNaN`` only watches ``loss``; a GAN logs two others. Raising
    (rather than setting ``stop_training``) ensures no checkpoint is written from the
    diverged weights, so the last good one stays the newest.
    """

    def __init__(self, checkpoints):
        super().__init__()
        self.checkpoints = checkpoints
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            value = float(np.asarray(value))
            if not np.isfinite(value):
                last = self.checkpoints.epochs()
                kept = f"the last good checkpoint (epoch {last[-1]}) is kept" if last else "no checkpoint was written yet"
                raise TrainingDivergedError(
                    f"training diverged: {name} became {value} at epoch {self.epoch + 1}, "
                    f"step {batch + 1}; {kept} in {self.checkpoints.path}. Try a lower learning rate."
                )


class CheckpointEachEpoch(keras.callbacks.Callback):
    def __init__(self, checkpoints, config, state):
        super().__init__()
        self.checkpoints = checkpoints
        self.config = config
        self.state = state
        self.epoch_started = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.time()

    def on_train_batch_end(self, batch, logs=None):
        self.state["step"] += 1

    def on_epoch_end(self, epoch, logs=None):
        self.state["epoch"] = epoch + 1
        self.state["training_seconds"] += time.time() - self.epoch_started
        self.state["metrics"] = {k: float(np.asarray(v)) for k, v in (logs or {}).items()}
        self.checkpoints.save(self.model, {**self.state, "config": self.config})


class SampleGridEachEpoch(keras.callbacks.Callback):
    """Draw samples from fixed inputs at each epoch end: a PNG and a TensorBoard image."""

    def __init__(self, sample_fn, folder, log_dir):
        super().__init__()
        self.sample_fn = sample_fn
        self.folder = folder
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "samples"))

    def on_epoch_end(self, epoch, logs=None):
        images = np.asarray(self.sample_fn(self.model))
        save_image_grid(images, os.path.join(self.folder, f"epoch-{epoch + 1:04d}.png"), title=f"epoch {epoch + 1}")
        with self.writer.as_default():
            tf.summary.image("samples", images[:16], step=epoch + 1, max_outputs=16)
        self.writer.flush()


class StopAfterTimeBudget(keras.callbacks.Callback):
    """Stop at the end of the first epoch that finishes past the budget."""

    def __init__(self, seconds, state):
        super().__init__()
        self.seconds = seconds
        self.state = state

    def on_epoch_end(self, epoch, logs=None):
        if self.state["training_seconds"] >= self.seconds:
            print(f"\nTime budget of {self.seconds:.0f} s reached after epoch {epoch + 1}.")
            self.model.stop_training = True


def fit(
    model,
    dataset,
    *,
    run_dir,
    epochs,
    config,
    sample_fn=None,
    time_budget_seconds=None,
    fresh=False,
    verbose="auto",
    extra_callbacks=(),
    validation_data=None,
):
    """Train ``model`` on ``dataset`` for ``epochs`` epochs, resuming if it can.

    Args:
        model: a compiled Keras model whose optimizers are attributes of it.
        dataset: a ``tf.data.Dataset`` yielding whatever ``model.train_step`` takes.
        run_dir: where checkpoints, TensorBoard logs and sample pictures go.
        epochs: total epochs, counting those done before a resume.
        config: a JSON-able dict describing the model and training; a checkpoint
            made with another config is refused rather than silently mixed.
        sample_fn: ``sample_fn(model) -> images [n, h, w, c] in [0, 1]``, drawn at
            each epoch end.
        time_budget_seconds: stop after the first epoch that ends past this much
            training time (summed across resumes).
        fresh: discard existing checkpoints in ``run_dir`` first.
        validation_data: a dataset ``model.test_step`` takes, measured at each epoch
            end (logged as ``val_*``); optional.

    Returns:
        The final training state: epoch, step, training_seconds, metrics.
    """
    checkpoints = CheckpointDirectory(run_dir)
    if fresh and os.path.isdir(checkpoints.path):
        shutil.rmtree(checkpoints.path)
    restored = checkpoints.restore_latest(model, config)
    state = {"epoch": 0, "step": 0, "training_seconds": 0.0, "metrics": {}}
    if restored:
        state.update({k: restored[k] for k in state})
        print(f"Resuming from {checkpoints.path}/epoch-{state['epoch']:04d} "
              f"(epoch {state['epoch']}, step {state['step']}).")
    if state["epoch"] >= epochs:
        print(f"Already trained for {state['epoch']} epochs (asked for {epochs}); nothing to do.")
        return state

    log_dir = os.path.join(run_dir, "logs")
    callbacks = [
        NonFiniteLossGuard(checkpoints),
        keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"),
        CheckpointEachEpoch(checkpoints, config, state),
    ]
    if sample_fn is not None:
        callbacks.append(SampleGridEachEpoch(sample_fn, os.path.join(run_dir, "samples"), log_dir))
    if time_budget_seconds:
        callbacks.append(StopAfterTimeBudget(time_budget_seconds, state))
    callbacks.extend(extra_callbacks)
    # shuffle=False: the dataset shuffles itself (seeded); Keras cannot shuffle a tf.data pipeline.
    model.fit(dataset, epochs=epochs, initial_epoch=state["epoch"], callbacks=callbacks, verbose=verbose,
              shuffle=False, validation_data=validation_data)
    return state
