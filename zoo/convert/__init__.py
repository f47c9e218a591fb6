"""Converters: models users already have, to the zoo's export contract (``python -m zoo convert``)."""
