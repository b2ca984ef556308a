"""The benchmark: every method of the book on the same pair, data and seeds.

    python -m hintlearn_mini.bench [--profile laptop] [--out bench-laptop.csv]
                                   [--methods KD AT ...] [--seeds 0 1] [--step-costs]
                                   [--pair resnet32x4:resnet8x4] [--device cuda]
                                   [--precision fp32 bf16] [--diagnostics] [--controls]
    python -m hintlearn_mini.bench --plateau 8 16 32 64 [--per-class 200] [--out plateau.csv]
    python -m hintlearn_mini.bench --fast-optimization 8 16 32 64 [--out fsp-fast.csv]

Each finished (method, seed, precision) run becomes one row of a tidy CSV file:
method, seed, test accuracy after the last epoch, wall time, extra trainable
parameters, the process's peak resident memory so far, profile, pair and precision.
The file is rewritten atomically after every run, and a restarted benchmark skips the
rows already there, so an interrupted run resumes where it stopped and never leaves a
half-written file. ``--precision fp32 bf16`` runs every row in both precisions (the
parity check of chapter 1); the default is the profile's (``HINTLEARN_PRECISION``).

``--step-costs`` also measures the training throughput (images per second over whole
epochs, augmentation included, as ``fit`` runs them) of every method, of the student
alone, of KD with the teacher in the loop, and of a plain float32 loop (``plain_loop``:
teacher forward without gradients, student forward and backward, SGD; no channels-last,
no autocast, no stored logits), interleaved in one process so that the ratios hold on a
noisy machine, and writes them to ``<out>-steps.csv``.

The paper profile (``--profile paper``, a GPU) runs the CIFAR-100 setting of the CRD and
ReviewKD benchmarks on each of its pairs (resnet32x4 → resnet8x4, wrn_40_2 → wrn_16_2):
240 epochs, the published loss weights (ReviewKD's per pair), 30 initialisation epochs
for two-stage methods. Its teachers are trained with the same recipe the first time
(``zoo.profile_teacher``) and cached; CIFAR-100 is downloaded by torchvision. Its
students train with plain momentum, as RepDistiller's do (``Profile.nesterov``); the
laptop profile keeps Nesterov momentum, as ReviewKD's code has it.

The methods are named here because a user picks them on the command line; each entry
is a plain function that trains one seed and returns its history.
"""
from __future__ import annotations

import argparse
import copy
import csv
import functools
import resource
import statistics
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data import batches
from .hardware import PRECISIONS
from .losses import kd_loss
from .methods import CRD, FSP, KD, AttentionTransfer, FitNets, ReviewKD
from .methods.reviewkd import official_weight
from .models import MODEL_NAMES, build_model
from .profiles import Profile, fit_kwargs, get_profile, load_experiment_data, stage_one_kwargs
from .runs import cached_fit
from .teacher_outputs import TeacherLogits
from .train import fit, make_optimizer, seed_everything
from .zoo import profile_teacher

__all__ = ["METHODS", "run_benchmark", "fast_optimization", "plateau", "step_costs", "plain_loop", "read_results",
           "accuracies", "run_times", "glue_experiment", "glue_outcome", "main"]

FIELDS = ["method", "seed", "accuracy", "wall_seconds", "extra_parameters", "peak_rss_mb", "profile",
          "teacher", "student", "precision", "epochs", "train_per_class"]
STEP_FIELDS = ["method", "images_per_s", "step_ms", "speed_vs_plain", "cost_vs_kd", "precision"]


def _one_stage(make, epoch_matched: bool = False):
    """A method trained like the student alone: one ``fit`` of the distiller, through
    the run cache (``runs.cached_fit``), so that a chapter asking for the same run reads
    it back. ``epoch_matched``: for the two-stage methods' stage-1 epochs longer (a control)."""
    def train(profile, teacher, train_set, test_set, seed):
        if epoch_matched:
            profile = replace(profile, epochs=profile.epochs + profile.stage_one_epochs())
        module, history = cached_fit(lambda: make(profile, teacher, train_set), train_set, test_set,
                                     seed=seed, profile=profile, progress=False)
        extra = sum(p.numel() for p in getattr(module, "extra_parameters", list)() if p.requires_grad)
        return history, extra
    return train


def _student(profile):
    return build_model(profile.student, 100 if profile.dataset == "cifar100" else 10)


def _fitnets_two_stage(profile, teacher, train_set, test_set, seed):
    seed_everything(seed)
    hints = FitNets(_student(profile), teacher, ce_weight=0.0)
    fit(hints, train_set, None, seed=seed, parameters=hints.guided_parameters(), progress=False,
        **stage_one_kwargs(profile))
    extra = sum(p.numel() for p in hints.regressor.parameters())
    return fit(KD(hints.student, teacher), train_set, test_set, seed=seed, progress=False, **fit_kwargs(profile)), extra


def _fsp_two_stage(profile, teacher, train_set, test_set, seed, weight=1.0):
    seed_everything(seed)
    distiller = FSP(_student(profile), teacher, weight=weight)
    fit(distiller, train_set, None, seed=seed, parameters=distiller.feature_parameters(), progress=False,
        **stage_one_kwargs(profile))
    return fit(distiller.student, train_set, test_set, seed=seed, progress=False, **fit_kwargs(profile)), 0


def _crd(profile, teacher, train_set, kd_weight=0.0, **options):
    with warnings.catch_warnings():  # K adapts to small training sets; the chapter shows the warning
        warnings.simplefilter("ignore")
        return CRD(_student(profile), teacher, train_labels=train_set.labels, kd_weight=kd_weight, **options)


def _reviewkd(profile, teacher, scale=1.0, review=True):
    return ReviewKD(_student(profile), teacher, weight=scale * official_weight(profile.teacher, profile.student),
                    review=review)


METHODS = {
    "student alone": _one_stage(lambda p, t, d: _student(p)),
    "KD": _one_stage(lambda p, t, d: KD(_student(p), t)),
    "FitNets one-stage": _one_stage(lambda p, t, d: FitNets(_student(p), t)),
    "FitNets two-stage": _fitnets_two_stage,
    "AT": _one_stage(lambda p, t, d: AttentionTransfer(_student(p), t)),
    "KD + AT": _one_stage(lambda p, t, d: AttentionTransfer(_student(p), t, ce_weight=0.1, kd_weight=0.9)),
    "FSP two-stage": _fsp_two_stage,
    "CRD": _one_stage(lambda p, t, d: _crd(p, t, d)),
    "CRD + KD": _one_stage(lambda p, t, d: _crd(p, t, d, kd_weight=1.0)),
    "ReviewKD": _one_stage(lambda p, t, d: _reviewkd(p, t)),
}

# Controls for the two-stage methods: the stage-1 epochs given to the baselines too.
CONTROLS = {
    "student alone, epoch-matched": _one_stage(lambda p, t, d: _student(p), epoch_matched=True),
    "KD, epoch-matched": _one_stage(lambda p, t, d: KD(_student(p), t), epoch_matched=True),
}

# Diagnostics (chapter 8): a method's own weight at 0.1× and 10× the official value,
# KD's temperature, FitNets' hint stage, CRD's memory bank against in-batch InfoNCE,
# ReviewKD without its review (each stage from the teacher's same stage only).
DIAGNOSTICS = {
    "KD, T=2": _one_stage(lambda p, t, d: KD(_student(p), t, T=2.0)),
    "KD, T=8": _one_stage(lambda p, t, d: KD(_student(p), t, T=8.0)),
    **{f"AT, β×{x:g}": _one_stage(lambda p, t, d, x=x: AttentionTransfer(_student(p), t, beta=1000.0 * x))
       for x in (0.1, 10)},
    **{f"FitNets one-stage, β×{x:g}": _one_stage(lambda p, t, d, x=x: FitNets(_student(p), t, beta=100.0 * x))
       for x in (0.1, 10)},
    **{f"FitNets one-stage, hint stage {k}": _one_stage(lambda p, t, d, k=k: FitNets(_student(p), t, stage=k))
       for k in (1, 3)},
    **{f"CRD, β×{x:g}": _one_stage(lambda p, t, d, x=x: _crd(p, t, d, beta=0.8 * x)) for x in (0.1, 10)},
    "CRD, in-batch InfoNCE": _one_stage(lambda p, t, d: _crd(p, t, d, in_batch=True)),
    **{f"FSP two-stage, weight ×{x:g}": functools.partial(_fsp_two_stage, weight=x) for x in (0.1, 10)},
    **{f"ReviewKD, weight ×{x:g}": _one_stage(lambda p, t, d, x=x: _reviewkd(p, t, scale=x)) for x in (0.1, 10)},
    "ReviewKD, no review": _one_stage(lambda p, t, d: _reviewkd(p, t, review=False)),
}

# Every name --methods accepts; a plain benchmark runs METHODS.
ALL_METHODS = {**METHODS, **CONTROLS, **DIAGNOSTICS}

# The feature methods whose throughput is measured against KD's (per-step targets).
STEP_MODULES = {
    "FitNets": lambda p, t, d: FitNets(_student(p), t),
    "AT": lambda p, t, d: AttentionTransfer(_student(p), t),
    "FSP": lambda p, t, d: FSP(_student(p), t, ce_weight=1.0),
    "CRD": lambda p, t, d: _crd(p, t, d),
    "ReviewKD": lambda p, t, d: _reviewkd(p, t),
}


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
        problem = _row_problem(row, fields)
        if problem is None:
            good.append(row)
        else:
            print(f"{path}, line {number}: dropping a broken row ({problem}); its run is trained again")
    if len(good) != len(rows):
        _write_rows(path, good, fields)
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


def accuracies(rows: list[dict], profile: Profile, student: str | None = None,
               teacher: str | None = None) -> dict[str, dict[int, float]]:
    """``{method: {seed: accuracy}}`` of the benchmark rows of ``profile``'s budget
    (epochs, images per class) and of one pair (default: the profile's first), in the
    order of ``METHODS`` and then the controls and diagnostics. Chapters read their
    method's benchmark numbers through it, so every chapter states the same number."""
    found: dict[str, dict[int, float]] = {}
    for r in _rows_of(rows, profile, student, teacher):
        found.setdefault(r["method"], {})[int(r["seed"])] = float(r["accuracy"])
    order = {name: i for i, name in enumerate(ALL_METHODS)}
    return {m: dict(sorted(found[m].items())) for m in sorted(found, key=lambda m: order.get(m, len(order)))}


def run_times(rows: list[dict], profile: Profile, methods: list[str], student: str | None = None,
              teacher: str | None = None):
    """What an experiment costs before a reader starts it: for each of ``methods``, the
    runs the benchmark stored (rows as :func:`accuracies` selects them) and the minutes
    its fastest run trained on this machine's cores. The fastest, as ``timeit`` reports
    it: other work on the cores only ever slows a run down, and a reader runs one
    experiment on an idle laptop. A :class:`plots.ResultTable`; an error names a method
    without rows and the methods that have some."""
    import pandas as pd

    from .plots import ResultTable

    seconds = _seconds(rows, profile, student, teacher)
    missing = [m for m in methods if m not in seconds]
    if missing:
        raise ValueError(f"run_times: no benchmark rows of {missing} for {profile.name}; "
                         f"methods with rows: {', '.join(seconds)}. Run them with "
                         f"python -m hintlearn_mini.bench --methods NAME")
    frame = pd.DataFrame({"runs": [len(seconds[m]) for m in methods],
                          "minutes per run": [min(seconds[m]) / 60 for m in methods]},
                         index=pd.Index(methods, name="method"))
    return ResultTable(frame)


def _seconds(rows: list[dict], profile: Profile, student=None, teacher=None) -> dict[str, list[float]]:
    """``{method: [seconds each run trained]}`` of the rows :func:`accuracies` selects."""
    seconds: dict[str, list[float]] = {}
    for r in _rows_of(rows, profile, student, teacher):
        seconds.setdefault(r["method"], []).append(float(r["wall_seconds"]))
    return seconds


def glue_experiment(name: str, rows: list[dict], profile: Profile, runs: list[str]) -> None:
    """:func:`glue_outcome` of the benchmark's ``runs`` (rows as :func:`accuracies`
    selects them, the first the baseline); an error names a method without rows."""
    run_times(rows, profile, runs)  # the error for a method the file lacks
    found, seconds = accuracies(rows, profile), _seconds(rows, profile)
    glue_outcome(name, {m: found[m] for m in runs}, {m: seconds[m] for m in runs})


def glue_outcome(name: str, results: dict[str, dict[int, float]], seconds: dict[str, list[float]],
                 baselines=None) -> None:
    """Store what an experiment exercise quotes (``plots.glue``): ``<name>_minutes``, the
    slowest method's fastest run (as :func:`run_times` counts), for the question, and
    ``<name>_outcome``, the paired table of ``results`` (``{method: {seed: accuracy}}``)
    against ``baselines`` (default: its first method), for the solution. ``seconds``:
    each method's run times."""
    from . import plots

    plots.glue(f"{name}_minutes", max(min(times) for times in seconds.values()) / 60)
    plots.glue(f"{name}_outcome", plots.benchmark_table(results, baselines=baselines or list(results)[:1]))


def _rows_of(rows: list[dict], profile: Profile, student: str | None, teacher: str | None) -> list[dict]:
    """The rows of ``profile``'s budget (epochs, images per class) and of one pair
    (default: the profile's first)."""
    first_teacher, first_student = profile.teacher_student_pairs()[0]
    teacher, student = teacher or first_teacher, student or first_student
    return [r for r in rows if (r["profile"], r["teacher"], r["student"]) == (profile.name, teacher, student)
            and (r.get("epochs"), r.get("train_per_class")) == _budget(profile)]


def _budget(profile: Profile) -> tuple[str, str]:
    """A profile's budget as its rows store it: (epochs, images per class); the CSV holds
    None as an empty field. A row of another budget is another run."""
    return str(profile.epochs), "" if profile.train_per_class is None else str(profile.train_per_class)


def _write_rows(path: Path, rows: list[dict], fields: list[str]) -> None:
    tmp = Path(path).with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)  # atomic: a killed benchmark leaves the previous complete file


def run_benchmark(out: Path, profile: Profile, methods=None, seeds=None, teacher=None,
                  train_set=None, test_set=None, pairs=None) -> list[dict]:
    """Train every (pair, method, seed) not yet in ``out``; append each result as it finishes.

    ``pairs`` defaults to the profile's (teacher, student) pairs; a teacher, train set and
    test set passed in replace the profile's (the tests run on tiny data this way).
    """
    methods = list(methods or METHODS)
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid methods: {', '.join(ALL_METHODS)}")
    pairs = list(pairs or profile.teacher_student_pairs())
    seeds = list(profile.seeds if seeds is None else seeds)
    if train_set is None or test_set is None:
        train_set, test_set = load_experiment_data(profile)
    rows = read_results(out, FIELDS)
    precision = profile.resolved_precision()
    done = {(r["method"], int(r["seed"]), r["teacher"], r["student"], r.get("precision") or "fp32")
            for r in rows if r["profile"] == profile.name
            and (r.get("epochs"), r.get("train_per_class")) == _budget(profile)}
    for teacher_name, student_name in pairs:
        pair = profile.for_pair(teacher_name, student_name)
        todo = [(m, s) for s in seeds for m in methods  # seed by seed: a partial file pairs
                if (m, s, teacher_name, student_name, precision) not in done]
        if not todo:
            continue
        pair_teacher = teacher if teacher is not None else profile_teacher(pair)
        for method, seed in tqdm(todo, desc=f"{teacher_name} -> {student_name} ({profile.name}, {precision})",
                                 unit="run"):
            start = time.perf_counter()
            history, extra = ALL_METHODS[method](pair, pair_teacher, train_set, test_set, seed)
            wall = history.seconds if history.cached else time.perf_counter() - start  # training time
            rows.append({"method": method, "seed": seed, "accuracy": round(history.final_accuracy, 2),
                         "wall_seconds": round(wall, 1), "extra_parameters": extra,
                         "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                         "profile": profile.name, "teacher": teacher_name, "student": student_name,
                         "precision": precision, "epochs": profile.epochs,
                         "train_per_class": profile.train_per_class})
            _write_rows(out, rows, FIELDS)
    return rows


def plain_loop(student: torch.nn.Module, teacher: torch.nn.Module, train_set, batch_size: int,
               seed: int = 0, T: float = 4.0) -> float:
    """One epoch of the plainest float32 KD loop; returns its images per second.

    The teacher's forward pass under ``no_grad``, the student's forward and backward,
    SGD with the package's augmentation (``data.batches``): no channels-last, no
    autocast, no stored logits. The reference of the speed targets (issue: "at least
    2.2× the images per second of the plain loop").
    """
    student.to(memory_format=torch.contiguous_format).train()
    teacher.to(memory_format=torch.contiguous_format).eval()
    optimizer = make_optimizer(student.parameters(), lr=0.01)
    start = time.perf_counter()
    for x, y, _ in batches(train_set, batch_size, True, seed, 1):
        with torch.no_grad():
            teacher_logits = teacher(x)
        logits = student(x)
        loss = 0.1 * F.cross_entropy(logits, y) + 0.9 * kd_loss(logits, teacher_logits, T)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(train_set) / (time.perf_counter() - start)


SPEED_EPOCHS = 2  # a speed is the last of these epochs; the first warms up


def _epoch_speed(module, profile: Profile, train_set, seed: int, **overrides) -> float:
    """Images per second of the last of ``SPEED_EPOCHS`` epochs of ``fit``."""
    kwargs = dict(fit_kwargs(profile), epochs=SPEED_EPOCHS, eval_every=None, **overrides)
    history = fit(module, train_set, None, seed=seed, progress=False, **kwargs)
    return len(train_set) / history.epochs[-1]["seconds"]


def _forget_stored_logits(teacher, train_set, seed: int, profile: Profile) -> None:
    """Delete a seed's stored teacher logits (the epochs ``_epoch_speed`` trains), so that
    the next KD run at that seed computes them: a first run, even if an earlier
    measurement stored them."""
    store = TeacherLogits(teacher, train_set, seed, profile.resolved_precision(), profile.device)
    for epoch in range(1, SPEED_EPOCHS + 1):  # fit counts epochs from 1
        store.path(epoch).unlink(missing_ok=True)


def step_costs(profile: Profile, teacher=None, train_set=None, rounds: int = 3) -> list[dict]:
    """Training throughput of every method, in alternation, against a plain float32 loop
    and against KD with the teacher in the loop (for the profile's first pair).

    Rows: ``images_per_s`` (median over the rounds), ``step_ms`` (per batch),
    ``speed_vs_plain`` (images/s ÷ the plain loop's: higher is faster) and
    ``cost_vs_kd`` (time per image ÷ KD's with the teacher in the loop: the per-step
    targets' measure, lower is cheaper). "KD" reads the teacher's logits from the store
    (warm: computed once before the rounds); "KD, first run at a seed" computes them.
    """
    if train_set is None:
        train_set, _ = load_experiment_data(profile)
    profile = profile.for_pair(*profile.teacher_student_pairs()[0])
    teacher = teacher if teacher is not None else profile_teacher(profile)
    kd = lambda p, t, d: KD(_student(p), t)
    entries = {
        "student alone": (lambda p, t, d: _student(p), {}),
        "KD, teacher in the loop": (kd, {"store_teacher_logits": False}),
        "KD": (kd, {}),
        "KD, first run at a seed": (kd, {}),
        **{name: (make, {}) for name, make in STEP_MODULES.items()},
    }
    _epoch_speed(kd(profile, teacher, train_set), profile, train_set, seed=0)  # fills the store
    speeds = {name: [] for name in ["plain float32 loop", *entries]}
    for round_ in range(rounds):  # interleaved rounds: a slow spell of the machine hits every method
        speeds["plain float32 loop"].append(
            plain_loop(_student(profile), teacher, train_set, profile.batch_size))
        for name, (make, overrides) in entries.items():
            seed = 0
            if name == "KD, first run at a seed":  # a seed whose logits are not stored
                seed = 1000 + round_
                _forget_stored_logits(teacher, train_set, seed, profile)
            speeds[name].append(_epoch_speed(make(profile, teacher, train_set), profile, train_set,
                                             seed, **overrides))
    median = {name: statistics.median(v) for name, v in speeds.items()}
    plain, kd_loop = median["plain float32 loop"], median["KD, teacher in the loop"]
    return [{"method": name, "images_per_s": round(v), "step_ms": round(1000 * profile.batch_size / v, 1),
             "speed_vs_plain": round(v / plain, 2), "cost_vs_kd": round(kd_loop / v, 2),
             "precision": "fp32" if name == "plain float32 loop" else profile.resolved_precision()}
            for name, v in median.items()]


PLATEAU_FIELDS = ["train_per_class", "epochs", "seed", "accuracy", "train_accuracy", "wall_seconds"]


def plateau(out: Path, profile: Profile, epochs: list[int], seeds=None, train_per_class=None,
            train_set=None, test_set=None) -> list[dict]:
    """The student alone trained for each number of ``epochs`` (its schedule stretched to
    fit), at each seed: is the profile's regime near the student's plateau?

    Rows (``PLATEAU_FIELDS``): final test ``accuracy`` and training accuracy of the last
    epoch. Resumes like :func:`run_benchmark`: rows already in ``out`` are kept.
    """
    if train_per_class is not None:
        profile = replace(profile, train_per_class=train_per_class)
    seeds = list(profile.seeds if seeds is None else seeds)
    if train_set is None or test_set is None:
        train_set, test_set = load_experiment_data(profile)
    rows = read_results(out, PLATEAU_FIELDS)
    done = {(int(r["train_per_class"]), int(r["epochs"]), int(r["seed"])) for r in rows}
    todo = [(e, s) for e in epochs for s in seeds if (profile.train_per_class, e, s) not in done]
    for n_epochs, seed in tqdm(todo, desc=f"plateau, {profile.train_per_class} per class", unit="run"):
        start = time.perf_counter()
        seed_everything(seed)
        history = fit(_student(profile), train_set, test_set, seed=seed, progress=False,
                      **dict(fit_kwargs(profile), epochs=n_epochs, eval_every=None))
        rows.append({"train_per_class": profile.train_per_class, "epochs": n_epochs, "seed": seed,
                     "accuracy": round(history.final_accuracy, 2),
                     "train_accuracy": round(history.epochs[-1]["train_acc"], 2),
                     "wall_seconds": round(time.perf_counter() - start, 1)})
        _write_rows(out, rows, PLATEAU_FIELDS)
    return rows


def summary(rows: list[dict]) -> str:
    """Mean ± standard deviation of the accuracy per pair and method, as text."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        key = (f"{r['teacher']} -> {r['student']}", r["method"], r.get("precision") or "fp32")
        groups.setdefault(key, []).append(float(r["accuracy"]))
    lines = [f"{'pair':<24}{'method':<20}{'precision':<10}{'seeds':>6}{'mean':>8}{'sd':>7}"]
    for (pair, name, precision), acc in groups.items():
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        lines.append(f"{pair:<24}{name:<20}{precision:<10}{len(acc):>6}{statistics.mean(acc):>8.2f}{sd:>7.2f}")
    return "\n".join(lines)


def _pair(text: str) -> tuple[str, str]:
    teacher, sep, student = text.partition(":")
    unknown = [m for m in (teacher, student) if m not in MODEL_NAMES]
    if not sep or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: give TEACHER:STUDENT with model names from "
                                         f"{', '.join(MODEL_NAMES)}")
    return teacher, student


FAST_FIELDS = ["method", "seed", "epochs", "accuracy", "train_accuracy", "stage_one_epochs",
               "train_per_class"]


def fast_optimization(out: Path, profile: Profile, budgets=(8, 16, 32, 64), seeds=None,
                      teacher=None, train_set=None, test_set=None) -> list[dict]:
    """FSP's headline, "fast optimization" (Yim et al. 2017, §4.1: from the FSP
    initialisation a network reaches the accuracy of a full schedule in a third of it),
    measured: the student trained for each of ``budgets`` epochs (the schedule stretched
    to fit) from its random initialisation ("student alone") and from the FSP
    initialisation ("FSP two-stage"; stage 1 as in the benchmark, once per seed and
    shared by every budget). Same seeds, same data, same views; rows ``FAST_FIELDS``.
    Resumes: rows already in ``out`` are kept.
    """
    seeds = list(profile.seeds if seeds is None else seeds)
    if train_set is None or test_set is None:
        train_set, test_set = load_experiment_data(profile)
    profile = profile.for_pair(*profile.teacher_student_pairs()[0])
    rows = read_results(out, FAST_FIELDS)
    done = {(r["method"], int(r["seed"]), int(r["epochs"])) for r in rows
            if int(r["train_per_class"]) == profile.train_per_class}
    teacher = teacher if teacher is not None else profile_teacher(profile)
    for seed in tqdm(seeds, desc="fast optimization", unit="seed"):
        todo = [(m, e) for m in ("student alone", "FSP two-stage") for e in budgets
                if (m, seed, e) not in done]
        if not todo:
            continue
        seed_everything(seed)
        initial = _student(profile)
        fsp_init = None
        for method, epochs in todo:
            student = copy.deepcopy(initial)
            if method == "FSP two-stage":
                if fsp_init is None:  # stage 1: the FSP loss alone, as _fsp_two_stage trains it
                    distiller = FSP(copy.deepcopy(initial), teacher)
                    fit(distiller, train_set, None, seed=seed, parameters=distiller.feature_parameters(),
                        progress=False, **stage_one_kwargs(profile))
                    fsp_init = distiller.student
                student = copy.deepcopy(fsp_init)
            history = fit(student, train_set, test_set, seed=seed, progress=False,
                          **dict(fit_kwargs(profile), epochs=epochs, eval_every=None))
            rows.append({"method": method, "seed": seed, "epochs": epochs,
                         "accuracy": round(history.final_accuracy, 2),
                         "train_accuracy": round(history.epochs[-1]["train_acc"], 2),
                         "stage_one_epochs": profile.stage_one_epochs(),
                         "train_per_class": profile.train_per_class})
            _write_rows(out, rows, FAST_FIELDS)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Run every method of the book on the same pair and seeds.")
    parser.add_argument("--profile", default=None, help="quick, laptop or paper (default: $HINTLEARN_PROFILE or laptop)")
    parser.add_argument("--out", type=Path, default=None, help="results CSV (default: bench-<profile>.csv)")
    parser.add_argument("--methods", nargs="*", default=None, help=f"subset of: {', '.join(ALL_METHODS)} (default: {', '.join(METHODS)})")
    parser.add_argument("--diagnostics", action="store_true",
                        help=f"run the diagnostics ({', '.join(DIAGNOSTICS)}) instead of --methods")
    parser.add_argument("--controls", action="store_true",
                        help=f"run the epoch-matched controls ({', '.join(CONTROLS)}) instead of --methods")
    parser.add_argument("--seeds", nargs="*", type=int, default=None)
    parser.add_argument("--pair", type=_pair, action="append", default=None, metavar="TEACHER:STUDENT",
                        help="run only this pair (repeatable; default: the profile's pairs)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the profile's)")
    parser.add_argument("--precision", nargs="*", choices=PRECISIONS, default=None,
                        help="run every row in each of these precisions (default: $HINTLEARN_PRECISION or auto)")
    parser.add_argument("--plateau", nargs="*", type=int, default=None, metavar="EPOCHS",
                        help="instead: train the student alone for each of these epoch counts (plateau.csv)")
    parser.add_argument("--per-class", type=int, default=None,
                        help="training images per class (default: the profile's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per run (default: the profile's); the rows record it")
    parser.add_argument("--fast-optimization", nargs="*", type=int, default=None, metavar="EPOCHS",
                        help="instead: the student from scratch and from the FSP initialisation, "
                             "trained for each of these epoch counts (fsp-fast.csv)")
    parser.add_argument("--step-costs", action="store_true",
                        help="also measure each method's images/s against a plain float32 loop and KD")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    if args.device:
        profile = replace(profile, device=args.device)
    if args.epochs:
        profile = replace(profile, epochs=args.epochs)
    if args.per_class and not args.plateau:
        profile = replace(profile, train_per_class=args.per_class)
    if profile.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"profile {profile.name!r} trains on {profile.device} ({profile.epochs} epochs per run), "
                         f"but no CUDA device is visible. Run it on a GPU machine, or pass --device cpu "
                         f"to run it here anyway (days on a CPU).")
    if args.plateau:
        out = args.out or Path("plateau.csv")
        plateau(out, profile, args.plateau, args.seeds, args.per_class)
        print(f"results: {out}")
        return
    if args.fast_optimization:
        out = args.out or Path("fsp-fast.csv")
        fast_optimization(out, profile, args.fast_optimization, args.seeds)
        print(f"results: {out}")
        return
    out = args.out or Path(f"bench-{profile.name}.csv")
    if args.diagnostics or args.controls:
        args.methods = [*(DIAGNOSTICS if args.diagnostics else []), *(CONTROLS if args.controls else [])]
    for precision in args.precision or [profile.precision]:
        rows = run_benchmark(out, replace(profile, precision=precision), args.methods, args.seeds,
                             pairs=args.pair)
    print(summary(rows))
    print(f"results: {out}")
    if args.step_costs:
        costs = step_costs(profile if not args.pair else replace(profile, pairs=tuple(args.pair)), rounds=5)
        _write_rows(out.with_name(out.stem + "-steps.csv"), costs, STEP_FIELDS)
        for c in costs:
            print(f"{c['method']:<26} {c['images_per_s']:>6} images/s  {c['speed_vs_plain']:.2f}× the plain loop"
                  f"  {c['cost_vs_kd']:.2f}× KD's cost")


if __name__ == "__main__":
    main()
