"""Small file helpers: sha256, and writes that are never seen half-done."""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_file(path):
    """Yield a temporary path beside ``path``; rename it into place on success."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    os.close(handle)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the final file should not be
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a temporary directory beside ``path``; swap it into place on success.

    The old directory, if any, is moved aside before the new one is renamed in and
    deleted after, so a reader sees either the old or the new tree, never a mix.
    On error the temporary directory is removed and ``path`` is untouched.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(path)}-", dir=parent)
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        old = None
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f".old-{os.path.basename(path)}-", dir=parent)
            os.rmdir(old)
            os.rename(path, old)
        os.rename(tmp, path)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path, data):
    with atomic_file(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")


def write_text(path, text):
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
