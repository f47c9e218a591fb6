"""Train the VAE on dynamically binarized MNIST.

    python -m zoo train vae --epochs 100
    python -m zoo train vae --preset latent2 --run-dir runs/vae-latent2   # the 2-D latent space

The learning rate follows a cosine decay over the whole run (to 10% of its
start), so ``--epochs`` is part of the run's config: resuming with another value
is refused rather than silently changing the schedule.
"""

import os

import numpy as np

from zoo.core import training
from zoo.core.data import mnist_dataset
from zoo.core.errors import BadInputError
from zoo.core.files import write_json
from zoo.vae.model import PRESETS, VAE

NAME = "vae"


def train(*, preset="base", epochs=100, batch_size=128, learning_rate=1e-3, seed=0, run_dir=None, fresh=False,
          time_budget_minutes=None, limit=None, verbose="auto", command=None, callbacks=()):
    """Train a VAE with resume, checkpoints, a NaN guard, TensorBoard and a sample grid per epoch.

    Test-set negative ELBO (one sample, fresh binarization) is logged as
    ``val_loss`` each epoch for monitoring; nothing is selected on it.

    Returns the final training state (epoch, step, training_seconds, metrics).
    """
    import keras

    training.check_positive(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    if limit is not None and limit < 1:
        raise BadInputError(f"limit must be at least 1, got {limit}")
    run_dir = run_dir or os.path.join("runs", NAME)
    training.set_seed(seed)
    model = training.build_from_preset(VAE, PRESETS, preset, seed)
    dataset = mnist_dataset("train", batch_size=batch_size, seed=seed, limit=limit)
    validation = mnist_dataset("test", batch_size=500, shuffle=False, drop_remainder=False,
                               limit=None if limit is None else max(limit // 6, 1))
    steps_per_epoch = int(dataset.cardinality())
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps_per_epoch, alpha=0.1)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    config = {
        "model": NAME,
        "preset": preset,
        "model_config": {k: v for k, v in model.get_config().items() if k not in ("name", "trainable", "dtype")},
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "learning_rate_schedule": f"cosine decay to 10% over {epochs} epochs",
        "epochs": epochs,
        "seed": seed,
        "train_examples": limit or 60000,
    }
    os.makedirs(run_dir, exist_ok=True)
    write_json(os.path.join(run_dir, "run.json"), {
        "config": config,
        "command": command or f"python -m zoo train {NAME} --preset {preset} --epochs {epochs} --seed {seed}",
        "data": ("MNIST train split (60,000 digits), dynamically binarized each step" if not limit
                 else f"first {limit} MNIST training digits, dynamically binarized each step"),
    })
    fixed_latents = np.random.default_rng(seed).standard_normal((64, model.latent_dim)).astype("float32")
    state = training.fit(
        model,
        dataset,
        run_dir=run_dir,
        epochs=epochs,
        config=config,
        sample_fn=lambda m: m.decode(fixed_latents)["images"],
        time_budget_seconds=time_budget_minutes * 60 if time_budget_minutes else None,
        fresh=fresh,
        verbose=verbose,
        extra_callbacks=callbacks,
        validation_data=validation,
    )
    print(f"Trained {state['epoch']} epochs ({state['step']} steps, {state['training_seconds']:.0f} s). "
          f"Checkpoints, samples and TensorBoard logs are in {run_dir}/")
    return state


def load_trained(run_dir=os.path.join("runs", NAME)):
    """``(model, run, state)`` from the newest intact checkpoint of a VAE run."""
    return training.load_run(VAE, PRESETS, run_dir)
