import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


def has_mnist():
    from zoo.core.data import DATA_DIR_ENV

    root = os.environ.get(DATA_DIR_ENV)
    return bool(root) and os.path.isdir(os.path.join(root, "mnist"))


needs_mnist = pytest.mark.skipif(not has_mnist(), reason="needs MNIST: set ZOO_DATA_DIR (CI sets ../shared/datasets)")
