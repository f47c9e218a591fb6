"""Run an exported SavedModel with TensorFlow's C++ loader, as TF Serving does, with no Python in the loop.

TF Serving loads a model with ``tensorflow::LoadSavedModel`` and runs its SignatureDefs in a C++ session;
``tf.saved_model.load`` is another loader (the Python object graph, tf.functions). A SavedModel that only the
Python one can run (an op of a Python-only library, a signature that needs a Python object) fails in TF
Serving. This module compiles ``cpp/saved_model_check.cc`` against the ``libtensorflow_cc`` and headers that
the tensorflow wheel ships (once, into the zoo's cache) and runs signatures through it::

    python -m zoo.core.runtime.cpp_loader exported/gan     # every signature on the manifest's example inputs

Why the binary also links ``lib_pywrap_tensorflow_common.so`` and libpython: the wheel registers TensorFlow's
session factory (``DirectSession``, which ``LoadSavedModel`` creates) in that library, whose other code
references CPython symbols. The program never starts an interpreter; TF Serving's own binary links the session
statically.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np

from zoo.core.runtime.errors import BadInputError, ZooError
from zoo.core.runtime.files import atomic_file
from zoo.core.runtime.paths import cache_dir

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpp", "saved_model_check.cc")
DTYPES = {"float32", "float64", "int32", "int64", "bool", "string"}
INSTALL_HINT = ("a C++ compiler is needed to build the C++ loader: install g++ (Debian/Ubuntu: "
                "apt-get install g++; macOS: xcode-select --install), or set CXX")


def compiler():
    """The C++ compiler to use (``$CXX``, else g++ or c++ on the PATH), or None."""
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def build_command(cxx, output):
    import tensorflow as tf

    tf_dir = os.path.dirname(tf.__file__)
    python_lib = sysconfig.get_config_var("LIBDIR")
    python_version = sysconfig.get_config_var("LDVERSION") or sysconfig.get_config_var("VERSION")
    return [cxx, "-O1", "-w", *tf.sysconfig.get_compile_flags(), SOURCE, "-o", output,
            "-Wl,--no-as-needed", os.path.join(tf_dir, "python", "lib_pywrap_tensorflow_common.so"),
            f"-L{python_lib}", f"-lpython{python_version}", f"-Wl,-rpath,{python_lib}",
            f"-L{tf_dir}", "-l:libtensorflow_cc.so.2", "-l:libtensorflow_framework.so.2",
            f"-Wl,-rpath,{tf_dir}", f"-Wl,-rpath,{os.path.join(tf_dir, 'python')}", "-ldl"]


def build(progress=None):
    """The path of the compiled loader, building it first where the cache has none for this source and this
    TensorFlow (about half a minute)."""
    import tensorflow as tf

    cxx = compiler()
    if cxx is None:
        raise ZooError(INSTALL_HINT)
    # the key holds the build command too: the binary's rpath names this environment's TensorFlow and Python
    # libraries, so a binary built in another virtual environment (since removed) must not be reused
    with open(SOURCE, "rb") as f:
        key = hashlib.sha256(f.read() + tf.__version__.encode() + sys.version.encode()
                             + " ".join(build_command(cxx, "OUTPUT")).encode()).hexdigest()[:16]
    binary = os.path.join(cache_dir(), "cpp", f"saved_model_check-{key}")
    if os.path.isfile(binary):
        return binary
    os.makedirs(os.path.dirname(binary), exist_ok=True)
    if progress:
        progress(f"Compiling the C++ SavedModel loader with {cxx} (once, about half a minute) into {binary}")
    with atomic_file(binary) as temporary:
        done = subprocess.run(build_command(cxx, temporary), capture_output=True, text=True)
        if done.returncode != 0:
            raise ZooError(f"building the C++ loader failed ({cxx}):\n{done.stderr[-3000:]}")
    os.chmod(binary, 0o755)  # atomic_file leaves 0644
    return binary


def _write(path, array):
    if array.dtype.kind in "OUS":
        with open(path, "wb") as f:
            for item in array.reshape(-1):
                data = item if isinstance(item, bytes) else str(item).encode("utf-8")
                f.write(np.uint32(len(data)).tobytes() + data)
    else:
        np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tofile(path)


def _read(path, dtype, shape):
    if dtype == "string":
        data, items, offset = open(path, "rb").read(), [], 0
        while offset < len(data):
            length = int(np.frombuffer(data[offset : offset + 4], "<u4")[0])
            items.append(data[offset + 4 : offset + 4 + length])
            offset += 4 + length
        return np.array(items, object).reshape(shape)
    return np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)


def _dtype_name(array):
    if array.dtype.kind in "OUS":
        return "string"
    name = "bool" if array.dtype == bool else str(array.dtype)
    if name not in DTYPES:
        raise BadInputError(f"the C++ loader takes {sorted(DTYPES)} tensors, not {array.dtype}")
    return name


def op_libraries(modules):
    """The custom-op shared libraries of Python ``modules`` a SavedModel needs (the manifest's
    ``savedmodel_imports``, e.g. ``tensorflow_text``): what a TF Serving build links for them."""
    import glob
    import importlib.util

    libraries = []
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ZooError(f"the SavedModel needs the ops of {module}, which is not installed here")
        for location in spec.submodule_search_locations:
            libraries += sorted(glob.glob(os.path.join(location, "**", "_*.so"), recursive=True))
    return libraries


def run_signatures(saved_model_dir, requests, binary=None, timeout=600, libraries=()):
    """``{signature: {input name: array}}`` -> ``{signature: {output name: array}}``, run by the C++ loader
    (with the custom-op shared ``libraries`` loaded first, :func:`op_libraries`).

    Raises :class:`ZooError` with the loader's own message where it cannot load the model or run a signature.
    """
    binary = binary or build()
    with tempfile.TemporaryDirectory(prefix="zoo-cpp-") as folder:
        lines = []
        for signature, inputs in requests.items():
            lines.append(f"signature {signature}")
            for index, (name, value) in enumerate(inputs.items()):
                value = np.asarray(value)
                file = f"{signature}.input{index}.bin"
                _write(os.path.join(folder, file), value)
                lines.append(f"input {name} {_dtype_name(value)} {value.ndim} "
                             f"{' '.join(str(d) for d in value.shape)} {file}".replace("  ", " "))
            lines.append("run")
        with open(os.path.join(folder, "request.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        options = [word for library in libraries for word in ("--op-library", library)]
        done = subprocess.run([binary, *options, os.path.abspath(saved_model_dir), folder], capture_output=True,
                              text=True, timeout=timeout, env=env)
        errors = [line[len("error: "):] for line in done.stdout.splitlines() if line.startswith("error: ")]
        if done.returncode != 0:
            raise ZooError(f"the C++ loader failed on {saved_model_dir}: "
                           f"{errors[0] if errors else done.stderr[-2000:]}")
        results = {}
        with open(os.path.join(folder, "response.txt")) as f:
            for line in f:
                _, signature, name, dtype, rank, *rest = line.split()
                shape = [int(d) for d in rest[: int(rank)]]
                results.setdefault(signature, {})[name] = _read(os.path.join(folder, rest[int(rank)]), dtype, shape)
    return results


def main(argv=None):
    """``python -m zoo.core.runtime.cpp_loader MODEL_DIR``: run every SavedModel signature of an exported model
    on its manifest's example inputs with the C++ loader and print what came back."""
    import argparse

    from zoo.core.runtime.runners import read_manifest
    from zoo.core.runtime.serving import example_inputs

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("model_dir", help="an exported model's folder, e.g. exported/gan")
    args = parser.parse_args(argv)
    try:
        manifest = read_manifest(args.model_dir)
        requests = {name: example_inputs(entry, batch=2) for name, entry in manifest["signatures"].items()
                    if "savedmodel" in entry.get("runtimes", ["savedmodel"])}
        saved_model = os.path.join(args.model_dir, manifest["savedmodel"]["path"])
        libraries = op_libraries(manifest["savedmodel"].get("imports", []))
        results = run_signatures(saved_model, requests, build(progress=lambda m: print(m, file=sys.stderr)),
                                 libraries=libraries)
    except ZooError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for signature, outputs in results.items():
        for name, value in outputs.items():
            print(f"{signature}: {name} {value.dtype} {list(value.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
