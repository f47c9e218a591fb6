"""What the tests run in fresh processes: ``python -m tests.child_scripts <function> <args>``.

Logical devices and multi-worker collectives must be set up before TensorFlow
starts, which has long happened in the pytest process, and a SIGKILL must hit a
process of its own; so these run here, each in its own interpreter, and print
one JSON line for the test to read.
"""

import contextlib
import json
import os
import signal
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _two_logical_cpus():
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return ["/cpu:0", "/cpu:1"]


def _without_dropout():
    """Dropout draws its masks per replica (as in any Keras model), so a mirrored step
    equals a one-device step in distribution only; switch it off to compare exactly."""
    import zoo.core.nn.gan_networks as gan_networks
    import zoo.gan.model as gan_model

    for cls in (gan_model.MLPDiscriminator, gan_networks.ConvDiscriminator):
        original = cls.__init__

        def patched(self, *args, _original=original, **kwargs):
            kwargs["dropout"] = 0.0
            _original(self, *args, **kwargs)

        cls.__init__ = patched


def mirrored_parity(run_dir, *names):
    """Train each named model for 2 steps on one device and on 2 mirrored CPUs; report the largest difference."""
    devices = _two_logical_cpus()
    _without_dropout()
    from zoo.core.recipes import commands

    report = {}
    for name in names:
        results = {}
        for strategy in ("default", "mirrored"):
            folder = os.path.join(run_dir, f"{name}-{strategy}")
            # samples=False: the epoch's sample picture, text or sound is not what this compares, and was most of
            # the time of the models that draw theirs with a sampling loop (diffusion, text2image, wavenet)
            state = commands.train(name, preset="tiny", batch_size=32, limit=64, epochs=1, run_dir=folder, verbose=0,
                                   strategy=strategy, devices=devices if strategy == "mirrored" else None,
                                   samples=False)
            model, _, _ = commands.load_run(name, folder)
            optimizers = [getattr(model, a) for a in ("optimizer", "generator_optimizer", "discriminator_optimizer")
                          if getattr(model, a, None) is not None and getattr(model, a).built]
            slots = [v.numpy() for o in optimizers for v in o.variables if v.dtype == "float32" and v.shape.rank]
            results[strategy] = ([w.numpy() for w in model.weights], state, slots, [w.path for w in model.weights])
        (one, one_state, one_slots, paths), (two, two_state, two_slots, _) = results["default"], results["mirrored"]
        differences = [float(np.max(np.abs(a - b))) for a, b in zip(one, two)]
        report[name] = {
            "steps": [one_state["step"], two_state["step"]],
            "max_weight_difference": max(differences),
            "worst_weight": paths[int(np.argmax(differences))],
            # Adam's moments: a gradient off by a factor (e.g. no loss scaling) shows here, not in the weights.
            # Slots a million times below the largest are left out: they belong to weights whose gradient
            # is zero up to rounding (a bias right before a normalization: the diffusion U-Net's), where
            # any two summation orders differ by 100% of almost nothing.
            "max_optimizer_slot_relative_difference": float(max(
                np.max(np.abs(a - b)) / np.max(np.abs(a)) for a, b in zip(one_slots, two_slots)
                if np.max(np.abs(a)) > 1e-6 * max(np.max(np.abs(s)) for s in one_slots))),
            "optimizer_slots": len(one_slots),
            # relative to the metric's size where it exceeds 1 (a VAE loss of 150 nats carries float32's 1e-5)
            "max_metric_difference": float(max(abs(one_state["metrics"][k] - two_state["metrics"][k])
                                               / max(1.0, abs(one_state["metrics"][k]))
                                               for k in one_state["metrics"])),
        }
    print(json.dumps(report))


class _SaveWeightsAtEnd:
    def __init__(self, path):
        self.path, self.model = path, None

    def set_model(self, model):
        self.model = model

    def on_epoch_end(self, epoch, logs):
        np.savez(self.path, *[w.numpy() for w in self.model.weights])


def multiworker_worker(name, run_dir, output):
    """One worker of a loopback cluster (TF_CONFIG set by the test): train a tiny model for 2 steps."""
    from zoo.core.recipes import commands

    state = commands.train(name, preset="tiny", batch_size=32, limit=64, epochs=1, run_dir=run_dir, verbose=0,
                           strategy="multiworker", callbacks=[_SaveWeightsAtEnd(output)], samples=False)
    from tensorflow.python.eager import context

    heartbeat_ms = context.context().coordination_service.heartbeat_timeout_in_ms
    print(json.dumps({"step": state["step"], "metrics": state["metrics"], "heartbeat_ms": heartbeat_ms}))


class _KillAtStep:
    """SIGKILLs this very process after global step ``step``: no exception, no cleanup, no flush."""

    def __init__(self, step):
        self.step, self.done = int(step), 0

    def on_train_batch_end(self, batch, logs):
        self.done += 1
        if self.done == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def train_then_sigkill(name, step, *cli_options):
    """``python -m zoo train <name> <options>``, killed with SIGKILL after ``step`` steps of this process."""
    from zoo.__main__ import build_parser, parse
    from zoo.core.recipes import commands

    args = parse(build_parser(), ["train", name, *cli_options])
    options = {k: v for k, v in vars(args).items() if k not in ("command", "model")}
    commands.train(name, **options, callbacks=[_KillAtStep(step)])
    raise SystemExit("not killed: the run ended before the step")


class _SignalAtStep:
    """Sends this process ``signal_name`` (SIGINT, SIGTERM) after global step ``step``, as Ctrl-C would."""

    def __init__(self, step, signal_name):
        self.step, self.signum, self.done = int(step), getattr(signal, signal_name), 0

    def on_train_batch_end(self, batch, logs):
        self.done += 1
        if self.done == self.step:
            os.kill(os.getpid(), self.signum)


def train_then_signal(name, signal_name, step, *cli_options):
    """``python -m zoo train <name> <options>`` (the CLI itself), sent ``signal_name`` after ``step`` steps."""
    from zoo import __main__ as cli
    from zoo.core.recipes import commands

    train = commands.train

    def train_with_signal(*args, callbacks=(), **options):
        return train(*args, callbacks=[*callbacks, _SignalAtStep(step, signal_name)], **options)

    commands.train = train_with_signal
    sys.exit(cli.main(["train", name, *cli_options]))


def sigkill_while_writing_checkpoint(name, step, *cli_options):
    """Like ``python -m zoo train``, SIGKILLed half-way through writing the checkpoint of ``step``."""
    from zoo.core.runtime import files
    from zoo.core.training import trainer as training

    original = training.atomic_directory

    @contextlib.contextmanager
    def dies_midway(path):
        with original(path) as tmp:
            yield tmp  # the weights and state are written into tmp here...
            if path.endswith(f"step-{int(step):08d}"):
                os.kill(os.getpid(), signal.SIGKILL)  # ...and we die before the rename

    training.atomic_directory = dies_midway
    assert files.atomic_directory is original
    train_then_sigkill(name, 10**9, *cli_options)


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
