"""Byte-level GPT (decoder-only Transformer) trained on tiny Shakespeare, with a key/value cache."""

from zoo.core.registry import ModelSpec, register


def add_arguments(command, parser):
    """The GPT's own command-line options."""
    if command == "train":
        parser.add_argument("--fine-tune-from", default=None,
                            help="start from a trained model: an exported folder (e.g. exported/gpt) or a run "
                                 "directory (e.g. runs/gpt), instead of random weights")
        parser.add_argument("--text", default=None,
                            help="train on this UTF-8 text file (first 90%% train, last 10%% validation) "
                                 "instead of tiny Shakespeare")
    if command == "sample":
        parser.add_argument("--prompt", default="ROMEO:", help="the text to continue (default 'ROMEO:')")
        parser.add_argument("--max-new-tokens", type=int, default=200, help="bytes to generate (default 200)")
        parser.add_argument("--temperature", type=float, default=0.8,
                            help="0 = greedy (always the most likely byte); higher = more random (default 0.8)")
        parser.add_argument("--top-k", type=int, default=0, help="sample among the k most likely bytes (0: all)")
        parser.add_argument("--top-p", type=float, default=0.95,
                            help="nucleus sampling: the most likely bytes up to this probability mass, in (0, 1]")
    if command == "evaluate":
        parser.add_argument("--max-windows", type=int, default=None,
                            help="score only the first N validation windows (default: all)")


SPEC = register(ModelSpec(
    name="gpt",
    summary="byte-level GPT on tiny Shakespeare: UTF-8 prompt -> continuation (key/value cache)",
    paper="Radford et al. (2018/2019), Improving Language Understanding by Generative Pre-Training; "
          "Language Models are Unsupervised Multitask Learners",
    presets=("tiny", "nanogpt_cpu", "base"),
    model="zoo.gpt.model:GPT",
    train="zoo.gpt.train:train",
    export="zoo.gpt.export:export",
    sample="zoo.gpt.export:sample",
    evaluate="zoo.gpt.export:evaluate",
    add_arguments=add_arguments,
))
