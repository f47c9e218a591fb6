"""What every model's training shares: one loop for every ``tf.distribute`` strategy,
seeding, step checkpoints that resume to the very run an uninterrupted one would
have been, a guard against NaN losses, Ctrl-C and SIGTERM that save before they stop,
TensorBoard, sample pictures per epoch and a time budget.

:func:`zoo.core.recipes.commands.train` calls :func:`start` (options, strategy, seed), builds
and compiles the recipe's model under ``strategy.scope()`` and ends with :func:`run`
(a :class:`Trainer`). The model owns ``train_step`` (using ``zoo.core.nn.distribute.scale_loss``
and ``draw_for_global_batch``, so N replicas compute what one device would) and its
optimizers, as attributes, so ``save_weights`` stores their state with the weights.
"""

import json
import os
import re
import shutil
import signal
import sys
import threading
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from zoo.core.nn import distribute
from zoo.core.runtime.errors import BadInputError, IntegrityError, TrainingDivergedError, ZooError
from zoo.core.runtime.files import atomic_directory, sha256_of, write_json
from zoo.core.data.plotting import save_image_grid
from zoo.core.runtime.progress import interactive

WEIGHTS_FILE = "checkpoint.weights.h5"
STATE_FILE = "state.json"
_CHECKPOINT_NAME = re.compile(r"^step-(\d{8,})$")


def set_seed(seed, deterministic=True):
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TF ops deterministic.

    With the same seed and data, training on the same machine gives the same weights.
    """
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def check_positive(**options):
    """A clear error for the first option that is not > 0 (epochs, batch size, learning rate...)."""
    for option, value in options.items():
        if value is not None and not value > 0:
            raise BadInputError(f"{option.replace('_', ' ')} must be positive, got {value}")


def _seed_states(model):
    """The model's random-number generator states (noise, dropout), in a stable order.

    ``save_weights`` leaves them out; a checkpoint stores them so that a resumed
    run draws the same noise as an uninterrupted one.
    """
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


class CheckpointDirectory:
    """Checkpoints under ``<run_dir>/checkpoints/step-NNNNNNNN/`` (global step).

    Each holds the model's weights with its optimizers' state and its random
    seed generators' state (one ``.weights.h5``) and ``state.json`` (epoch, step,
    step within the epoch, config, the weights' sha256). A checkpoint is written to
    a temporary directory and renamed into place, so a crash mid-write (even
    SIGKILL) leaves the previous one intact; a checkpoint whose hash does not match
    is skipped in favour of the one before it.
    """

    def __init__(self, run_dir, keep=2):
        self.path = os.path.join(run_dir, "checkpoints")
        self.keep = keep

    def steps(self):
        if not os.path.isdir(self.path):
            return []
        found = [_CHECKPOINT_NAME.match(name) for name in os.listdir(self.path)]
        return sorted(int(m.group(1)) for m in found if m)

    def _dir(self, step):
        return os.path.join(self.path, f"step-{step:08d}")

    def save(self, model, state):
        final = self._dir(state["step"])
        with atomic_directory(final) as tmp:
            weights = os.path.join(tmp, WEIGHTS_FILE)
            model.save_weights(weights)
            write_json(os.path.join(tmp, STATE_FILE), {
                **state,
                "seed_generator_states": [v.numpy().tolist() for v in _seed_states(model)],
                "weights_sha256": sha256_of(weights),
            })
        for old in self.steps()[: -self.keep]:
            shutil.rmtree(self._dir(old), ignore_errors=True)
        return final

    def read_state(self, step):
        """The checkpoint's state, after checking its weights against their hash."""
        folder = self._dir(step)
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
        for step in reversed(self.steps()):
            try:
                state = self.read_state(step)
            except IntegrityError as error:
                print(f"warning: {error}; trying the checkpoint before it", file=sys.stderr)
                continue
            if state.get("config") != config:
                changes = "; ".join(config_differences(state.get("config") or {}, config))
                raise ZooError(
                    f"the checkpoint in {self._dir(step)} was trained with another configuration than this "
                    f"run (checkpoint -> now: {changes}). Train in a new --run-dir, or pass --fresh to discard it."
                )
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    model.load_weights(os.path.join(self._dir(step), WEIGHTS_FILE))
            except (OSError, ValueError) as error:
                raise IntegrityError(f"checkpoint {self._dir(step)} does not fit this model: {error}") from None
            skipped = [str(w.message) for w in caught if "Skipping variable loading" in str(w.message)]
            if skipped:  # Keras only warns; resuming without the optimizer state would be silently wrong
                raise IntegrityError(f"checkpoint {self._dir(step)} does not fit this model: {skipped[0]}")
            seeds = state.get("seed_generator_states", [])
            variables = _seed_states(model)
            if len(seeds) == len(variables):
                for variable, value in zip(variables, seeds):
                    variable.assign(value)
            else:
                print(f"warning: {self._dir(step)} has no random-number state for this model; "
                      "the resumed run draws other noise than an uninterrupted one would", file=sys.stderr)
            return state
        return None
def build_optimizers(model):
    """Create the optimizers' slots now, so a checkpoint's optimizer state can be loaded before step one."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)


class Progress:
    """A progress bar per epoch (``verbose=1``), one line per epoch (2) or nothing (0).

    With one line per epoch (a log, a notebook), a line every ``line_every_seconds`` too, with the step rate,
    so a long epoch in a ``nohup`` log shows it is moving and how fast.
    """

    def __init__(self, verbose, epochs, steps_per_epoch, line_every_seconds=300):
        # "auto": a bar on a terminal, a line per epoch in a notebook or a log (where redraws pile up)
        self.verbose = (1 if interactive() else 2) if verbose == "auto" else int(verbose)
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.line_every_seconds = line_every_seconds
        self.bar = None
        self.last_line = None  # (time, step in the epoch) of the last line written

    def start_epoch(self, epoch, done):
        if self.verbose:
            print(f"Epoch {epoch + 1}/{self.epochs}" + (f" (resuming at step {done + 1})" if done else ""))
        if self.verbose == 1:
            self.bar = keras.utils.Progbar(self.steps_per_epoch)
            if done:
                self.bar.update(done)
        self.last_line = (time.time(), done)

    def update(self, step_in_epoch, logs, finalize=False):
        if self.verbose == 2 and not finalize:
            now = time.time()
            since, step_then = self.last_line
            if now - since >= self.line_every_seconds:
                rate = (step_in_epoch - step_then) / (now - since)
                print(f"  step {step_in_epoch}/{self.steps_per_epoch} - {rate:.2f} steps/s - "
                      + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()), flush=True)
                self.last_line = (now, step_in_epoch)
        if self.bar is not None:
            # the logs are already the epoch's running means: show them as they are
            self.bar.stateful_metrics = set(logs)
            self.bar.update(step_in_epoch, list(logs.items()), finalize=finalize)

    def end_epoch(self, step_in_epoch, logs, seconds):
        if self.bar is not None:
            self.update(step_in_epoch, logs, finalize=True)
        elif self.verbose == 2:
            print(f"{seconds:.0f}s - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))


def check_finite(logs, state, checkpoints):
    """Stop at the first NaN or Inf in *any* logged loss, naming the loss and step.

    Keras' ``TerminateOnNaN`` only watches ``loss``; a GAN logs two others. Raising
    before any checkpoint of the diverged weights is written keeps the last good
    one the newest.
    """
    for name, value in logs.items():
        if not np.isfinite(value):
            last = checkpoints.steps()
            kept = (f"the last good checkpoint (step {last[-1]}) is kept" if last
                    else "no checkpoint was written yet")
            raise TrainingDivergedError(
                f"training diverged: {name} became {value} at epoch {state['epoch'] + 1}, step {state['step']} "
                f"(step {state['step_in_epoch']} of the epoch); {kept} in {checkpoints.path}. "
                "Try a lower learning rate.")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training, after a checkpoint of the last finished step was saved."""


class StopSignals:
    """Turns the first SIGINT (Ctrl-C) or SIGTERM into a request to stop after the current step.

    The trainer then writes a checkpoint of that step and stops, so an interrupted
    run loses no work. A second Ctrl-C stops at once (Python's default), keeping the
    checkpoint before it. Only the main thread can own signals; elsewhere this does nothing.
    """

    def __init__(self):
        self.received = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name
        print(f"\n{self.received} received: stopping after this step and saving a checkpoint "
              "(Ctrl-C again stops at once)", file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        return False


def distributed_step(model, strategy, method, jit_compile=False):
    """A ``tf.function`` running ``model.<method>`` on every replica; returns the metrics, aggregated.

    The metrics' variables sum over replicas when read outside ``strategy.run``,
    so ``result()`` there is the mean over the global batch. ``jit_compile`` compiles
    the step with XLA under a one-replica strategy (the per-replica function: XLA
    cannot compile ``strategy.run`` itself); with several replicas it is ignored, said once.
    """
    step_fn = getattr(model, method)
    if jit_compile and strategy.num_replicas_in_sync > 1:
        # XLA compiles a replica's step for one device; mirrored variables on the others are then out of its
        # reach (tensorflow.org/xla/known_issues, "tf.Variable on a different device")
        print(f"Note: --jit-compile is for one replica; the {strategy.num_replicas_in_sync} replicas train "
              "without XLA.")
        jit_compile = False
    if jit_compile:
        step_fn = tf.function(step_fn, jit_compile=True)

    @tf.function
    def run(batch):
        strategy.run(step_fn, args=(batch,))
        return {m.name: m.result() for m in model.metrics}

    return run


class Trainer:
    """Trains ``model`` for ``epochs`` epochs under ``strategy``, resuming where it stopped.

    One loop for every strategy (one device, mirrored, multi-worker, TPU), so the
    same run gives the same result wherever it runs: it calls ``model.train_step``
    on each replica and aggregates the model's metrics. Checkpoints hold weights,
    optimizer state, seed generators, epoch and step; they are written at each
    epoch end, every ``checkpoint_every_steps`` steps / ``checkpoint_every_seconds``
    seconds and when Ctrl-C or SIGTERM arrives, by the chief only. A resumed run
    skips the batches its epoch already trained on (each epoch's order depends only
    on the seed and the epoch), so it ends with as many steps, and the same
    weights, as an uninterrupted run.

    Args:
        model: a compiled Keras model, built under ``strategy.scope()``, whose
            optimizers are attributes of it.
        dataset_fn: ``dataset_fn(epoch) -> tf.data.Dataset`` of *global* batches
            ``model.train_step`` takes; the same epoch must give the same order.
        run_dir: where checkpoints, TensorBoard logs and sample pictures go.
        epochs: total epochs, counting those done before a resume.
        config: a JSON-able dict describing the model and training; a checkpoint
            made with another config is refused rather than silently mixed.
        strategy: a ``tf.distribute.Strategy`` (default: the current one).
        sample_fn: ``sample_fn(model) -> images [n, h, w, c] in [0, 1]``, drawn at
            each epoch end.
        time_budget_seconds: stop after the first epoch that ends past this much
            training time (summed across resumes).
        fresh: discard existing checkpoints in ``run_dir`` first.
        callbacks: objects with any of ``set_model(model)``, ``on_epoch_begin(epoch)``,
            ``on_train_batch_end(batch, logs)``, ``on_epoch_end(epoch, logs)``. As in
            Keras, one that sets ``model.stop_training = True`` ends the run after the
            current step, with a checkpoint.
        validation_data: a dataset ``model.test_step`` takes, measured at each epoch
            end (logged as ``val_*``); optional.
        max_steps: end the run's last epoch at this many steps (``--steps``); optional.
        jit_compile: compile the training step with XLA (``--jit-compile``).
        validate_first: measure ``validation_data`` before the first step too (the state's
            ``metrics_before``: a fine-tuning run's starting point).
    """

    def __init__(self, model, dataset_fn, *, run_dir, epochs, config, strategy=None, sample_fn=None,
                 time_budget_seconds=None, fresh=False, verbose="auto", callbacks=(), validation_data=None,
                 checkpoint_every_steps=None, checkpoint_every_seconds=600, log_every_steps=50, run_record=None,
                 max_steps=None, jit_compile=False, validate_first=False):
        self.run_record, self.max_steps, self.jit_compile = run_record, max_steps, jit_compile
        self.validate_first = validate_first and validation_data is not None
        self.model, self.dataset_fn, self.run_dir, self.epochs, self.config = model, dataset_fn, run_dir, epochs, config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.sample_fn, self.time_budget_seconds, self.fresh, self.verbose = sample_fn, time_budget_seconds, fresh, verbose
        self.callbacks, self.validation_data = list(callbacks), validation_data
        self.checkpoint_every_steps, self.checkpoint_every_seconds = checkpoint_every_steps, checkpoint_every_seconds
        self.log_every_steps = log_every_steps
        self.chief = distribute.is_chief(self.strategy)
        self.checkpoints = CheckpointDirectory(run_dir)
        self.state = {"epoch": 0, "step": 0, "step_in_epoch": 0, "training_seconds": 0.0, "metrics": {},
                      "metrics_before": {}}
        self.stop = StopSignals()

    # === Resume ===
    def restore(self):
        """Load the newest intact checkpoint (unless ``fresh``) into the model and the state."""
        if self.fresh and self.chief and os.path.isdir(self.checkpoints.path):
            shutil.rmtree(self.checkpoints.path)
        with self.strategy.scope():
            build_optimizers(self.model)
        restored = None if self.fresh else self.checkpoints.restore_latest(self.model, self.config)
        if restored:
            self.state.update({k: restored[k] for k in self.state if k in restored})
            if self.state["epoch"] < self.epochs:  # a finished run says so in run(), not "resuming"
                print(f"Resuming from {self.checkpoints._dir(self.state['step'])} "
                      f"(epoch {self.state['epoch'] + 1}, step {self.state['step']}).")

    def save(self):
        if self.chief:
            self.checkpoints.save(self.model, {**self.state, "config": self.config})
        self.last_save = time.time()

    # === The loop ===
    def run(self):
        """Train until ``epochs``, the time budget or a stop; returns the final state
        (epoch, step, training_seconds, metrics)."""
        self.restore()
        if self.run_record is not None and self.chief:
            os.makedirs(self.run_dir, exist_ok=True)
            write_json(os.path.join(self.run_dir, "run.json"), self.run_record)
        if self.state["epoch"] >= self.epochs:
            print(f"Already trained for {plural(self.state['epoch'], 'epoch')} (asked for {self.epochs}): nothing to "
                  f"do. The run is in {os.path.dirname(self.checkpoints.path)}/; --epochs N trains on to N, --fresh starts over.")
            return self.state
        self.steps_per_epoch = steps_per_epoch(self.dataset_fn)
        self.train_step = distributed_step(self.model, self.strategy, "train_step", self.jit_compile)
        self.test_step = (distributed_step(self.model, self.strategy, "test_step")
                          if self.validation_data is not None else None)
        log_dir = os.path.join(self.run_dir, "logs")
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "train")) if self.chief else None
        self.samples_writer = (tf.summary.create_file_writer(os.path.join(log_dir, "samples"))
                               if self.chief and self.sample_fn else None)
        self.progress = Progress(self.verbose, self.epochs, self.steps_per_epoch)
        for callback in self.callbacks:
            if hasattr(callback, "set_model"):
                callback.set_model(self.model)
        if self.validate_first and self.state["step"] == 0:
            self.state["metrics_before"] = self.validate()
            print("Before training: " + ", ".join(f"{k} {v:.4f}" for k, v in self.state["metrics_before"].items()))
        self.clock = self.last_save = time.time()
        self.model.stop_training = False
        with self.stop:
            while self.state["epoch"] < self.epochs and not self.model.stop_training:
                epoch = self.state["epoch"]
                logs = self.train_epoch(epoch)
                if self.model.stop_training and self.state["step_in_epoch"] < self.steps_per_epoch:
                    print(f"Stopped by a callback at step {self.state['step']}.")
                    break
                self.end_epoch(epoch, logs)
                if self.time_budget_seconds and self.state["training_seconds"] >= self.time_budget_seconds:
                    print(f"Time budget of {self.time_budget_seconds:.0f} s reached after epoch {epoch + 1}.")
                    break
        return self.state

    def _callbacks(self, method, *args):
        for callback in self.callbacks:
            getattr(callback, method, lambda *a: None)(*args)

    def train_epoch(self, epoch):
        """The epoch's remaining steps; returns the last logs (the epoch's running means)."""
        state = self.state
        for metric in self.model.metrics:
            metric.reset_state()
        self._callbacks("on_epoch_begin", epoch)
        self.progress.start_epoch(epoch, state["step_in_epoch"])
        self.epoch_started = time.time()
        dataset = self.dataset_fn(epoch)
        if state["step_in_epoch"]:
            dataset = dataset.skip(state["step_in_epoch"])
        logs = {}
        for batch in self.strategy.experimental_distribute_dataset(dataset):
            logs = {name: float(value) for name, value in self.train_step(batch).items()}
            state["step"] += 1
            state["step_in_epoch"] += 1
            now = time.time()
            state["training_seconds"] += now - self.clock
            self.clock = now
            check_finite(logs, state, self.checkpoints)
            self.progress.update(state["step_in_epoch"], logs)
            self._callbacks("on_train_batch_end", state["step_in_epoch"] - 1, logs)
            self._log_step(logs)
            if self.max_steps and state["step"] >= self.max_steps:
                break  # the run's last, cut epoch: end_epoch validates and checkpoints it
            mid_epoch = state["step_in_epoch"] < self.steps_per_epoch
            if self.stop.received and mid_epoch:
                self._stop_for_signal()
            if mid_epoch and (self._checkpoint_due(now) or self.model.stop_training):
                self.save()
            if self.model.stop_training:
                break
        return logs

    def _checkpoint_due(self, now):
        by_steps = self.checkpoint_every_steps and self.state["step"] % self.checkpoint_every_steps == 0
        by_time = self.checkpoint_every_seconds and now - self.last_save >= self.checkpoint_every_seconds
        return bool(by_steps or by_time)

    def _log_step(self, logs):
        if self.writer is not None and self.state["step"] % self.log_every_steps == 0:
            with self.writer.as_default(step=self.state["step"]):
                for name, value in logs.items():
                    tf.summary.scalar(f"step/{name}", value)

    def validate(self):
        """``val_*`` metrics of ``validation_data``."""
        for metric in self.model.metrics:
            metric.reset_state()
        for batch in self.strategy.experimental_distribute_dataset(self.validation_data):
            val_logs = self.test_step(batch)
        val_logs = {f"val_{name}": float(value) for name, value in val_logs.items()}
        check_finite(val_logs, self.state, self.checkpoints)
        return val_logs

    def end_epoch(self, epoch, logs):
        """Validation, the epoch's checkpoint, logs, a sample picture and the callbacks."""
        state = self.state
        if self.validation_data is not None:
            logs.update(self.validate())
        state["epoch"] = epoch + 1
        state["step_in_epoch"] = 0
        state["metrics"] = logs
        state["training_seconds"] += time.time() - self.clock
        self.clock = time.time()
        self.save()
        if distribute.is_chief(self.strategy):
            # one line per epoch, for learning curves against training time (read_history)
            with open(os.path.join(self.run_dir, HISTORY_FILE), "a") as f:
                f.write(json.dumps({"epoch": state["epoch"], "step": state["step"],
                                    "training_seconds": round(state["training_seconds"], 1), **logs}) + "\n")
        self.progress.end_epoch(self.steps_per_epoch, logs, time.time() - self.epoch_started)
        if self.stop.received:
            self._stop_for_signal()
        if self.writer is not None:
            with self.writer.as_default(step=state["epoch"]):
                for name, value in logs.items():
                    tf.summary.scalar(f"epoch/{name}", value)
            self.writer.flush()
        if self.samples_writer is not None:
            images = np.asarray(self.sample_fn(self.model))
            save_image_grid(images, os.path.join(self.run_dir, "samples", f"epoch-{epoch + 1:04d}.png"),
                            title=f"epoch {epoch + 1}")
            with self.samples_writer.as_default():
                tf.summary.image("samples", images[:16], step=epoch + 1, max_outputs=16)
            self.samples_writer.flush()
        self._callbacks("on_epoch_end", epoch, logs)

    def _stop_for_signal(self):
        self.save()
        raise TrainingInterrupted(
            f"training stopped by {self.stop.received} at step {self.state['step']} (epoch {self.state['epoch'] + 1})"
            f"; checkpoint saved in {self.checkpoints.path}. Run the same command again to resume from step "
            f"{self.state['step']}.")


HISTORY_FILE = "history.jsonl"


def read_history(run_dir):
    """The run's per-epoch ``{"epoch", "step", "training_seconds", metrics...}``, one per epoch (the
    newest line wins where a resumed run repeated an epoch)."""
    path = os.path.join(run_dir, HISTORY_FILE)
    if not os.path.isfile(path):
        return []
    epochs = {}
    with open(path) as f:
        for line in f:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            epochs[entry["epoch"]] = entry
    return [epochs[e] for e in sorted(epochs)]


def plural(count, noun):
    """``1 epoch``, ``2 epochs``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def steps_per_epoch(dataset_fn):
    """Whole batches in one epoch of ``dataset_fn(0)``; a clear error when there is none
    (``--limit`` below the batch size)."""
    batches = int(dataset_fn(0).cardinality())
    if batches < 1:
        raise ZooError(f"the training dataset has no whole batch (cardinality {batches}): "
                       "give more examples (--limit) or a smaller --batch-size")
    return batches


def plan_steps(steps_per_epoch, epochs, steps=None):
    """``(epochs, total_steps)`` of a run: ``epochs`` whole epochs, or, given ``steps``, as many
    epochs as hold them (the last one cut at ``steps``)."""
    if steps is None:
        return epochs, epochs * steps_per_epoch
    check_positive(steps=steps)
    return -(-steps // steps_per_epoch), steps


def start(*, strategy="default", seed=0, epochs=1, batch_size=1, learning_rate=1.0, limit=None, devices=None):
    """Check the common options, create the strategy and seed everything; returns the strategy.

    The strategy comes first: multi-worker training must configure TensorFlow's
    collectives before any other TensorFlow work.
    """
    check_positive(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    if limit is not None and limit < 1:
        raise BadInputError(f"limit must be at least 1, got {limit}")
    strategy = distribute.make_strategy(strategy, devices) if isinstance(strategy, str) else strategy
    distribute.check_global_batch(batch_size, strategy)
    set_seed(seed)
    return strategy


def run(model, dataset_fn, *, config, run_dir, command, data, strategy, time_budget_minutes=None, **options):
    """:class:`Trainer` with ``run.json`` (config, command, data) written once the run's
    checkpoints are known to fit; what :func:`zoo.core.recipes.recipe.train` ends with.

    A run folder this call created is removed again when training fails before its
    first checkpoint, so a typo leaves nothing behind.
    """
    created = not os.path.exists(run_dir)
    trainer = Trainer(model, dataset_fn, run_dir=run_dir, config=config, strategy=strategy,
                      time_budget_seconds=time_budget_minutes * 60 if time_budget_minutes else None,
                      run_record={"config": config, "command": command, "data": data}, **options)
    try:
        state = trainer.run()
    except BaseException:
        if created and trainer.chief and not trainer.checkpoints.steps():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    replicas = trainer.strategy.num_replicas_in_sync
    print(f"Trained {plural(state['epoch'], 'epoch')} ({plural(state['step'], 'step')}, {state['training_seconds']:.0f} s"
          f"{f', {replicas} replicas' if replicas > 1 else ''}). "
          f"Checkpoints, samples and TensorBoard logs are in {run_dir}/")
    return state


def config_differences(old, new, prefix=""):
    """``["key: old -> new", ...]`` for the entries two configs disagree on (nested keys dotted)."""
    lines = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        if isinstance(a, dict) and isinstance(b, dict):
            lines += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            lines.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return lines


def model_config(model):
    """The model's constructor arguments, as stored in ``run.json`` and checkpoints (through JSON, so a
    tuple in a nested config compares equal to the list a checkpoint reads back)."""
    import json

    return json.loads(json.dumps({k: v for k, v in model.get_config().items()
                                  if k not in ("name", "trainable", "dtype")}))
