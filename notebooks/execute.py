"""Run every notebook with its full settings and save it with its outputs, as committed (what GitHub shows).

    python notebooks/execute.py              # every notebook, about 40 minutes on 2 CPU cores
    python notebooks/execute.py gan gpt      # some of them
    python notebooks/execute.py --tidy-only  # only re-tidy the saved outputs (below)

Each runs in a fresh kernel started in notebooks/, as a learner would open it, with its
training runs and exports under notebooks/notebook_runs/ (not committed). The tests run the
same notebooks on tiny settings in memory and never write them.

TensorFlow's C++ libraries write log lines to stderr while they load and convert ("I0000 ...
oneDNN custom operations are on", "E0000 ... failed call to cuInit" on a machine without a
GPU, "W0000 ... Ignored output_format"); they are not results, so the saved outputs leave them
out, and so do TensorFlow's "INFO:tensorflow:Assets written to <temporary folder>" lines
(every other line, stderr included, is kept). Progress bars redraw their line with carriage
returns; the saved outputs show them as a terminal does, at their last state.
"""

import os
import re
import sys
import time

import nbformat
from nbclient import NotebookClient

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE_LOG_LINE = re.compile(r"^([IWE]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]|WARNING: All log messages before "
                             r"absl::InitializeLog|To enable the following instructions|INFO:tensorflow:Assets written)")


def as_a_terminal_shows(text):
    """Apply carriage returns and backspaces (a progress bar redraws its line) as a terminal would."""
    lines = []
    for line in text.split("\n"):
        shown = line.split("\r")[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r")
        while "\b" in shown:
            shown = shown.replace("\b", "")
        lines.append(shown)
    return "\n".join(lines)


def tidy(notebook):
    """Native log lines out; each cell's consecutive stream outputs joined and shown as a terminal would."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.output_type == "stream":
                text = "".join(line for line in output.text.splitlines(keepends=True)
                               if not NATIVE_LOG_LINE.match(line))
                if kept and kept[-1].output_type == "stream" and kept[-1].name == output.name:
                    kept[-1].text += text
                    continue
                output.text = text
            kept.append(output)
        for output in kept:
            if output.output_type == "stream":
                output.text = as_a_terminal_shows(output.text)
        cell.outputs = [o for o in kept if o.output_type != "stream" or o.text.strip()]
    return notebook


def execute(name):
    path = os.path.join(HERE, f"{name}.ipynb")
    notebook = nbformat.read(path, as_version=4)
    started = time.time()
    env_tiny = os.environ.pop("ZOO_NOTEBOOK_TINY", None)
    try:
        NotebookClient(notebook, timeout=3600, kernel_name="python3", resources={"metadata": {"path": HERE}}).execute()
    finally:
        if env_tiny is not None:
            os.environ["ZOO_NOTEBOOK_TINY"] = env_tiny
    nbformat.write(tidy(notebook), path)
    print(f"{name}: {time.time() - started:.0f} s", flush=True)


def main(names):
    tidy_only = "--tidy-only" in names  # re-tidy saved outputs without running anything
    names = [n for n in names if n != "--tidy-only"] or sorted(n[:-6] for n in os.listdir(HERE) if n.endswith(".ipynb"))
    for name in names:
        if tidy_only:
            path = os.path.join(HERE, f"{name}.ipynb")
            nbformat.write(tidy(nbformat.read(path, as_version=4)), path)
        else:
            execute(name)


if __name__ == "__main__":
    main(sys.argv[1:])
