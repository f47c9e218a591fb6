"""The one map from model names to their recipes.

Each ``zoo/<model>/recipe.py`` decorates its :class:`zoo.core.recipe.Recipe`
subclass with :func:`register`; the CLI, the tests and the benchmarks iterate
:func:`model_names`, so a new model shows up everywhere by being added in one place.
"""

import importlib
import pkgutil

from zoo.core.errors import UnknownModelError

_REGISTRY = {}


def register(recipe_class):
    """Class decorator: register one instance of a recipe under its ``name``."""
    name = recipe_class.name
    if not name:
        raise ValueError(f"{recipe_class.__name__} has no name")
    if name in _REGISTRY and type(_REGISTRY[name]) is not recipe_class:
        raise ValueError(f"model name {name!r} is registered twice")
    _REGISTRY[name] = recipe_class()
    return recipe_class


def _import_model_packages():
    import zoo

    for info in pkgutil.iter_modules(zoo.__path__):
        if info.ispkg and info.name not in ("core", "convert"):  # convert: converters, not models
            importlib.import_module(f"zoo.{info.name}.recipe")


def model_names():
    _import_model_packages()
    return sorted(_REGISTRY)


def get_recipe(name):
    """The recipe registered under ``name``; a clear error otherwise."""
    if name not in _REGISTRY:
        names = model_names()
        if name not in _REGISTRY:
            raise UnknownModelError(
                f"unknown model {name!r}; the zoo has: {', '.join(names)} (see `python -m zoo list`)")
    return _REGISTRY[name]
