"""Errors the zoo raises on purpose, so callers (and the CLI) can tell them from bugs.

Each message says what was wrong and what to do about it; the CLI prints it without
a stack trace.
"""


class ZooError(Exception):
    """Base class for every error the zoo raises deliberately."""


class UnknownModelError(ZooError, KeyError):
    def __str__(self):  # KeyError would otherwise quote the message
        return str(self.args[0])


class DataNotFoundError(ZooError, FileNotFoundError):
    pass


class BadInputError(ZooError, ValueError):
    pass


class IntegrityError(ZooError):
    """A file's sha256 does not match the manifest or checkpoint that lists it."""


class ArtifactNotFoundError(ZooError, FileNotFoundError):
    pass


class TrainingDivergedError(ZooError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""
