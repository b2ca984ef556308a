"""Every method tuned alike, on the validation split (``tuning-<profile>.csv``, chapter 8).

Each method's own setting (``recipes.KNOBS``: its loss weight, KD's temperature too) is
trained at the same factors of its default (``recipes.TUNING_FACTORS``: ×0.1 to ×10) on
the same seeds, with the same data, and every run records its validation and its test
accuracy. :func:`choose` picks, for every method, the setting of the highest mean
*validation* accuracy; test accuracy is only ever reported for the chosen settings
(``python -m hintlearn_mini.bench --tuned``), never used to choose.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..profiles import Profile, load_experiment_splits
from .recipes import KNOBS, METHODS, TUNING_FACTORS, Recipe
from .results import rows_of
from .runner import run_benchmark

__all__ = ["TUNING_SEEDS", "BENCHMARK_SEEDS", "tuning_grid", "tune", "Choice", "choose", "tuned_recipes",
           "tuned_benchmark"]

TUNING_SEEDS = (0, 1, 2)
BENCHMARK_SEEDS = (0, 1, 2, 3, 4)  # the default and the tuned settings: the same seeds


def tuning_grid(factors=TUNING_FACTORS) -> list[Recipe]:
    """Every knob at every factor, each recipe once (a method with two knobs, KD, has
    its default once)."""
    return list(dict.fromkeys(knob.at(f) for knob in KNOBS for f in factors))


def tune(out: Path, profile: Profile, seeds=TUNING_SEEDS, factors=TUNING_FACTORS, teacher=None, splits=None,
         jobs: int = 1, threads: int = 1) -> list[dict]:
    """Train the grid at ``seeds`` (resumable, as the benchmark: one row per run in
    ``out``, columns ``bench.FIELDS``). ``splits``: (train, validation, test), by
    default the profile's (``profiles.load_experiment_splits``)."""
    train_set, validation_set, test_set = splits if splits is not None else load_experiment_splits(profile)
    return run_benchmark(out, profile, tuning_grid(factors), list(seeds), teacher=teacher, train_set=train_set,
                         test_set=test_set, validation_set=validation_set, jobs=jobs, threads=threads)


@dataclass(frozen=True)
class Choice:
    """The setting :func:`choose` picked for ``method`` (its default recipe)."""
    method: Recipe
    chosen: Recipe          # ``method`` itself when the default won
    setting: str            # the knob's name, e.g. "β"
    factor: float           # × the default
    value: float            # the setting's value
    validation: float       # the chosen setting's mean validation accuracy
    seeds: tuple            # the seeds every setting of the method ran


def choose(rows: list[dict], profile: Profile, factors=TUNING_FACTORS) -> dict[str, Choice]:
    """For every tuned method, the setting of its grid with the highest mean validation
    accuracy over the seeds all its settings ran (a tie goes to the setting nearer the
    default, then to the smaller one). An error names a method whose grid is not complete (a setting with no
    validated run, or fewer than two shared seeds)."""
    validation: dict[str, dict[int, float]] = {}
    for r in rows_of(rows, profile):
        if r.get("val_accuracy") not in (None, ""):
            validation.setdefault(r["method"], {})[int(r["seed"])] = float(r["val_accuracy"])
    choices = {}
    for method in dict.fromkeys(knob.recipe for knob in KNOBS):
        options = [(knob, f) for knob in KNOBS if knob.recipe is method for f in factors]
        missing = [knob.at(f).name for knob, f in options if knob.at(f).name not in validation]
        seeds = set.intersection(*(set(validation.get(knob.at(f).name, {})) for knob, f in options))
        if missing or len(seeds) < 2:
            raise ValueError(f"the tuning grid of {method.name!r} is not complete at {profile.name}'s budget: "
                             f"no validated runs of {missing or 'two shared seeds'}; run "
                             f"`python -m hintlearn_mini.bench --tune --profile {profile.name}`")
        shared = sorted(seeds)
        score = {(knob, f): statistics.mean(validation[knob.at(f).name][s] for s in shared) for knob, f in options}
        knob, factor = max(score, key=lambda option: (score[option], -abs(math.log(option[1])), -option[1]))
        choices[method.name] = Choice(method, knob.at(factor), knob.setting, factor,
                                      knob.default(profile) * factor, score[knob, factor], tuple(shared))
    return choices


def tuned_recipes(tuning_rows: list[dict], profile: Profile) -> list[Recipe]:
    """Every method of the benchmark at its chosen setting (:func:`choose`), in the
    benchmark's order; a method without a setting of its own (the student alone) as it is."""
    choices = choose(tuning_rows, profile)
    return [choices[m.name].chosen if m.name in choices else m for m in METHODS]


def tuned_benchmark(out: Path, profile: Profile, tuning_rows: list[dict], seeds=BENCHMARK_SEEDS, teacher=None,
                    splits=None, jobs: int = 1, threads: int = 1) -> list[dict]:
    """Every method at its default and at the setting :func:`choose` picked from
    ``tuning_rows``, on ``seeds`` (resumable; a run the grid already trained at a seed is
    trained again only if ``out`` is another file)."""
    chosen = [choice.chosen for choice in choose(tuning_rows, profile).values()]
    recipes = list(dict.fromkeys([*METHODS, *chosen]))
    train_set, validation_set, test_set = splits if splits is not None else load_experiment_splits(profile)
    return run_benchmark(out, profile, recipes, list(seeds), teacher=teacher, train_set=train_set,
                         test_set=test_set, validation_set=validation_set, jobs=jobs, threads=threads)
