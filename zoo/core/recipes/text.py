"""What the byte-level text models' recipes share: the ``sample`` command's sampling options, and the training
text (tiny Shakespeare, or the user's UTF-8 file for ``train --text`` and ``finetune --data``)."""

from zoo.core.data import datasets as data
from zoo.core.nn.text_generation import SAMPLING_DEFAULTS
from zoo.core.recipes.options import Option

TEXT_OPTION = Option("text", str, None, "train on this UTF-8 text file (first 90%% train, last 10%% validation) "
                                        "instead of tiny Shakespeare", commands=("train",))


def training_text(text=None):
    """``(train, validation)`` uint8 byte arrays: tiny Shakespeare or the user's UTF-8 file, split 90/10."""
    if text is None:
        return data.tiny_shakespeare("train"), data.tiny_shakespeare("validation")
    content = data.text_bytes(text)
    return data.split_bytes(content, "train"), data.split_bytes(content, "validation")


def sampling_options(prompt_help, max_new_tokens):
    """``python -m zoo sample``'s options for a byte-level text model."""
    sample = ("sample",)
    return (Option("prompt", str, "ROMEO:", prompt_help, commands=sample, text=True),
            Option("max_new_tokens", int, max_new_tokens, "bytes to generate", commands=sample, minimum=1),
            Option("temperature", float, SAMPLING_DEFAULTS["temperature"], "0 = greedy (always the most likely byte); higher = more random",
                   commands=sample, minimum=0.0),
            Option("top_k", int, SAMPLING_DEFAULTS["top_k"], "sample among the k most likely bytes (0: all)", commands=sample, minimum=0),
            Option("top_p", float, SAMPLING_DEFAULTS["top_p"], "nucleus sampling: the most likely bytes up to this probability mass, "
                                         "in (0, 1]", commands=sample, above=0.0, maximum=1.0))
