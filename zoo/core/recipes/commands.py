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

from zoo.core.recipes.options import call_declared, own_values, resolve
from zoo.core.runtime.errors import ArtifactNotFoundError, BadInputError
from zoo.core.runtime.paths import EXPORTED_DIR


def _recipe(name_or_recipe):
    from zoo.core.recipes.registry import get_recipe

    return get_recipe(name_or_recipe) if isinstance(name_or_recipe, str) else name_or_recipe


def create_model(name, preset="base", seed=0):
    """A new, untrained model of the registered ``name`` at ``preset`` (see the model's presets)."""
    return _recipe(name).create_model(preset, seed)


def load(name_or_dir, runtime="tflite", variant="float32", exported_dir=EXPORTED_DIR, num_threads=None,
         explicit_variant=None):
    """A runner of an exported model, every file checked against the manifest's sha256 first.

    ``runner(signature, **inputs)`` checks the inputs (names, dtypes, shapes, ranges)
    and returns a dict of NumPy arrays. See :func:`zoo.core.runtime.runners.load_exported`.
    """
    from zoo.core.runtime.runners import load_exported, resolve_model_dir

    keras_signatures = None
    if runtime == "keras":  # the file's functions are its recipe's: the manifest says which model it is
        from zoo.core.recipes.registry import recipe_of_export

        keras_signatures = recipe_of_export(resolve_model_dir(name_or_dir, exported_dir)).keras_signatures
    if explicit_variant is None:
        explicit_variant = variant != "float32"
    if runtime != "tflite" and explicit_variant:
        raise BadInputError(f"--variant {variant} is a TFLite file; the {runtime} runtime has one model (leave "
                            "--variant out, or use --runtime tflite)")
    return load_exported(name_or_dir, runtime=runtime, variant=variant, exported_dir=exported_dir,
                         num_threads=num_threads, keras_signatures=keras_signatures)


def default_run_dir(name):
    return os.path.join("runs", name)


# === train ===
def train(name, *, verbose="auto", command=None, callbacks=(), devices=None, samples=True, lora_rank=None,
          validate_first=False, model_overrides=None, **options):
    """Train a registered model with resume, checkpoints, a NaN guard, TensorBoard and samples per epoch.

    ``options`` are the ``train`` command's (``python -m zoo train <model> --help``: the core's, e.g.
    ``epochs``, ``steps``, ``batch_size``, and the model's own), checked before anything runs; unset
    ones take their declared defaults (the model's ``defaults`` first). ``batch_size`` is the global
    batch, split over the strategy's replicas; ``samples=False`` skips the samples drawn each epoch
    (timing studies). ``lora_rank``: train low-rank adapters on the dense kernels instead of every weight
    (:mod:`zoo.core.nn.lora`; what :func:`finetune` does); ``model_overrides``: constructor arguments that replace
    the starting model's (a fine-tune's ``finetune_model_config``). Returns the final training state (epoch, step,
    training_seconds, metrics); the run directory holds what :func:`export` reads.
    """
    from zoo.core.training import trainer as training

    recipe = _recipe(name)
    o = resolve(recipe, "train", options)
    preset, epochs, steps, batch_size, seed = o["preset"], o["epochs"], o["steps"], o["batch_size"], o["seed"]
    own = own_values(recipe, "train", o)
    strategy = training.start(strategy=o["strategy"], seed=seed, epochs=epochs, batch_size=batch_size,
                              learning_rate=o["learning_rate"], limit=o["limit"], devices=devices)
    with strategy.scope():
        model = call_declared(recipe.create_training_model, preset, seed, **own)
        if model_overrides:
            model = with_config(model, **model_overrides)
    data = call_declared(recipe.training_data, model, batch_size=batch_size, seed=seed, limit=o["limit"], **own)
    adapters = None
    if lora_rank is not None:  # after the data: which embedding rows train depends on it
        from zoo.core.nn import lora

        base_config = training.model_config(model)
        rows = {part: data.token_ids for part in recipe.lora_embedding_rows}
        if rows and data.token_ids is None:
            raise ValueError(f"{recipe.name}'s training_data gives no token_ids for its lora_embedding_rows")
        with strategy.scope():
            lora.enable(model, lora_rank, seed, recipe.lora_trains_in_full,
                        embedding_ranks=recipe.lora_embedding_ranks, embedding_rows=rows)
        trainable, base, adapter_count = lora.parameter_counts(model)
        adapters = {"rank": lora_rank, "alpha": lora_rank, "layers": len(lora.adaptable_layers(model)),
                    "trained_in_full": list(recipe.lora_trains_in_full),
                    **({"embedding_ranks": dict(recipe.lora_embedding_ranks)} if recipe.lora_embedding_ranks
                       else {}),
                    **({"embedding_rows": {part: [int(i) for i in ids] for part, ids in rows.items()}} if rows
                       else {}),
                    "trainable_parameters": trainable, "adapter_parameters": adapter_count,
                    "base_parameters": base}
    epochs, total_steps = training.plan_steps(training.steps_per_epoch(data.dataset_fn), epochs, steps)
    config = {
        "model": recipe.name,
        "preset": preset,
        "model_config": base_config if adapters else training.model_config(model),
        **({"lora": adapters} if adapters else {}),
        "batch_size": batch_size,
        "learning_rate": o["learning_rate"],
        "seed": seed,
        **data.config,
        **({} if steps is None else {"steps": steps}),
        **call_declared(recipe.training_config, model, data, epochs=epochs, total_steps=total_steps,
                        max_steps=steps, **own),
    }
    with strategy.scope():
        recipe.compile(model, config)
    run_dir = o["run_dir"] or default_run_dir(recipe.name)
    return training.run(
        model, data.dataset_fn, config=config, run_dir=run_dir, epochs=epochs,
        command=command or (f"python -m zoo train {recipe.name} --preset {preset} "
                            f"{f'--epochs {epochs}' if steps is None else f'--steps {steps}'} --seed {seed}"),
        data=data.description, strategy=strategy, sample_fn=recipe.epoch_samples(model, seed) if samples else None,
        time_budget_minutes=o["time_budget_minutes"], fresh=o["fresh"], verbose=verbose,
        callbacks=[*callbacks, *(recipe.sample_callbacks(run_dir, seed) if samples else [])],
        validation_data=data.validation,
        checkpoint_every_steps=o["checkpoint_every_steps"], max_steps=steps, validate_first=validate_first,
        jit_compile=recipe.jit_compile if o["jit_compile"] is None else o["jit_compile"])


def with_config(model, **overrides):
    """A copy of ``model`` (its class, config and weights) with ``overrides`` in its config, e.g. ``dropout=0.0``."""
    unknown = sorted(set(overrides) - set(model.get_config()))
    if unknown:
        raise ValueError(f"{type(model).__name__}'s config has no {', '.join(unknown)}")
    copy = type(model).from_config({**model.get_config(), **overrides})
    copy.set_weights(model.get_weights())
    return copy


# === finetune ===
# adapters start at zero and are few: they take a larger step than the weights did (LoRA is commonly run at
# several times a full fine-tune's rate); a recipe's lora_learning_rate, where measured, replaces it
LORA_LEARNING_RATE_FACTOR = 10


def finetune(name, *, verbose="auto", command=None, **options):
    """Fine-tune an exported model on your data and export the result like every other model.

    ``options`` are the ``finetune`` command's (``python -m zoo finetune <model> --help``): ``data`` and
    ``output`` are required; ``base`` (default exported/<model>, sha256-checked), ``lora_rank`` (adapters
    only, the default) or ``full``, ``steps``, ``batch_size``, ``learning_rate``, ``seed``, ``run_dir``
    (default ``<output>.run``: run the same command again to resume), ``fresh``. The adapters are merged
    into the kernels before export, so the result has the base's architecture and signatures: every
    runtime, app loop and ``zoo.load`` takes it unchanged. Returns the export folder.
    """
    from zoo.core.export import export_model, training_record
    from zoo.core.training.trainer import read_history

    from zoo.core.recipes.registry import finetune_recipe

    recipe = finetune_recipe(name, options.get("base"), options.get("output"))
    o = resolve(recipe, "finetune", options)
    if recipe.finetune_data_option is None:
        from zoo.core.recipes.registry import model_names

        able = [n for n in model_names() if _recipe(n).finetune_data_option]
        raise BadInputError(f"{recipe.name} cannot be fine-tuned yet; these can: {', '.join(able)}")
    for required in ("data", "output"):
        if o[required] is None:
            raise BadInputError(f"--{required} is required: python -m zoo finetune {recipe.name} --data FILE "
                                "--output DIR")
    output = os.path.abspath(o["output"])
    base = o["base"] or os.path.join(EXPORTED_DIR, recipe.name)
    if not os.path.isfile(os.path.join(base, "manifest.json")):
        raise ArtifactNotFoundError(f"--base {base} is not an exported model (no manifest.json): give an exported "
                                    f"folder such as exported/{recipe.name}")
    if os.path.abspath(base) == output:
        raise BadInputError("--output is the base model's own folder: give another, the base stays as it is")
    run_dir = o["run_dir"] or output + ".run"
    trained_rate = recipe.defaults.get("learning_rate", 1e-3)
    learning_rate = o["learning_rate"] or (trained_rate if o["full"] else
                                           recipe.lora_learning_rate or LORA_LEARNING_RATE_FACTOR * trained_rate)
    train(recipe, verbose=verbose, samples=False, validate_first=True, model_overrides=recipe.finetune_model_config,
          lora_rank=None if o["full"] else o["lora_rank"],
          command=command or (f"python -m zoo finetune {recipe.name} --data {o['data']} --output {o['output']} "
                              + ("--full" if o["full"] else f"--lora-rank {o['lora_rank']}")
                              + f" --steps {o['steps']} --seed {o['seed']}"),
          fine_tune_from=base, **{recipe.finetune_data_option: o["data"]}, steps=o["steps"], epochs=1,
          batch_size=o["batch_size"], learning_rate=learning_rate, seed=o["seed"], run_dir=run_dir, fresh=o["fresh"])
    model, run, state = load_run(recipe, run_dir)
    if run["config"].get("lora"):
        from zoo.core.nn import lora

        model = lora.merged(model)
    training = training_record(run, state, read_history(run_dir))
    training["fine_tuned_from"] = fine_tuning_source(base)
    before, after = state.get("metrics_before", {}), state["metrics"]
    shared = [k for k in before if k in after]
    if shared:
        print("Validation on your data: " + ", ".join(f"{k} {before[k]:.4f} (base) -> {after[k]:.4f} (fine-tuned)"
                                                       for k in shared))
    plan = export_plan(recipe, model, training, **own_values(recipe, "finetune", o))
    return export_model(plan, os.path.dirname(output), folder=output)


def fine_tuning_source(base):
    """The manifest's record of the model a fine-tune started from: its folder, model and files' sha256."""
    from zoo.core.runtime.runners import read_manifest

    manifest = read_manifest(base, verify=False)  # load() verified every file before training
    keras_file = next(f for f in manifest["files"] if f["path"].endswith(".keras"))
    return {"folder": os.path.abspath(base), "model": manifest["model"], "keras_file": keras_file["path"],
            "keras_sha256": keras_file["sha256"]}


def training_data(name, model, *, batch_size, seed, limit, **options):
    """The recipe's :class:`zoo.core.data.datasets.TrainingData` outside ``train`` (a benchmark's), with the
    model's own ``train`` options checked and at their defaults unless given."""
    recipe = _recipe(name)
    o = resolve(recipe, "train", options)
    return call_declared(recipe.training_data, model, batch_size=batch_size, seed=seed, limit=limit,
                         **own_values(recipe, "train", o))


def training_config(name, model, data, *, epochs, total_steps, max_steps=None, **options):
    """The recipe's run config entries outside ``train`` (a benchmark's), as :func:`training_data`."""
    recipe = _recipe(name)
    o = resolve(recipe, "train", options)
    return call_declared(recipe.training_config, model, data, epochs=epochs, total_steps=total_steps,
                         max_steps=max_steps, **own_values(recipe, "train", o))


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
    if config.get("recognizer_only"):  # a run that trained only the recognizer (zoo.core.recipes.inpainting)
        model.freeze_denoiser()
    if config.get("lora"):  # a fine-tuning run's adapters, as it trained them
        from zoo.core.nn import lora

        lora.enable(model, config["lora"]["rank"], config["seed"], config["lora"].get("trained_in_full", ()),
                    embedding_ranks=config["lora"].get("embedding_ranks"),
                    embedding_rows=config["lora"].get("embedding_rows"))
    recipe.compile(model, config)
    training.build_optimizers(model)
    state = checkpoints.restore_latest(model, config)
    return model, run, state


# === export ===
def export(name, **options):
    """Export a run's newest checkpoint (or re-export an exported model) to SavedModel, TFLite x3 and a manifest.

    Args:
        options: the ``export`` command's: ``run_dir`` (the training run, default runs/<model>), ``from_exported`` (instead of a run, the folder of an exported
            model: its ``.keras`` file, sha256-checked, is exported again with today's export code,
            keeping its manifest's training record; for a change to the export alone), ``output_dir``,
            ``version`` and the model's own (e.g. ``num_eval_samples``).
    """
    from zoo.core.export import export_model, training_record

    recipe = _recipe(name)
    o = resolve(recipe, "export", options)
    run_dir = o["run_dir"]
    if o["reconvert"] is not None and (o["from_exported"] is None or o["output_dir"] is not None):
        raise BadInputError("--reconvert updates an exported folder in place: give --from-exported, no --output-dir")
    if o["from_exported"] is not None:
        if run_dir is not None:
            raise BadInputError("give a --run-dir or --from-exported, not both")
        runner = load(o["from_exported"], runtime="keras")
        model, training = runner.model, runner.manifest["training"]
    else:
        from zoo.core.training.trainer import read_history

        model, run, state = load_run(recipe, run_dir)
        training = training_record(run, state, read_history(run_dir or default_run_dir(recipe.name)))
    plan = export_plan(recipe, model, training, **o)
    if o["reconvert"] is not None:
        from zoo.core.export import reconvert_tflite

        return reconvert_tflite(plan, o["from_exported"], o["reconvert"])
    if o["from_exported"] is not None:
        plan.keras_file = runner.path  # the model is unchanged: ship its file as it was
    return export_model(plan, o["output_dir"] or EXPORTED_DIR, o["version"])


def export_plan(recipe, model, training, **options):
    """The recipe's :class:`zoo.core.export.ExportPlan`, with ``options`` checked (and defaulted) first."""
    o = resolve(recipe, "export", options)
    plan = call_declared(recipe.export_plan, model, training, **own_values(recipe, "export", o))
    plan.keras_signatures = plan.keras_signatures or recipe.keras_signatures
    return plan


def runner_of(recipe, o):
    """The runner ``sample`` and ``evaluate`` use, from their checked options."""
    return load(recipe.name, runtime=o["runtime"], variant=o["variant"] or "float32",
                exported_dir=o["exported_dir"] or EXPORTED_DIR, num_threads=o["threads"],
                explicit_variant=o["variant"] is not None)


# === sample ===
def sample(name, **options):
    """Generate from the exported model (sha256-checked) and write ``output``; returns its path."""
    recipe = _recipe(name)
    o = resolve(recipe, "sample", options)
    output = o["output"] or recipe.default_output()
    suffixes = (recipe.sample_suffix, *recipe.other_sample_suffixes)
    if os.path.splitext(output)[1].lower() not in suffixes:
        raise BadInputError(f"{recipe.name} writes {' or '.join(suffixes)} files; --output {output!r} "
                            f"should end in {' or '.join(suffixes)}")
    description = call_declared(recipe.sample, runner_of(recipe, o), output=output, seed=o["seed"],
                                **own_values(recipe, "sample", o))
    print(description or f"Wrote {output}")
    return output


# === evaluate ===
def evaluate(name, **options):
    """The model's quality metrics of an exported artifact, printed as a table (or JSON) and returned."""
    recipe = _recipe(name)
    o = resolve(recipe, "evaluate", options)
    metrics = evaluate_runner(recipe, runner_of(recipe, o), **own_values(recipe, "evaluate", o),
                              seed=o["seed"])
    runtime, variant = o["runtime"], o["variant"] or "float32"
    if o["json"]:
        print(json.dumps({"model": recipe.name, "runtime": runtime, "variant": variant, **metrics}, indent=2))
    else:
        print(metrics_table(recipe.name, runtime, variant, metrics))
    return metrics


def evaluate_runner(recipe, runner, seed=None, **options):
    """``recipe.evaluate`` on any runner (a benchmark's, a model in memory), ``options`` checked and defaulted."""
    o = resolve(recipe, "evaluate", {**options, "seed": seed})
    return call_declared(recipe.evaluate, runner, seed=recipe.eval_seed if o["seed"] is None else o["seed"],
                         **own_values(recipe, "evaluate", o))


def metrics_table(name, runtime, variant, metrics):
    """``metric  value`` lines for the terminal (lists and dicts stay out: ``--json`` has them)."""
    from zoo.core.export import format_table

    what = f"{runtime} {variant}" if runtime == "tflite" else runtime
    rows = [[k, f"{v:.4g}" if isinstance(v, float) else v] for k, v in metrics.items()
            if isinstance(v, (int, float, str))]
    return f"{name} ({what})\n" + format_table(["metric", "value"], rows)
