"""Progress bars where they help: on a terminal, not in notebooks or logs (where each redraw is a new line)."""

import sys


def interactive():
    return sys.stdout.isatty()


def progress_bar(total, unit_name="step"):
    """A Keras progress bar of ``total`` units on a terminal; None elsewhere (callers skip updates)."""
    if not interactive():
        return None
    import keras

    return keras.utils.Progbar(total, unit_name=unit_name)
