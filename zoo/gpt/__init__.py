"""Byte-level GPT (decoder-only Transformer) trained on tiny Shakespeare, with a key/value cache.
``model.py`` (network), ``recipe.py`` (the rest), ``tflite_generate.py`` (the phone app's loop)."""
