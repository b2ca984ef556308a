"""How far is a profile's regime from the student's plateau? The student alone trained
for each of several epoch counts (chapter 1's plateau figure, ``plateau.csv``)."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from ..profiles import Profile, fit_kwargs, load_experiment_data
from ..train import fit, seed_everything
from .recipes import student
from .results import resume, write_rows

__all__ = ["plateau", "PLATEAU_FIELDS"]

PLATEAU_FIELDS = ["train_per_class", "epochs", "seed", "accuracy", "train_accuracy", "wall_seconds"]


def _key(row: dict) -> tuple[int, int, int]:
    return int(row["train_per_class"]), int(row["epochs"]), int(row["seed"])


def plateau(out: Path, profile: Profile, epochs: list[int], seeds=None, train_per_class=None,
            train_set=None, test_set=None) -> list[dict]:
    """The student alone trained for each number of ``epochs`` (its schedule stretched to
    fit), at each seed: is the profile's regime near the student's plateau?

    Rows (``PLATEAU_FIELDS``): final test ``accuracy`` and training accuracy of the last
    epoch. Resumes: rows already in ``out`` are kept.
    """
    if train_per_class is not None:
        profile = replace(profile, train_per_class=train_per_class)
    seeds = list(profile.seeds if seeds is None else seeds)
    if train_set is None or test_set is None:
        train_set, test_set = load_experiment_data(profile)
    rows, done = resume(out, PLATEAU_FIELDS, _key)
    todo = [(e, s) for e in epochs for s in seeds if (profile.train_per_class, e, s) not in done]
    for n_epochs, seed in tqdm(todo, desc=f"plateau, {profile.train_per_class} per class", unit="run"):
        start = time.perf_counter()
        seed_everything(seed)
        history = fit(student(profile), train_set, test_set, seed=seed, progress=False,
                      **dict(fit_kwargs(profile), epochs=n_epochs, eval_every=None))
        rows.append({"train_per_class": profile.train_per_class, "epochs": n_epochs, "seed": seed,
                     "accuracy": round(history.final_accuracy, 2),
                     "train_accuracy": round(history.epochs[-1]["train_acc"], 2),
                     "wall_seconds": round(time.perf_counter() - start, 1)})
        write_rows(out, rows, PLATEAU_FIELDS)
    return rows
