"""Where the zoo keeps its committed files, independent of the working directory."""

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# Exported, trained artifacts (committed), so `sample` works from any directory.
EXPORTED_DIR = os.path.join(REPO_ROOT, "exported")
