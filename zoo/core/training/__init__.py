"""The training loop every model runs (checkpoints, exact resume, NaN guard, distribution) and its optimizers."""
