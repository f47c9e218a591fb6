"""Optimizer recipes more than one model trains with."""


def schedule_span(epochs, max_steps=None):
    """How a schedule's length reads in a run's config: ``over N epochs``, or ``over N steps`` for a ``--steps`` run."""
    return f"over {epochs} epochs" if max_steps is None else f"over {max_steps} steps"


def cosine_decay_config(epochs, total_steps, max_steps=None):
    """The run-config entries of a cosine learning-rate decay over the whole run: part of the
    config, so a resume with another ``--epochs`` (another schedule) is refused, not silently mixed."""
    return {"learning_rate_schedule": f"cosine decay to 10% {schedule_span(epochs, max_steps)}", "epochs": epochs,
            "decay_steps": total_steps}


def adam_with_cosine_decay(model, config):
    """Adam whose learning rate decays from ``config["learning_rate"]`` to 10% of it over ``decay_steps``."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(config["learning_rate"], decay_steps=config["decay_steps"],
                                                      alpha=0.1)
    model.compile(optimizer=keras.optimizers.Adam(schedule))


class CosineDecayAdam:
    """A recipe mixin, ``class MyRecipe(CosineDecayAdam, Recipe)``: Adam with its learning rate decaying by
    cosine to 10% over the whole run, how most of the zoo trains. A recipe with more config entries
    extends ``super().training_config(...)``; one whose optimizer steps differ from the batches (charrnn:
    one per window) overrides it."""

    def training_config(self, model, data, *, epochs, total_steps, max_steps=None):
        return cosine_decay_config(epochs, total_steps, max_steps)

    def compile(self, model, config):
        adam_with_cosine_decay(model, config)


WARMUP_FRACTION = 0.02  # of all steps, at least 10


def warmup_cosine_config(epochs, total_steps, max_steps=None, warmup_steps=None):
    """The run-config entries of :func:`adamw_with_warmup`'s schedule: ``warmup_steps`` (default
    :data:`WARMUP_FRACTION` of the run, at least 10) then a cosine decay over the rest of ``total_steps``."""
    from zoo.core.runtime.errors import BadInputError

    if warmup_steps is not None and not 0 < warmup_steps < total_steps:
        raise BadInputError(f"--warmup-steps must be between 1 and the run's {total_steps - 1} steps, "
                            f"got {warmup_steps}")
    return {
        "learning_rate_schedule": f"linear warm-up, then cosine decay to 10% {schedule_span(epochs, max_steps)}",
        "warmup_steps": warmup_steps or max(10, int(WARMUP_FRACTION * total_steps)),
        "epochs": epochs,
        "decay_steps": total_steps,
    }


def adamw_with_warmup(model, config, weight_decay=0.1, undecayed=("bias", "gamma", "beta")):
    """AdamW, warm-up then cosine decay to 10% (nanoGPT's recipe; the language models'); weights whose names
    contain one of ``undecayed`` are not decayed. Gradient clipping is the model's train step's (an
    optimizer's own would clip each replica's part of the gradient under tf.distribute)."""
    import keras

    peak = config["learning_rate"]
    warmup = config["warmup_steps"]
    schedule = keras.optimizers.schedules.CosineDecay(
        peak / warmup, decay_steps=max(config["decay_steps"] - warmup, 1), alpha=0.1, warmup_target=peak,
        warmup_steps=warmup)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay, beta_1=0.9, beta_2=0.99)
    # decay the matrices only: biases and layer-norm scales/offsets keep their values
    optimizer.exclude_from_weight_decay(var_names=list(undecayed))
    model.compile(optimizer=optimizer)
