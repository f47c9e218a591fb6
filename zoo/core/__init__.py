"""What every model shares, in packages with one role each and one direction of imports.

A package may import the packages before it in ``LAYERS`` and itself, never one after it;
``apps`` imports nothing of the zoo but itself (phone apps copy it), so every package may import it (the
in-graph loops take their constants from the app loops they must match). ``tests/test_import_layers.py``
reads every import (top level and inside functions) and fails on a cycle or an import
against this order. Models (``zoo/<model>/``) import these packages, never each other: a
model that composes another says so in its recipe's ``requires``.

    apps       NumPy-only loops a phone app runs around a TFLite file (DDIM, text sampling, PNG, music,
               seeded numbers)
    runtime    what an app or a TF Serving client needs: errors, files, the manifest's signature
               schema, loading and running exported models with checked inputs, UTF-8 rows
    data       datasets and what goes in and out of models: MNIST, text, spoken digits,
               captions, audio features and WAV files, pictures
    nn         the shared network families: GAN blocks, U-Net + DDIM, the decoder LM and its
               sampling, EMA, input checks, distribution helpers for train steps
    training   the training loop: checkpoints, resume, NaN guard, schedules and optimizers
    export     SavedModel + TFLite x3 + manifest, measured in every runtime
    metrics    the classifiers behind the quality numbers (MNIST, spoken digits)
    recipes    the Recipe a model subclasses, its typed options, the registry and the commands
"""

LAYERS = ("runtime", "data", "nn", "training", "export", "metrics", "recipes")
STANDALONE = ("apps",)  # imports no zoo module
