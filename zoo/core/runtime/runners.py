"""Load exported models safely and run them with the runtime of your choice.

Every file is checked against the sha256 in ``manifest.json`` before it is
loaded, and every call's inputs are checked against the signature the manifest
declares, so a wrong shape or dtype is a clear :class:`BadInputError`, not a
stack trace from inside a runtime.

    runner = load_exported("exported/dcgan", runtime="tflite", variant="int8")
    images = runner("serving_default", noise=noise)["images"]
"""

import json
import os

import numpy as np

from zoo.core.runtime import utf8
from zoo.core.runtime.errors import ArtifactNotFoundError, BadInputError, IntegrityError
from zoo.core.runtime.files import sha256_of
from zoo.core.runtime.paths import EXPORTED_DIR
from zoo.core.runtime.quiet import native_stderr_held
from zoo.core.runtime.signature import signatures_manifest

TFLITE_VARIANTS = ("float32", "float16", "int8")


def read_manifest(model_dir, verify=True):
    """The manifest of an exported model, after checking every listed file's sha256."""
    path = os.path.join(model_dir, "manifest.json")
    if not os.path.isfile(path):
        raise ArtifactNotFoundError(
            f"no exported model at {model_dir} (missing manifest.json); "
            "export one with `python -m zoo export <model>`")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except ValueError as error:
        raise IntegrityError(f"{path} is not valid JSON: {error}") from None
    if verify:
        for entry in manifest["files"]:
            file_path = os.path.join(model_dir, entry["path"])
            if not os.path.isfile(file_path):
                raise IntegrityError(f"{file_path} is listed in {path} but missing")
            if sha256_of(file_path) != entry["sha256"]:
                raise IntegrityError(
                    f"{file_path} does not match its sha256 in {path}: the file is corrupt or was "
                    "changed after export. Restore it (git checkout) or export again.")
    return manifest


def assertion_message(error):
    """The message of the ``tf.debugging.assert_*`` that failed, from a TensorFlow error."""
    import re

    found = (re.search(r"assertion failed: \[(.*?)\]\s*\[Condition", error.message, re.S)
             or re.search(r"assertion failed: \[(.*?)\]", error.message, re.S))
    message = found.group(1) if found else error.message.strip().splitlines()[-1]
    return message.replace("\\'", "'").strip(" .")


class ExportedModel:
    """Base class of the runners: signature checks shared by every runtime."""

    def __init__(self, manifest):
        self.manifest = manifest
        self.signatures = manifest["signatures"]

    def close(self):
        """Let go now of what only a garbage collection would free later (a LiteRT interpreter: the export
        measures one runtime at a time). Runners holding nothing of the kind have nothing to do."""

    def check_inputs(self, signature, inputs):
        if signature not in self.signatures:
            raise BadInputError(f"unknown signature {signature!r}; this model has {sorted(self.signatures)}")
        expected = self.signatures[signature]["inputs"]
        if set(inputs) != set(expected):
            raise BadInputError(f"signature {signature!r} takes inputs {sorted(expected)}, got {sorted(inputs)}")
        checked, batch = {}, None
        for name, spec in expected.items():
            value = np.asarray(inputs[name])
            if spec["dtype"] == "string":
                if value.dtype.kind not in "USO":
                    raise BadInputError(f"input {name!r} must be strings, got {value.dtype}")
                value = np.array([v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in value.ravel()],
                                 dtype=object).reshape(value.shape)
            elif value.dtype != np.dtype(spec["dtype"]):
                raise BadInputError(f"input {name!r} must be {spec['dtype']}, got {value.dtype}")
            shape = spec["shape"]
            if value.ndim != len(shape) or any(d is not None and d != v for d, v in zip(shape, value.shape)):
                pretty = ", ".join("batch" if d is None else str(d) for d in shape)
                raise BadInputError(f"input {name!r} must have shape [{pretty}], got {list(value.shape)}")
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                raise BadInputError(f"input {name!r} contains NaN or infinity")
            too_long = [(axis, size, limit) for axis, (size, limit) in enumerate(zip(value.shape, spec.get("max_shape", ())))
                        if limit is not None and size > limit]
            if too_long:
                axis, size, limit = too_long[0]
                raise BadInputError(f"input {name!r} has {size} entries along axis {axis}, more than the {limit} "
                                    f"the model takes ({spec['meaning']})")
            if "range" in spec and value.size:
                low, high = spec["range"]  # None: unbounded on that side
                if (low is not None and value.min() < low) or (high is not None and value.max() > high):
                    raise BadInputError(f"input {name!r} must be in [{low}, {'inf' if high is None else high}] "
                                        f"({spec['meaning']}), "
                                        f"got values from {value.min()} to {value.max()}")
            if "allowed" in spec and value.size:
                inside = np.zeros(value.shape, bool)
                for low, high in spec["allowed"]:
                    inside |= (value >= low) & (value <= high)
                if not inside.all():
                    intervals = " or ".join(str(low) if low == high else f"{low}-{high}" for low, high in spec["allowed"])
                    raise BadInputError(f"input {name!r} must be {intervals} ({spec['meaning']}), got "
                                        f"{value[~inside].ravel()[0]}")
            if spec.get("encoding") == utf8.ENCODING:
                utf8.check_rows(value, name)
            elif "encoding" in spec:
                raise BadInputError(f"input {name!r} has the unknown encoding {spec['encoding']!r}: this zoo is "
                                    "older than the exported model")
            if "prefixes" in spec and value.size:
                utf8.check_prefixes(value, spec["prefixes"], name)
            if "padding" in spec and value.size:
                check_padded_rows(value, spec["padding"], name, spec["meaning"])
            if value.ndim and value.shape[0] == 0:
                raise BadInputError(f"input {name!r} has an empty batch")
            if batch is not None and value.ndim and value.shape[0] != batch:
                raise BadInputError(f"inputs disagree on the batch size ({batch} vs {value.shape[0]} in {name!r})")
            batch = value.shape[0] if value.ndim else batch
            checked[name] = value
        return checked

    def __call__(self, signature="serving_default", **inputs):
        return self.run(signature, self.check_inputs(signature, inputs))


def check_padded_rows(value, padding, name, meaning):
    """Rows ``[batch, n]`` of entries, then only ``padding``: at least one entry each, none after the padding."""
    padded = value.reshape(-1, value.shape[-1]) == padding
    if padded[:, 0].any():
        raise BadInputError(f"input {name!r} has an empty row (it starts with the padding {padding}; {meaning})")
    if (padded[:, :-1] & ~padded[:, 1:]).any():
        raise BadInputError(f"input {name!r} has an entry after its padding {padding} ({meaning})")


class TFLiteModel(ExportedModel):
    """Runs a ``.tflite`` file in LiteRT (``ai_edge_litert``), builtin ops only, no Flex delegate."""

    def __init__(self, path, manifest, num_threads=None):
        super().__init__(manifest)
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        self.num_threads = num_threads or os.cpu_count() or 1  # LiteRT alone would use one
        try:
            with native_stderr_held():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" line
                self.interpreter = Interpreter(model_path=path, num_threads=self.num_threads)
        except (ValueError, RuntimeError) as error:
            raise IntegrityError(f"LiteRT cannot load {path}: {error}") from None
        self._runners = {}

    def run(self, signature, inputs):
        if signature not in self.interpreter.get_signature_list():
            raise BadInputError(f"signature {signature!r} is not in the TFLite file (it is SavedModel-only); "
                                f"the TFLite file has {sorted(self.interpreter.get_signature_list())}")
        if signature not in self._runners:
            self._runners[signature] = self.interpreter.get_signature_runner(signature)
            with native_stderr_held():  # the first call applies XNNPACK and says so on stderr
                return dict(self._runners[signature](**inputs))
        return dict(self._runners[signature](**inputs))

    def op_names(self):
        return sorted({op["op_name"] for op in self.interpreter._get_ops_details()})

    def close(self):
        self._runners, self.interpreter = {}, None


def import_savedmodel_ops(manifest):
    """Import the modules whose ops the SavedModel uses beyond core TensorFlow (the manifest's
    ``savedmodel.imports``, e.g. tensorflow_text's tokenizer ops): before ``tf.saved_model.load``."""
    import importlib

    for module in manifest.get("savedmodel", {}).get("imports", []):
        try:
            importlib.import_module(module)
        except ImportError:
            raise ArtifactNotFoundError(f"this SavedModel uses the ops of {module}: pip install "
                                        f"{module.replace('_', '-')} (the version in requirements.txt)") from None


class SavedModelModel(ExportedModel):
    """Runs the SavedModel with TensorFlow, as TF Serving would."""

    def __init__(self, path, manifest):
        super().__init__(manifest)
        import tensorflow as tf

        import_savedmodel_ops(manifest)
        self.path = path
        self.loaded = tf.saved_model.load(path)

    def run(self, signature, inputs):
        import tensorflow as tf

        try:
            outputs = self.loaded.signatures[signature](**inputs)
        except tf.errors.InvalidArgumentError as error:  # the signature's own input checks
            raise BadInputError(f"signature {signature!r} refused its input: {assertion_message(error)}") from None
        return {name: value.numpy() for name, value in outputs.items()}


class SignatureFunctions:
    """The recipe's signatures of a Keras model in memory, each traced once as a graph
    with the exported input signature (so the Keras runtime checks its inputs in-graph
    exactly as the SavedModel does)."""

    def __init__(self, signatures):
        import tensorflow as tf

        self.functions = {
            s.name: tf.function(s.function, input_signature=[
                tf.TensorSpec(spec.shape, spec.dtype, name=n) for n, (spec, _) in s.inputs.items()])
            for s in signatures}
        self.input_names = {s.name: list(s.inputs) for s in signatures}

    def __call__(self, signature, inputs):
        import tensorflow as tf

        if signature not in self.functions:
            raise BadInputError(f"unknown signature {signature!r}; this model has {sorted(self.functions)}")
        try:
            outputs = self.functions[signature](*[inputs[n] for n in self.input_names[signature]])
        except tf.errors.InvalidArgumentError as error:  # the signature's own input checks
            raise BadInputError(f"signature {signature!r} refused its input: {assertion_message(error)}") from None
        return {name: np.asarray(value) for name, value in outputs.items()}


class KerasFileModel(ExportedModel):
    """Runs the signatures from an exported ``<model>.keras`` file (loaded with ``safe_mode=True``).

    ``keras_signatures(loaded_model) -> [Signature]`` are the functions (the model's recipe's,
    ``zoo.load`` passes them), never anything the file names. The model's Keras classes must be
    registered first (importing its recipe does that).
    """

    def __init__(self, path, manifest, keras_signatures):
        super().__init__(manifest)
        import keras

        self.path = path
        self.model = keras.saving.load_model(path, safe_mode=True, compile=False)
        self.functions = SignatureFunctions(keras_signatures(self.model))

    def run(self, signature, inputs):
        return self.functions(signature, inputs)


class ModelRunner(ExportedModel):
    """The runners' interface, ``runner(signature, **inputs)``, on a model in memory (mid-training,
    a notebook): ``recipe.signatures(model)``, inputs checked as an exported model's are."""

    def __init__(self, recipe, model):
        signatures = recipe.signatures(model)
        super().__init__({"model": recipe.name, "signatures": signatures_manifest(signatures)})
        self.model = model
        self.functions = SignatureFunctions(signatures)

    def run(self, signature, inputs):
        return self.functions(signature, inputs)


def resolve_model_dir(name_or_dir, exported_dir=EXPORTED_DIR):
    if os.path.isdir(name_or_dir) and os.path.isfile(os.path.join(name_or_dir, "manifest.json")):
        return name_or_dir
    return os.path.join(exported_dir, name_or_dir)


def load_exported(name_or_dir, runtime="tflite", variant="float32", exported_dir=EXPORTED_DIR, verify=True,
                  num_threads=None, keras_signatures=None):
    """A runner for an exported model, verified against its manifest.

    Args:
        name_or_dir: a model name ("dcgan") or the folder of an exported model.
        runtime: "tflite" (LiteRT), "savedmodel" (TensorFlow) or "keras" (the
            ``.keras`` file, loaded with ``safe_mode=True``).
        variant: for TFLite, "float32", "float16" or "int8".
        num_threads: LiteRT's CPU threads (default: every core, ``os.cpu_count()``; LiteRT's own is one);
            only for "tflite".
        keras_signatures: for "keras", the model's signatures of the loaded file
            (``zoo.load`` passes its recipe's).
    """
    if runtime not in ("tflite", "savedmodel", "keras"):
        raise BadInputError(f"unknown runtime {runtime!r}; choose tflite, savedmodel or keras")
    if runtime != "tflite" and variant != "float32":
        raise BadInputError(f"variant {variant!r} is a TFLite file; the {runtime} runtime has one model")
    if runtime != "tflite" and num_threads is not None:
        raise BadInputError(f"threads are LiteRT's; the {runtime} runtime does not take them")
    model_dir = resolve_model_dir(name_or_dir, exported_dir)
    manifest = read_manifest(model_dir, verify=verify)
    if runtime == "tflite":
        if variant not in manifest["tflite"]:
            raise BadInputError(f"unknown TFLite variant {variant!r}; choose from {sorted(manifest['tflite'])}")
        return TFLiteModel(os.path.join(model_dir, manifest["tflite"][variant]["path"]), manifest,
                           num_threads=num_threads)
    if runtime == "savedmodel":
        return SavedModelModel(os.path.join(model_dir, manifest["savedmodel"]["path"]), manifest)
    if "keras" not in manifest:
        raise BadInputError(f"{model_dir} has no Keras file; runtimes available: tflite, savedmodel")
    if keras_signatures is None:
        raise BadInputError("the keras runtime runs the model's recipe's signatures: load it with zoo.load")
    return KerasFileModel(os.path.join(model_dir, manifest["keras"]["path"]), manifest, keras_signatures)
