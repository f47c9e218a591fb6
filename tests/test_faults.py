"""A training process killed with SIGKILL, or stopped with Ctrl-C or SIGTERM, resumes, with the same command,
to the run it would have been."""

import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # each test trains in fresh processes

from tests.conftest import write_synthetic_mnist
from zoo.core.training import trainer as training
from zoo.core.runtime.paths import REPO_ROOT

STEPS_PER_EPOCH = 8  # 256 synthetic digits at batch 32
EPOCHS = 3


def options(run_dir):
    return ["--preset", "tiny", "--batch-size", "32", "--epochs", str(EPOCHS), "--checkpoint-every-steps", "3",
            "--run-dir", str(run_dir)]


def run(args, data_dir, expect_killed=False, expect_code=0):
    env = {**os.environ, "ZOO_DATA_DIR": data_dir, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO_ROOT}
    result = subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    if expect_killed:
        assert result.returncode == -9, (result.returncode, result.stderr[-2000:])  # SIGKILL, not an exception
    else:
        assert result.returncode == expect_code, result.stderr[-3000:]
    return result


def final_weights(name, run_dir):
    from zoo.core.recipes import commands

    model, _, state = commands.load_run(name, str(run_dir))
    return [w.numpy() for w in model.weights], state


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_synthetic_mnist(tmp_path_factory.mktemp("data"), train=256, test=64)


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    run(["zoo", "train", "vae", *options(run_dir)], data_dir)
    return final_weights("vae", run_dir)


def test_sigkill_mid_epoch_then_same_command_resumes_to_the_same_run(data_dir, uninterrupted, tmp_path):
    # killed after step 13: epoch 2, step 5 of 8; the last checkpoint is step 12
    run(["tests.child_scripts", "train_then_sigkill", "vae", "13", *options(tmp_path)], data_dir, expect_killed=True)
    checkpoints = training.CheckpointDirectory(str(tmp_path))
    assert checkpoints.steps()[-1] == 12
    assert checkpoints.read_state(12)["step_in_epoch"] == 4

    result = run(["zoo", "train", "vae", *options(tmp_path)], data_dir)
    assert "Resuming from" in result.stdout and "step 12" in result.stdout
    weights, state = final_weights("vae", tmp_path)
    expected_weights, expected_state = uninterrupted
    assert state["step"] == expected_state["step"] == EPOCHS * STEPS_PER_EPOCH
    assert state["epoch"] == EPOCHS
    for a, b in zip(weights, expected_weights):
        np.testing.assert_array_equal(a, b)


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(data_dir, uninterrupted, tmp_path):
    run(["tests.child_scripts", "sigkill_while_writing_checkpoint", "vae", "9", *options(tmp_path)], data_dir,
        expect_killed=True)
    checkpoints = training.CheckpointDirectory(str(tmp_path))
    assert checkpoints.steps() == [6, 8]  # step 9 never appeared; the two before it are intact (keep=2)
    assert all(checkpoints.read_state(step) for step in checkpoints.steps())
    leftovers = [n for n in os.listdir(checkpoints.path) if not n.startswith("step-")]
    assert leftovers, "the half-written checkpoint stays in its temporary folder"

    run(["zoo", "train", "vae", *options(tmp_path)], data_dir)
    weights, state = final_weights("vae", tmp_path)
    assert state["step"] == EPOCHS * STEPS_PER_EPOCH
    for a, b in zip(weights, uninterrupted[0]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_saves_the_step_it_stopped_at_and_the_rerun_resumes_there(signal_name, data_dir,
                                                                                  uninterrupted, tmp_path):
    # stopped after step 13: epoch 2, step 5 of 8; the periodic checkpoint before it is step 12
    result = run(["tests.child_scripts", "train_then_signal", "vae", signal_name, "13", *options(tmp_path)], data_dir,
                 expect_code=130)
    assert f"stopped by {signal_name} at step 13" in result.stderr and "resume from step 13" in result.stderr
    assert "Traceback" not in result.stderr
    checkpoints = training.CheckpointDirectory(str(tmp_path))
    assert checkpoints.steps()[-1] == 13 and checkpoints.read_state(13)["step_in_epoch"] == 5

    result = run(["zoo", "train", "vae", *options(tmp_path)], data_dir)
    assert "step 13" in result.stdout  # Resuming from .../step-00000013 (epoch 2, step 13)
    weights, state = final_weights("vae", tmp_path)
    assert state["step"] == EPOCHS * STEPS_PER_EPOCH
    for a, b in zip(weights, uninterrupted[0]):
        np.testing.assert_array_equal(a, b)
