"""The benchmark: every method of the book on the same pair, data and seeds.

    python -m hintlearn_mini.bench [--profile laptop] [--out bench-laptop.csv]
                                   [--methods KD AT ...] [--seeds 0 1] [--jobs 2] [--step-costs]
                                   [--pair resnet32x4:resnet8x4] [--device cuda]
                                   [--precision fp32 bf16] [--diagnostics] [--controls]
    python -m hintlearn_mini.bench --plateau 8 16 32 64 [--per-class 200] [--out plateau.csv]
    python -m hintlearn_mini.bench --fast-optimization 8 16 32 64 [--out fsp-fast.csv]
    python -m hintlearn_mini.bench --tune [--jobs 2] [--out tuning-laptop.csv]
    python -m hintlearn_mini.bench --tuned tuning-laptop.csv [--jobs 2] [--out bench-laptop.csv]
    python -m hintlearn_mini.bench --data-axis plateau.csv --tuned tuning-laptop.csv [--jobs 2]

One file per job, each readable top to bottom:

- ``recipes.py``: the benchmark's runs as named :class:`Recipe` objects (the methods,
  the epoch-matched controls, the diagnostics) and ``train_recipe``, which trains any;
- ``results.py``: the tidy CSV (one row per finished run: method, seed, test and
  validation accuracy, wall time, extra parameters, peak memory, profile, pair,
  precision, budget, threads, jobs), written atomically and resumed by key, and the
  queries chapters read it with;
- ``runner.py``: ``run_benchmark``, in one process or ``--jobs N`` worker processes;
- ``speed.py``: images per second of every method against a plain float32 loop and KD;
- ``convergence.py``, ``fast.py``: the two side experiments (the student's plateau, FSP's
  fast optimization);
- ``tuning.py``: every method's own setting over one grid, chosen on the validation split;
- ``cli.py``: the command line.

The paper profile (``--profile paper``, a GPU) runs the CIFAR-100 setting of the CRD and
ReviewKD benchmarks on each of its pairs (resnet32x4 → resnet8x4, wrn_40_2 → wrn_16_2):
240 epochs, the published loss weights (ReviewKD's per pair), 30 initialisation epochs
for two-stage methods. Its teachers are trained with the same recipe the first time
(``zoo.profile_teacher``) and cached; CIFAR-100 is downloaded by torchvision. Its
students train with plain momentum, as RepDistiller's do (``Profile.nesterov``); the
laptop profile keeps Nesterov momentum, as ReviewKD's code has it.
"""
from . import recipes
from .cli import main
from .fast import FAST_FIELDS, fast_optimization
from .convergence import PLATEAU_FIELDS, plateau
from .recipes import ALL_RECIPES, CONTROLS, DIAGNOSTICS, METHODS, Recipe, find_recipes, train_recipe
from .results import FIELDS, accuracies, read_results, resume, run_seconds, write_rows
from .runner import run_benchmark
from .speed import STEP_CASES, STEP_FIELDS, StepCase, plain_loop, step_costs
from .tuning import Choice, choose, tune, tuned_benchmark, tuning_grid

__all__ = ["recipes", "Recipe", "METHODS", "CONTROLS", "DIAGNOSTICS", "ALL_RECIPES", "find_recipes", "train_recipe",
           "FIELDS", "read_results", "write_rows", "resume", "accuracies", "run_seconds", "run_benchmark",
           "STEP_CASES", "STEP_FIELDS", "StepCase", "plain_loop", "step_costs", "PLATEAU_FIELDS", "plateau",
           "FAST_FIELDS", "fast_optimization", "tune", "tuning_grid", "choose", "Choice", "tuned_benchmark", "main"]
