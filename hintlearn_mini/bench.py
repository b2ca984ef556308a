"""The benchmark: every method of the book on the same pair, data and seeds.

    python -m hintlearn_mini.bench [--profile laptop] [--out bench-laptop.csv]
                                   [--methods KD AT ...] [--seeds 0 1] [--step-costs]
                                   [--pair resnet32x4:resnet8x4] [--device cuda]
                                   [--precision fp32 bf16]

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
(``zoo.profile_teacher``) and cached; CIFAR-100 is downloaded by torchvision. One
difference from RepDistiller stays: our SGD uses Nesterov momentum, as ReviewKD's does.

The methods are named here because a user picks them on the command line; each entry
is a plain function that trains one seed and returns its history.
"""
from __future__ import annotations

import argparse
import csv
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
from .profiles import Profile, fit_kwargs, get_profile, load_experiment_data
from .train import fit, make_optimizer, seed_everything
from .zoo import profile_teacher

__all__ = ["METHODS", "run_benchmark", "step_costs", "plain_loop", "read_results", "main"]

FIELDS = ["method", "seed", "accuracy", "wall_seconds", "extra_parameters", "peak_rss_mb", "profile",
          "teacher", "student", "precision"]
STEP_FIELDS = ["method", "images_per_s", "step_ms", "speed_vs_plain", "cost_vs_kd", "precision"]


def _one_stage(make):
    """A method trained like the student alone: one ``fit`` of the distiller."""
    def train(profile, teacher, train_set, test_set, seed):
        seed_everything(seed)
        module = make(profile, teacher, train_set)
        extra = sum(p.numel() for p in getattr(module, "extra_parameters", list)() if p.requires_grad)
        return fit(module, train_set, test_set, seed=seed, progress=False, **fit_kwargs(profile)), extra
    return train


def _student(profile):
    return build_model(profile.student, 100 if profile.dataset == "cifar100" else 10)


def _fitnets_two_stage(profile, teacher, train_set, test_set, seed):
    seed_everything(seed)
    hints = FitNets(_student(profile), teacher, ce_weight=0.0)
    fit(hints, train_set, None, seed=seed, parameters=hints.guided_parameters(), progress=False,
        **dict(fit_kwargs(profile), epochs=profile.stage_one_epochs()))
    extra = sum(p.numel() for p in hints.regressor.parameters())
    return fit(KD(hints.student, teacher), train_set, test_set, seed=seed, progress=False, **fit_kwargs(profile)), extra


def _fsp_two_stage(profile, teacher, train_set, test_set, seed):
    seed_everything(seed)
    distiller = FSP(_student(profile), teacher)
    fit(distiller, train_set, None, seed=seed, parameters=distiller.feature_parameters(), progress=False,
        **dict(fit_kwargs(profile), epochs=profile.stage_one_epochs()))
    return fit(distiller.student, train_set, test_set, seed=seed, progress=False, **fit_kwargs(profile)), 0


def _crd(profile, teacher, train_set, kd_weight=0.0):
    with warnings.catch_warnings():  # K adapts to small training sets; the chapter shows the warning
        warnings.simplefilter("ignore")
        return CRD(_student(profile), teacher, train_labels=train_set.labels, kd_weight=kd_weight)


def _reviewkd(profile, teacher):
    return ReviewKD(_student(profile), teacher, weight=official_weight(profile.teacher, profile.student))


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

# The feature methods whose throughput is measured against KD's (per-step targets).
STEP_MODULES = {
    "FitNets": lambda p, t, d: FitNets(_student(p), t),
    "AT": lambda p, t, d: AttentionTransfer(_student(p), t),
    "FSP": lambda p, t, d: FSP(_student(p), t, ce_weight=1.0),
    "CRD": lambda p, t, d: _crd(p, t, d),
    "ReviewKD": lambda p, t, d: _reviewkd(p, t),
}


def read_results(path: Path) -> list[dict]:
    """The rows of a results file (empty if it does not exist yet)."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


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
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid methods: {', '.join(METHODS)}")
    pairs = list(pairs or profile.teacher_student_pairs())
    seeds = list(profile.seeds if seeds is None else seeds)
    if train_set is None or test_set is None:
        train_set, test_set = load_experiment_data(profile)
    rows = read_results(out)
    precision = profile.resolved_precision()
    done = {(r["method"], int(r["seed"]), r["teacher"], r["student"], r.get("precision") or "fp32")
            for r in rows if r["profile"] == profile.name}
    for teacher_name, student_name in pairs:
        pair = profile.for_pair(teacher_name, student_name)
        todo = [(m, s) for m in methods for s in seeds
                if (m, s, teacher_name, student_name, precision) not in done]
        if not todo:
            continue
        pair_teacher = teacher if teacher is not None else profile_teacher(pair)
        for method, seed in tqdm(todo, desc=f"{teacher_name} -> {student_name} ({profile.name}, {precision})",
                                 unit="run"):
            start = time.perf_counter()
            history, extra = METHODS[method](pair, pair_teacher, train_set, test_set, seed)
            rows.append({"method": method, "seed": seed, "accuracy": round(history.final_accuracy, 2),
                         "wall_seconds": round(time.perf_counter() - start, 1), "extra_parameters": extra,
                         "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                         "profile": profile.name, "teacher": teacher_name, "student": student_name,
                         "precision": precision})
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


def _epoch_speed(module, profile: Profile, train_set, seed: int, **overrides) -> float:
    """Images per second of the second of two epochs of ``fit`` (the first warms up)."""
    kwargs = dict(fit_kwargs(profile), epochs=2, eval_every=None, **overrides)
    history = fit(module, train_set, None, seed=seed, progress=False, **kwargs)
    return len(train_set) / history.epochs[-1]["seconds"]


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
            seed = 1000 + round_ if name == "KD, first run at a seed" else 0  # a seed never stored
            speeds[name].append(_epoch_speed(make(profile, teacher, train_set), profile, train_set,
                                             seed, **overrides))
    median = {name: statistics.median(v) for name, v in speeds.items()}
    plain, kd_loop = median["plain float32 loop"], median["KD, teacher in the loop"]
    return [{"method": name, "images_per_s": round(v), "step_ms": round(1000 * profile.batch_size / v, 1),
             "speed_vs_plain": round(v / plain, 2), "cost_vs_kd": round(kd_loop / v, 2),
             "precision": "fp32" if name == "plain float32 loop" else profile.resolved_precision()}
            for name, v in median.items()]


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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Run every method of the book on the same pair and seeds.")
    parser.add_argument("--profile", default=None, help="quick, laptop or paper (default: $HINTLEARN_PROFILE or laptop)")
    parser.add_argument("--out", type=Path, default=None, help="results CSV (default: bench-<profile>.csv)")
    parser.add_argument("--methods", nargs="*", default=None, help=f"subset of: {', '.join(METHODS)}")
    parser.add_argument("--seeds", nargs="*", type=int, default=None)
    parser.add_argument("--pair", type=_pair, action="append", default=None, metavar="TEACHER:STUDENT",
                        help="run only this pair (repeatable; default: the profile's pairs)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the profile's)")
    parser.add_argument("--precision", nargs="*", choices=PRECISIONS, default=None,
                        help="run every row in each of these precisions (default: $HINTLEARN_PRECISION or auto)")
    parser.add_argument("--step-costs", action="store_true",
                        help="also measure each method's images/s against a plain float32 loop and KD")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    if args.device:
        profile = replace(profile, device=args.device)
    if profile.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"profile {profile.name!r} trains on {profile.device} ({profile.epochs} epochs per run), "
                         f"but no CUDA device is visible. Run it on a GPU machine, or pass --device cpu "
                         f"to run it here anyway (days on a CPU).")
    out = args.out or Path(f"bench-{profile.name}.csv")
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
