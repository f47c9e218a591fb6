"""Execute the tutorial notebooks on the tiny preset so they never rot."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import needs_mnist
from zoo.core.runtime.paths import REPO_ROOT

NOTEBOOKS = sorted(n for n in os.listdir(os.path.join(REPO_ROOT, "notebooks")) if n.endswith(".ipynb"))


def test_every_model_has_a_notebook():
    from zoo.core.recipes.registry import model_names

    assert {f"{name}.ipynb" for name in model_names()} <= set(NOTEBOOKS)


@pytest.mark.slow
@needs_mnist
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_executes(notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("ZOO_NOTEBOOK_WORK_DIR", str(tmp_path))
    nb = nbformat.read(os.path.join(REPO_ROOT, "notebooks", notebook), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum(o.output_type == "display_data" and "image/png" in o.data for o in outputs) >= 4


def test_committed_notebooks_show_their_outputs():
    """GitHub shows a notebook's committed outputs: each was saved after a real run (notebooks/execute.py)."""
    for notebook in NOTEBOOKS:
        nb = nbformat.read(os.path.join(REPO_ROOT, "notebooks", notebook), as_version=4)
        outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
        assert not [o for o in outputs if o.output_type == "error"], notebook
        assert sum(o.output_type == "display_data" and "image/png" in o.data for o in outputs) >= 4, notebook
        assert all(cell.execution_count for cell in nb.cells if cell.cell_type == "code"), notebook



def committed_output_text(notebook):
    nb = nbformat.read(os.path.join(REPO_ROOT, "notebooks", notebook), as_version=4)
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") if output.output_type == "stream"
                         else "\n".join(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/")))
    return "\n".join(texts)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_committed_notebooks_show_no_local_paths_or_missing_glyphs(notebook):
    """What GitHub shows must not carry the machine it ran on (a local path, a site-packages warning) or a
    title the plot font could not draw (matplotlib warns 'Glyph ... missing from font(s)' and draws boxes)."""
    text = committed_output_text(notebook)
    assert "missing from font" not in text, f"{notebook}: a plot title has characters its font lacks"
    assert "site-packages" not in text, f"{notebook}: a warning with the local install path"
    assert REPO_ROOT not in text, f"{notebook}: an output names the local checkout {REPO_ROOT}"
