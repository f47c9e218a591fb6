"""What the shared tests and the benchmarks need to know about a model, kept out of its production recipe.

A model's ``zoo/<model>/spec.py`` defines ``SPEC = ModelSpec(...)`` (timm's pretrained config, for tests):
its tiny test model and inputs, how far runtimes may differ, seconds-long options for each command, what
the benchmarks time and measure, the targets its committed export meets and how to re-measure one of its
numbers, and (for a model that draws asked-for digits) how the generated-data study draws them. The
committed-artifact tests, ``tests/test_every_model.py``, ``python -m benchmarks.run`` and
``python -m benchmarks.generated_data`` read it through :func:`get_spec`, so a new model adds no line
outside its folder. Without a ``spec.py`` a model gets :class:`ModelSpec`'s defaults.
"""

import dataclasses
import importlib
import os
from typing import Callable, Optional

import numpy as np

from zoo.core.recipes.registry import ZOO_DIR, get_recipe
from zoo.core.runtime.paths import EXPORTED_DIR
from zoo.core.runtime.serving import example_inputs

RUNTIMES = ("keras", "savedmodel", "tflite_float32", "tflite_float16", "tflite_int8")


@dataclasses.dataclass(frozen=True)
class Target:
    """A bound the committed export's manifest meets: ``metrics[runtime][metric]`` (or ``metrics[runtime]
    [metric][key]`` for a nested one) at most / at least a value, in each of ``runtimes``."""

    metric: str
    at_most: Optional[float] = None
    at_least: Optional[float] = None
    runtimes: tuple = RUNTIMES
    why: str = ""

    def failures(self, manifest):
        found = []
        for runtime in self.runtimes:
            value = manifest["metrics"][runtime][self.metric]
            if (self.at_most is not None and value > self.at_most) or \
                    (self.at_least is not None and value < self.at_least):
                bound = f"<= {self.at_most}" if self.at_most is not None else f">= {self.at_least}"
                found.append(f"{runtime} {self.metric} = {value}, not {bound} ({self.why})")
        return found


@dataclasses.dataclass(frozen=True)
class Reproduce:
    """How the committed-artifact test re-measures a manifest number: ``evaluate`` of ``runtime``/``variant``
    with ``options`` (the export's protocol), compared with ``metrics[runtime key]`` on ``keys`` (all of the
    stored entry when None) within ``tolerance``. ``data``: the folders of ``$ZOO_DATA_DIR`` it reads;
    ``measure``: a cheaper measurement of some of the stored numbers than ``evaluate``. ``in_test_suite``:
    False where the re-measurement takes most of a minute or more, which the suite's time budget cannot hold;
    ``python -m benchmarks.reproduce_committed`` re-measures every committed model's either way."""

    runtime: str = "tflite"
    variant: str = "float32"
    options: dict = dataclasses.field(default_factory=dict)
    keys: Optional[tuple] = None
    tolerance: float = 0.0
    data: tuple = ("mnist",)
    measure: Optional[Callable] = None  # measure(runner) -> metrics, instead of the recipe's evaluate
    in_test_suite: bool = True

    @property
    def metrics_key(self):
        return self.runtime if self.runtime != "tflite" else f"tflite_{self.variant}"


@dataclasses.dataclass(frozen=True)
class DigitDrawing:
    """How the generated-data study (``benchmarks/generated_data.py``) asks a model for digits:
    ``draw(runner, labels, seed) -> images [n, 28, 28, 1] in [0, 1]`` through the SavedModel."""

    draw: Callable
    how: str  # for the results file
    row_label: str  # for BENCHMARKS.md's table


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Args:
        test_model: ``test_model(recipe) -> model``, a tiny model every path is exercised on (default: the
            ``tiny`` preset, untrained).
        test_inputs: ``test_inputs(signature, manifest_entry, batch, seed) -> inputs`` valid for one signature
            (default: :func:`zoo.core.runtime.serving.example_inputs`).
        parity_scale: ``parity_scale(expected) -> {output: factor}`` on the parity tolerances (made for outputs
            of order 1), given the in-memory model's outputs per signature.
        parity_tolerances: runtime key -> absolute tolerance replacing the default (tests/export_checks.py).
        parity_outliers: output -> the fraction of its elements that may fall outside the tolerance, for an
            iterative sampler's outputs: a few chaotic elements amplify the runtimes' rounding, and which ones
            depends on the CPU's kernels. Every other element must be within it.
        exact_integer_runtimes: the runtime keys whose integer outputs must equal the Keras model's (default:
            all); a sampler's choices may move with quantized weights, whose quality the manifest measures.
        quick_options: command -> options for a seconds-long run on a tiny model.
        benchmark_signature: the signature ``benchmarks/run.py`` times (one network call, ideally).
        benchmark_options: ``evaluate`` options for the benchmark's quality column.
        study: the model's own benchmark, for BENCHMARKS.md ("benchmarks/gpt.py (against nanoGPT)").
        targets: :class:`Target` s its committed export meets.
        reproduce: the :class:`Reproduce` the committed-artifact test re-measures.
        cli_sample: a ``sample`` command line (after the model name) the committed export runs in the tests.
        checks: ``check(manifest, model_dir)`` functions: what else the committed export must do (raise if not).
        sample_check: ``sample_check(output)``: what the file ``cli_sample`` wrote must hold.
        digits: :class:`DigitDrawing`, for a model that draws the digit it is asked for.
        in_training: for a model whose code has landed while its long training runs (over several sessions):
            where the run is and how to resume it. It must have no committed export then; the committed-
            artifact tests pass it by until its export is committed and this is removed.
    """

    test_model: Optional[Callable] = None
    test_inputs: Optional[Callable] = None
    parity_scale: Callable = lambda expected: {}
    parity_tolerances: dict = dataclasses.field(default_factory=dict)
    parity_outliers: dict = dataclasses.field(default_factory=dict)
    exact_integer_runtimes: Optional[tuple] = None
    quick_options: dict = dataclasses.field(default_factory=dict)
    benchmark_signature: str = "serving_default"
    benchmark_options: dict = dataclasses.field(default_factory=dict)
    study: Optional[str] = None
    targets: tuple = ()
    reproduce: Optional[Reproduce] = None
    cli_sample: tuple = ()
    checks: tuple = ()
    sample_check: Optional[Callable] = None
    digits: Optional[DigitDrawing] = None
    in_training: Optional[str] = None

    def make_test_model(self, recipe):
        return self.test_model(recipe) if self.test_model else recipe.create_model("tiny", seed=0)

    def inputs(self, signature, manifest_entry, batch=2, seed=0):
        if self.test_inputs:
            return self.test_inputs(signature, manifest_entry, batch, seed)
        return example_inputs(manifest_entry, batch=batch, seed=seed)


NEW_EXPORT_BUDGET_BYTES = 20_000_000  # every user clones exported/: a new model's export stays under 20 MB


def fits_the_export_budget(manifest, model_dir):
    """A check for ``ModelSpec.checks``: the export folder, every file in it, is under 20 MB (the rule for the
    models added since the budget; the first eleven predate it)."""
    total = sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(model_dir)
                for name in names)
    assert total < NEW_EXPORT_BUDGET_BYTES, (
        f"{model_dir} holds {total / 1e6:.2f} MB; a new model's export must stay under "
        f"{NEW_EXPORT_BUDGET_BYTES / 1e6:.0f} MB")


def spread_biases(layer, scale, seed=0):
    """Set ``layer``'s bias to ``scale`` x standard-normal numbers: a test model whose sampler picks the same
    class in every runtime (the gaps between logits dwarf float rounding) while its inputs still move them."""
    bias = np.random.default_rng(seed).standard_normal(layer.bias.shape).astype(np.float32)
    layer.bias.assign(scale * bias)


def every_runtime(model_dir):
    """``{runtime key: runner}`` of an exported folder, for a check that must hold in all of :data:`RUNTIMES`."""
    from zoo.core.recipes.commands import load

    found = {"keras": load(model_dir, runtime="keras"), "savedmodel": load(model_dir, runtime="savedmodel")}
    for variant in ("float32", "float16", "int8"):
        found[f"tflite_{variant}"] = load(model_dir, runtime="tflite", variant=variant)
    return found


def committed_models():
    """The registered models whose export is committed (every one but those still ``in_training``)."""
    from zoo.core.recipes.registry import model_names

    return [name for name in model_names() if not get_spec(name).in_training]


def get_spec(name):
    """The :class:`ModelSpec` of the registered model ``name`` (its ``spec.py``, or the defaults)."""
    get_recipe(name)  # a clear error for an unknown name
    if not os.path.isfile(os.path.join(ZOO_DIR, name, "spec.py")):
        return ModelSpec()
    return importlib.import_module(f"zoo.{name}.spec").SPEC


def text_test_inputs(inputs, batch, seed, context_length=8):
    """Valid inputs of a byte-level text model's signature: random bytes for the token inputs, full-length
    prompts, uniform noise, a 0.9 nucleus, 5 new bytes at temperature 0.8. ``inputs``: the
    :func:`example_inputs` of the signature, changed in place and returned."""
    rng = np.random.default_rng(seed)
    for name in ("tokens", "token"):
        if name in inputs:
            inputs[name] = rng.integers(0, 256, inputs[name].shape).astype(np.int32)
    if "lengths" in inputs:
        inputs["lengths"] = np.full(batch, inputs["tokens"].shape[1], np.int32)
    if "position" in inputs:
        inputs["position"] = np.minimum(np.arange(batch, dtype=np.int32), context_length - 1)
    if "noise" in inputs:
        inputs["noise"] = rng.uniform(size=inputs["noise"].shape).astype(np.float32)
    if "top_p" in inputs:
        inputs["top_p"] = np.full(batch, 0.9, np.float32)
    if "max_new_tokens" in inputs:
        inputs["max_new_tokens"] = np.full(batch, 5, np.int32)
    if "temperature" in inputs and "prompt" not in inputs:
        inputs["temperature"] = np.full(batch, 0.8, np.float32)
    return inputs


def speech_test_inputs(inputs, batch, seed):
    """Valid inputs of a speech model's vocoder inputs (the WaveNet's and every model it voices): uniform noise
    kept off the ends of [0, 1], a previous sample in [-0.5, 0.5], queues of order 1, a WAV seed. ``inputs``: the
    :func:`example_inputs` of the signature, changed in place and returned."""
    rng = np.random.default_rng(seed)
    if "noise" in inputs:
        inputs["noise"] = rng.random(inputs["noise"].shape, dtype=np.float32) * 0.98 + 0.01
    if "sample" in inputs:
        inputs["sample"] = rng.uniform(-0.5, 0.5, batch).astype(np.float32)
        inputs["state"] = np.tanh(inputs["state"]).astype(np.float32)
    if "seed" in inputs:
        inputs["seed"] = rng.integers(0, 1000, batch).astype(np.int32)
    return inputs


# The noise -> images family (gan, dcgan, cdcgan): seconds-long runs, and 2,000 samples for the benchmark's
# FD (the DCGAN's int8 file draws 26 images a second here; FD on fewer samples than the manifest's 10,000
# reads higher, the same for every variant)
IMAGE_GENERATOR_QUICK = {"export": {"num_eval_samples": 50}, "evaluate": {"num_samples": 50}, "sample": {"num": 4}}
IMAGE_GENERATOR_BENCHMARK = {"num_samples": 2000}
# issue 21's target for the GANs, in every runtime and variant, on 10,000 samples
GAN_TARGETS = (
    Target("num_samples", at_least=10000, at_most=10000, why="the manifest's protocol"),
    Target("frechet_distance", at_most=6.0, why="issue 21: FD at most 6"),
    Target("classes_covered", at_least=10, why="issue 21: every digit"),
)


def remeasure_committed(name, exported_dir=EXPORTED_DIR):
    """Re-measure a committed model's manifest numbers with its spec's ``Reproduce`` protocol.

    Returns ``[(metric, measured, stored, tolerance)]``: what the committed-artifact test and
    ``benchmarks/reproduce_committed.py`` compare.
    """
    from zoo.core.recipes.commands import evaluate_runner, load

    reproduce = get_spec(name).reproduce
    runner = load(name, runtime=reproduce.runtime, variant=reproduce.variant, exported_dir=exported_dir)
    measured = reproduce.measure(runner) if reproduce.measure else \
        evaluate_runner(get_recipe(name), runner, **reproduce.options)
    stored = runner.manifest["metrics"][reproduce.metrics_key]
    return [(key, measured[key], stored[key], reproduce.tolerance) for key in reproduce.keys or sorted(stored)]
