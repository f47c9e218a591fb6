"""Train the byte-level GPT on tiny Shakespeare, or fine-tune it on your own text.

    python -m zoo train gpt                                 # the committed model (25 epochs)
    python -m zoo train gpt --fine-tune-from exported/gpt --text my.txt --epochs 2 --run-dir runs/my-gpt

Each epoch reads the training text once, as non-overlapping windows of
``context_length`` bytes, shifted by a random offset and shuffled (both from the
seed and the epoch, so a resumed run sees the batches an uninterrupted one would).
The learning rate warms up linearly, then follows a cosine decay to 10% over the
whole run, so ``--epochs`` is part of the run's config. AdamW with gradient
clipping (global norm 1) and weight decay on the matrices only, as nanoGPT does.
"""

import hashlib
import os

import numpy as np

from zoo.core import data, training
from zoo.core.errors import ArtifactNotFoundError, BadInputError
from zoo.gpt.model import PRESETS, GPT

NAME = "gpt"
WARMUP_FRACTION = 0.02  # of all steps, at least 10
SAMPLE_PROMPT = "\n"
SAMPLE_BYTES = 300


def training_text(text=None):
    """``(train, validation)`` uint8 byte arrays: tiny Shakespeare or the user's UTF-8 file, split 90/10."""
    if text is None:
        return data.tiny_shakespeare("train"), data.tiny_shakespeare("validation")
    content = data.text_bytes(text)
    return data.split_bytes(content, "train"), data.split_bytes(content, "validation")


def _fine_tune_source(path):
    """``(model, description)`` from an exported folder (its gpt.keras, hash-checked) or a training run."""
    from zoo.core.artifacts import load_exported

    if path is None:
        return None, None
    if os.path.isfile(os.path.join(path, "manifest.json")):
        model = load_exported(path, runtime="keras").model  # sha256-checked, safe_mode=True
        return model, f"exported model {path}"
    if os.path.isfile(os.path.join(path, "run.json")):
        model, run, state = load_trained(path)
        return model, f"run {path} at step {state['step']}"
    raise ArtifactNotFoundError(f"--fine-tune-from {path!r} is neither an exported GPT folder (with manifest.json) "
                                "nor a training run directory (with run.json)")


def _weights_sha256(model):
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def train(*, preset="base", epochs=25, batch_size=64, learning_rate=1.5e-3, seed=0, run_dir=None, fresh=False,
          time_budget_minutes=None, limit=None, verbose="auto", command=None, callbacks=(), strategy="default",
          checkpoint_every_steps=None, devices=None, text=None, fine_tune_from=None, sample_every_epoch=True):
    """Train a GPT with resume, checkpoints, a NaN guard, TensorBoard and a text sample per epoch.

    Args:
        batch_size: the global batch in windows of ``context_length`` bytes.
        limit: train on at most this many windows per epoch (smoke runs).
        text: a UTF-8 file to train on instead of tiny Shakespeare.
        fine_tune_from: an exported GPT folder or a run directory to start from; its
            size (not ``preset``) decides the model's.

    Returns the final training state (epoch, step, training_seconds, metrics);
    ``metrics["val_loss"]`` is the validation loss in nats per byte.
    """
    strategy = training.start(strategy=strategy, seed=seed, epochs=epochs, batch_size=batch_size,
                              learning_rate=learning_rate, limit=limit, devices=devices)
    train_bytes, validation_bytes = training_text(text)
    source, source_description = _fine_tune_source(fine_tune_from)
    with strategy.scope():
        if source is not None:
            model = GPT(**{**training.model_config(source), "seed": seed})
            model.set_weights(source.get_weights())
        else:
            model = training.build_from_preset(GPT, PRESETS, preset, seed)
    window = model.context_length
    if len(validation_bytes) < window + 1:
        raise BadInputError(f"the validation part (last 10%) of the text has {len(validation_bytes)} bytes; "
                            f"at least {window + 1} are needed. Use a longer text.")

    def dataset_fn(epoch):
        return data.text_dataset(train_bytes, window=window, batch_size=batch_size, seed=seed, epoch=epoch,
                                 limit=limit)

    steps_per_epoch = int(dataset_fn(0).cardinality())
    total_steps = epochs * steps_per_epoch
    config = {
        "model": NAME,
        "preset": preset if source is None else "fine-tuned",
        "model_config": training.model_config(model),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "learning_rate_schedule": f"linear warm-up, then cosine decay to 10% over {epochs} epochs",
        "warmup_steps": max(10, int(WARMUP_FRACTION * total_steps)),
        "epochs": epochs,
        "decay_steps": total_steps,
        "seed": seed,
        "train_bytes": int(len(train_bytes)),
        "text_sha256": hashlib.sha256(train_bytes.tobytes()).hexdigest(),
        **({"text": os.path.abspath(text)} if text else {}),  # export validates on its last 10%
        "limit": limit,
        "fine_tune_from": None if source is None else {"source": source_description,
                                                       "weights_sha256": _weights_sha256(source)},
    }
    with strategy.scope():
        compile_for_training(model, config)
    validation = data.text_dataset(validation_bytes, window=window, batch_size=64, shuffle=False,
                                   drop_remainder=False, limit=None if limit is None else max(limit // 4, 1))
    run_dir = run_dir or os.path.join("runs", NAME)
    if sample_every_epoch:
        callbacks = (*callbacks, TextSamples(run_dir, seed))
    what = "tiny Shakespeare" if text is None else f"{text}"
    return training.run(
        model, dataset_fn, name=NAME, config=config, run_dir=run_dir, epochs=epochs,
        command=command or f"python -m zoo train {NAME} --preset {preset} --epochs {epochs} --seed {seed}",
        data=(f"{what}: first 90% ({len(train_bytes):,} bytes) for training, last 10% "
              f"({len(validation_bytes):,} bytes) for validation, as UTF-8 bytes"
              + ("" if limit is None else f"; at most {limit} windows an epoch")),
        strategy=strategy, time_budget_minutes=time_budget_minutes, fresh=fresh, verbose=verbose,
        callbacks=callbacks, validation_data=validation, checkpoint_every_steps=checkpoint_every_steps)


def compile_for_training(model, config):
    """AdamW, global-norm clipping at 1, warm-up then cosine decay to 10% (nanoGPT's recipe)."""
    import keras

    peak = config["learning_rate"]
    warmup = config["warmup_steps"]
    schedule = keras.optimizers.schedules.CosineDecay(
        peak / warmup, decay_steps=max(config["decay_steps"] - warmup, 1), alpha=0.1, warmup_target=peak,
        warmup_steps=warmup)
    # gradient clipping (global norm 1) is in GPT.train_step: the optimizer's own would
    # clip each replica's part of the gradient under tf.distribute
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.1, beta_1=0.9, beta_2=0.99)
    # decay the matrices only: biases and layer-norm scales/offsets keep their values
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    model.compile(optimizer=optimizer)


class TextSamples:
    """After each epoch, continue ``SAMPLE_PROMPT`` (temperature 0.8) into ``<run_dir>/samples/epoch-NNNN.txt``."""

    def __init__(self, run_dir, seed):
        self.folder = os.path.join(run_dir, "samples")
        self.noise = np.random.default_rng(seed).uniform(size=(1, SAMPLE_BYTES)).astype(np.float32)
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_epoch_end(self, epoch, logs):
        import tensorflow as tf

        from zoo.core.distribute import is_chief
        from zoo.core.files import write_text

        if not is_chief(tf.distribute.get_strategy()):
            return
        text = continue_text(self.model, SAMPLE_PROMPT, noise=self.noise, temperature=0.8, top_p=0.95)
        write_text(os.path.join(self.folder, f"epoch-{epoch + 1:04d}.txt"), text)
        excerpt = text.strip().splitlines()[:3]
        print("sample: " + " / ".join(excerpt)[:160])


def continue_text(model, prompt, *, noise, temperature=0.8, top_k=0, top_p=1.0):
    """The model's continuation of one prompt (str), decoded leniently (a cut-off UTF-8 sequence becomes U+FFFD)."""
    prompt_bytes = np.frombuffer(prompt.encode("utf-8"), np.uint8).astype(np.int32)[-model.context_length:]
    out = model.generate(prompt_bytes[None, :], np.array([len(prompt_bytes)], np.int32),
                         np.array([noise.shape[1]], np.int32), np.array([temperature], np.float32),
                         np.array([top_k], np.int32), np.array([top_p], np.float32), noise)
    count = int(out["num_tokens"][0])
    return bytes(np.asarray(out["tokens"][0, :count]).astype(np.uint8)).decode("utf-8", errors="replace")


def load_trained(run_dir=os.path.join("runs", NAME)):
    """``(model, run, state)`` from the newest intact checkpoint of a GPT run (optimizer state included)."""
    return training.load_run(GPT, PRESETS, run_dir, compile_fn=compile_for_training)
