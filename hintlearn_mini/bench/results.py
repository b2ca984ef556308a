"""The benchmark's results files: tidy CSV rows, written atomically, resumed by key.

Every resumable experiment (the benchmark, the plateau, fast optimization) keeps its
rows in one CSV file, rewritten whole after every run (:func:`write_rows`: a killed run
leaves the previous complete file), and on a restart trains only the runs whose key is
not there yet (:func:`resume`). The queries chapters read the benchmark through
(:func:`accuracies`, :func:`run_seconds`) select one budget and one pair.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..distributed import is_writer, process_zero_says
from ..profiles import Profile
from .recipes import ALL_RECIPES

__all__ = ["FIELDS", "read_results", "write_rows", "resume", "accuracies", "run_seconds", "rows_of"]

# One row per finished run. accuracy: on the test images; val_accuracy: on the validation
# split (settings are chosen on it; empty for a run without one). threads: the CPU threads
# it trained with; jobs: how many runs trained side by side (its wall time was measured
# beside jobs - 1 others); processes: how many processes trained the run together
# (torchrun; 1 otherwise).
FIELDS = ["method", "seed", "accuracy", "val_accuracy", "wall_seconds", "extra_parameters", "peak_rss_mb",
          "profile", "teacher", "student", "precision", "epochs", "train_per_class", "threads", "jobs",
          "processes"]
# Columns added after rows were stored: an older row reads them as empty ("not recorded").
RECORDED_LATER = ("threads", "jobs", "val_accuracy", "processes")
NUMERIC = {"seed": int, "epochs": int, "accuracy": float}  # columns a resumed file must parse


def read_results(path: Path, fields: list[str] | None = None) -> list[dict]:
    """The rows of a results file (empty if it does not exist yet).

    With ``fields`` (the columns this file is written with), a resuming run's view:
    a row with a missing, extra or unparsable value (a file cut mid-row by a crash, an
    edit by hand) is dropped with one line saying so, the file is rewritten without it,
    and the run it held is trained again.
    """
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if fields is None:
        return rows
    good = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        for column in RECORDED_LATER:
            if column in fields and column not in row:
                row[column] = ""
        problem = _row_problem(row, fields)
        if problem is None:
            good.append(row)
        else:
            print(f"{path}, line {number}: dropping a broken row ({problem}); its run is trained again")
    if len(good) != len(rows):
        write_rows(path, good, fields)
    return good


def _row_problem(row: dict, fields: list[str]) -> str | None:
    if None in row:
        return "more values than columns"
    missing = [f for f in fields if row.get(f) is None]
    if missing:
        return f"no value for {', '.join(missing)}"
    for column, kind in NUMERIC.items():
        if column in fields:
            try:
                kind(row[column])
            except ValueError:
                return f"{column} = {row[column]!r} is not a number"
    return None


def write_rows(path: Path, rows: list[dict], fields: list[str]) -> None:
    """Write the whole file through a temporary one: a killed benchmark leaves the
    previous complete file, never half a row. Under torch.distributed only process 0
    writes (the others trained the same run with it)."""
    if not is_writer():
        return
    tmp = Path(path).with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def resume(path: Path, fields: list[str], key) -> tuple[list[dict], set]:
    """The rows already in ``path`` (broken ones dropped, see :func:`read_results`) and
    the set of ``key(row)`` of the finished runs: an experiment trains only the runs
    whose key is not in it, and appends each row with :func:`write_rows`. Under
    torch.distributed, every process gets process 0's reading, so all train the same runs."""
    rows = read_results(path, fields) if is_writer() else None
    rows = process_zero_says(rows)
    return rows, {key(row) for row in rows}


def budget(profile: Profile) -> tuple[str, str]:
    """A profile's budget as its rows store it: (epochs, images per class); the CSV holds
    None as an empty field. A row of another budget is another run."""
    return str(profile.epochs), "" if profile.train_per_class is None else str(profile.train_per_class)


def rows_of(rows: list[dict], profile: Profile, student: str | None = None,
            teacher: str | None = None) -> list[dict]:
    """The rows of ``profile``'s budget (epochs, images per class) and of one pair
    (default: the profile's first)."""
    first_teacher, first_student = profile.teacher_student_pairs()[0]
    pair = (profile.name, teacher or first_teacher, student or first_student)
    return [r for r in rows if (r["profile"], r["teacher"], r["student"]) == pair
            and (str(r.get("epochs")), str(r.get("train_per_class") or "")) == budget(profile)]


def accuracies(rows: list[dict], profile: Profile, student: str | None = None,
               teacher: str | None = None) -> dict[str, dict[int, float]]:
    """``{method: {seed: accuracy}}`` of the rows :func:`rows_of` selects, methods in the
    order of ``recipes.ALL_RECIPES`` (then any others), seeds in increasing order.
    Chapters read their method's benchmark numbers through it, so every chapter states
    the same number."""
    found: dict[str, dict[int, float]] = {}
    for r in rows_of(rows, profile, student, teacher):
        found.setdefault(r["method"], {})[int(r["seed"])] = float(r["accuracy"])
    order = {recipe.name: i for i, recipe in enumerate(ALL_RECIPES)}
    return {m: dict(sorted(found[m].items())) for m in sorted(found, key=lambda m: order.get(m, len(order)))}


def run_seconds(rows: list[dict], profile: Profile, student: str | None = None,
                teacher: str | None = None) -> dict[str, list[float]]:
    """``{method: [seconds each run trained]}`` of the rows :func:`rows_of` selects."""
    seconds: dict[str, list[float]] = {}
    for r in rows_of(rows, profile, student, teacher):
        seconds.setdefault(r["method"], []).append(float(r["wall_seconds"]))
    return seconds
