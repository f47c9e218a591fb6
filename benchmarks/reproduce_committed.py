"""Re-measure every committed model's manifest numbers and compare them with their manifests.

    python -m benchmarks.reproduce_committed                       # every committed model
    python -m benchmarks.reproduce_committed --models tts video    # some

Each model's numbers are re-measured with its spec's ``Reproduce`` protocol (``zoo/<model>/spec.py``): the
same re-measurement as ``tests/test_committed_artifacts.py``, which runs only the ones that take seconds
(``Reproduce.in_test_suite``). The diffusion models' are their guided DDIM over every image their metrics
use (2.3 minutes). Exits 1 if a number differs from its manifest.
"""

import argparse
import functools
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def diffusion():
    """The Keras file's FD and guided accuracy on the manifest's own samples (2.5x faster here than LiteRT,
    whose numbers the manifest shows equal to it)."""
    from zoo.core.runtime.runners import load_exported
    from zoo.core.metrics.mnist import MnistQuality
    from zoo.diffusion.recipe import quality_of

    runner = load_exported("diffusion", runtime="keras")
    stored = runner.manifest["metrics"]["keras"]
    measured = quality_of(runner, MnistQuality(), stored["num_samples"], stored["guidance"], progress=False)
    return [("frechet_distance", measured["frechet_distance"], stored["frechet_distance"], 1e-3),
            ("guided_accuracy", measured["guided_accuracy"], stored["guided_accuracy"], 0.0)]


def text2image():
    from zoo.core.runtime.runners import load_exported
    from zoo.text2image.recipe import prompt_quality

    runner = load_exported("text2image", runtime="savedmodel")  # the fastest runtime here
    stored = runner.manifest["metrics"]["savedmodel"]
    measured = prompt_quality(runner, stored["images_per_prompt"], progress=False)
    return [(key, measured[key], stored[key], 1e-3) for key in ("prompt_accuracy", "bold_thin_ink_ratio",
                                                               "frechet_distance")]


def measurements():
    """``{model: measure() -> [(metric, measured, stored, tolerance)]}`` for every committed model."""
    from zoo.core.recipes.registry import model_names
    from zoo.core.recipes.spec import get_spec, remeasure_committed
    from zoo.core.runtime.paths import EXPORTED_DIR

    own = {"diffusion": diffusion, "text2image": text2image}
    found = {}
    for name in model_names():
        if not os.path.isfile(os.path.join(EXPORTED_DIR, name, "manifest.json")):
            continue
        if name in own:
            found[name] = own[name]
        elif get_spec(name).reproduce is not None:
            found[name] = functools.partial(remeasure_committed, name)
    return found


def main(argv=None):
    found = measurements()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(found), default=sorted(found))
    args = parser.parse_args(argv)
    failed = False
    for name in args.models:
        started = time.time()
        for metric, measured, stored, tolerance in found[name]():
            same = abs(measured - stored) <= tolerance
            failed |= not same
            print(f"{name:11s} {metric:38s} measured {measured:.4f}  manifest {stored:.4f}  "
                  f"{'ok' if same else 'DIFFERS'}", flush=True)
        print(f"{name}: {time.time() - started:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
