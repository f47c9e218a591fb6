"""Datasets (MNIST, tiny Shakespeare, spoken digits; ``$ZOO_DATA_DIR`` first) and what goes in and out of
models: captions, audio features and WAV files, pictures."""
