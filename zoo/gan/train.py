"""Train the GAN (or any :class:`AdversarialModel`) on MNIST.

    python -m zoo train gan --epochs 30
"""

import os

import numpy as np

from zoo.core import training
from zoo.core.data import mnist_dataset
from zoo.gan.model import GAN, PRESETS

DEFAULTS = {"preset": "base", "epochs": 30, "batch_size": 128, "learning_rate": 2e-4, "seed": 0}


def train_adversarial(model_class, presets, name, *, preset="base", epochs=30, batch_size=128,
                      learning_rate=2e-4, seed=0, run_dir=None, fresh=False, time_budget_minutes=None,
                      limit=None, verbose="auto", command=None, callbacks=(), strategy="default",
                      checkpoint_every_steps=None, devices=None):
    """Train an adversarial image model on MNIST with resume, checkpoints and samples.

    ``batch_size`` is the global batch, split over the strategy's replicas.
    Returns the final training state (epoch, step, training_seconds, metrics);
    the run directory holds what :func:`zoo.gan.export.export_adversarial` reads.
    """
    import keras

    strategy = training.start(strategy=strategy, seed=seed, epochs=epochs, batch_size=batch_size,
                              learning_rate=learning_rate, limit=limit, devices=devices)
    with strategy.scope():
        model = training.build_from_preset(model_class, presets, preset, seed)
        model.compile(
            generator_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5),
            discriminator_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5),
        )
    config = {
        "model": name,
        "preset": preset,
        "model_config": training.model_config(model),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "train_examples": limit or 60000,
    }

    def dataset_fn(epoch):
        # [-1, 1]: the generator's tanh range.
        return mnist_dataset("train", batch_size=batch_size, seed=seed, epoch=epoch, limit=limit,
                             value_range=(-1.0, 1.0))

    fixed_noise = np.random.default_rng(seed).standard_normal((64, model.latent_dim)).astype("float32")
    return training.run(
        model, dataset_fn, name=name, config=config, run_dir=run_dir or os.path.join("runs", name), epochs=epochs,
        command=command or f"python -m zoo train {name} --preset {preset} --epochs {epochs} --seed {seed}",
        data="MNIST train split (60,000 digits) scaled to [-1, 1]" if not limit else f"first {limit} MNIST training digits",
        strategy=strategy, sample_fn=lambda m: m.generate(fixed_noise), time_budget_minutes=time_budget_minutes,
        fresh=fresh, verbose=verbose, callbacks=callbacks, checkpoint_every_steps=checkpoint_every_steps)


def train(**options):
    return train_adversarial(GAN, PRESETS, "gan", **options)


def load_trained(run_dir):
    """``(model, run, state)`` from the newest intact checkpoint of a GAN run."""
    return load_trained_adversarial(GAN, PRESETS, run_dir)


def load_trained_adversarial(model_class, presets, run_dir):
    """Rebuild the model from ``run_dir``'s newest intact checkpoint (EMA weights included)."""
    return training.load_run(model_class, presets, run_dir)
