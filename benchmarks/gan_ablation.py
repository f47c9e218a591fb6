"""Which GAN technique buys what: one change at a time, each a full training run scored by the same FD.

Rows add one change to the row before (the GAN literature's stabilisers), every row
trained for the same number of epochs from the same seed; then the best row is
trained longer. Each row's run is an ordinary ``python -m zoo train`` run folder
(checkpoints, resume), so an interrupted study resumes where it stopped.

1. baseline: the recipe the committed model was trained with (BCE, non-saturating
   generator loss, Adam 2e-4 for both, dropout 0.3 in the discriminator);
2. + hinge loss (Lim & Ye 2017);
3. + spectral normalisation of the discriminator (Miyato et al. 2018);
4. + two time-scale learning rates, generator 1e-4 and discriminator 4e-4 (Heusel et al. 2017);
5. + R1 penalty on real images, gamma = 1 (Mescheder et al. 2018);
6. the row with the lowest FD, trained to ``--long-epochs``.

Two more rows branch from the baseline instead of the row before (the baseline was the best DCGAN row
after 20 epochs): a discriminator twice as wide, and batch 64 (twice the updates an epoch).

Every row is scored with its EMA generator and its raw generator (the EMA's row),
classifier FD on 10,000 samples from the zoo's evaluation noise.

    python -m benchmarks.gan_ablation --model dcgan --epochs 8 --long-epochs 40

Writes benchmarks/results/gan_ablation_<model>_<epochs>_epochs.json (after every row) and a picture
of each row's samples beside it (.png). A second study with more ``--epochs`` continues every row's run
from where the shorter one stopped.
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from zoo.core.recipes import commands  # noqa: E402
from zoo.core.nn.adversarial import generate_images  # noqa: E402
from zoo.core.export import machine_description, noise_batches  # noqa: E402
from zoo.core.runtime.files import write_json  # noqa: E402
from zoo.core.recipes.registry import get_recipe  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

# Each row: (name, what it adds, its cumulative train options).
ROWS = [
    ("baseline", "the recipe before this study: BCE, Adam 2e-4 both, dropout 0.3, batch 128", {}),
    ("hinge", "+ hinge loss", {"loss": "hinge"}),
    ("hinge_sn", "+ spectral norm in the discriminator", {"loss": "hinge", "spectral_norm": True}),
    ("hinge_sn_ttur", "+ two time-scale rates (G 1e-4, D 4e-4)",
     {"loss": "hinge", "spectral_norm": True, "learning_rate": 1e-4, "discriminator_learning_rate": 4e-4}),
    ("hinge_sn_ttur_r1", "+ R1 penalty (gamma 1)",
     {"loss": "hinge", "spectral_norm": True, "learning_rate": 1e-4, "discriminator_learning_rate": 4e-4,
      "r1_gamma": 1.0}),
    # Branches of the baseline, the best row after 20 epochs: what else might make it learn faster.
    ("baseline_wide_d", "baseline + discriminator twice as wide (2 convolutions of 128 and 256 channels)",
     {"discriminator_filters": 64}),
    ("baseline_batch64", "baseline + batch 64 (twice the updates an epoch)", {"batch_size": 64}),
]


def score(model, quality, eval_seed, num_samples):
    """FD and coverage of the EMA generator and of the raw one, on the same noise."""
    batches = noise_batches(model.latent_dim, num_samples, eval_seed, batch_size=500)
    result = {}
    for key, generator in (("ema", model.sampling_generator), ("raw", model.generator)):
        images = np.concatenate([np.asarray(generate_images(generator, b)) for b in batches])
        metrics = quality.evaluate(images)
        result[key] = {k: metrics[k] for k in ("frechet_distance", "classes_covered", "class_kl_from_uniform")}
    return result


def step_seconds(name, options, steps=40, repeats=3, batch_size=128):
    """Seconds per training step of one row's model on this machine: best of ``repeats`` x ``steps``
    steps on one batch after a warm-up (what a row's minutes would be with the machine to itself)."""
    import time

    import tensorflow as tf

    from zoo.core.training.trainer import build_optimizers

    recipe = get_recipe(name)
    batch_size = options.get("batch_size", batch_size)
    model = recipe.create_training_model("base", 0, **{k: v for k, v in options.items()
                                                       if k not in ("learning_rate", "batch_size")})
    recipe.compile(model, {"learning_rate": options.get("learning_rate", 2e-4),
                           **({"discriminator_learning_rate": options["discriminator_learning_rate"]}
                              if "discriminator_learning_rate" in options else {})})
    build_optimizers(model)
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch_size, 28, 28, 1)).astype(np.float32))
    step = tf.function(model.train_step)
    float(step(images)["generator_loss"])
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(steps):
            logs = step(images)
        float(logs["generator_loss"])
        best = min(best, (time.perf_counter() - started) / steps)
    return round(best, 4)


def train_and_score(name, run_dir, epochs, seed, options, quality, eval_seed, num_samples, minimal):
    recipe = get_recipe(name)
    flags = " ".join(f"--{k.replace('_', '-')} {v}" if not isinstance(v, bool) else f"--{k.replace('_', '-')}"
                     for k, v in options.items())
    command = f"python -m zoo train {name} --epochs {epochs} --seed {seed} --run-dir {run_dir} {flags}".strip()
    print(f"\n=== {command}", flush=True)
    extra = {"preset": "tiny", "limit": 512} if minimal else {}
    state = commands.train(name, epochs=epochs, seed=seed, run_dir=run_dir, command=command, verbose=2,
                           **{**extra, **options})
    model, _, _ = commands.load_run(recipe, run_dir)
    return {"command": command, "epochs": state["epoch"], "steps": state["step"],
            "training_minutes": round(state["training_seconds"] / 60, 1),
            **score(model, quality, eval_seed, num_samples)}, model


def markdown_table(results):
    """The study as a Markdown table: each row's change, FD of the EMA and the raw generator, minutes."""
    lines = ["| row | change | epochs (steps) | FD, EMA generator | FD, raw generator | digits covered | minutes |",
             "|---|---|---|---|---|---|---|"]
    entries = [(name, results["rows"][name]) for name, _, _ in ROWS if name in results.get("rows", {})]
    for _, entry in sorted(results.get("long_runs", {}).items(), key=lambda item: item[1]["epochs"]):
        entries.append((f"{entry['row']}, long", entry))
    best = min(entry["ema"]["frechet_distance"] for _, entry in entries) if entries else None
    for name, entry in entries:
        fd = entry["ema"]["frechet_distance"]
        lines.append(f"| {name} | {entry['adds']} | {entry['epochs']} ({entry['steps']:,}) | "
                     f"{'**' if fd == best else ''}{fd:.2f}{'**' if fd == best else ''} | "
                     f"{entry['raw']['frechet_distance']:.2f} | {entry['ema']['classes_covered']} | "
                     f"{entry['training_minutes']} |")
    return "\n".join(lines)


def with_rows_on_disk(output, results):
    """``results`` with the rows other processes (``--rows``) wrote to ``output`` since it was read."""
    if not os.path.isfile(output):
        return results
    with open(output) as f:
        on_disk = json.load(f)
    return {**results, "rows": {**results.get("rows", {}), **on_disk.get("rows", {})}}


def save_picture(model, fixed, run_dir, epochs, output, args, results, long_run=False):
    """Keep this row's 20 samples (fixed noise) in its run folder, then :func:`draw_picture`."""
    np.save(os.path.join(run_dir, f"ablation_samples_{epochs}_epochs.npy"), np.asarray(model.generate(fixed)))
    draw_picture(output, args, results, long_row=os.path.basename(run_dir) if long_run else None)


def draw_picture(output, args, results, long_row=None):
    """The study's picture: every scored row, one line of digits each, in the table's order
    (``..._epochs.png``); or, given ``long_row``, the long run's own (``..._epochs_long.png``: the row at
    ``--epochs``, then at each length the long run was scored at). The rows' picture is only redrawn when
    every scored row's samples are in this machine's runs folder, so a checkout that trained one row does
    not replace the committed picture with a partial one."""
    from zoo.core.data.plotting import save_image_grid

    def samples(row, done):
        return os.path.join(args.runs_dir, args.model, row, f"ablation_samples_{done}_epochs.npy")

    if long_row:
        lengths = sorted({args.epochs, *(entry["epochs"] for entry in results.get("long_runs", {}).values()
                                         if entry["row"] == long_row)})
        lines = [(f"{long_row} ({done} epochs)", samples(long_row, done)) for done in lengths]
        path, title = output.replace(".json", "_long.png"), f"{args.model}, {long_row} trained on"
    else:
        lines = [(name, samples(name, args.epochs)) for name, _, _ in ROWS if name in results["rows"]]
        path, title = output.replace(".json", ".png"), f"{args.model}, {args.epochs} epochs a row"
    missing = [label for label, file in lines if not os.path.isfile(file)]
    if missing and not long_row:
        print(f"{path} not redrawn: the samples of {', '.join(missing)} are not under {args.runs_dir}", flush=True)
        return
    lines = [(label, file) for label, file in lines if os.path.isfile(file)]
    save_image_grid(np.concatenate([np.load(file) for _, file in lines]), path, columns=20,
                    title=f"{title}; one line each: {', '.join(label for label, _ in lines)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dcgan", choices=["gan", "dcgan"])
    parser.add_argument("--epochs", type=int, default=8, help="epochs of every ablation row")
    parser.add_argument("--long-epochs", type=int, default=40, help="epochs of the best row's long run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-samples", type=int, default=10000)
    parser.add_argument("--runs-dir", default=os.path.join("runs", "gan-ablation"))
    parser.add_argument("--output", default=None,
                        help="default benchmarks/results/gan_ablation_<model>_<epochs>_epochs.json")
    parser.add_argument("--minimal", action="store_true", help="tiny preset, 512 digits: checks the script runs")
    parser.add_argument("--rows", default=None,
                        help="comma-separated rows to train and score (default: all, then the long run); "
                             "several processes may share one results file")
    parser.add_argument("--long-row", default=None,
                        help="only the long run, of this row (default: the scored row with the lowest FD)")
    parser.add_argument("--markdown", action="store_true",
                        help="only print the results file's table (Markdown), for the model card and BENCHMARKS.md")
    parser.add_argument("--step-costs", action="store_true",
                        help="only measure each row's seconds per step (run it with the machine to itself)")
    args = parser.parse_args(argv)

    from zoo.core.metrics.mnist import MnistQuality

    recipe = get_recipe(args.model)
    output = args.output or os.path.join(RESULTS, f"gan_ablation_{args.model}_{args.epochs}_epochs.json")
    results = {}
    if os.path.isfile(output):
        with open(output) as f:
            results = json.load(f)
    results.update({"model": args.model, "machine": machine_description(), "seed": args.seed,
                    "num_samples": args.num_samples, "metric": "classifier FD to MNIST test (lower is better)"})
    results.setdefault("rows", {})
    if args.markdown:
        print(markdown_table(results))
        return
    if args.step_costs:
        results["seconds_per_step"] = {name: step_seconds(args.model, options) for name, _, options in ROWS}
        write_json(output, results)
        print(json.dumps(results["seconds_per_step"], indent=1))
        return
    quality = MnistQuality()
    fixed = np.random.default_rng(0).standard_normal((20, recipe.presets["tiny" if args.minimal else "base"]
                                                        ["latent_dim"])).astype("float32")
    chosen = args.rows.split(",") if args.rows else [] if args.long_row else [name for name, _, _ in ROWS]
    unknown = sorted(set(chosen + ([args.long_row] if args.long_row else [])) - {name for name, _, _ in ROWS})
    if unknown:
        parser.error(f"unknown rows {unknown}; the rows are {[name for name, _, _ in ROWS]}")
    for name, adds, options in ROWS:
        if name not in chosen:
            continue
        run_dir = os.path.join(args.runs_dir, args.model, name)
        row, model = train_and_score(args.model, run_dir, args.epochs, args.seed, options, quality,
                                     recipe.eval_seed, args.num_samples, args.minimal)
        results = with_rows_on_disk(output, results)
        results["rows"][name] = {"adds": adds, "options": options, **row}
        write_json(output, results)
        save_picture(model, fixed, run_dir, args.epochs, output, args, results)
        print(f"{name}: FD {row['ema']['frechet_distance']} (EMA), {row['raw']['frechet_distance']} (raw), "
              f"{row['training_minutes']} min", flush=True)

    if args.rows:
        return  # the long run waits for a study that scored every row
    if args.long_row:
        best = next(r for r in ROWS if r[0] == args.long_row)
    else:
        best = min(ROWS, key=lambda r: results["rows"][r[0]]["ema"]["frechet_distance"])
    name, adds, options = best
    run_dir = os.path.join(args.runs_dir, args.model, name)  # resumed: the long run continues the best row
    row, model = train_and_score(args.model, run_dir, args.long_epochs, args.seed, options, quality,
                                 recipe.eval_seed, args.num_samples, args.minimal)
    results = with_rows_on_disk(output, results)
    # every length the long run was scored at stays in the table (the run resumes to a longer --long-epochs)
    results.setdefault("long_runs", {})[f"{name}, {args.long_epochs} epochs"] = {
        "row": name, "adds": f"{adds}, trained to {args.long_epochs} epochs", "options": options, "run_dir": run_dir,
        **row}
    write_json(output, results)
    save_picture(model, fixed, run_dir, args.long_epochs, output, args, results, long_run=True)
    print(json.dumps({k: v for k, v in results.items() if k not in ("rows", "long_runs")}, indent=1))
    print(markdown_table(results))


if __name__ == "__main__":
    main()
