"""train, export, sample and evaluate, written once for every registered model.

The CLI (``python -m zoo``) and the Python API (``zoo.train``, ``zoo.load``...)
both call these; a model takes part through its recipe only.

    import zoo
    model = zoo.create_model("dcgan", "tiny")
    zoo.train("dcgan", preset="tiny", epochs=1, limit=256, run_dir="runs/dcgan-tiny")
    runner = zoo.load("dcgan", runtime="tflite", variant="int8")
"""

import json
import os

from zoo.core.runtime.errors import ArtifactNotFoundError, BadInputError
from zoo.core.runtime.paths import EXPORTED_DIR


def _recipe(name_or_recipe):
    from zoo.core.recipes.registry import get_recipe

    return get_recipe(name_or_recipe) if isinstance(name_or_recipe, str) else name_or_recipe


def create_model(name, preset="base", seed=0):
    """A new, untrained model of the registered ``name`` at ``preset`` (see the model's presets)."""
    return _recipe(name).create_model(preset, seed)


def load(name_or_dir, runtime="tflite", variant="float32", exported_dir=EXPORTED_DIR, num_threads=None):
    """A runner of an exported model, every file checked against the manifest's sha256 first.

    ``runner(signature, **inputs)`` checks the inputs (names, dtypes, shapes, ranges)
    and returns a dict of NumPy arrays. See :func:`zoo.core.runtime.runners.load_exported`.
    """
    from zoo.core.runtime.runners import load_exported, read_manifest, resolve_model_dir

    keras_signatures = None
    if runtime == "keras":  # the file's functions are its recipe's: the manifest says which model it is
        model_dir = resolve_model_dir(name_or_dir, exported_dir)
        keras_signatures = _recipe(read_manifest(model_dir, verify=False)["model"]).keras_signatures
    return load_exported(name_or_dir, runtime=runtime, variant=variant, exported_dir=exported_dir,
                         num_threads=num_threads, keras_signatures=keras_signatures)


def default_run_dir(name):
    return os.path.join("runs", name)


# === train ===
def train(name, *, preset=None, epochs=None, steps=None, batch_size=None, learning_rate=None, seed=0, run_dir=None,
          fresh=False, time_budget_minutes=None, limit=None, verbose="auto", command=None, callbacks=(),
          strategy="default", checkpoint_every_steps=None, devices=None, samples=True, jit_compile=None, **options):
    """Train a registered model with resume, checkpoints, a NaN guard, TensorBoard and samples per epoch.

    ``steps`` (optional) trains that many optimizer steps instead of ``epochs`` whole epochs;
    ``jit_compile`` (default: the recipe's) compiles the training step with XLA.
    Unset options take the recipe's defaults; ``options`` are the model's own (see
    ``python -m zoo train <model> --help``). ``batch_size`` is the global batch, split
    over the strategy's replicas; ``samples=False`` skips the samples drawn each epoch
    (timing studies). Returns the final training state (epoch, step,
    training_seconds, metrics); the run directory holds what :func:`export` reads.
    """
    from zoo.core.training import trainer as training

    recipe = _recipe(name)
    defaults = recipe.defaults
    preset = defaults["preset"] if preset is None else preset
    epochs = defaults["epochs"] if epochs is None else epochs
    batch_size = defaults["batch_size"] if batch_size is None else batch_size
    learning_rate = defaults["learning_rate"] if learning_rate is None else learning_rate
    strategy = training.start(strategy=strategy, seed=seed, epochs=epochs, batch_size=batch_size,
                              learning_rate=learning_rate, limit=limit, devices=devices)
    with strategy.scope():
        model = recipe.create_training_model(preset, seed, **options)
    data = recipe.training_data(model, batch_size=batch_size, seed=seed, limit=limit, **options)
    epochs, total_steps = training.plan_steps(training.steps_per_epoch(data.dataset_fn), epochs, steps)
    config = {
        "model": recipe.name,
        "preset": preset,
        "model_config": training.model_config(model),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        **data.config,
        **({} if steps is None else {"steps": steps}),
        **recipe.training_config(model, data, epochs=epochs, total_steps=total_steps, max_steps=steps, **options),
    }
    with strategy.scope():
        recipe.compile(model, config)
    run_dir = run_dir or default_run_dir(recipe.name)
    return training.run(
        model, data.dataset_fn, config=config, run_dir=run_dir, epochs=epochs,
        command=command or (f"python -m zoo train {recipe.name} --preset {preset} "
                            f"{f'--epochs {epochs}' if steps is None else f'--steps {steps}'} --seed {seed}"),
        data=data.description, strategy=strategy, sample_fn=recipe.epoch_samples(model, seed) if samples else None,
        time_budget_minutes=time_budget_minutes, fresh=fresh, verbose=verbose,
        callbacks=[*callbacks, *(recipe.sample_callbacks(run_dir, seed) if samples else [])],
        validation_data=data.validation,
        checkpoint_every_steps=checkpoint_every_steps, max_steps=steps,
        jit_compile=recipe.jit_compile if jit_compile is None else jit_compile)


def load_run(name, run_dir=None):
    """``(model, run, state)``: a run's model rebuilt from ``run.json`` and its newest intact checkpoint
    (optimizer state included, compiled as the run trained)."""
    from zoo.core.training import trainer as training

    recipe = _recipe(name)
    run_dir = run_dir or default_run_dir(recipe.name)
    checkpoints = training.CheckpointDirectory(run_dir)
    if not checkpoints.steps():
        raise ArtifactNotFoundError(f"no checkpoint in {run_dir}; train first (python -m zoo train {recipe.name})")
    with open(os.path.join(run_dir, "run.json")) as f:
        run = json.load(f)
    config = run["config"]
    model = recipe.create_model(config["preset"], config["seed"]) if config["preset"] in recipe.presets else None
    if model is None or training.model_config(model) != config["model_config"]:
        # e.g. a fine-tuned run sized by the model it started from, or a GAN trained with other options
        model = recipe.model_class(**config["model_config"])
    recipe.compile(model, config)
    training.build_optimizers(model)
    state = checkpoints.restore_latest(model, config)
    return model, run, state


# === export ===
def export(name, *, run_dir=None, output_dir=EXPORTED_DIR, version=1, from_exported=None, **options):
    """Export a run's newest checkpoint (or re-export an exported model) to SavedModel, TFLite x3 and a manifest.

    Args:
        from_exported: instead of a run, the folder of an exported model: its ``.keras``
            file (sha256-checked) is exported again with today's export code, keeping
            its manifest's training record. For a change to the export alone.
        options: the model's own (e.g. ``num_eval_samples``).
    """
    from zoo.core.export import export_model, training_record

    recipe = _recipe(name)
    if from_exported is not None:
        if run_dir is not None:
            raise BadInputError("give a --run-dir or --from-exported, not both")
        runner = load(from_exported, runtime="keras")
        model, training = runner.model, runner.manifest["training"]
    else:
        from zoo.core.training.trainer import read_history

        model, run, state = load_run(recipe, run_dir)
        training = training_record(run, state, read_history(run_dir or default_run_dir(recipe.name)))
    plan = recipe.export_plan(model, training, **options)
    plan.keras_signatures = plan.keras_signatures or recipe.keras_signatures
    if from_exported is not None:
        plan.keras_file = runner.path  # the model is unchanged: ship its file as it was
    return export_model(plan, output_dir, version)


# === sample ===
def sample(name, *, runtime="tflite", variant="float32", exported_dir=EXPORTED_DIR, output=None, seed=0,
           threads=None, **options):
    """Generate from the exported model (sha256-checked) and write ``output``; returns its path."""
    recipe = _recipe(name)
    output = output or recipe.default_output()
    if os.path.splitext(output)[1].lower() != recipe.sample_suffix:
        raise BadInputError(f"{recipe.name} writes {recipe.sample_suffix} files; --output {output!r} "
                            f"should end in {recipe.sample_suffix}")
    runner = load(name, runtime=runtime, variant=variant, exported_dir=exported_dir, num_threads=threads)
    description = recipe.sample(runner, output=output, seed=seed, **options)
    if description:
        print(description)
    return output


# === evaluate ===
def evaluate(name, *, runtime="tflite", variant="float32", exported_dir=EXPORTED_DIR, seed=None, json_output=False,
             threads=None, **options):
    """The model's quality metrics of an exported artifact, printed as a table (or JSON) and returned."""
    recipe = _recipe(name)
    runner = load(name, runtime=runtime, variant=variant, exported_dir=exported_dir, num_threads=threads)
    metrics = recipe.evaluate(runner, seed=recipe.eval_seed if seed is None else seed, **options)
    if json_output:
        print(json.dumps({"model": recipe.name, "runtime": runtime, "variant": variant, **metrics}, indent=2))
    else:
        print(metrics_table(recipe.name, runtime, variant, metrics))
    return metrics


def metrics_table(name, runtime, variant, metrics):
    """``metric  value`` lines for the terminal (lists and dicts stay out: ``--json`` has them)."""
    from zoo.core.export import format_table

    what = f"{runtime} {variant}" if runtime == "tflite" else runtime
    rows = [[k, f"{v:.4g}" if isinstance(v, float) else v] for k, v in metrics.items()
            if isinstance(v, (int, float, str))]
    return f"{name} ({what})\n" + format_table(["metric", "value"], rows)
