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
from zoo.vae.model import PRESETS, VAE

NAME = "vae"


def train(*, preset="base", epochs=100, batch_size=128, learning_rate=1e-3, seed=0, run_dir=None, fresh=False,
          time_budget_minutes=None, limit=None, verbose="auto", command=None, callbacks=(), strategy="default",
          checkpoint_every_steps=None, devices=None):
    """Train a VAE with resume, checkpoints, a NaN guard, TensorBoard and a sample grid per epoch.

    ``batch_size`` is the global batch, split over the strategy's replicas.
    Test-set negative ELBO (one sample, fresh binarization) is logged as
    ``val_loss`` each epoch for monitoring; nothing is selected on it.

    Returns the final training state (epoch, step, training_seconds, metrics).
    """
    strategy = training.start(strategy=strategy, seed=seed, epochs=epochs, batch_size=batch_size,
                              learning_rate=learning_rate, limit=limit, devices=devices)

    def dataset_fn(epoch):
        return mnist_dataset("train", batch_size=batch_size, seed=seed, epoch=epoch, limit=limit)

    with strategy.scope():
        model = training.build_from_preset(VAE, PRESETS, preset, seed)
    config = {
        "model": NAME,
        "preset": preset,
        "model_config": training.model_config(model),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "learning_rate_schedule": f"cosine decay to 10% over {epochs} epochs",
        "epochs": epochs,
        "decay_steps": epochs * int(dataset_fn(0).cardinality()),
        "seed": seed,
        "train_examples": limit or 60000,
    }
    with strategy.scope():
        compile_for_training(model, config)
    validation = mnist_dataset("test", batch_size=500, shuffle=False, drop_remainder=False,
                               limit=None if limit is None else max(limit // 6, 1))
    fixed_latents = np.random.default_rng(seed).standard_normal((64, model.latent_dim)).astype("float32")
    return training.run(
        model, dataset_fn, name=NAME, config=config, run_dir=run_dir or os.path.join("runs", NAME), epochs=epochs,
        command=command or f"python -m zoo train {NAME} --preset {preset} --epochs {epochs} --seed {seed}",
        data=("MNIST train split (60,000 digits), dynamically binarized each step" if not limit
              else f"first {limit} MNIST training digits, dynamically binarized each step"),
        strategy=strategy, sample_fn=lambda m: m.decode(fixed_latents)["images"],
        time_budget_minutes=time_budget_minutes, fresh=fresh, verbose=verbose, callbacks=callbacks,
        validation_data=validation, checkpoint_every_steps=checkpoint_every_steps)


def compile_for_training(model, config):
    """Adam with the run's cosine learning-rate schedule (10% of the peak at the end)."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(config["learning_rate"], decay_steps=config["decay_steps"],
                                                      alpha=0.1)
    model.compile(optimizer=keras.optimizers.Adam(schedule))


def load_trained(run_dir=os.path.join("runs", NAME)):
    """``(model, run, state)`` from the newest intact checkpoint of a VAE run (optimizer state included)."""
    return training.load_run(VAE, PRESETS, run_dir, compile_fn=compile_for_training)
