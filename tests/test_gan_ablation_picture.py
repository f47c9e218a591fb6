"""``benchmarks/gan_ablation.py`` redraws the committed picture of its rows only when every scored row's
samples are on this machine, and gives the long run a picture of its own."""

import argparse
import os

import numpy as np


from benchmarks import gan_ablation  # noqa: E402


class FixedGenerator:
    """Stands in for a trained GAN: the picture code only asks it for ``generate(noise)``."""

    def __init__(self, value):
        self.value = value

    def generate(self, noise):
        return np.full((len(noise), 28, 28, 1), self.value, np.float32)


def test_rows_picture_is_kept_until_every_row_is_on_disk_and_the_long_run_has_its_own(tmp_path):
    args = argparse.Namespace(runs_dir=str(tmp_path / "runs"), model="dcgan", epochs=6, long_epochs=12)
    output = str(tmp_path / "gan_ablation_dcgan_6_epochs.json")
    fixed = np.zeros((20, 64), np.float32)
    results = {"rows": {"baseline": {}, "hinge": {}}}
    run_dirs = {name: tmp_path / "runs" / "dcgan" / name for name in results["rows"]}
    for run_dir in run_dirs.values():
        run_dir.mkdir(parents=True)
    rows_picture = output.replace(".json", ".png")

    gan_ablation.save_picture(FixedGenerator(0.2), fixed, str(run_dirs["hinge"]), 6, output, args, results)
    assert not os.path.exists(rows_picture)  # the baseline's samples are not here: a partial picture would lie

    gan_ablation.save_picture(FixedGenerator(0.8), fixed, str(run_dirs["baseline"]), 6, output, args, results)
    assert os.path.getsize(rows_picture) > 1000
    drawn = os.path.getmtime(rows_picture)

    results["long_runs"] = {"hinge, 12 epochs": {"row": "hinge", "epochs": 12}}
    gan_ablation.save_picture(FixedGenerator(0.5), fixed, str(run_dirs["hinge"]), 12, output, args, results,
                              long_run=True)
    assert os.path.getmtime(rows_picture) == drawn  # the long run leaves the rows' picture alone
    assert os.path.getsize(output.replace(".json", "_long.png")) > 1000
    assert np.all(np.load(run_dirs["hinge"] / "ablation_samples_12_epochs.npy") == 0.5)
