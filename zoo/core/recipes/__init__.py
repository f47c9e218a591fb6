"""The recipe a model subclasses (``recipe``), its typed options (``options``), the registry, the commands
(train, export, sample, evaluate) and the recipe families (``images``, ``text``)."""
