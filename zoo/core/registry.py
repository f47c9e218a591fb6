"""The one map from model names to what the zoo can do with them.

Each ``zoo/<model>/__init__.py`` calls :func:`register` once; the CLI, the tests and
the benchmarks iterate :func:`model_names`, so a new model shows up everywhere by
being added in one place.
"""

import dataclasses
import importlib
import pkgutil
from typing import Callable, Optional

from zoo.core.errors import UnknownModelError


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about one model.

    Args:
        name: the command-line name, e.g. "dcgan".
        summary: one line for `python -m zoo list`.
        paper: the reference, "Authors (year), title".
        presets: preset names; "tiny" (tests) and "base" (committed artifact).
        model: ``"module:Class"`` of the Keras model; its module holds ``PRESETS``.
        train: ``"module:function"`` of ``train(**options)`` -> run directory.
        export: likewise, ``export(**options)`` -> exported directory.
        sample: likewise, ``sample(**options)`` -> path of what it wrote.
        evaluate: likewise, ``evaluate(**options)`` -> dict of metrics.

    Entry points are named, not imported, so `python -m zoo list` and the registry
    stay cheap; :meth:`entry_point` imports one when it is called.
        add_arguments: optional ``add_arguments(command, parser)`` for options that
            only this model has.
    """

    name: str
    summary: str
    paper: str
    presets: tuple
    model: str
    train: str
    export: str
    sample: str
    evaluate: str
    add_arguments: Optional[Callable] = None

    def entry_point(self, command):
        module, _, function = getattr(self, command).partition(":")
        return getattr(importlib.import_module(module), function)


_REGISTRY = {}


def register(spec):
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"model name {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _import_model_packages():
    import zoo

    for info in pkgutil.iter_modules(zoo.__path__):
        if info.ispkg and info.name != "core":
            importlib.import_module(f"zoo.{info.name}")


def model_names():
    _import_model_packages()
    return sorted(_REGISTRY)


def get_model(name):
    """The :class:`ModelSpec` registered under ``name``; a clear error otherwise."""
    names = model_names()
    if name not in _REGISTRY:
        raise UnknownModelError(
            f"unknown model {name!r}; the zoo has: {', '.join(names)} "
            "(see `python -m zoo list`)"
        )
    return _REGISTRY[name]
