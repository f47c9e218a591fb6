"""Train the class-conditional diffusion model on MNIST.

    python -m zoo train diffusion --epochs 30

The learning rate follows a cosine decay over the whole run (to 10%), so
``--epochs`` is part of the run's config. Sampling uses the EMA network.
"""

import os

import numpy as np

from zoo.core import training
from zoo.core.data import mnist_dataset
from zoo.diffusion.model import PRESETS, Diffusion

NAME = "diffusion"


def train(*, preset="base", epochs=30, batch_size=128, learning_rate=5e-4, seed=0, run_dir=None, fresh=False,
          time_budget_minutes=None, limit=None, verbose="auto", command=None, callbacks=(), strategy="default",
          checkpoint_every_steps=None, devices=None):
    """Train with resume, checkpoints, a NaN guard, TensorBoard and a 10 x 10 grid (a row per digit) each epoch."""
    strategy = training.start(strategy=strategy, seed=seed, epochs=epochs, batch_size=batch_size,
                              learning_rate=learning_rate, limit=limit, devices=devices)

    def dataset_fn(epoch):
        return mnist_dataset("train", batch_size=batch_size, seed=seed, epoch=epoch, limit=limit,
                             value_range=(-1.0, 1.0), with_labels=True)

    with strategy.scope():
        model = training.build_from_preset(Diffusion, PRESETS, preset, seed)
    config = {
        "model": NAME, "preset": preset, "model_config": training.model_config(model), "batch_size": batch_size,
        "learning_rate": learning_rate, "learning_rate_schedule": f"cosine decay to 10% over {epochs} epochs",
        "epochs": epochs, "decay_steps": epochs * int(dataset_fn(0).cardinality()), "seed": seed,
        "train_examples": limit or 60000,
    }
    with strategy.scope():
        compile_for_training(model, config)
    validation = mnist_dataset("test", batch_size=500, shuffle=False, drop_remainder=False, value_range=(-1.0, 1.0),
                               with_labels=True, limit=None if limit is None else max(limit // 6, 1))
    rng = np.random.default_rng(seed)
    fixed_noise = rng.standard_normal((100, 28, 28, 1)).astype(np.float32)
    fixed_labels = np.repeat(np.arange(10, dtype=np.int32), 10)

    def sample_fn(m):
        return m.generate(fixed_noise, fixed_labels, np.full(100, 2.0, np.float32), steps=25)["images"]

    return training.run(
        model, dataset_fn, name=NAME, config=config, run_dir=run_dir or os.path.join("runs", NAME), epochs=epochs,
        command=command or f"python -m zoo train {NAME} --preset {preset} --epochs {epochs} --seed {seed}",
        data="MNIST train split (60,000 digits) with labels, pixels in [-1, 1]" if not limit
        else f"first {limit} MNIST training digits with labels",
        strategy=strategy, sample_fn=sample_fn, time_budget_minutes=time_budget_minutes, fresh=fresh,
        verbose=verbose, callbacks=callbacks, validation_data=validation, checkpoint_every_steps=checkpoint_every_steps)


def compile_for_training(model, config):
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(config["learning_rate"], decay_steps=config["decay_steps"],
                                                      alpha=0.1)
    model.compile(optimizer=keras.optimizers.Adam(schedule))


def load_trained(run_dir=os.path.join("runs", NAME)):
    return training.load_run(Diffusion, PRESETS, run_dir, compile_fn=compile_for_training)
