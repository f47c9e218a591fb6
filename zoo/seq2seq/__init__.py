"""Text normalization and number translation (English, Chinese): a byte-level Transformer encoder-decoder."""
