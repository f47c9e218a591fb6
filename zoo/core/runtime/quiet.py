"""TensorFlow and LiteRT without their start-up chatter, for the command line.

Loading TensorFlow's C++ libraries logs a few INFO lines ("oneDNN custom
operations are on", "Could not find cuda drivers") to the process's stderr before
any log level applies, and each of two libraries logs them, so they appear twice;
LiteRT logs "INFO: Created TensorFlow Lite XNNPACK delegate" per interpreter.
``TF_CPP_MIN_LOG_LEVEL`` cannot reach them; holding file descriptor 2 while they
run can. What a call that *fails* printed is shown.
"""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def native_stderr_held():
    """Keep what C++ code writes to stderr inside the block, unless the block raises
    (or ``TF_CPP_MIN_LOG_LEVEL=0`` asks for everything)."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow_quietly():
    """``import tensorflow`` with the libraries' load-time lines kept off stderr."""
    with native_stderr_held():
        import tensorflow  # noqa: F401  (loaded here, quietly, for the rest of the process)
