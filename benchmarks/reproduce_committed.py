"""Re-measure the committed diffusion and text-to-image metrics and compare them with their manifests.

    python -m benchmarks.reproduce_committed            # both, 2.3 minutes on this 2-core CPU

The two slowest re-measurements of committed artifacts (guided DDIM over every image their metrics use),
kept out of the test suite for its time budget; the other models' metrics are re-measured by
``tests/test_committed_artifacts.py``. Exits 1 if a number differs from its manifest.
"""

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


def main():
    failed = False
    for name, measure in (("diffusion", diffusion), ("text2image", text2image)):
        started = time.time()
        rows = measure()
        for metric, measured, stored, tolerance in rows:
            same = abs(measured - stored) <= tolerance
            failed |= not same
            print(f"{name:11s} {metric:20s} measured {measured:.4f}  manifest {stored:.4f}  "
                  f"{'ok' if same else 'DIFFERS'}")
        print(f"{name}: {time.time() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
