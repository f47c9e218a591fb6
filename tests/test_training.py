"""Resume, NaN guard, checkpoint integrity and reproducibility of the shared training loop."""

import numpy as np
import pytest

import keras
from zoo.core import training
from zoo.core.errors import TrainingDivergedError, ZooError
from zoo.gan import train as gan_train
from zoo.gan.model import GAN, PRESETS

TRAIN_IMAGES = 128  # synthetic "digits"; 4 steps an epoch at batch 32
STEPS_PER_EPOCH = TRAIN_IMAGES // 32


@pytest.fixture
def synthetic_mnist(monkeypatch):
    """Replace MNIST with random images; ``images[...] = nan`` poisons them."""
    images = np.random.default_rng(0).uniform(0, 1, (TRAIN_IMAGES, 28, 28, 1)).astype(np.float32)

    def fake_mnist_images(split="train", limit=None):
        return images[:limit], np.zeros(len(images[:limit]), np.int32)

    monkeypatch.setattr(gan_train, "mnist_images", fake_mnist_images)
    return images


def train(run_dir, **options):
    return gan_train.train_adversarial(GAN, PRESETS, "gan", preset="tiny", batch_size=32, run_dir=str(run_dir),
                                       verbose=0, **options)


class InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt


def test_resume_after_interruption_continues_from_checkpoint(synthetic_mnist, tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, epochs=3, callbacks=[InterruptAt(epoch=1, batch=1)])
    checkpoints = training.CheckpointDirectory(str(tmp_path))
    assert checkpoints.epochs() == [1]  # the interrupted epoch 2 wrote nothing

    state = train(tmp_path, epochs=3)
    assert "Resuming from" in capsys.readouterr().out
    assert state["epoch"] == 3
    assert state["step"] == 3 * STEPS_PER_EPOCH  # as many steps as an uninterrupted run

    model, _, restored = gan_train.load_trained(str(tmp_path))
    assert restored["epoch"] == 3
    # optimizer state travelled with the weights
    assert int(model.generator_optimizer.iterations.numpy()) == 3 * STEPS_PER_EPOCH
    assert int(model.discriminator_optimizer.iterations.numpy()) == 3 * STEPS_PER_EPOCH


def test_nan_loss_stops_with_clear_message_and_keeps_last_checkpoint(synthetic_mnist, tmp_path):
    train(tmp_path, epochs=1)
    good = training.CheckpointDirectory(str(tmp_path)).read_state(1)
    synthetic_mnist[:] = np.nan
    with pytest.raises(TrainingDivergedError, match=r"(discriminator|generator)_loss became nan at epoch 2, step 1"):
        train(tmp_path, epochs=2)
    checkpoints = training.CheckpointDirectory(str(tmp_path))
    assert checkpoints.epochs() == [1]
    assert checkpoints.read_state(1) == good


def test_corrupt_checkpoint_falls_back_to_previous(synthetic_mnist, tmp_path, capsys):
    train(tmp_path, epochs=2)
    weights = tmp_path / "checkpoints" / "epoch-0002" / training.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    model = GAN(**PRESETS["tiny"])
    model.compile()
    config = training.CheckpointDirectory(str(tmp_path)).read_state(1)["config"]
    state = training.CheckpointDirectory(str(tmp_path)).restore_latest(model, config)
    assert state["epoch"] == 1
    assert "epoch-0002 is corrupt" in capsys.readouterr().err


def test_checkpoint_from_other_config_is_refused(synthetic_mnist, tmp_path):
    train(tmp_path, epochs=1)
    with pytest.raises(ZooError, match="another configuration"):
        train(tmp_path, epochs=2, learning_rate=1e-3)


def test_same_seed_same_weights(synthetic_mnist, tmp_path):
    def weights_after_training(run_dir, seed):
        train(run_dir, epochs=1, seed=seed)
        model, _, _ = gan_train.load_trained(str(run_dir))
        return [w.numpy() for w in model.weights]

    first = weights_after_training(tmp_path / "a", seed=3)
    second = weights_after_training(tmp_path / "b", seed=3)
    other = weights_after_training(tmp_path / "c", seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, c) for a, c in zip(first, other))
