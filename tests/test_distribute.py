"""tf.distribute without GPUs: two logical CPUs (mirrored) and two loopback workers (multi-worker)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import write_synthetic_mnist
from zoo.core.nn import distribute
from zoo.core.runtime.errors import BadInputError
from zoo.core.runtime.paths import REPO_ROOT
from zoo.core.recipes.registry import model_names

# Float32 sums over 2 replicas add in another order than over one device. After two
# Adam steps the VAE's and the GAN's weights agree to ~3e-8 (bound: 1e-6) and Adam's
# moment estimates to ~2e-6 of their scale (bound: 1e-4); noise drawn per replica
# would break the first, a missing loss scaling (gradients x2) the second. The GPT
# clips the global batch's gradient norm: clipping each replica's half (what Keras'
# global_clipnorm does under tf.distribute) made its Adam moments differ by 110%.
# The DCGAN's synchronized batch norm computes E[x^2] - E[x]^2 from all-reduced sums
# where one device uses two-pass moments; through batch norm's cancelling gradient
# the rounding reaches 0.6% of the moment estimates, and Adam's first steps move a
# weight by about lr * sign(gradient), so a near-zero gradient whose sign flips
# differs by up to 2 * lr (2e-4) per step: bounds 1e-3 (weights), 5% (moments).
TOLERANCES = {"dcgan": (1e-3, 0.05), "cdcgan": (1e-3, 0.05),  # the same generator
              # measured 1.3e-5 after two steps: weights whose gradients are near 0 (leaky ReLU's negative side)
              # take Adam's first, sign-like steps, which float rounding at half the batch can move; the moments
              # (1.2e-5 relative, within the default 1e-4) are what a replica-scaling mistake would change
              "video": (1e-4, 1e-4)}
DEFAULT_TOLERANCE = (1e-6, 1e-4)

pytestmark = pytest.mark.slow  # trains in fresh processes on logical devices and loopback workers


def _environment(data_dir, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "ZOO_HEARTBEAT_TIMEOUT_S")}
    env.update(ZOO_DATA_DIR=data_dir, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO_ROOT, **extra)
    return env


def _script(*args):
    return [sys.executable, "-m", "tests.child_scripts", *args]


def _last_json_line(stdout):
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


# CLIP contrasts each replica's slice of the batch against itself (no all-gather of the embeddings), so its loss,
# and so its weights, differ from one device's by design: it trains under the strategy, not to the same numbers.
PER_REPLICA_CONTRAST = {"clip"}


def _model_groups(count=3):
    """The registered models in ``count`` groups, one subprocess each: the two pytest workers share them."""
    names = model_names()
    return [names[i::count] for i in range(count)]


def test_mirrored_groups_cover_every_model():
    assert sorted(n for group in _model_groups() for n in group) == model_names()


@pytest.mark.parametrize("names", _model_groups(), ids=lambda names: "-".join(names))
def test_mirrored_on_two_cpus_gives_the_weights_of_one_device(names, tmp_path):
    data_dir = write_synthetic_mnist(tmp_path / "data", train=64, test=32)
    result = subprocess.run(_script("mirrored_parity", str(tmp_path / "runs"), *names), cwd=REPO_ROOT,
                            env=_environment(data_dir), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = _last_json_line(result.stdout)
    assert sorted(report) == sorted(names)
    for name, numbers in report.items():
        weight_tolerance, moment_tolerance = TOLERANCES.get(name, DEFAULT_TOLERANCE)
        assert numbers["steps"] == [2, 2], name
        assert numbers["optimizer_slots"] > 0, name
        if name in PER_REPLICA_CONTRAST:
            continue
        assert numbers["max_weight_difference"] < weight_tolerance, (name, numbers)
        assert numbers["max_optimizer_slot_relative_difference"] < moment_tolerance, (name, numbers)
        assert numbers["max_metric_difference"] < 1e-5, (name, numbers)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.parametrize("name", ["vae", "dcgan"])  # one optimizer; two optimizers and batch norm
def test_two_loopback_workers_train_in_step(name, tmp_path):
    data_dir = write_synthetic_mnist(tmp_path / "data", train=64, test=32)
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
            processes.append(subprocess.Popen(
                _script("multiworker_worker", name, str(tmp_path / "run"), str(tmp_path / f"weights-{index}.npz")),
                cwd=REPO_ROOT, env=_environment(data_dir, TF_CONFIG=tf_config),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outputs = [p.communicate(timeout=300) for p in processes]
    finally:
        for p in processes:  # bounded in time, and nothing left running
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (stdout, stderr) in zip(processes, outputs):
        assert p.returncode == 0, stderr[-3000:]
    reports = [_last_json_line(stdout) for stdout, _ in outputs]
    assert [r["step"] for r in reports] == [2, 2]
    assert [r["heartbeat_ms"] for r in reports] == [60_000, 60_000]  # TF's 10 s aborted a starved worker in CI
    assert reports[0]["metrics"] == reports[1]["metrics"]  # aggregated over both workers
    first, second = (np.load(tmp_path / f"weights-{i}.npz") for i in range(2))
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])
    # only the chief (worker 0) wrote checkpoints, in the shared run directory
    assert os.listdir(tmp_path / "run" / "checkpoints") == ["step-00000002"]


def test_strategy_errors_are_clear(monkeypatch):
    with pytest.raises(BadInputError, match="unknown strategy"):
        distribute.make_strategy("parameter_server")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(BadInputError, match="needs TF_CONFIG"):
        distribute.make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(BadInputError, match="TF_CONFIG is not valid"):
        distribute.make_strategy("multiworker")
    import tensorflow as tf

    with pytest.raises(BadInputError, match="divisible by the 3 replicas"):
        distribute.check_global_batch(32, type("ThreeReplicas", (), {"num_replicas_in_sync": 3})())
    assert distribute.scale_loss(tf.constant(4.0)).numpy() == 4.0  # one replica: unchanged
