"""Export a trained model to the zoo's contract (README, "What an export contains").

    exported/<model>/<version>/        SavedModel in TF Serving's layout
    exported/<model>/<model>.tflite    float32, builtin ops only
    exported/<model>/<model>.fp16.tflite, <model>.int8.tflite
    exported/<model>/manifest.json     files + sha256, signatures, training, metrics
    exported/<model>/samples.png       drawn from the float32 TFLite file

The SavedModel is written by ``keras.export.ExportArchive`` with named
``tf.TensorSpec`` inputs and dict outputs, so the names survive into TFLite; the
TFLite files are converted with ``TFLITE_BUILTINS`` only (Keras' own LiteRT export
would add Flex ops). Everything is written to a temporary folder and swapped into
place at the end, so a failed export leaves the previous one untouched.
"""

import dataclasses
import datetime
import functools
import gc
import os
import platform
import shutil
import tempfile
import warnings
import weakref
from typing import Callable, Optional

import numpy as np

from zoo.core.runtime.runners import KerasFileModel, SavedModelModel, TFLiteModel, import_savedmodel_ops
from zoo.core.runtime.signature import Signature, signatures_manifest, spec_json  # noqa: F401 (Signature: the export's API)
from zoo.core.runtime.errors import ZooError
from zoo.core.runtime.files import atomic_directory, sha256_of, write_json

# name in manifest -> (file suffix, how it is quantized)
TFLITE_VARIANTS = {
    "float32": (".tflite", "none: float32 weights and activations"),
    "float16": (".fp16.tflite", "float16 weights, dequantized to float32 at load; float32 activations"),
    "int8": (".int8.tflite", "dynamic-range: int8 weights, float32 inputs/outputs, activations "
                             "quantized on the fly where kernels support it"),
}
FULL_INTEGER = ("full-integer: int8 weights and activations, scales calibrated on a representative dataset ({data}); "
                "float32 inputs and outputs at the signature (a quantize op in, a dequantize op out), so apps do not "
                "change; an op with no integer kernel stays float")
INTEGER_PRODUCTS = ("int8 weights and activations in the convolutions and matrix products, scales calibrated on a "
                    "representative dataset ({data}); every other op (normalisation, activations, the sampler's "
                    "arithmetic) in float32 between them, as are the inputs and outputs at the signature, so apps do "
                    "not change")
# rows an int8 file is calibrated on: per signature, and per in-graph loop (a row runs the whole loop). The tests'
# tiny exports lower both (tests/conftest.py): they check a file's structure and parity, not its calibration.
REPRESENTATIVE_ROWS = 200
REPRESENTATIVE_LOOP_ROWS = 4
# the TFLite builtin ops an int8 file with integer_products keeps integer; they carry nearly all the work
PRODUCT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "BATCH_MATMUL")


def write_saved_model(path, signatures):
    """Write the signatures as a SavedModel with ``keras.export.ExportArchive``.

    The models are deliberately not ``track()``ed: on the TF backend that stores
    every weight twice (keras#23553, open as of Keras 3.15), doubling the artifact
    and TF Serving's memory. The endpoints' captured variables are saved anyway,
    once; a test counts them.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    for signature in signatures:
        for resource in signature.resources or ():
            archive.track(resource)
        specs = [tf.TensorSpec(spec.shape, spec.dtype, name=name) for name, (spec, _) in signature.inputs.items()]
        archive.add_endpoint(name=signature.name, fn=signature.function, input_signature=specs)
    archive.write_out(path, verbose=False)


def convert_to_tflite(saved_model_dir, signature_names, variant, representative=None, integer_products=False):
    """Convert a SavedModel to TFLite with builtin ops only.

    ``representative`` (int8 only): ``representative(signature) -> iterable of input dicts`` (batch 1, the
    signature's names): full-integer int8, calibrated on them; without it, dynamic-range int8.
    ``integer_products``: with ``representative``, only the :data:`PRODUCT_OPS` become integer."""
    import tensorflow as tf

    products_only = variant == "int8" and representative is not None and integer_products
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=list(signature_names))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if representative is not None:
            def calibration():
                for signature in signature_names:
                    for inputs in representative(signature):
                        yield signature, {k: np.asarray(v) for k, v in inputs.items()}

            converter.representative_dataset = calibration
            # integer kernels where they exist, float builtins elsewhere; inputs and outputs stay float32
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
            # calibrate only: the quantization below leaves every op but the products float
            converter._experimental_calibrate_only = products_only
    try:
        with warnings.catch_warnings():
            # the converter's calibration runs TensorFlow's tf.lite.Interpreter, which warns that it is deprecated
            # (the zoo runs its files in ai_edge_litert): not the user's concern
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning)
            converted = converter.convert()
            return _quantize_products_only(converted) if products_only else converted
    except Exception as error:  # the converter raises ConverterError and friends
        raise ZooError(f"TFLite conversion ({variant}) with builtin ops only failed: {error}") from None


def _quantize_products_only(calibrated):
    """Quantize a calibrated TFLite model (its tensors' ranges recorded) with every op outside
    :data:`PRODUCT_OPS` denylisted, so it stays float. What ``tf.lite.experimental.QuantizationDebugger``'s
    denylists do, without its instrumented debug model (which cannot run a WHILE loop's calibration here)."""
    from tensorflow.lite.python import convert
    from tensorflow.lite.python.schema_py_generated import BuiltinOperator
    from tensorflow.lite.tools import flatbuffer_utils

    products = {getattr(BuiltinOperator, name) for name in PRODUCT_OPS}
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(calibrated))
    floats = set()
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if _builtin_code(model, op) not in products:
                floats.update(subgraph.tensors[i].name.decode() for i in op.outputs)
    return convert.mlir_quantize(calibrated, denylisted_nodes=sorted(floats))


def tflite_entry(variant, plan):
    """How the manifest describes a TFLite variant of ``plan``'s export: its quantization, and for int8 its kind
    (full-integer where the plan calibrates it, dynamic-range otherwise)."""
    quantization = TFLITE_VARIANTS[variant][1]
    if variant != "int8":
        return {"quantization": quantization}
    if plan.representative_inputs is None:
        return {"quantization": quantization, "kind": "dynamic-range"}
    if plan.integer_products:
        return {"quantization": INTEGER_PRODUCTS.format(data=plan.representative_data or "the model's own data"),
                "kind": "integer-products"}
    return {"quantization": FULL_INTEGER.format(data=plan.representative_data or "the model's own data"),
            "kind": "full-integer"}


def check_builtin_only(runner):
    """Refuse a TFLite model that needs Flex (TF Select) or custom ops."""
    bad = [op for op in runner.op_names() if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE")]
    if bad:
        raise ZooError(f"{runner.path} uses non-builtin ops {bad}; a plain LiteRT runtime cannot run it")


def check_tflite_file(runner, key, signature_names):
    """A converted file runs on builtin ops alone and kept every signature (the converter has dropped one silently)."""
    check_builtin_only(runner)
    found = set(runner.interpreter.get_signature_list())
    if found != set(signature_names):
        raise ZooError(f"TFLite {key} has signatures {sorted(found)}, expected {sorted(signature_names)}")


# Operand positions that set an op's output shape: where one of them is not a constant, LiteRT cannot size the
# output when it prepares the graph and sizes it at run time instead (a "dynamic" tensor).
SHAPE_OPERANDS = {"STRIDED_SLICE": (1, 2, 3), "SLICE": (1, 2), "RESHAPE": (1,), "FILL": (0,), "PAD": (1,),
                  "PADV2": (1,), "RANGE": (0, 1, 2), "TILE": (1,), "BROADCAST_TO": (1,), "ONE_HOT": (1,),
                  "EXPAND_DIMS": (1,), "TOPK_V2": (1,)}


def _builtin_code(model, op):
    """A TFLite operator's builtin code (older files keep it in the deprecated field)."""
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _is_run_time(model, subgraph, tensor):
    data = model.buffers[subgraph.tensors[tensor].buffer].data
    return data is None or len(data) == 0


def loop_run_time_shapes(tflite_path):
    """``{loop subgraph name: {op: count}}``: the ops inside a TFLite file's ``WHILE`` loops (their conditions
    and bodies) that read a shape (``SHAPE``) or get their output's shape from a non-constant operand. LiteRT
    prepares the ops after such an op again at every iteration of the loop: the GPT's in-graph ``generate`` was
    13-27% slower on one thread for six of them (``DecoderLM.generate``, BENCHMARKS.md); a loop with one cheap
    op after such an op loses little."""
    from tensorflow.lite.python.schema_py_generated import BuiltinOperator
    from tensorflow.lite.tools import flatbuffer_utils

    op_names = {code: name for name, code in vars(BuiltinOperator).items() if not name.startswith("_")}
    model = flatbuffer_utils.read_model(tflite_path)

    def op_name(op):
        return op_names[_builtin_code(model, op)]

    loops = {index for subgraph in model.subgraphs for op in subgraph.operators if op_name(op) == "WHILE"
             for index in (op.builtinOptions.condSubgraphIndex, op.builtinOptions.bodySubgraphIndex)}
    found = {}
    for index in sorted(loops):
        subgraph, counts = model.subgraphs[index], {}
        for op in subgraph.operators:
            name = op_name(op)
            operands = [op.inputs[i] for i in SHAPE_OPERANDS.get(name, ()) if i < len(op.inputs) and op.inputs[i] >= 0]
            if name == "SHAPE" or any(_is_run_time(model, subgraph, t) for t in operands):
                counts[name] = counts.get(name, 0) + 1
        if counts:
            found[subgraph.name.decode()] = counts
    return found


@dataclasses.dataclass
class ExportPlan:
    """Everything :func:`export_model` needs to know about one model's export.

    Args:
        name: the model's name (folder and file names).
        signatures: :class:`Signature` list; one must be "serving_default".
        description: one sentence for the manifest.
        paper: the reference.
        training: dict for the manifest (command, seed, data, epochs, time): :func:`training_record`.
        keras_model: the Keras model the signatures run, saved as ``<name>.keras``
            for users who want to fine-tune or inspect it.
        keras_signatures: ``keras_signatures(loaded_model) -> [Signature]``, the signatures
            of the saved ``.keras`` file once loaded (the recipe's), to measure it as a runtime.
        keras_file: an existing ``.keras`` file of ``keras_model`` to ship byte for byte
            instead of saving it again (a re-export of an unchanged model adds no new
            copy of its weights to the repository's history).
        keras_loader: what loads ``<name>.keras``, for the manifest (default: the registry's recipe ``name``)
        evaluate: ``evaluate(runner) -> metrics dict``, run on the Keras model, the
            SavedModel and each TFLite variant.
        detailed_evaluate: optional slower ``detailed_evaluate(runner) -> metrics``,
            run once, on ``detailed_runtime`` (stored as ``metrics.<runtime>_detailed``).
        samples: ``samples(runner, path)``, run on the float32 TFLite file; it
            writes ``samples_file`` (a picture, or text for a language model).
        primary_metric: the metric whose change against float32 decides whether a
            quantized variant is good enough (within 10%, recorded in the manifest).
        metric_summary: the metrics the end-of-export table shows (default: primary_metric).
        notes: extra manifest entries (e.g. metric definitions, reference metrics).
        extra_files: file name -> path of a file shipped beside the model (e.g. a
            tokenizer's vocabulary), hashed in the manifest like the rest.
        savedmodel_imports: Python modules whose ops the SavedModel uses beyond core
            TensorFlow (``tensorflow_text`` for a tokenizer in the graph): recorded, and
            imported by every loader before ``tf.saved_model.load``.
        representative_inputs: ``representative_inputs(signature) -> iterable of input dicts`` (batch 1)
            from the model's own data: the int8 file becomes full-integer (int8 activations too, XNNPACK's
            integer kernels), calibrated on them; None keeps dynamic-range int8 (int8 weights only).
        representative_data: one line for the manifest: what ``representative_inputs`` draws.
        integer_products: with ``representative_inputs``, only the convolutions and matrix products
            (:data:`PRODUCT_OPS`) become integer, every other op stays float32 (the manifest's kind
            "integer-products"): for a model whose normalisations and arithmetic lose too much in int8 (the
            diffusion U-Net's noise estimate, whole-int8, was 0.15-0.90 RMS off float32's, by timestep:
            ``benchmarks/denoiser_int8.py``).
    """

    name: str
    signatures: list
    description: str = ""
    paper: str = ""
    training: Optional[dict] = None
    keras_model: Optional[object] = None
    keras_file: Optional[str] = None
    keras_loader: Optional[str] = None
    keras_signatures: Optional[Callable] = None
    evaluate: Optional[Callable] = None
    detailed_evaluate: Optional[Callable] = None
    detailed_runtime: str = "savedmodel"
    samples: Optional[Callable] = None
    samples_file: str = "samples.png"
    primary_metric: Optional[str] = None
    metric_summary: Optional[list] = None
    notes: Optional[dict] = None
    extra_files: Optional[dict] = None
    savedmodel_imports: Optional[list] = None
    representative_inputs: Optional[Callable] = None
    representative_data: str = ""
    integer_products: bool = False


def export_model(plan, output_dir, version=1, folder=None):
    """Write the exported model described by ``plan`` (an :class:`ExportPlan`) under ``output_dir/<name>``, or in
    ``folder`` (a fine-tuned model's own; its files are still named after the model).

    Returns:
        The path of the exported model folder.
    """
    name, signatures = plan.name, plan.signatures
    if "serving_default" not in [s.name for s in signatures]:
        raise ValueError("one signature must be named serving_default (TF Serving's default)")
    final_dir = folder or os.path.join(output_dir, name)
    with atomic_directory(final_dir) as tmp:
        saved_model_rel = str(version)
        print(f"[export {name}] SavedModel -> {final_dir}/{saved_model_rel}/")
        write_saved_model(os.path.join(tmp, saved_model_rel), signatures)
        tflite = {}
        tflite_names = [s.name for s in signatures if s.tflite]
        with tempfile.TemporaryDirectory(prefix=f"zoo-{name}-tflite-source-") as scratch:
            convert_from = os.path.join(tmp, saved_model_rel)
            if any(s.resources for s in signatures if not s.tflite):
                # The converter runs the SavedModel's initializer whatever signatures it converts, and a
                # tokenizer's lookup tables would need Flex: convert from a copy without them.
                convert_from = os.path.join(scratch, "1")
                write_saved_model(convert_from, [s for s in signatures if s.tflite])
            for variant, (suffix, _) in TFLITE_VARIANTS.items():
                filename = name + suffix
                print(f"[export {name}] TFLite {variant} -> {final_dir}/{filename}")
                with open(os.path.join(tmp, filename), "wb") as f:
                    f.write(convert_to_tflite(convert_from, tflite_names, variant, plan.representative_inputs,
                                              plan.integer_products))
                tflite[variant] = {"path": filename, **tflite_entry(variant, plan)}
                if variant == "float32":
                    for loop, ops in loop_run_time_shapes(os.path.join(tmp, filename)).items():
                        print(f"[export {name}] note: TFLite loop {loop} sizes ops at run time ({ops}): LiteRT "
                              f"prepares the ops after them again at every iteration (see loop_run_time_shapes)")
        for filename, source in (plan.extra_files or {}).items():
            shutil.copyfile(source, os.path.join(tmp, filename))
        keras_entry = None
        if plan.keras_model is not None:
            # Loaded through the registry's recipe (the manifest's "model"), never through a class the file names.
            keras_entry = {"path": f"{name}.keras", "loader": plan.keras_loader or f"zoo.core.recipes.registry: {name}"}
            print(f"[export {name}] Keras -> {final_dir}/{keras_entry['path']}")
            if plan.keras_file is not None:
                shutil.copyfile(plan.keras_file, os.path.join(tmp, keras_entry["path"]))
            else:
                plan.keras_model.save(os.path.join(tmp, keras_entry["path"]))

        manifest = {
            "model": name,
            "description": plan.description,
            "paper": plan.paper,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "savedmodel": {"path": saved_model_rel, "layout": "TF Serving: <model_base_path>/<version>/saved_model.pb",
                           **({"imports": list(plan.savedmodel_imports)} if plan.savedmodel_imports else {})},
            "tflite": tflite,
            **({"keras": keras_entry} if keras_entry else {}),
            "signatures": signatures_manifest(signatures),
            "training": plan.training or {},
            "files": [],
            "metrics": {},
            **(plan.notes or {}),
        }
        _fill_output_specs(manifest, os.path.join(tmp, saved_model_rel), signatures)

        # One LiteRT interpreter alive at a time: with several of one model in a process, the int8
        # DCGAN measured FD 82 here but 14.7 alone in a fresh process. Closing the runner frees it;
        # a full gc.collect() only where something still holds it (each costs seconds in a big process).
        makers = {}
        if keras_entry:
            makers["keras"] = lambda: KerasFileModel(os.path.join(tmp, keras_entry["path"]), manifest,
                                                     plan.keras_signatures)
        makers["savedmodel"] = lambda: SavedModelModel(os.path.join(tmp, saved_model_rel), manifest)
        for variant, entry in tflite.items():
            makers[f"tflite_{variant}"] = functools.partial(TFLiteModel, os.path.join(tmp, entry["path"]), manifest)
        for key, make in makers.items():
            runner = make()
            if key.startswith("tflite_"):
                check_tflite_file(runner, key, tflite_names)
            if plan.evaluate is not None:
                print(f"[export {name}] measuring {key}")
                manifest["metrics"][key] = plan.evaluate(runner)
            if plan.detailed_evaluate is not None and key == plan.detailed_runtime:
                print(f"[export {name}] detailed measurement of {key}")
                manifest["metrics"][f"{key}_detailed"] = plan.detailed_evaluate(runner)
            interpreter = weakref.ref(runner.interpreter) if key.startswith("tflite_") else None
            runner.close()
            del runner
            if interpreter is not None and interpreter() is not None:
                gc.collect()
        if plan.primary_metric is not None:
            manifest["quantization_check"] = quantization_check(manifest["metrics"], plan.primary_metric)
        if plan.samples is not None:
            plan.samples(makers["tflite_float32"](), os.path.join(tmp, plan.samples_file))

        for root, _, files in os.walk(tmp):
            for filename in sorted(files):
                path = os.path.join(root, filename)
                rel = os.path.relpath(path, tmp)
                manifest["files"].append({"path": rel, "sha256": sha256_of(path), "bytes": os.path.getsize(path)})
        manifest["files"].sort(key=lambda e: e["path"])
        write_json(os.path.join(tmp, "manifest.json"), manifest)
    print(f"[export {name}] done: {final_dir}/\n")
    print(export_summary(manifest, plan.metric_summary or ([plan.primary_metric] if plan.primary_metric else [])))
    return final_dir


def reconvert_tflite(plan, model_dir, variant):
    """Convert an exported model's ``variant`` TFLite file ("float16" or "int8") again from ``plan``'s
    signatures (full-integer int8 where ``plan`` has ``representative_inputs``), measure it with
    ``plan.evaluate`` and update the manifest; every other file stays byte for byte, so a change that reaches
    one file adds only that file to the repository's history. Atomic, like :func:`export_model`. Returns
    ``model_dir``."""
    from zoo.core.runtime.runners import read_manifest

    manifest = read_manifest(model_dir)  # every file's sha256 checked first
    in_tflite = {s.name for s in plan.signatures if s.tflite}  # manifests before 2026-11-27 list no runtimes
    tflite_names = sorted(n for n, s in manifest["signatures"].items()
                          if ("tflite" in s["runtimes"] if "runtimes" in s else n in in_tflite))
    name, key = manifest["model"], f"tflite_{variant}"
    with atomic_directory(model_dir) as tmp:
        shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
        entry = manifest["tflite"][variant]
        entry.update(tflite_entry(variant, plan))
        kind = f" ({entry['kind']})" if "kind" in entry else ""
        print(f"[export {name}] TFLite {variant}{kind} -> {model_dir}/{entry['path']}")
        # from the plan's signatures, as the code builds them now, not the folder's SavedModel: a graph change
        # that computes the same float32 values (zoo.core.nn.loops.while_loop_carrying, which calibrating a loop
        # needs; the diffusion schedule's bit patterns, which float16 cannot round) then reaches the one file
        # it is for without re-exporting the others
        with tempfile.TemporaryDirectory() as graphs, open(os.path.join(tmp, entry["path"]), "wb") as f:
            write_saved_model(graphs, [s for s in plan.signatures if s.name in tflite_names])
            f.write(convert_to_tflite(graphs, tflite_names, variant, plan.representative_inputs,
                                      plan.integer_products))
        runner = TFLiteModel(os.path.join(tmp, entry["path"]), manifest)
        check_tflite_file(runner, key, tflite_names)
        if plan.evaluate is not None:
            print(f"[export {name}] measuring {key}")
            manifest["metrics"][key] = plan.evaluate(runner)
        del runner
        if plan.primary_metric is not None:
            manifest["quantization_check"] = quantization_check(manifest["metrics"], plan.primary_metric)
        for file_entry in manifest["files"]:
            if file_entry["path"] == entry["path"]:
                path = os.path.join(tmp, entry["path"])
                file_entry.update(sha256=sha256_of(path), bytes=os.path.getsize(path))
        manifest[f"{variant}_reconverted"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        write_json(os.path.join(tmp, "manifest.json"), manifest)
    print(export_summary(manifest, plan.metric_summary or ([plan.primary_metric] if plan.primary_metric else [])))
    return model_dir


def export_summary(manifest, metrics):
    """A table of each runtime's file size and ``metrics``, as ``export`` prints it at the end."""
    sizes = {f["path"]: f["bytes"] for f in manifest["files"]}
    saved_model_bytes = sum(b for p, b in sizes.items() if p.startswith(manifest["savedmodel"]["path"] + "/"))
    rows = []
    for key, values in manifest["metrics"].items():
        if key.endswith("_detailed"):
            continue
        if key.startswith("tflite_"):
            size = sizes.get(manifest["tflite"][key[len("tflite_"):]]["path"])
        elif key == "savedmodel":
            size = saved_model_bytes
        else:
            size = sizes.get(manifest.get("keras", {}).get("path"))
        rows.append([key, *(_format_metric(values.get(m)) for m in metrics),
                     f"{size / 1e6:.1f} MB" if size else "-"])
    return format_table(["runtime", *metrics, "size"], rows)


def _format_metric(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def format_table(header, rows):
    """Left-aligned columns, as plain text."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def quantization_check(metrics, metric, tolerance=0.10):
    """How far each quantized TFLite variant's ``metric`` is from float32's."""
    base = metrics["tflite_float32"][metric]
    changes = {}
    for variant in ("float16", "int8"):
        value = metrics[f"tflite_{variant}"][metric]
        changes[variant] = (value - base) / abs(base) if base else 0.0
    good = [v for v, change in changes.items() if abs(change) <= tolerance]
    check = {}
    for variant, change in changes.items():
        check[variant] = {"metric": metric, "relative_change_vs_float32": round(change, 4),
                          f"within_{round(tolerance * 100)}_percent": abs(change) <= tolerance}
        if abs(change) > tolerance:
            instead = f"the {good[0]} variant (within the bound)" if good else "the float32 file"
            check[variant]["note"] = (
                f"{variant} changes {metric} by {change:+.0%}, beyond the {tolerance:.0%} bound; it is "
                f"shipped for size, but use {instead} where quality matters")
    return check


def _fill_output_specs(manifest, saved_model_dir, signatures):
    import tensorflow as tf

    import_savedmodel_ops(manifest)
    loaded = tf.saved_model.load(saved_model_dir)
    for signature in signatures:
        structured = loaded.signatures[signature.name].structured_outputs
        for out_name, meaning in signature.outputs.items():
            if out_name not in structured:
                raise ZooError(f"signature {signature.name} returns {sorted(structured)}, not {out_name!r}")
            manifest["signatures"][signature.name]["outputs"][out_name] = spec_json(structured[out_name], meaning)


def inference_copy(model):
    """The model without its optimizer: its ``.keras`` file then holds weights only (Adam's
    two moments would triple it)."""
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def training_record(run, state, history=()):
    """The manifest's ``training`` entry, from a run's ``run.json``, its final checkpoint state and its
    per-epoch history (the learning curve: metrics against training time)."""
    curve = [{key: round(value, 4) if isinstance(value, float) else value for key, value in entry.items()}
             for entry in history if entry["epoch"] <= state["epoch"]]
    return {
        "command": run["command"],
        "seed": run["config"]["seed"],
        "data": run["data"],
        "preset": run["config"]["preset"],
        "config": run["config"],
        "epochs": state["epoch"],
        "steps": state["step"],
        "training_seconds": round(state["training_seconds"], 1),
        "hardware": machine_description(),
        "final_losses": state["metrics"],
        **({"losses_before_training": state["metrics_before"]} if state.get("metrics_before") else {}),
        **({"learning_curve": curve} if curve else {}),
    }


def machine_description():
    """The CPU and its cores, for the numbers a benchmark or an export records: timings from two machines
    compare only with the CPU's model in the record (on Linux, /proc/cpuinfo's "model name")."""
    cpu = f"{platform.machine()} CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = f"{names[0]} ({platform.machine()})" if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores ({platform.system()})"


def noise_batches(latent_dim, num_samples, seed, batch_size=500):
    """Standard-normal noise, deterministic for a seed, in batches (float32)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((num_samples, latent_dim)).astype(np.float32)
    return [noise[i : i + batch_size] for i in range(0, num_samples, batch_size)]
