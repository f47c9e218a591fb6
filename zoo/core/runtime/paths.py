"""Where the zoo keeps its committed files, independent of the working directory."""

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# Exported, trained artifacts (committed), so `sample` works from any directory.
EXPORTED_DIR = os.path.join(REPO_ROOT, "exported")


def cache_dir():
    """Where the zoo keeps what it can rebuild (parsed chorales, the C++ loader): ``$ZOO_CACHE_DIR``, else
    ``~/.cache/zoo``."""
    return os.environ.get("ZOO_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "zoo")
