"""Run every notebook with its full settings and save it with its outputs, as committed (what GitHub shows).

    python notebooks/execute.py              # every notebook, about 40 minutes on 2 CPU cores
    python notebooks/execute.py gan gpt      # some of them

Each runs in a fresh kernel started in notebooks/, as a learner would open it, with its
training runs and exports under notebooks/notebook_runs/ (not committed). The tests run the
same notebooks on tiny settings in memory and never write them.
"""

import os
import sys
import time

import nbformat
from nbclient import NotebookClient

HERE = os.path.dirname(os.path.abspath(__file__))


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
    nbformat.write(notebook, path)
    print(f"{name}: {time.time() - started:.0f} s", flush=True)


def main(names):
    names = names or sorted(n[:-6] for n in os.listdir(HERE) if n.endswith(".ipynb"))
    for name in names:
        execute(name)


if __name__ == "__main__":
    main(sys.argv[1:])
