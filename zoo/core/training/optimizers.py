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
