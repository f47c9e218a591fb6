"""What every app loop shares (Python's standard library alone): an exported file's manifest, read only after the
file's sha256 matches it, and the ``--threads`` option (LiteRT on every core unless told)."""

import argparse
import hashlib
import json
import os


def verified_manifest(path):
    """The ``manifest.json`` beside ``path``, after checking ``path``'s sha256 against it."""
    folder = os.path.dirname(os.path.abspath(path))
    manifest_path = os.path.join(folder, "manifest.json")
    if not os.path.isfile(manifest_path):
        raise ValueError(f"no manifest.json next to {path}: it holds the file's sha256 and what the app needs")
    with open(manifest_path) as f:
        manifest = json.load(f)
    entries = {e["path"]: e["sha256"] for e in manifest.get("files", [])}
    name = os.path.basename(path)
    if name not in entries:
        raise ValueError(f"{manifest_path} does not list {name}")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != entries[name]:
        raise ValueError(f"{path} does not match the sha256 in {manifest_path}: re-download it")
    return manifest


def thread_count(text):
    """``--threads``' type: a whole number of LiteRT CPU threads, at least 1 (argparse reports anything else)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--threads must be at least 1, got {value}")
    return value


def add_threads_argument(parser):
    """``--threads``: every core by default (LiteRT's own default is one thread)."""
    parser.add_argument("--threads", type=thread_count, default=os.cpu_count(),
                        help="LiteRT CPU threads (default: all cores; LiteRT's own default is one)")
