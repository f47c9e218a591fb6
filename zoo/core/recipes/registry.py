"""The one map from model names to their recipes.

A model is a package ``zoo/<name>/`` with a ``recipe.py`` whose :class:`zoo.core.recipes.recipe.Recipe`
subclass is decorated with :func:`register`; the CLI, the tests and the benchmarks iterate
:func:`model_names`, so a new model shows up everywhere by being added in one place. A model
that composes another names it in its recipe's ``requires``: registering it imports those first
(their Keras classes register, so the composed model's ``.keras`` file loads).
"""

import importlib
import os

from zoo.core.runtime.errors import UnknownModelError

_REGISTRY = {}
# Models the zoo did not train: a converter's module (zoo/convert/) builds the recipe of the folder a
# conversion wrote (``recipe_for(folder)``), recognises such a folder's manifest (``is_converted``), and
# gives ``finetune NAME --base FOLDER`` its recipe (``recipe_for_finetune(base, output)``).
CONVERTERS = {"keras-hub": "zoo.convert.finetuning"}
ZOO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def register(recipe_class):
    """Class decorator: register one instance of a recipe under its ``name``, after the models it requires."""
    name = recipe_class.name
    if not name:
        raise ValueError(f"{recipe_class.__name__} has no name")
    if name in _REGISTRY and type(_REGISTRY[name]) is not recipe_class:
        raise ValueError(f"model name {name!r} is registered twice")
    for required in recipe_class.requires:
        get_recipe(required)
    _REGISTRY[name] = recipe_class()
    return recipe_class


def model_packages():
    """The model packages' names, from the folders alone (nothing imported): those holding a ``recipe.py``."""
    return sorted(name for name in os.listdir(ZOO_DIR)
                  if os.path.isfile(os.path.join(ZOO_DIR, name, "recipe.py")))


def model_names():
    for name in model_packages():
        get_recipe(name)
    return sorted(_REGISTRY)


def check_model_name(name):
    """A clear error for a name no model package has (before anything heavy is imported)."""
    if name not in model_packages():
        raise UnknownModelError(
            f"unknown model {name!r}; the zoo has: {', '.join(model_packages())} (see `python -m zoo list`)")


def get_recipe(name):
    """The recipe registered under ``name`` (its package imported on first use); a clear error otherwise."""
    if name not in _REGISTRY:
        check_model_name(name)
        importlib.import_module(f"zoo.{name}.recipe")
        if name not in _REGISTRY:
            raise UnknownModelError(f"zoo/{name}/recipe.py registers no recipe named {name!r}")
    return _REGISTRY[name]


def _converter(name):
    return importlib.import_module(CONVERTERS[name])


def recipe_for_converted(name, folder=None):
    """The converter ``name``'s recipe of ``folder`` (None: its options alone, for the command line)."""
    return _converter(name).recipe_for(folder)


def recipe_of_export(model_dir):
    """The recipe of an exported folder, from its manifest: the model it names, or the converter's that wrote it."""
    from zoo.core.runtime.runners import read_manifest

    manifest = read_manifest(model_dir, verify=False)
    for name in CONVERTERS:
        if _converter(name).is_converted(manifest):
            return _converter(name).recipe_for(model_dir)
    return get_recipe(manifest["model"])


def finetune_recipe(name, base=None, output=None):
    """The recipe ``finetune name`` runs: the model's, or a converter's for the folder ``base`` it wrote."""
    if name in CONVERTERS:
        return _converter(name).recipe_for_finetune(base, output)
    return get_recipe(name)
