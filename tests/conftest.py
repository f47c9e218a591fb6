import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Under pytest-xdist each worker (and every process a test starts) gets its share of the cores for TensorFlow's
# kernels: two workers of two threads each on 2 cores made a sample of the suite 10% slower (77 s against 69 s
# for test_every_model's dcgan, gan, gpt, vae and flow tests, 2026-12-07, AMD EPYC, 2 cores). The inter-op pool
# is left alone: two mirrored replicas' collectives run concurrently in it.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS",
                          str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

import pytest  # noqa: E402

import zoo.core.export  # noqa: E402

# The tests' int8 files are calibrated on 20 rows per signature and one row per in-graph loop (the zoo's exports: 200
# and 4): tests check a file's structure and its parity with float32, not its calibration, and each loop row runs
# the whole loop in TensorFlow's calibrator (with 200 and 4, the diffusion models' tiny exports took 25-30 s longer
# each in `pytest --durations`, 2026-12-07).
zoo.core.export.REPRESENTATIVE_ROWS, zoo.core.export.REPRESENTATIVE_LOOP_ROWS = 20, 1


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the node ids
def pytest_collection_modifyitems(items):
    """A test that needs a tiny model exported (seconds to a minute per model) is slow: ``-m "not slow"`` skips it.

    Under pytest-xdist (``-n 2 --dist loadgroup``, pytest.ini) the tests of one model stay on one worker
    (group = the model's name: its parametrized shared checks and its own test file), so each worker exports
    a tiny model once, not every worker every model.
    """
    from zoo.core.recipes.registry import model_names

    names = set(model_names())
    for item in items:
        if "tiny_export" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
        callspec = getattr(item, "callspec", None)
        # a parameter naming a model (the test's `name`, or a parametrized fixture's, as test_finetune's)
        model = next((v for v in callspec.params.values() if isinstance(v, str) and v in names),
                     None) if callspec is not None else None
        module = item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""
        if model is None and module.startswith("test_") and module[5:] in names:
            model = module[5:]
        if model in names:
            item.add_marker(pytest.mark.xdist_group(model))


def has_mnist():
    from zoo.core.data.datasets import data_dir
    from zoo.core.runtime.errors import DataNotFoundError

    try:
        root = data_dir()
    except DataNotFoundError:
        return False
    return bool(root) and os.path.isdir(os.path.join(root, "mnist"))


needs_mnist = pytest.mark.skipif(not has_mnist(), reason="needs MNIST: set ZOO_DATA_DIR (CI sets ../shared/datasets)")


def write_synthetic_mnist(folder, train=128, test=64, seed=0, nan=False):
    """Random 'digits' as MNIST idx files under ``folder/mnist`` (and random text as
    ``folder/tinyshakespeare/input.txt``), for ZOO_DATA_DIR=folder.

    Lets tests (and the subprocesses they start) train without the real dataset.
    """
    import struct

    import numpy as np

    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, "mnist"), exist_ok=True)
    for stem, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        with open(os.path.join(folder, "mnist", f"{stem}-images-idx3-ubyte"), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, count, 28, 28) + images.tobytes())
        with open(os.path.join(folder, "mnist", f"{stem}-labels-idx1-ubyte"), "wb") as f:
            f.write(struct.pack(">II", 0x801, count) + labels.tobytes())
    os.makedirs(os.path.join(folder, "tinyshakespeare"), exist_ok=True)
    with open(os.path.join(folder, "tinyshakespeare", "input.txt"), "wb") as f:
        f.write(synthetic_text(8000, seed))  # for the text models
    write_synthetic_fsdd(os.path.join(folder, "fsdd", "recordings"), seed=seed)
    return str(folder)


FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def write_synthetic_fsdd(folder, takes=(0, 5, 6), seed=0):
    """Noisy tones as FSDD recordings ``{digit}_{speaker}_{take}.wav`` (16-bit mono, 8 kHz, 0.1-0.3 s):
    take 0 is the test split, 5 and 6 training."""
    import numpy as np

    from zoo.core.data.audio import write_wav

    rng = np.random.default_rng(seed)
    for digit in range(10):
        for s, speaker in enumerate(FSDD_SPEAKERS):
            for take in takes:
                t = np.arange(int(rng.integers(800, 2400))) / 8000.0
                clip = 0.3 * np.sin(2 * np.pi * (200 + 50 * digit + 10 * s) * t) + 0.02 * rng.standard_normal(len(t))
                write_wav(os.path.join(folder, f"{digit}_{speaker}_{take}.wav"), clip)


def synthetic_text(num_bytes, seed=0):
    """Random letters, spaces and newlines: bytes for the text models without tiny Shakespeare."""
    import numpy as np

    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz ABCDEF\n", np.uint8)
    return np.random.default_rng(seed).choice(alphabet, num_bytes).tobytes()


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory):
    """Synthetic MNIST and text files, a ZOO_DATA_DIR for tests that must not depend on the real data."""
    return write_synthetic_mnist(tmp_path_factory.mktemp("synthetic-data"), train=256, test=64)


class data_dir_set:
    """``with data_dir_set(folder):`` ZOO_DATA_DIR points at ``folder`` inside the block only."""

    def __init__(self, folder):
        self.folder = folder

    def __enter__(self):
        self.previous = os.environ.get("ZOO_DATA_DIR")
        os.environ["ZOO_DATA_DIR"] = self.folder

    def __exit__(self, *exc):
        if self.previous is None:
            del os.environ["ZOO_DATA_DIR"]
        else:
            os.environ["ZOO_DATA_DIR"] = self.previous


@pytest.fixture(scope="session")
def tiny_export(synthetic_data_dir, tmp_path_factory):
    """``tiny_export(name) -> (model, exported folder)``: the recipe's test model through its whole export
    (metrics at the recipe's quick settings on synthetic data, samples, manifest), once per session."""
    import gc

    from zoo.core.export import export_model
    from zoo.core.recipes.commands import export_plan
    from zoo.core.recipes.registry import get_recipe
    from zoo.core.recipes.spec import get_spec

    made = {}

    def export(name):
        if name not in made:
            recipe = get_recipe(name)
            spec = get_spec(name)
            model = spec.make_test_model(recipe)
            with data_dir_set(synthetic_data_dir):
                plan = export_plan(recipe, model, {"command": "tests"}, **spec.quick_options.get("export", {}))
                made[name] = model, export_model(plan, str(tmp_path_factory.mktemp(f"export-{name}")))
            # What the session keeps alive (the models, their traced functions) need not be scanned by every
            # later full collection: the TFLite converter runs one per file, seconds each in a worker this big.
            gc.collect()
            gc.freeze()
        return made[name]

    return export


def shadow_the_zoo(folder):
    """Make ``import zoo`` fail for a script run from ``folder`` (the zoo is pip-installed in development), so
    an app script copied there is tested as it runs in an app: with its own files only."""
    os.makedirs(os.path.join(folder, "zoo"), exist_ok=True)
    with open(os.path.join(folder, "zoo", "__init__.py"), "w") as f:
        f.write('raise ImportError("the zoo is not installed in this app")\n')
