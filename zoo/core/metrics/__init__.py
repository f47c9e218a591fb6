"""The classifiers behind the zoo's quality numbers: ``mnist`` (image FD, digit coverage) and
``spoken_digits`` (speech FD, digit and speaker accuracy). Retrain with ``python -m zoo.core.metrics.mnist``
or ``python -m zoo.core.metrics.spoken_digits``. ``text``: a language model's validation loss (no classifier)."""
