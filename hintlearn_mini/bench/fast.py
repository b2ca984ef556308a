"""FSP's headline, "fast optimization", measured (``fsp-fast.csv``, chapter 5).

Yim et al. (2017), §4.1: from the FSP initialisation a network reaches the accuracy of
a full schedule in a third of it. Here the student trains for each of several epoch
budgets (its schedule stretched to fit) from its random initialisation and from the
FSP initialisation (stage 1 of ``recipes.FSP_TWO_STAGE``, once per seed, shared by
every budget). Same seeds, same data, same views.
"""
from __future__ import annotations

import copy
from pathlib import Path

from tqdm.auto import tqdm

from ..profiles import Profile, fit_kwargs, load_experiment_data, stage_one_kwargs
from ..train import fit, seed_everything
from ..zoo import profile_teacher
from .recipes import FSP_TWO_STAGE, STUDENT_ALONE, student
from .results import resume, write_rows

__all__ = ["fast_optimization", "FAST_FIELDS"]

FAST_FIELDS = ["method", "seed", "epochs", "accuracy", "train_accuracy", "stage_one_epochs", "train_per_class"]


def _key(row: dict) -> tuple:
    return row["method"], int(row["seed"]), int(row["epochs"]), int(row["train_per_class"])


def fast_optimization(out: Path, profile: Profile, budgets=(8, 16, 32, 64), seeds=None,
                      teacher=None, train_set=None, test_set=None) -> list[dict]:
    """Rows ``FAST_FIELDS`` of the student alone and of the FSP initialisation, trained
    for each of ``budgets`` epochs at each seed. Resumes: rows already in ``out`` are kept."""
    seeds = list(profile.seeds if seeds is None else seeds)
    if train_set is None or test_set is None:
        train_set, test_set = load_experiment_data(profile)
    profile = profile.for_pair(*profile.teacher_student_pairs()[0])
    rows, done = resume(out, FAST_FIELDS, _key)
    teacher = teacher if teacher is not None else profile_teacher(profile)
    for seed in tqdm(seeds, desc="fast optimization", unit="seed"):
        todo = [(r, e) for r in (STUDENT_ALONE, FSP_TWO_STAGE) for e in budgets
                if (r.name, seed, e, profile.train_per_class) not in done]
        if not todo:
            continue
        seed_everything(seed)
        initial = student(profile)
        fsp_init = None
        for recipe, epochs in todo:
            if recipe.stage_one is not None and fsp_init is None:  # stage 1 as the benchmark trains it
                distiller, parameters = recipe.stage_one(profile, teacher, copy.deepcopy(initial))
                fit(distiller, train_set, None, seed=seed, parameters=parameters, progress=False,
                    **stage_one_kwargs(profile))
                fsp_init = distiller.student
            start = fsp_init if recipe.stage_one is not None else initial
            history = fit(copy.deepcopy(start), train_set, test_set, seed=seed, progress=False,
                          **dict(fit_kwargs(profile), epochs=epochs, eval_every=None))
            rows.append({"method": recipe.name, "seed": seed, "epochs": epochs,
                         "accuracy": round(history.final_accuracy, 2),
                         "train_accuracy": round(history.epochs[-1]["train_acc"], 2),
                         "stage_one_epochs": profile.stage_one_epochs(),
                         "train_per_class": profile.train_per_class})
            write_rows(out, rows, FAST_FIELDS)
    return rows
