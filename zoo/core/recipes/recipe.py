"""A model is its network plus one recipe; the core does everything else, once.

A recipe says what is special to one model (TF Model Garden's ``Task``, timm's
``@register_model``): its presets and how to build the model, its data, how to
compile it, its exported signatures, its metric, how to draw a sample and the
command-line options only it has. ``zoo/<model>/recipe.py`` subclasses
:class:`Recipe` and registers it with :func:`zoo.core.recipes.registry.register`;
:mod:`zoo.core.recipes.commands` then trains, exports, samples and evaluates it, and the
CLI, the shared tests and the benchmarks find it by its name.

    @register
    class DCGANRecipe(ImageGeneratorRecipe):
        name = "dcgan"
        model_class = DCGAN
        presets = PRESETS
        ...
"""

import os

from zoo.core.data.datasets import TrainingData  # noqa: F401 (a recipe's training_data returns one)
from zoo.core.recipes.options import Option  # noqa: F401 (a recipe declares its options with it)
from zoo.core.runtime.errors import BadInputError


EVAL_SEED = 12345  # every quality measurement's noise seed, so numbers compare across runtimes and runs


class Recipe:
    """What the zoo needs to know about one model. Subclass it, set the attributes, override what differs.

    Attributes:
        name: the command-line name, e.g. "dcgan".
        summary: one line for ``python -m zoo list``.
        paper: "Authors (year), title".
        requires: the models this one composes (e.g. ``("clip",)``: text-to-image conditions on
            CLIP's text encoder); the registry imports them first.
        model_class: the Keras model (subclassed, registered as ``zoo>ClassName``).
        presets: preset name -> constructor arguments; "tiny" (tests) and "base" (committed).
        defaults: this model's defaults of the core's ``train`` options (preset, epochs, batch_size,
            learning_rate); the rest are :data:`zoo.core.recipes.options.CORE_OPTIONS`'.
        options: the :class:`Option` s only this model has, each naming the commands that take it.
        sample_suffix: what ``sample`` writes (".png" or ".txt").
        other_sample_suffixes: the other files ``sample`` can write, chosen by ``--output``'s suffix
            (music: ".wav", ".png" beside ".mid").
        sample_help: what ``sample`` does, for ``python -m zoo sample <model> --help``.
        eval_seed: the seed every quality measurement draws its noise from, so numbers compare.
        jit_compile: whether ``train`` compiles the training step with XLA by default (True
            where ``benchmarks/training_speed.py`` measured it faster on a CPU).
        finetune_data_option: the ``train`` option that reads the user's data (the GPT's ``text``);
            set, ``python -m zoo finetune`` takes the model (``create_training_model`` must then take a
            ``fine_tune_from`` exported folder). None: the model cannot be fine-tuned yet.
        lora_trains_in_full: parts of weight paths that train in full beside the low-rank adapters in a
            LoRA fine-tune (:func:`zoo.core.nn.lora.enable`): small weights that no adapter reaches and a new
            domain needs (the GPT's byte embedding, its output head too, and its layer norms).
        lora_embedding_ranks: Embedding tables that get low-rank adapters too in a LoRA fine-tune (layer-path
            part -> rank), where a table is too large a share of the weights to train in full.
        lora_embedding_rows: Embedding tables of which a LoRA fine-tune trains, in full, only the rows of the
            tokens its training data holds (the data's ``TrainingData.token_ids``; layer-path parts): tokens
            the new text never shows keep their vectors and cost no trainable weight.
        lora_rank: the adapters' rank when ``--lora-rank`` is not given (measured per model).
        lora_learning_rate: the peak learning rate of a LoRA fine-tune, where one was measured best (None:
            ``LORA_LEARNING_RATE_FACTOR`` times the model's training rate).
        finetune_model_config: constructor arguments a ``finetune`` run (LoRA or full) sets in its copy of the
            base, where measured better (the GPT's ``{"dropout": 0.0}``); empty: the base's config as it is.
    """

    name = None
    requires = ()
    jit_compile = False
    finetune_data_option = None
    lora_trains_in_full = ()
    lora_embedding_ranks = {}
    lora_embedding_rows = ()
    lora_rank = 4
    lora_learning_rate = None
    finetune_model_config = {}
    summary = ""
    paper = ""
    model_class = None
    presets = {}
    defaults = {}
    options = ()
    sample_suffix = ".png"
    other_sample_suffixes = ()
    sample_help = "Generate from the exported model and write a picture."
    evaluate_help = "Measure the exported model's quality."
    eval_seed = EVAL_SEED

    def train_default(self, name):
        """This model's default of a core ``train`` option (its ``defaults``, else the core's)."""
        from zoo.core.recipes.options import core_options

        return self.defaults.get(name, next(o.default for o in core_options("train") if o.name == name))

    # === Model ===
    def create_model(self, preset="base", seed=0):
        """``model_class(**presets[preset], seed=seed)``, with a clear error for an unknown preset."""
        if preset not in self.presets:
            raise BadInputError(f"unknown preset {preset!r} for {self.name}; choose from {', '.join(self.presets)}")
        return self.model_class(**self.presets[preset], seed=seed)

    def create_training_model(self, preset, seed):
        """The model a ``train`` run starts from (default: a fresh :meth:`create_model`)."""
        return self.create_model(preset, seed)

    # === Training ===
    def training_data(self, model, *, batch_size, seed, limit):
        """A :class:`TrainingData`."""
        raise NotImplementedError(f"{type(self).__name__} must say what {self.name} trains on")

    def training_config(self, model, data, *, epochs, total_steps, max_steps=None):
        """Extra config entries that decide the run (a learning-rate schedule's length, a fine-tuning source).
        ``total_steps`` is the run's length in optimizer steps (``epochs`` whole epochs, or ``--steps``);
        ``max_steps`` is ``--steps`` when given (``zoo.core.training.optimizers.schedule_span`` words the span)."""
        return {}

    def compile(self, model, config):
        """Attach the optimizer(s) the run trains with, from the run's config (resume rebuilds them the same)."""
        model.compile()

    def epoch_samples(self, model, seed):
        """``sample_fn(model) -> images [n, h, w, c] in [0, 1]`` drawn at each epoch end, or None."""
        return None

    def sample_callbacks(self, run_dir, seed):
        """Callbacks that draw samples during training, for models whose samples are not
        pictures (see :class:`zoo.core.training.trainer.Trainer`); skipped with ``train(samples=False)``."""
        return []

    # === Export ===
    def signatures(self, model):
        """The exported functions, a list of :class:`zoo.core.export.Signature` (one named serving_default)."""
        raise NotImplementedError

    def keras_model(self, model):
        """What ``<model>.keras`` holds: by default the model without its optimizer."""
        from zoo.core.export import inference_copy

        return inference_copy(model)

    def keras_signatures(self, keras_model):
        """The signatures of the loaded ``<model>.keras`` (default: :meth:`signatures` of it)."""
        return self.signatures(keras_model)

    def export_plan(self, model, training, **options):
        """A :class:`zoo.core.export.ExportPlan`: signatures, metrics, sample, notes."""
        raise NotImplementedError

    # === Use ===
    def sample(self, runner, *, output, seed, **options):
        """Generate with ``runner`` (any runtime) and write ``output``; return a one-line description."""
        raise NotImplementedError

    def evaluate(self, runner, *, seed, **options):
        """The model's quality metrics (a dict) measured through ``runner``."""
        raise NotImplementedError

    metrics = []
    """The metrics the export's and the benchmark's tables show; the first decides whether a
    quantized variant is good enough (within 10% of float32's). What the tests and benchmarks
    need besides is the model's ``spec.py`` (:mod:`zoo.core.recipes.spec`)."""

    # === Helpers ===
    def default_output(self):
        return os.path.join("samples", f"{self.name}{self.sample_suffix}")

    def __repr__(self):
        return f"<recipe {self.name}>"
