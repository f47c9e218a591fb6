"""Command line: ``python -m zoo <command> <model> [options]``.

Every command is written once (``zoo.core.recipes.commands``); a model adds only the
options its recipe declares, so ``python -m zoo sample gpt --help`` lists the
GPT's and an option another model has is an error, not silently ignored.
"""

import argparse
import contextlib
import io
import os
import shlex
import sys

# Before TensorFlow loads: hide its C++ INFO/WARNING/ERROR start-up lines (a CPU-only machine
# logs "E0000 ... failed call to cuInit"). TF_CPP_MIN_LOG_LEVEL=0 brings them back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from zoo.core.runtime.errors import ZooError  # noqa: E402
from zoo.core.runtime.paths import EXPORTED_DIR  # noqa: E402

DESCRIPTION = """\
A zoo of generative models for Keras 3 on TensorFlow: train them, export them to
SavedModel (TF Serving) and TFLite (LiteRT), and sample from the exported files.

commands:
  list      the models, their papers and whether an exported artifact is committed
  train     train a model on its dataset (resumes from the last checkpoint when run again)
  export    export a trained run to exported/<model>/ (SavedModel, TFLite x3, manifest, samples)
  sample    generate from the committed exported artifact (no training, no network)
  evaluate  measure an exported artifact's quality (e.g. classifier Frechet distance)
  serve     print the TF Serving command and write a sample REST request for a model
  convert   convert a model you already have (a KerasHub GPT-2 / OPT preset) to the same export

Run `python -m zoo <command> <model> --help` for a command's options for that model.
"""

MODEL_COMMANDS = ("train", "export", "sample", "evaluate")


def _model_argument(parser):
    parser.add_argument("model", help="model name, e.g. dcgan (see `python -m zoo list`)")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m zoo", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("list", help="list the models")

    train = commands.add_parser("train", help="train a model",
                                description="Train a model on its dataset. Run again with the same --run-dir to "
                                "resume from the last checkpoint; Ctrl-C saves a checkpoint first.")
    _model_argument(train)
    train.add_argument("--preset", default=None, help="network size (the model's presets; default base)")
    train.add_argument("--epochs", type=int, default=None, help="total epochs, counting resumed ones")
    train.add_argument("--steps", type=int, default=None,
                       help="train this many optimizer steps instead of whole epochs (the last epoch is cut "
                            "there); learning-rate schedules span the steps")
    train.add_argument("--batch-size", type=int, default=None, help="the global batch, split over replicas")
    train.add_argument("--learning-rate", type=float, default=None)
    train.add_argument("--seed", type=int, default=0, help="seed for weights, noise and shuffling (default 0)")
    train.add_argument("--run-dir", default=None, help="checkpoints, logs and samples (default runs/<model>)")
    train.add_argument("--fresh", action="store_true", help="discard existing checkpoints and start over")
    train.add_argument("--time-budget-minutes", type=float, default=None,
                       help="stop after the first epoch that ends past this much training time")
    train.add_argument("--limit", type=int, default=None, help="train on the first N examples only (smoke runs)")
    train.add_argument("--strategy", choices=("default", "mirrored", "multiworker", "tpu"), default="default",
                       help="tf.distribute strategy: default (one device), mirrored (all local GPUs), "
                            "multiworker (several machines, reads TF_CONFIG), tpu. --batch-size is the global batch")
    train.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None,
                       help="compile the training step with XLA, or not (default: the model's; on a CPU it is "
                            "faster for some models and slower for others: BENCHMARKS.md, training speed)")
    train.add_argument("--checkpoint-every-steps", type=int, default=None,
                       help="also checkpoint every N steps (default: each epoch end and every 10 minutes)")

    export = commands.add_parser("export", help="export a trained run",
                                 description="Export the newest checkpoint of a run to SavedModel, TFLite "
                                 "(float32, float16, int8) and manifest.json, measuring each variant.")
    _model_argument(export)
    export.add_argument("--run-dir", default=None, help="the training run (default runs/<model>)")
    export.add_argument("--from-exported", default=None,
                        help="re-export an exported model folder (its .keras file and training record) instead of "
                             "a run, e.g. after a change to the export alone")
    export.add_argument("--output-dir", default=EXPORTED_DIR, help="parent folder (default: the repository's exported/)")
    export.add_argument("--version", type=int, default=1, help="SavedModel version folder (default 1)")

    runtimes = dict(choices=("tflite", "savedmodel", "keras"), default="tflite",
                    help="tflite (LiteRT, default), savedmodel (TensorFlow, as TF Serving) or keras (the .keras file)")
    variants = dict(choices=("float32", "float16", "int8"), default="float32", help="TFLite variant (default float32)")
    threads = dict(type=int, default=None, help="LiteRT CPU threads (default: LiteRT's own, one)")

    sample = commands.add_parser("sample", help="generate from the exported artifact",
                                 description="Generate from the committed exported artifact after verifying its "
                                 "sha256 against manifest.json.")
    _model_argument(sample)
    sample.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    sample.add_argument("--output", default=None, help="where to write (default samples/<model>.png, .txt or .wav)")
    sample.add_argument("--runtime", **runtimes)
    sample.add_argument("--variant", **variants)
    sample.add_argument("--threads", **threads)
    sample.add_argument("--exported-dir", default=EXPORTED_DIR,
                        help="where the exported models are (default: the repository's exported/)")

    evaluate = commands.add_parser("evaluate", help="measure an exported artifact's quality",
                                   description="Measure an exported artifact's quality, as the manifest's metrics were.")
    _model_argument(evaluate)
    evaluate.add_argument("--runtime", **runtimes)
    evaluate.add_argument("--variant", **variants)
    evaluate.add_argument("--threads", **threads)
    evaluate.add_argument("--seed", type=int, default=None,
                          help="noise seed (default: the one the manifest's metrics were measured with)")
    evaluate.add_argument("--json", dest="json_output", action="store_true",
                          help="print the metrics as JSON (for scripts) instead of a table")
    evaluate.add_argument("--exported-dir", default=EXPORTED_DIR)

    serve = commands.add_parser("serve", help="how to serve a model with TF Serving",
                                description="Print the docker command that serves the exported SavedModel "
                                "with TF Serving, and write a sample REST request body that fits its signature.")
    _model_argument(serve)
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--signature", default="serving_default")
    serve.add_argument("--output", default=None, help="request body path (default <model>_request.json)")
    serve.add_argument("--exported-dir", default=EXPORTED_DIR)
    convert = commands.add_parser(
        "convert", help="convert a KerasHub causal LM to the zoo's export",
        description="Convert a pretrained model to the zoo's export contract: SavedModel (text in, text out, "
        "for TF Serving), TFLite float32/float16/int8 with builtin ops only (prefill, decode_step, generate "
        "with a key/value cache, the names of exported/gpt), the tokenizer's files and a manifest.")
    convert.add_argument("source", choices=["keras-hub"], help="where the model comes from")
    convert.add_argument("preset", help="a KerasHub preset name (e.g. gpt2_base_en; downloads when online) or a "
                                        "local preset folder written by save_to_preset")
    convert.add_argument("--output", required=True, help="the export folder to write (its name names the files)")
    convert.add_argument("--context-length", type=int, default=None,
                         help="positions the export attends over (default: the preset's, 1024 for GPT-2); a "
                              "shorter one makes the key/value cache and each decode step smaller")
    parser.model_commands = {"train": train, "export": export, "sample": sample, "evaluate": evaluate}
    return parser


def add_model_options(command_parser, command, recipe):
    """The recipe's own options, its help text and defaults, on ``command``'s parser."""
    for option in recipe.options(command):
        option.add_to(command_parser)
    if command == "sample":
        command_parser.description = recipe.sample_help
    elif command == "evaluate":
        command_parser.description = recipe.evaluate_help
    elif command == "train":
        d = recipe.defaults
        command_parser.description += (
            f" {recipe.name} defaults: preset {d['preset']} (of {', '.join(recipe.presets)}), {d['epochs']} epochs, "
            f"batch {d['batch_size']}, learning rate {d['learning_rate']}.")
        for action in command_parser._actions:
            if action.dest == "preset":
                action.choices = list(recipe.presets)
                action.help = f"network size: {', '.join(recipe.presets)} (default {d['preset']})"


def parse(parser, argv):
    """Parse ``argv``, adding the options only the named model has (its recipe's ``options``)."""
    from zoo.core.recipes import registry

    # First pass without --help, so that `evaluate vae --help` lists the VAE's own options too.
    without_help = [a for a in argv if a not in ("-h", "--help")]
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # errors are reported by the real pass below
            args, _ = parser.parse_known_args(without_help)
    except SystemExit:
        return parser.parse_args(argv)  # prints the usage error (or the help) as argparse would
    command_parser = parser.model_commands.get(args.command)
    if command_parser is None or args.model not in registry.model_names():
        return parser.parse_args(argv)
    add_model_options(command_parser, args.command, registry.get_recipe(args.model))
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # e.g. an option another model has: say so in this command's own usage
        command_parser.error(f"{args.model} has no option {' '.join(unknown)} for {args.command}; "
                             f"see `python -m zoo {args.command} {args.model} --help`")
    return args


def list_models():
    from zoo.core.recipes import registry

    names = registry.model_names()
    width = max(map(len, names)) + 2
    lines = []
    for name in names:
        recipe = registry.get_recipe(name)
        exported = os.path.isfile(os.path.join(EXPORTED_DIR, name, "manifest.json"))
        lines += [f"{name:{width}s}{recipe.summary}", f"{'':{width}s}{recipe.paper}",
                  f"{'':{width}s}presets: {', '.join(recipe.presets)}; exported artifact: "
                  f"{'exported/' + name if exported else 'none yet'}"]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        from zoo.core.runtime.quiet import import_tensorflow_quietly

        import_tensorflow_quietly()
        from zoo.core.recipes import commands

        args = parse(parser, argv)
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "list":
            print(list_models())
            return 0
        if args.command == "convert":
            from zoo.convert.keras_hub import convert

            print(f"Exported to {convert(args.preset, args.output, context_length=args.context_length)}")
            return 0
        if args.command == "serve":
            from zoo.core.runtime.serving import serve

            serve(args.model, exported_dir=args.exported_dir, port=args.port, signature=args.signature,
                  output=args.output)
            return 0
        options = {k: v for k, v in vars(args).items() if k not in ("command", "model")}
        if args.command == "train":
            options["command"] = "python -m zoo " + shlex.join(argv)
        result = getattr(commands, args.command)(args.model, **options)
        if args.command == "export":
            print(f"Exported to {result}")
        return 0
    except ZooError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(f"\n{interrupt or 'interrupted; run the same command again to resume from the last checkpoint'}",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
