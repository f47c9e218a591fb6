"""Typed command options, declared once: the CLI is generated from them and every value is checked before a
recipe's hook runs.

An :class:`Option` says its name, type, default, help, the commands that take it and what it
accepts (a minimum, a maximum, choices, or non-empty UTF-8 text). The core's own options
(:data:`CORE_OPTIONS`) and a model's (its recipe's ``options``) go through the same code:
``python -m zoo evaluate gan --num-samples 0`` and ``zoo.evaluate("gan", num_samples=0)`` get the
same one-line error, and a hook receives only the options its signature names (:func:`call_declared`).

    Option("num_samples", int, 10000, "generated digits to score", commands=("evaluate",), minimum=1)
"""

import argparse
import dataclasses
import inspect
import math
from typing import Any, Callable, Optional

from zoo.core.runtime.errors import BadInputError

COMMANDS = ("train", "finetune", "export", "sample", "evaluate")


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of one or more commands.

    Args:
        name: the keyword the hooks receive (``num_samples``); the flag is ``--num-samples``.
        type: ``int``, ``float``, ``str`` or ``bool`` (``--x`` / ``--no-x``).
        default: the value when not given (None: the hook decides, and ``help`` says what it does).
        help: what it does; the default is appended (``(default 10000)``), so do not repeat it.
        commands: the commands that take it.
        minimum, maximum: the smallest and largest value allowed, both included.
        above: a bound the value must exceed (a learning rate above 0).
        choices: the values allowed.
        text: a prompt: a non-empty string of valid UTF-8 (a terminal can pass invalid bytes).
        nargs: the value is a list of exactly this many values (``--digits 3 7``), each checked as above.
    """

    name: str
    type: Callable = str
    default: Any = None
    help: str = ""
    commands: tuple = ()
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    above: Optional[float] = None
    choices: Optional[tuple] = None
    text: bool = False
    nargs: Optional[int] = None

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    def check(self, value):
        """``value`` converted to the option's type; a :class:`BadInputError` that names the flag otherwise."""
        if value is None:
            return None
        if self.nargs is not None:
            values = list(value) if isinstance(value, (list, tuple)) else None
            if values is None or len(values) != self.nargs:
                raise BadInputError(f"{self.flag} takes {self.nargs} values, got {value!r}")
            return [dataclasses.replace(self, nargs=None).check(v) for v in values]
        if self.type is bool:
            if not isinstance(value, (bool, int)):
                raise BadInputError(f"{self.flag} is on or off, got {value!r}")
            return bool(value)
        try:
            converted = self.type(value)
        except (TypeError, ValueError):
            raise BadInputError(f"{self.flag} must be {'an integer' if self.type is int else 'a number' if self.type is float else 'text'}, got {value!r}") from None
        if self.type is int and isinstance(value, float) and value != int(value):
            raise BadInputError(f"{self.flag} must be an integer, got {value!r}")
        if self.type is float and not math.isfinite(converted):
            raise BadInputError(f"{self.flag} must be a finite number, got {value!r}")
        if self.minimum is not None and converted < self.minimum:
            raise BadInputError(f"{self.flag} must be at least {self.minimum}, got {value}")
        if self.above is not None and not converted > self.above:
            raise BadInputError(f"{self.flag} must be more than {self.above}, got {value}")
        if self.maximum is not None and converted > self.maximum:
            raise BadInputError(f"{self.flag} must be at most {self.maximum}, got {value}")
        if self.choices is not None and converted not in self.choices:
            raise BadInputError(f"{self.flag} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        if self.text:
            check_text(converted, self.flag)
        return converted

    def help_text(self, default=None):
        default = self.default if default is None else default
        shown = "on" if default is True else "off" if default is False else default
        return self.help + (f" (default {shown})" if default is not None else "")

    def add_to(self, parser, default=None):
        """Add ``--flag`` to an argparse parser; its value is checked as it is parsed."""
        kwargs = dict(dest=self.name, default=None, help=self.help_text(default))
        if self.type is bool:
            parser.add_argument(self.flag, action=argparse.BooleanOptionalAction, **kwargs)
            return

        element = dataclasses.replace(self, nargs=None)  # argparse parses each of nargs values alone

        def parse(text):
            if self.type is not str:
                try:
                    text = self.type(text)
                except ValueError:
                    raise argparse.ArgumentTypeError(
                        f"must be {'an integer' if self.type is int else 'a number'}, got {text!r}") from None
            try:
                return element.check(text)
            except BadInputError as error:
                raise argparse.ArgumentTypeError(str(error).replace(f"{self.flag} ", "", 1)) from None

        parse.__name__ = self.type.__name__  # argparse names the type in its messages
        metavar = "{" + ",".join(map(str, self.choices)) + "}" if self.choices else self.name.upper()
        if self.nargs is not None:
            kwargs["nargs"] = self.nargs
        parser.add_argument(self.flag, type=parse, metavar=metavar, **kwargs)


def check_text(text, flag="text"):
    """A prompt must be non-empty, valid UTF-8 (a shell passes undecodable bytes as surrogates)."""
    if not isinstance(text, str):
        raise BadInputError(f"{flag} must be text, got {type(text).__name__}")
    if not text.strip():
        raise BadInputError(f"{flag} is empty: give at least one character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInputError(f"{flag} is not valid UTF-8 (the terminal passed bytes that are not a character); "
                            "check its encoding") from None
    return text


CORE_OPTIONS = (
    # train
    Option("preset", str, "base", "network size (the model's presets)", commands=("train",)),
    Option("epochs", int, 10, "total epochs, counting resumed ones", commands=("train",), minimum=1),
    Option("steps", int, None, "train this many optimizer steps instead of whole epochs (the last epoch is cut "
                               "there); learning-rate schedules span the steps", commands=("train",), minimum=1),
    Option("batch_size", int, 128, "the global batch, split over replicas", commands=("train",), minimum=1),
    Option("learning_rate", float, 1e-3, "the optimizer's learning rate", commands=("train",), above=0.0),
    Option("seed", int, 0, "seed for weights, noise and shuffling", commands=("train",)),
    Option("run_dir", str, None, "checkpoints, logs and samples (default runs/<model>)", commands=("train",)),
    Option("fresh", bool, False, "discard existing checkpoints and start over", commands=("train",)),
    Option("time_budget_minutes", float, None, "stop after the first epoch that ends past this much training time",
           commands=("train",), above=0.0),
    Option("limit", int, None, "train on the first N examples only (smoke runs)", commands=("train",), minimum=1),
    Option("strategy", str, "default", "tf.distribute strategy: default (one device), mirrored (all local GPUs), "
                                       "multiworker (several machines, reads TF_CONFIG), tpu. --batch-size is the "
                                       "global batch", commands=("train",),
           choices=("default", "mirrored", "multiworker", "tpu")),
    Option("jit_compile", bool, None, "compile the training step with XLA, or not (default: the model's; on a CPU "
                                      "it is faster for some models and slower for others: BENCHMARKS.md, training "
                                      "speed)", commands=("train",)),
    Option("checkpoint_every_steps", int, None, "also checkpoint every N steps (default: each epoch end and every "
                                                "10 minutes)", commands=("train",), minimum=1),
    # finetune
    Option("data", str, None, "your data (required): a UTF-8 text file for a text model, the first 90%% to train "
                              "on and the last 10%% held out", commands=("finetune",)),
    Option("output", str, None, "the folder to export the fine-tuned model to (required): SavedModel, TFLite x3, "
                                "manifest, as exported/<model>", commands=("finetune",)),
    Option("base", str, None, "the exported model to start from (default exported/<model>); its files are checked "
                              "against its manifest's sha256 first", commands=("finetune",)),
    Option("lora_rank", int, 4, "rank of the low-rank adapters added to every dense kernel (LoRA); only they "
                                "train (default: the model's lora_rank, 4 unless measured otherwise)",
           commands=("finetune",), minimum=1),
    Option("full", bool, False, "train every weight instead of adapters (full fine-tuning)", commands=("finetune",)),
    Option("steps", int, 300, "optimizer steps", commands=("finetune",), minimum=1),
    Option("batch_size", int, None, "the global batch (default: the model's training batch)",
           commands=("finetune",), minimum=1),
    Option("learning_rate", float, None, "peak learning rate (default: the model's with --full; for adapters the model's lora_learning_rate, "
                                          "else 10x its training rate)",
           commands=("finetune",), above=0.0),
    Option("seed", int, 0, "seed for the adapters' initial values and the batches", commands=("finetune",)),
    Option("run_dir", str, None, "checkpoints and logs (default <output>.run/); run the same command again to "
                                 "resume", commands=("finetune",)),
    Option("fresh", bool, False, "discard the run's checkpoints and start over", commands=("finetune",)),
    # export
    Option("run_dir", str, None, "the training run (default runs/<model>)", commands=("export",)),
    Option("from_exported", str, None, "re-export an exported model folder (its .keras file and training record) "
                                       "instead of a run, e.g. after a change to the export alone",
           commands=("export",)),
    Option("reconvert", str, None, "with --from-exported: convert only this TFLite file again, from the signatures as "
                                   "the code builds them now (int8: full-integer where the model calibrates it), "
                                   "measure it and update the manifest in place; every other file stays byte for byte",
           commands=("export",), choices=("float16", "int8")),
    Option("output_dir", str, None, "parent folder (default: the repository's exported/)", commands=("export",)),
    Option("version", int, 1, "SavedModel version folder", commands=("export",), minimum=1),
    # sample and evaluate
    Option("runtime", str, "tflite", "tflite (LiteRT), savedmodel (TensorFlow, as TF Serving) or keras (the "
                                     ".keras file)", commands=("sample", "evaluate"),
           choices=("tflite", "savedmodel", "keras")),
    Option("variant", str, None, "TFLite variant: float32, float16 or int8 (default float32; only with "
                                 "--runtime tflite)", commands=("sample", "evaluate"),
           choices=("float32", "float16", "int8")),
    Option("threads", int, None, "LiteRT CPU threads (default: every core; only with --runtime tflite)",
           commands=("sample", "evaluate"), minimum=1),
    Option("exported_dir", str, None, "where the exported models are (default: the repository's exported/)",
           commands=("sample", "evaluate")),
    Option("seed", int, 0, "noise seed", commands=("sample",)),
    Option("output", str, None, "where to write (default samples/<model>.png, .gif, .txt or .wav)", commands=("sample",)),
    Option("seed", int, None, "noise seed (default: the one the manifest's metrics were measured with)",
           commands=("evaluate",)),
    Option("json", bool, False, "print the metrics as JSON (for scripts) instead of a table",
           commands=("evaluate",)),
)
# the train options a recipe's ``defaults`` may set for its model
MODEL_DEFAULTS = ("preset", "epochs", "batch_size", "learning_rate")


def core_options(command):
    return [o for o in CORE_OPTIONS if command in o.commands]


def model_options(recipe, command):
    """The options ``recipe`` adds to ``command`` (``finetune`` ends with an export: it takes the model's
    ``export`` options too)."""
    takes = (command, "export") if command == "finetune" else (command,)
    return [o for o in recipe.options if any(c in o.commands for c in takes)]


def model_option_names(recipe, command):
    return [o.name for o in model_options(recipe, command)]


def own_values(recipe, command, values):
    """The model's own options of ``command`` out of :func:`resolve`'s ``values``: what its hooks take."""
    return {name: values[name] for name in model_option_names(recipe, command)}


def command_options(recipe, command):
    """Every option of ``command`` for ``recipe``: the core's, then the model's; one of each name."""
    found = {}
    for option in [*core_options(command), *model_options(recipe, command)]:
        if option.name in found:
            raise ValueError(f"{recipe.name} declares {option.flag} for {command} twice")
        found[option.name] = option
    return found


def default_of(recipe, option):
    if option.name == "lora_rank":
        return recipe.lora_rank
    if option.name in MODEL_DEFAULTS and option.name in recipe.defaults and "train" in option.commands:
        return recipe.defaults[option.name]
    return option.default


def resolve(recipe, command, given):
    """Every option of ``command``: ``given`` values checked, the rest at their defaults. A clear error for an
    option the command (or this model) does not have."""
    options = command_options(recipe, command)
    unknown = sorted(set(given) - set(options))
    if unknown:
        flags = " ".join("--" + name.replace("_", "-") for name in unknown)
        raise BadInputError(f"{recipe.name} has no option {flags} for {command}; "
                            f"see `python -m zoo {command} {recipe.name} --help`")
    values = {}
    for name, option in options.items():
        value = given.get(name)
        values[name] = default_of(recipe, option) if value is None else option.check(value)
    if command == "train" and values["preset"] not in recipe.presets:
        raise BadInputError(f"unknown preset {values['preset']!r} for {recipe.name}; "
                            f"choose from {', '.join(recipe.presets)}")
    return values


def call_declared(function, *args, **options):
    """``function(*args, **the options its signature names)``: a hook receives only what it declared."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return function(*args, **options)
    return function(*args, **{k: v for k, v in options.items() if k in parameters})
