"""Run the benchmark: every (pair, recipe, seed) not yet in the results file, in one
process or in ``jobs`` worker processes side by side.

The book's networks are too small to keep two threads busy, so on a CPU of a few cores
several one-thread processes train more images per second than one process using every
core. Measured on two cores (resnet32 -> resnet8, bf16, six runs of 16 epochs): 597
images/s with one one-thread process, 973 with one two-thread process, 1,056 with
``jobs=2`` one-thread processes. A run's numbers depend on its thread count, not on how
many ran beside it: the rows of ``jobs=2`` equal those of ``jobs=1`` at the same
``threads``. Each row records both; ``jobs > 1`` means its wall time was measured beside
other runs.

Under ``torchrun`` (``hintlearn_mini.distributed``) the processes train each run together,
one run after the other (``jobs`` must be 1): every process reads process 0's view of
the results file, and process 0 alone writes the rows.
"""
from __future__ import annotations

import math
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..distributed import is_writer, processes
from ..profiles import Profile, load_experiment_data
from ..zoo import profile_teacher
from .recipes import METHODS, Recipe, train_recipe
from .results import FIELDS, budget, resume, write_rows

__all__ = ["run_benchmark"]


@dataclass(frozen=True)
class _Task:
    """One run to train: a recipe at a seed, on one pair of a profile."""

    recipe: Recipe
    seed: int
    teacher: str
    student: str


def _row_key(row: dict) -> tuple:
    return (row["profile"], str(row["epochs"]), str(row.get("train_per_class") or ""), row["method"],
            int(row["seed"]), row["teacher"], row["student"], row.get("precision") or "fp32")


def _task_key(task: _Task, profile: Profile) -> tuple:
    """The key of the row ``task`` will write (:func:`_row_key`)."""
    epochs, per_class = budget(profile)
    return _row_key({"profile": profile.name, "epochs": epochs, "train_per_class": per_class,
                     "method": task.recipe.name, "seed": task.seed, "teacher": task.teacher,
                     "student": task.student, "precision": profile.resolved_precision()})


def run_benchmark(out, profile: Profile, recipes=METHODS, seeds=None, teacher=None, train_set=None,
                  test_set=None, pairs=None, jobs: int = 1, threads: int = 1, validation_set=None) -> list[dict]:
    """Train every (pair, recipe, seed) not yet in ``out``; write each row as it finishes.

    ``pairs`` defaults to the profile's (teacher, student) pairs, ``seeds`` to its seeds;
    a teacher, train set and test set passed in replace the profile's (the tests run on
    tiny data this way); ``validation_set`` adds each run's ``val_accuracy``. ``jobs``
    processes of ``threads`` CPU threads each train side by side (``jobs=1``: in this
    process).
    """
    pairs = list(pairs or profile.teacher_student_pairs())
    seeds = list(profile.seeds if seeds is None else seeds)
    rows, done = resume(out, FIELDS, _row_key)
    todo = [_Task(recipe, seed, t, s) for t, s in pairs for seed in seeds for recipe in recipes]  # seed by seed
    todo = [task for task in todo if _task_key(task, profile) not in done]
    if not todo:
        return rows
    if train_set is None or test_set is None:
        train_set, test_set = load_experiment_data(profile)
    context = (profile, teacher, train_set, test_set, threads, jobs, validation_set)
    desc = f"{profile.name}, {profile.resolved_precision()}, {jobs} job(s)"
    finished = _rows_as_finished(todo, context, jobs)
    for row in tqdm(finished, total=len(todo), desc=desc, unit="run", disable=not is_writer()):
        rows.append(row)
        write_rows(out, rows, FIELDS)
    return rows


def _rows_as_finished(todo, context, jobs: int):
    """Each task's row, in the order the runs finish."""
    if jobs == 1:
        threads = torch.get_num_threads()
        try:
            _start_worker(*context)
            yield from map(_train_row, todo)
        finally:
            torch.set_num_threads(threads)  # the caller's, as it was
        return
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no thread pool copied by fork
    with ProcessPoolExecutor(jobs, mp_context=spawn, initializer=_start_worker, initargs=context) as pool:
        for future in as_completed([pool.submit(_train_row, task) for task in todo]):
            yield future.result()


_WORKER: dict = {}  # this process's share of the benchmark: profile, data, teachers by pair


def _start_worker(profile, teacher, train_set, test_set, threads, jobs, validation_set) -> None:
    torch.set_num_threads(threads)
    _WORKER.clear()
    _WORKER.update(profile=profile, teacher=teacher, train_set=train_set, test_set=test_set,
                   threads=threads, jobs=jobs, validation_set=validation_set, teachers={})


def _pair_teacher(pair: Profile):
    """The given teacher, else the profile's teacher of this pair (loaded once)."""
    if _WORKER["teacher"] is not None:
        return _WORKER["teacher"]
    teachers = _WORKER["teachers"]
    if pair.teacher not in teachers:
        teachers[pair.teacher] = profile_teacher(pair)
    return teachers[pair.teacher]


def _train_row(task: _Task) -> dict:
    """Train one task in this process; its row of the results file."""
    profile = _WORKER["profile"]
    pair = profile.for_pair(task.teacher, task.student)
    teacher = _pair_teacher(pair)
    start = time.perf_counter()
    history, extra = train_recipe(task.recipe, pair, teacher, _WORKER["train_set"], _WORKER["test_set"],
                                  task.seed, validation_set=_WORKER["validation_set"])
    validation = history.final_validation_accuracy  # NaN without a validation set: left empty
    wall = history.seconds if history.cached else time.perf_counter() - start  # its training time
    return {"method": task.recipe.name, "seed": task.seed, "accuracy": round(history.final_accuracy, 2),
            "val_accuracy": "" if math.isnan(validation) else round(validation, 2),
            "wall_seconds": round(wall, 1), "extra_parameters": extra,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "profile": profile.name, "teacher": task.teacher, "student": task.student,
            "precision": profile.resolved_precision(), "epochs": profile.epochs,
            "train_per_class": profile.train_per_class, "threads": torch.get_num_threads(),
            "jobs": _WORKER["jobs"], "processes": processes()[1]}
