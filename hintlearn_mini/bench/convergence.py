"""How far is a profile's regime from the student's plateau? The student alone trained
for each of several epoch counts (chapter 1's plateau figure, ``plateau.csv``), and the
rule that reads a data size's epochs off those runs (:func:`plateau_epochs`)."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from ..profiles import Profile, fit_kwargs, load_experiment_data
from ..stats import doubling_gains
from ..train import fit, seed_everything
from .recipes import student
from .results import resume, write_rows

__all__ = ["plateau", "PLATEAU_FIELDS", "plateau_epochs", "PLATEAU_CRITERION"]

PLATEAU_FIELDS = ["train_per_class", "epochs", "seed", "accuracy", "val_accuracy", "train_accuracy", "wall_seconds"]
# The book's plateau: the first length whose doubling adds less than this many points
PLATEAU_CRITERION = 2.0


def _key(row: dict) -> tuple[int, int, int]:
    return int(row["train_per_class"]), int(row["epochs"]), int(row["seed"])


def plateau(out: Path, profile: Profile, epochs: list[int], seeds=None, train_per_class=None,
            train_set=None, test_set=None, validation_set=None) -> list[dict]:
    """The student alone trained for each number of ``epochs`` (its schedule stretched to
    fit), at each seed: is the profile's regime near the student's plateau?

    Rows (``PLATEAU_FIELDS``): final test ``accuracy``, ``val_accuracy`` on
    ``validation_set`` (empty without one) and training accuracy of the last epoch.
    Resumes: rows already in ``out`` are kept.
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
                      validation_set=validation_set, **dict(fit_kwargs(profile), epochs=n_epochs, eval_every=None))
        validation = "" if validation_set is None else round(history.final_validation_accuracy, 2)
        rows.append({"train_per_class": profile.train_per_class, "epochs": n_epochs, "seed": seed,
                     "accuracy": round(history.final_accuracy, 2), "val_accuracy": validation,
                     "train_accuracy": round(history.epochs[-1]["train_acc"], 2),
                     "wall_seconds": round(time.perf_counter() - start, 1)})
        write_rows(out, rows, PLATEAU_FIELDS)
    return rows


def plateau_epochs(rows: list[dict], train_per_class: int, criterion: float = PLATEAU_CRITERION) -> int:
    """The epochs of a data size's plateau, read off its ``plateau`` rows on *validation*
    accuracy: the shortest length E whose doubling to 2E adds less than ``criterion``
    points on average (``stats.doubling_gains``, paired by seed). An error, saying what
    to run, when no measured doubling of that size is below it."""
    sized = [dict(r, accuracy=r["val_accuracy"]) for r in rows
             if int(r["train_per_class"]) == train_per_class and r.get("val_accuracy") not in (None, "")]
    gains = doubling_gains(sized)
    flat = [g["epochs"] for g in gains if g["gain"] < criterion]
    if not flat:
        measured = ", ".join(f"{g['epochs']} -> {g['doubled']}: {g['gain']:+.2f}" for g in gains) or "none"
        raise ValueError(f"no plateau measured on validation for {train_per_class} images per class (doublings: "
                         f"{measured}); run `python -m hintlearn_mini.bench --plateau ... --per-class "
                         f"{train_per_class}` with longer runs")
    return min(flat)
