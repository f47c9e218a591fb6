"""Resume, NaN guard, checkpoint integrity and reproducibility of the shared training loop.

The loop is the core's (zoo.core.training.trainer.Trainer), so these checks hold for every
model; the parametrized ones run on every registered model.
"""

import numpy as np
import pytest

from tests.conftest import synthetic_text
from zoo.core.data import datasets as data
from zoo.core.training import trainer as training
from zoo.core.runtime.errors import IntegrityError, TrainingDivergedError, ZooError
from zoo.core.recipes import commands
from zoo.core.recipes.registry import get_recipe, model_names

TRAIN_IMAGES = 128  # synthetic "digits"; 4 steps an epoch at batch 32
STEPS_PER_EPOCH = TRAIN_IMAGES // 32
MODELS = model_names()  # every registered model gets the fault checks


@pytest.fixture
def synthetic_mnist(monkeypatch, tmp_path_factory):
    """MNIST replaced by random images (``images[...] = nan`` poisons them), tiny Shakespeare by random text and
    the spoken digits by random noise."""
    images = np.random.default_rng(0).uniform(0, 1, (TRAIN_IMAGES, 28, 28, 1)).astype(np.float32)

    def fake_mnist_images(split="train", limit=None):
        return images[:limit], np.zeros(len(images[:limit]), np.int32)

    monkeypatch.setattr(data, "mnist_images", fake_mnist_images)
    # and tiny Shakespeare by random text: 128 windows of the tiny GPT's 32 bytes, whatever the epoch's shift
    text = np.frombuffer(synthetic_text(4587), np.uint8)  # int(4587 * 0.9) = 129 * 32 training bytes
    monkeypatch.setattr(data, "tiny_shakespeare", lambda split="train": data.split_bytes(text, split))
    # and the spoken digits by random noise clips: 128 for training, 32 for validation
    rng = np.random.default_rng(1)
    clips = {split: data.SpokenDigits(rng.uniform(-0.5, 0.5, (count, 8000)).astype(np.float32),
                                      # every digit by every speaker (the TTS model builds strings of them)
                                      np.arange(count, dtype=np.int32) % 10, (np.arange(count, dtype=np.int32) // 10) % 6,
                                      rng.integers(1000, 9000, count).astype(np.int32),
                                      ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"],
                                      [f"{i % 10}_x_{i}.wav" for i in range(count)])
             for split, count in (("train", TRAIN_IMAGES), ("test", 60))}

    def fake_spoken_digits(split="train", limit=None):
        full = clips[split]
        return data.SpokenDigits(full.audio[:limit], full.digits[:limit], full.speakers[:limit], full.lengths[:limit],
                                 full.speaker_names, full.files[:limit])

    monkeypatch.setattr(data, "spoken_digits", fake_spoken_digits)
    # and the Bach chorales by random notes: 8 chorales of 16 bar-aligned windows each, 128 for training
    from zoo.core.data import chorales

    def fake_chorale(index):
        voices = np.stack([rng.integers(*chorales.RANGES[v], 19) for v in chorales.VOICES]).repeat(16, axis=1)
        return {"path": f"fake/{index}", "voices": voices.astype(np.int16), "bar_starts": np.arange(0, 304, 16),
                "meter": "4/4", "key": (0, "major")}

    fake_split = {"train": [fake_chorale(i) for i in range(8)], "validation": [fake_chorale(8)],
                  "test": [fake_chorale(9)], "skipped": []}
    monkeypatch.setattr(chorales, "load_chorales", lambda limit=None, progress=None: fake_split)
    # and the spoken numbers, drawn anew each epoch, by 128 training pairs an epoch and 32 for validation
    from zoo.core.data import spoken_numbers
    monkeypatch.setattr(spoken_numbers, "EPOCH_PAIRS", TRAIN_IMAGES)
    monkeypatch.setattr(spoken_numbers, "VALIDATION_PAIRS", 32)
    # and the spoken digit strings, built anew each epoch, by 128 an epoch and 32 for validation
    from zoo.core.data import digit_strings
    monkeypatch.setattr(digit_strings, "EPOCH_UTTERANCES", TRAIN_IMAGES)
    monkeypatch.setattr(digit_strings, "VALIDATION_UTTERANCES", 32)
    return images


def train(run_dir, model="gan", **options):
    # samples=False: the pictures drawn at each epoch end (a diffusion model: 25 guided DDIM steps) are not what
    # these tests check, and were most of their time
    return commands.train(model, preset="tiny", batch_size=32, run_dir=str(run_dir), verbose=0, samples=False,
                          **options)


def weights(name, run_dir):
    model, _, state = commands.load_run(name, str(run_dir))
    return [w.numpy() for w in model.weights], model, state


def trained_weights(name, run_dir, seed):
    train(run_dir, name, epochs=1, seed=seed)
    return weights(name, run_dir)


def optimizers(model):
    return [o for o in (getattr(model, a, None) for a in ("generator_optimizer", "discriminator_optimizer"))
            if o is not None] or [model.optimizer]


class InterruptAt:
    """Raises KeyboardInterrupt after the given batch of the given epoch (both 0-based)."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch):
        self.current = epoch

    def on_train_batch_end(self, batch, logs):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_resume_mid_epoch_gives_the_uninterrupted_run_of_the_same_seed(name, synthetic_mnist, tmp_path, capsys):
    """Two runs of one seed, one interrupted mid-epoch and resumed, end with the same weights: the resume and the
    seed's reproducibility in one comparison (a resume that lost the data order or the noise's state, or a step
    that drew noise the seed does not fix, moves weights far more than the tolerance); and training moved them."""
    state = train(tmp_path / "straight", name, epochs=3, seed=3)
    assert all(np.isfinite(v) for v in state["metrics"].values())
    trained, run, _ = commands.load_run(name, str(tmp_path / "straight"))
    expected = [w.numpy() for w in trained.weights]
    assert run["config"]["model"] == name and run["data"]
    untrained = get_recipe(name).create_model("tiny", seed=3)
    changed = [not np.allclose(a, b) for a, b in zip(trained.trainable_weights, untrained.trainable_weights)]
    assert sum(changed) >= len(changed) // 2, "most trainable weights should move in three short epochs"

    run_dir = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        # a checkpoint every 2 steps; interrupted after step 3 of epoch 2 (global step 7)
        train(run_dir, name, epochs=3, seed=3, checkpoint_every_steps=2, callbacks=[InterruptAt(epoch=1, batch=2)])
    checkpoints = training.CheckpointDirectory(str(run_dir))
    assert checkpoints.steps()[-1] == 6  # mid-epoch: step 2 of epoch 2
    assert checkpoints.read_state(6)["step_in_epoch"] == 2

    state = train(run_dir, name, epochs=3, seed=3, checkpoint_every_steps=2)
    assert "Resuming from" in capsys.readouterr().out
    assert state["epoch"] == 3
    assert state["step"] == 3 * STEPS_PER_EPOCH  # as many steps as an uninterrupted run
    resumed, model, restored = weights(name, run_dir)
    assert restored["step"] == 3 * STEPS_PER_EPOCH
    updates = 3 * STEPS_PER_EPOCH * getattr(model, "optimizer_updates_per_step", 1)  # the LSTM: one per window
    for optimizer in optimizers(model):
        assert int(optimizer.iterations.numpy()) == updates  # optimizer state travelled too
    # same batches in the same order with the same noise: the same weights. Bit for bit in every run but
    # one: in a full-suite run the diffusion model's resumed weights once differed by 1 ulp (7e-9) in 6 of
    # 1,024 elements of one kernel, which a repeat of the test alone never showed (oneDNN's kernels may
    # round differently with other memory alignment). Another batch or other noise moves weights far more.
    for a, b in zip(expected, resumed):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


class PoisonWeightsAt:
    """Sets the first trainable weight to NaN after the given batch of the given epoch."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch, self.current, self.model = epoch, batch, None, None

    def set_model(self, model):
        self.model = model

    def on_epoch_begin(self, epoch):
        self.current = epoch

    def on_train_batch_end(self, batch, logs):
        if self.current == self.epoch and batch == self.batch:
            weight = self.model.trainable_variables[0]
            weight.assign(np.full(weight.shape, np.nan, np.float32))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_nan_loss_stops_with_clear_message_and_keeps_last_checkpoint(name, synthetic_mnist, tmp_path):
    loss = r"\w*loss"  # whichever loss the model logs first
    with pytest.raises(TrainingDivergedError,
                       match=loss + r" became nan at epoch 2, step 6 \(step 2 of the epoch\); the last good "
                                    r"checkpoint \(step 4\) is kept"):
        train(tmp_path, name, epochs=2, callbacks=[PoisonWeightsAt(epoch=1, batch=0)])
    checkpoints = training.CheckpointDirectory(str(tmp_path))
    assert checkpoints.steps() == [STEPS_PER_EPOCH]
    _, model, state = weights(name, tmp_path)  # the kept checkpoint is intact and finite
    assert state["step"] == STEPS_PER_EPOCH
    assert all(np.all(np.isfinite(w.numpy())) for w in model.trainable_variables)


def test_corrupt_checkpoint_falls_back_to_previous(synthetic_mnist, tmp_path, capsys):
    train(tmp_path, epochs=2)
    weights_file = tmp_path / "checkpoints" / f"step-{2 * STEPS_PER_EPOCH:08d}" / training.WEIGHTS_FILE
    data_bytes = bytearray(weights_file.read_bytes())
    data_bytes[len(data_bytes) // 2] ^= 0xFF
    weights_file.write_bytes(bytes(data_bytes))
    model = get_recipe("gan").create_model("tiny")
    model.compile()
    training.build_optimizers(model)
    config = training.CheckpointDirectory(str(tmp_path)).read_state(STEPS_PER_EPOCH)["config"]
    state = training.CheckpointDirectory(str(tmp_path)).restore_latest(model, config)
    assert state["epoch"] == 1
    assert f"step-{2 * STEPS_PER_EPOCH:08d} is corrupt" in capsys.readouterr().err


def test_truncated_checkpoint_falls_back_and_training_resumes(synthetic_mnist, tmp_path, capsys):
    train(tmp_path, "vae", epochs=2)
    weights_file = tmp_path / "checkpoints" / f"step-{2 * STEPS_PER_EPOCH:08d}" / training.WEIGHTS_FILE
    weights_file.write_bytes(weights_file.read_bytes()[:1000])
    state = train(tmp_path, "vae", epochs=2)
    assert "is corrupt" in capsys.readouterr().err
    assert state["step"] == 2 * STEPS_PER_EPOCH  # retrained epoch 2 from the checkpoint after epoch 1


def test_checkpoint_without_matching_optimizer_state_is_an_error(synthetic_mnist, tmp_path):
    train(tmp_path, "vae", epochs=1)
    model, _, _ = commands.load_run("vae", str(tmp_path))
    fresh = model.__class__.from_config(model.get_config())
    fresh.compile()  # another optimizer (RMSprop, unbuilt) than the run's Adam
    config = training.CheckpointDirectory(str(tmp_path)).read_state(STEPS_PER_EPOCH)["config"]
    with pytest.raises(IntegrityError, match="does not fit this model"):
        training.CheckpointDirectory(str(tmp_path)).restore_latest(fresh, config)


def test_checkpoint_from_other_config_is_refused(synthetic_mnist, tmp_path):
    train(tmp_path, epochs=1)
    with pytest.raises(ZooError, match="another configuration"):
        train(tmp_path, epochs=2, learning_rate=1e-3)


@pytest.mark.slow
def test_another_seed_gives_other_weights(synthetic_mnist, tmp_path):
    """The seed reaches the weights (the loop is shared: one model shows it for all)."""
    first = trained_weights("gan", tmp_path / "a", seed=3)[0]
    other = trained_weights("gan", tmp_path / "c", seed=4)[0]
    assert not all(np.array_equal(a, c) for a, c in zip(first, other))


def test_time_budget_stops_after_the_epoch_that_crosses_it(synthetic_mnist, tmp_path, capsys):
    state = train(tmp_path, "vae", epochs=3, time_budget_minutes=1e-6)
    assert state["epoch"] == 1 and state["step"] == STEPS_PER_EPOCH
    assert "Time budget" in capsys.readouterr().out
    assert training.CheckpointDirectory(str(tmp_path)).steps() == [STEPS_PER_EPOCH]


def test_steps_end_the_run_mid_epoch_and_the_schedule_spans_them(synthetic_mnist, tmp_path):
    steps = STEPS_PER_EPOCH + 2  # one whole epoch and two steps of the next
    state = train(tmp_path, "vae", steps=steps)
    assert (state["epoch"], state["step"]) == (2, steps)
    _, run, _ = commands.load_run("vae", str(tmp_path))
    assert run["config"]["steps"] == steps and run["config"]["decay_steps"] == steps
    assert run["config"]["learning_rate_schedule"].endswith(f"over {steps} steps")
    assert f"--steps {steps}" in run["command"]
    assert [line["step"] for line in training.read_history(str(tmp_path))] == [STEPS_PER_EPOCH, steps]
    with pytest.raises(ZooError, match="--steps must be at least 1"):
        train(tmp_path / "zero", "vae", steps=0)


@pytest.mark.parametrize("name", MODELS)
def test_fewer_examples_than_one_batch_is_a_clear_error(synthetic_mnist, tmp_path, name):
    # --steps plans the schedule from the batches an epoch holds: none must be an error, not a division by zero
    with pytest.raises(ZooError, match="batch"):
        train(tmp_path, name, limit=16, steps=3)
    assert not training.CheckpointDirectory(str(tmp_path)).steps()


def test_jit_compile_changes_how_the_step_runs_not_what_it_computes(synthetic_mnist, tmp_path, monkeypatch):
    compiled = []
    real = training.distributed_step

    def spy(model, strategy, method, jit_compile=False):
        compiled.append((method, jit_compile))
        return real(model, strategy, method, jit_compile)

    monkeypatch.setattr(training, "distributed_step", spy)
    # the tiny GPT has no dropout: its step draws no random numbers, whose generator XLA may implement otherwise
    train(tmp_path / "graph", "gpt", steps=3)
    state = train(tmp_path / "xla", "gpt", steps=3, jit_compile=True)
    assert state["step"] == 3
    assert [c for c in compiled if c[0] == "train_step"] == [("train_step", False), ("train_step", True)]
    graph, _, _ = weights("gpt", tmp_path / "graph")
    xla, _, _ = weights("gpt", tmp_path / "xla")
    # XLA fuses and reorders float32 sums: the same model, to rounding (Adam's first steps move a weight by ~lr)
    assert max(float(np.abs(a - b).max()) for a, b in zip(graph, xla)) < 1e-4


def test_a_first_run_that_fails_leaves_no_run_folder_behind(synthetic_mnist, tmp_path):
    with pytest.raises(TrainingDivergedError):  # at step 1, before any checkpoint
        train(tmp_path / "run", "vae", epochs=1, callbacks=[PoisonWeightsAt(epoch=0, batch=0)])
    assert not (tmp_path / "run").exists()


def test_a_log_gets_a_line_with_the_step_rate_during_a_long_epoch(capsys, monkeypatch):
    from zoo.core.training import trainer

    clock = iter([100.0, 100.0, 130.0, 400.0, 401.0])  # start, then each update's reading
    monkeypatch.setattr(trainer.time, "time", lambda: next(clock))
    progress = trainer.Progress(2, epochs=3, steps_per_epoch=1000, line_every_seconds=300)
    progress.start_epoch(0, done=0)
    progress.update(10, {"loss": 1.5})   # 0 s: nothing yet
    progress.update(20, {"loss": 1.25})  # 30 s: nothing yet
    progress.update(600, {"loss": 0.5})  # 300 s: a line, 600 steps in 300 s
    progress.update(602, {"loss": 0.5})  # 1 s after that line: nothing
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["Epoch 1/3", "  step 600/1000 - 2.00 steps/s - loss: 0.5000"]
