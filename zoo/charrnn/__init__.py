"""Karpathy's char-rnn on bytes: ``model.py`` (network), ``recipe.py`` (the rest), ``tflite_generate.py`` (the phone app's streaming loop)."""
