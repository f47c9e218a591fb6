"""What the text models' recipes share: the ``sample`` command's sampling options, the training text (tiny
Shakespeare, or the user's UTF-8 file for ``train --text`` and ``finetune --data``) and its windows."""

from zoo.core.data import datasets as data
from zoo.core.runtime.errors import BadInputError
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


def window_batches(train, validation, *, window, batch_size, seed, limit, what, unit="byte", validation_batch=64):
    """``(dataset_fn, validation)``: shuffled ``window``-long batches of the ``train`` ids for each epoch, and
    the ``validation`` ids' windows in order; a clear error when ``validation`` has no whole window."""
    if len(validation) < window + 1:
        raise BadInputError(f"the validation part (last 10%) of {what} has {len(validation)} {unit}s; at least "
                            f"{window + 1} are needed (the model's context + 1). Use a longer text.")

    def dataset_fn(epoch):
        return data.text_dataset(train, window=window, batch_size=batch_size, seed=seed, epoch=epoch, limit=limit)

    return dataset_fn, data.text_dataset(validation, window=window, batch_size=validation_batch, shuffle=False,
                                         drop_remainder=False, limit=None if limit is None else max(limit // 4, 1))
