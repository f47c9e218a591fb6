"""A zoo of generative models for Keras 3 on TensorFlow, from training to TF Serving and LiteRT.

    python -m zoo list
    python -m zoo sample dcgan

From Python (what the notebooks use):

    import zoo
    model = zoo.create_model("dcgan", "tiny")          # a new Keras model
    state = zoo.train("dcgan", preset="tiny", epochs=1, limit=256, run_dir="runs/dcgan-tiny")
    zoo.export("dcgan", run_dir="runs/dcgan-tiny", output_dir="my_exports")
    runner = zoo.load("dcgan", runtime="tflite", variant="int8")   # sha256-checked
    images = runner("serving_default", noise=noise)["images"]
"""

from zoo.core.data.datasets import resolve_data_dir_variable as _resolve_data_dir_variable

__version__ = "0.1.0"

# A relative ZOO_DATA_DIR is made absolute at import, so notebook kernels and
# subprocesses started in other folders find the same data.
_resolve_data_dir_variable()


def list_models():
    """The registered model names."""
    from zoo.core.recipes.registry import model_names

    return model_names()


def get_recipe(name):
    """The :class:`zoo.core.recipes.recipe.Recipe` of a registered model."""
    from zoo.core.recipes.registry import get_recipe as _get_recipe

    return _get_recipe(name)


def create_model(name, preset="base", seed=0):
    """A new, untrained Keras model of ``name`` at ``preset``."""
    from zoo.core.recipes import commands

    return commands.create_model(name, preset, seed)


def load(name_or_dir, runtime="tflite", variant="float32", **options):
    """A runner of an exported model (``runner(signature, **inputs)``), every file sha256-checked first."""
    from zoo.core.recipes import commands

    return commands.load(name_or_dir, runtime=runtime, variant=variant, **options)


def load_run(name, run_dir=None):
    """``(model, run, state)`` from a training run's newest intact checkpoint."""
    from zoo.core.recipes import commands

    return commands.load_run(name, run_dir)


def train(name, **options):
    """Train ``name`` (see ``python -m zoo train <name> --help`` for the options); returns the final state."""
    from zoo.core.recipes import commands

    return commands.train(name, **options)


def finetune(name, **options):
    """Fine-tune the exported ``name`` on your data (``data=``, ``output=``; LoRA adapters by default, or
    ``full=True``) and export the result; returns the export folder. See ``python -m zoo finetune <name> --help``."""
    from zoo.core.recipes import commands

    return commands.finetune(name, **options)


def export(name, **options):
    """Export a run of ``name``; returns the exported folder."""
    from zoo.core.recipes import commands

    return commands.export(name, **options)


def sample(name, **options):
    """Generate from the exported ``name`` and write a file; returns its path."""
    from zoo.core.recipes import commands

    return commands.sample(name, **options)


def evaluate(name, **options):
    """Measure the exported ``name``; returns its metrics."""
    from zoo.core.recipes import commands

    return commands.evaluate(name, **options)
