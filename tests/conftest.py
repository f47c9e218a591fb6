import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # tests run from a checkout, without installing the package
    sys.path.insert(0, REPO)


@pytest.fixture(autouse=True)
def _run_in_repo(monkeypatch):
    # The CLI and loaders use repo-relative defaults (exported/, runs/).
    monkeypatch.chdir(REPO)


def has_mnist():
    from zoo.core.data import DATA_DIR_ENV

    root = os.environ.get(DATA_DIR_ENV)
    return bool(root) and os.path.isdir(os.path.join(root, "mnist"))


needs_mnist = pytest.mark.skipif(not has_mnist(), reason="needs MNIST: set ZOO_DATA_DIR (CI sets ../shared/datasets)")
