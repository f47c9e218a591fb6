"""A byte-level GPT: a decoder-only Transformer over UTF-8 bytes, with a key/value cache.

Radford et al. (2018, 2019), "Improving Language Understanding by Generative
Pre-Training" / "Language Models are Unsupervised Multitask Learners"; the
layout follows nanoGPT (pre-norm blocks, learned positions, tied embeddings).

The vocabulary is the 256 byte values, so any UTF-8 text (Chinese included) can be
read and written with no tokenizer file. The network, its key/value cache
(``prefill``/``decode_step``) and the in-graph ``generate`` loop, all builtin-only in
TFLite, and its training step are :class:`zoo.core.nn.decoder.DecoderLM`'s (a converted
KerasHub GPT-2 runs and fine-tunes with the same code); this file adds the GPT's presets.
"""

import keras

from zoo.core.nn.decoder import DecoderLM

# "tiny" keeps the tests fast; "nanogpt_cpu" is nanoGPT's CPU recipe (for the
# benchmark); "base" is the committed model.
PRESETS = {
    "tiny": {"num_layers": 2, "num_heads": 2, "hidden_dim": 32, "context_length": 32, "dropout": 0.0},
    "nanogpt_cpu": {"num_layers": 4, "num_heads": 4, "hidden_dim": 128, "context_length": 64, "dropout": 0.0},
    "base": {"num_layers": 6, "num_heads": 6, "hidden_dim": 192, "context_length": 128, "dropout": 0.1},
}


@keras.saving.register_keras_serializable(package="zoo")
class GPT(DecoderLM):
    """Byte-level GPT: tokens ``int32 [batch, time]`` (bytes 0-255) -> logits ``[batch, time, 256]``.

    The network, its key/value cache, in-graph generation and training step are
    :class:`zoo.core.nn.decoder.DecoderLM`'s; this class is the byte-level GPT's presets and ``.keras`` name.

    Args:
        num_layers, num_heads, hidden_dim: the Transformer's size.
        context_length: the most positions it attends over (learned position embeddings).
        dropout: on embeddings, attention and MLP outputs, during training only.
        seed: seeds the initial weights and dropout.
    """

    def __init__(self, num_layers=4, num_heads=4, hidden_dim=128, context_length=64, dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(num_layers, num_heads, hidden_dim, context_length, dropout, seed, **kwargs)
