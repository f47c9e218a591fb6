"""Command line: ``python -m zoo <command> <model> [options]``.

Every command is written once (``zoo.core.recipes.commands``); a model adds only the
options its recipe declares, so ``python -m zoo sample gpt --help`` lists the
GPT's and an option another model has is an error, not silently ignored.
"""

import argparse
import contextlib
import dataclasses
import io
import os
import shlex
import sys

# Before TensorFlow loads: hide its C++ INFO/WARNING/ERROR start-up lines (a CPU-only machine
# logs "E0000 ... failed call to cuInit"). TF_CPP_MIN_LOG_LEVEL=0 brings them back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from zoo.core.runtime.errors import BadInputError, ZooError  # noqa: E402
from zoo.core.runtime.paths import EXPORTED_DIR  # noqa: E402
from zoo.core.runtime.quiet import import_tensorflow_quietly  # noqa: E402

DESCRIPTION = """\
A zoo of generative models for Keras 3 on TensorFlow: train them, export them to
SavedModel (TF Serving) and TFLite (LiteRT), and sample from the exported files.

commands:
  list      the models, their papers and whether an exported artifact is committed
  train     train a model on its dataset (resumes from the last checkpoint when run again)
  finetune  fine-tune an exported model on your data (LoRA adapters or --full) and export it
  export    export a trained run to exported/<model>/ (SavedModel, TFLite x3, manifest, samples)
  sample    generate from the committed exported artifact (no training, no network)
  evaluate  measure an exported artifact's quality (e.g. classifier Frechet distance)
  serve     serve exported models with TF Serving's REST and gRPC APIs (and print TF Serving's docker command)
  convert   convert a model you already have (a KerasHub GPT-2 / OPT preset) to the same export
  say       say the numbers of a text aloud: `say "Call 555-0123" --speaker jackson --output call.wav` is
            `sample tts --text "Call 555-0123" ...` (seq2seq reads the text, the TTS model speaks its digits)

Run `python -m zoo <command> <model> --help` for a command's options for that model.
"""

MODEL_COMMANDS = {
    "train": ("train a model", "Train a model on its dataset. Run again with the same --run-dir to resume from the "
                               "last checkpoint; Ctrl-C saves a checkpoint first."),
    "finetune": ("fine-tune an exported model on your data", "Fine-tune an exported model (sha256-checked) on "
                 "your data with low-rank adapters (or every weight, --full), merge them and export the result like "
                 "every model: SavedModel, TFLite x3, manifest. Run again to resume."),
    "export": ("export a trained run", "Export the newest checkpoint of a run to SavedModel, TFLite (float32, "
                                       "float16, int8) and manifest.json, measuring each variant."),
    "sample": ("generate from the exported artifact", "Generate from the committed exported artifact after "
                                                       "verifying its sha256 against manifest.json."),
    "evaluate": ("measure an exported artifact's quality", "Measure an exported artifact's quality, as the "
                                                           "manifest's metrics were."),
}


def _model_argument(parser, command):
    converted = " or keras-hub with --base: a folder `convert keras-hub` wrote" if command == "finetune" else ""
    parser.add_argument("model", help=f"model name, e.g. dcgan (see `python -m zoo list`){converted}")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m zoo", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("list", help="list the models")
    parser.model_commands = {}
    for command, (summary, description) in MODEL_COMMANDS.items():
        parser.model_commands[command] = commands.add_parser(command, help=summary, description=description)
        _model_argument(parser.model_commands[command], command)

    serve = commands.add_parser("serve", help="serve models with TF Serving's REST API",
                                description="Serve the exported SavedModels on a local server that speaks TF "
                                "Serving's REST API (GET /v1/models/NAME[/metadata], POST /v1/models/NAME:predict); "
                                "print the docker command that serves the same folders with TF Serving itself, and "
                                "write a sample REST request body that fits each model's signature.")
    serve.add_argument("model", nargs="+", help="model names, e.g. gan diffusion (see `python -m zoo list`)")
    serve.add_argument("--port", type=int, default=8501, help="REST port (TF Serving's default)")
    serve.add_argument("--grpc-port", type=int, default=8500,
                       help="gRPC PredictionService port (TF Serving's default); -1: no gRPC")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--enable-batching", action="store_true",
                       help="run concurrent requests to one signature as one batch (TF Serving's flag; up to 32 "
                            "rows, 2 ms wait)")
    serve.add_argument("--print-only", action="store_true",
                       help="print the docker command and write the request body, without starting a server")
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
    return parser


def add_model_options(command_parser, command, recipe):
    """The command's options for this model, generated from their declarations (the core's, then the model's)."""
    from zoo.core.recipes.options import command_options, default_of

    for option in command_options(recipe, command).values():
        if option.name == "preset":
            option = dataclasses.replace(option, choices=tuple(recipe.presets))
        option.add_to(command_parser, default=default_of(recipe, option))
    if command == "sample":
        command_parser.description = recipe.sample_help
    elif command == "evaluate":
        command_parser.description = recipe.evaluate_help
    elif command == "train":
        command_parser.description += f" Presets of {recipe.name}: {', '.join(recipe.presets)}."


def parse(parser, argv):
    """Parse ``argv``, adding the options the named model has for the command."""
    from zoo.core.recipes import registry

    # First pass without --help, so that `evaluate vae --help` lists the VAE's own options too.
    without_help = [a for a in argv if a not in ("-h", "--help")]
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # errors are reported by the real pass below
            args, _ = parser.parse_known_args(without_help)
    except SystemExit:
        return parser.parse_args(argv)  # prints the usage error (or the help) as argparse would
    command_parser = parser.model_commands.get(args.command)
    if command_parser is None:
        return parser.parse_args(argv)
    converted = args.command == "finetune" and args.model in registry.CONVERTERS  # e.g. finetune keras-hub
    if not converted:
        registry.check_model_name(args.model)  # from the folders: an unknown name is refused before TensorFlow loads
    import_tensorflow_quietly()
    recipe = registry.recipe_for_converted(args.model) if converted else registry.get_recipe(args.model)
    add_model_options(command_parser, args.command, recipe)
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
    if argv[:1] == ["say"]:  # shorthand: the text first, then sample tts's options
        rest = argv[1:]
        argv = ["sample", "tts", *(["--text", rest[0], *rest[1:]] if rest and not rest[0].startswith("-") else rest)]
    parser = build_parser()
    try:
        try:
            args = parse(parser, argv)
        except SystemExit as done:  # argparse's usage errors (2) and --help (0): the exit status, as a CLI's
            return done.code
        import_tensorflow_quietly()
        from zoo.core.recipes import commands

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

            if args.output and len(args.model) > 1:
                raise BadInputError("--output names one request body: give one model, or leave it out")
            for name in args.model:
                serve(name, exported_dir=args.exported_dir, port=args.port, signature=args.signature,
                      output=args.output)
            if not args.print_only:
                from zoo.core.runtime.model_server import serve_forever

                serve_forever(args.model, port=args.port, grpc_port=None if args.grpc_port < 0 else args.grpc_port,
                              host=args.host, exported_dir=args.exported_dir, batching=args.enable_batching)
            return 0
        options = {k: v for k, v in vars(args).items() if k not in ("command", "model")}
        if args.command in ("train", "finetune"):
            options["command"] = "python -m zoo " + shlex.join(argv)
        result = getattr(commands, args.command)(args.model, **options)
        if args.command in ("export", "finetune"):
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
