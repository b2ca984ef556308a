"""The data axis: every method at more than one number of training images
(``bench-data-axis.csv``, chapter 8).

A hint gives thousands of regression targets per image where KD gives ten numbers, so
the number of images a student sees may decide which of them helps more. Here the
methods train on each data size of :data:`DATA_AXIS_SIZES`, each size for the epochs of
its own plateau (``convergence.plateau_epochs``, read on validation accuracy, the rule of
the laptop profile), on the seeds given for it; the rows are the benchmark's
(``bench.FIELDS``), their budget (``epochs``, ``train_per_class``) telling the sizes apart.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..profiles import Profile, load_experiment_splits
from .convergence import plateau_epochs
from .runner import run_benchmark

__all__ = ["DATA_AXIS_SIZES", "data_axis"]

# images per class -> seeds (five at the smallest size, where the seeds disagree most)
DATA_AXIS_SIZES = {100: (0, 1, 2, 3, 4), 500: (0, 1, 2)}


def data_axis(out: Path, profile: Profile, recipes, plateau_rows: list[dict], sizes=None, teacher=None,
              splits_of=load_experiment_splits, jobs: int = 1, threads: int = 1) -> list[dict]:
    """Train ``recipes`` at every size of ``sizes`` (default :data:`DATA_AXIS_SIZES`),
    each for its plateau's epochs (from ``plateau_rows``); resumable, one row per run
    in ``out``. ``splits_of(profile)``: the (train, validation, test) sets of a size."""
    rows = []
    for per_class, seeds in (sizes or DATA_AXIS_SIZES).items():
        sized = replace(profile, train_per_class=per_class, epochs=plateau_epochs(plateau_rows, per_class))
        train_set, validation_set, test_set = splits_of(sized)
        rows = run_benchmark(out, sized, recipes, list(seeds), teacher=teacher, train_set=train_set,
                             test_set=test_set, validation_set=validation_set, jobs=jobs, threads=threads)
    return rows
