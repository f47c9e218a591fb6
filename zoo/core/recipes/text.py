"""What the byte-level text models' recipes share: the ``sample`` command's sampling options."""

from zoo.core.recipes.recipe import Option


def sampling_options(prompt_help, max_new_tokens):
    """``python -m zoo sample``'s options for a byte-level text model."""
    return [Option("--prompt", default="ROMEO:", help=prompt_help),
            Option("--max-new-tokens", type=int, default=max_new_tokens,
                   help=f"bytes to generate (default {max_new_tokens})"),
            Option("--temperature", type=float, default=0.8,
                   help="0 = greedy (always the most likely byte); higher = more random (default 0.8)"),
            Option("--top-k", type=int, default=0, help="sample among the k most likely bytes (0: all)"),
            Option("--top-p", type=float, default=0.95,
                   help="nucleus sampling: the most likely bytes up to this probability mass, in (0, 1]")]
