"""The benchmark: every method of the book on the same pair, data and seeds.

    python -m hintlearn_mini.bench [--profile laptop] [--out bench-laptop.csv]
                                   [--methods KD AT ...] [--seeds 0 1] [--step-costs]
                                   [--pair resnet32x4:resnet8x4] [--device cuda]

Each finished (method, seed) run becomes one row of a tidy CSV file: method, seed,
test accuracy after the last epoch, wall time, extra trainable parameters, the
process's peak resident memory so far. The file is rewritten atomically after every
run, and a restarted benchmark skips the rows already there, so an interrupted run
resumes where it stopped and never leaves a half-written file.

``--step-costs`` also times one training step of every method against a KD step (the
teacher's forward pass once per batch, without gradients, plus the student's step),
interleaved in one process so that the ratios hold on a noisy machine, and writes them
to ``<out>-steps.csv``.

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

from tqdm.auto import tqdm

from .methods import CRD, FSP, KD, AttentionTransfer, FitNets, ReviewKD
from .methods.reviewkd import official_weight
from .models import MODEL_NAMES, build_model
from .profiles import Profile, fit_kwargs, get_profile, load_experiment_data
from .train import fit, seed_everything, step_time
from .zoo import profile_teacher

__all__ = ["METHODS", "run_benchmark", "step_costs", "read_results", "main"]

FIELDS = ["method", "seed", "accuracy", "wall_seconds", "extra_parameters", "peak_rss_mb", "profile",
          "teacher", "student"]


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

# The modules whose training step is timed against KD's.
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
    done = {(r["method"], int(r["seed"]), r["teacher"], r["student"]) for r in rows if r["profile"] == profile.name}
    for teacher_name, student_name in pairs:
        pair = profile.for_pair(teacher_name, student_name)
        todo = [(m, s) for m in methods for s in seeds if (m, s, teacher_name, student_name) not in done]
        if not todo:
            continue
        pair_teacher = teacher if teacher is not None else profile_teacher(pair)
        for method, seed in tqdm(todo, desc=f"{teacher_name} -> {student_name} ({profile.name})", unit="run"):
            start = time.perf_counter()
            history, extra = METHODS[method](pair, pair_teacher, train_set, test_set, seed)
            rows.append({"method": method, "seed": seed, "accuracy": round(history.final_accuracy, 2),
                         "wall_seconds": round(time.perf_counter() - start, 1), "extra_parameters": extra,
                         "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                         "profile": profile.name, "teacher": teacher_name, "student": student_name})
            _write_rows(out, rows, FIELDS)
    return rows


def step_costs(profile: Profile, teacher=None, train_set=None, rounds: int = 3) -> list[dict]:
    """Median step time of every method and of KD, measured in alternation, and their ratio
    (for the profile's first pair)."""
    if train_set is None:
        train_set, _ = load_experiment_data(profile)
    profile = profile.for_pair(*profile.teacher_student_pairs()[0])
    teacher = teacher if teacher is not None else profile_teacher(profile)
    times = {name: [] for name in ["KD", *STEP_MODULES]}
    for _ in range(rounds):  # interleaved rounds: a slow spell of the machine hits every method
        for name in times:
            make = STEP_MODULES.get(name, lambda p, t, d: KD(_student(p), t))
            times[name].append(step_time(make(profile, teacher, train_set), train_set, profile.batch_size))
    kd = statistics.median(times["KD"])
    return [{"method": name, "step_ms": round(statistics.median(t), 1),
             "ratio_to_kd": round(statistics.median(t) / kd, 3)} for name, t in times.items()]


def summary(rows: list[dict]) -> str:
    """Mean ± standard deviation of the accuracy per pair and method, as text."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((f"{r['teacher']} -> {r['student']}", r["method"]), []).append(float(r["accuracy"]))
    lines = [f"{'pair':<24}{'method':<20}{'seeds':>6}{'mean':>8}{'sd':>7}"]
    for (pair, name), acc in groups.items():
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        lines.append(f"{pair:<24}{name:<20}{len(acc):>6}{statistics.mean(acc):>8.2f}{sd:>7.2f}")
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
    parser.add_argument("--step-costs", action="store_true", help="also time each method's step against KD")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    if args.device:
        profile = replace(profile, device=args.device)
    if profile.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"profile {profile.name!r} trains on {profile.device} ({profile.epochs} epochs per run), "
                         f"but no CUDA device is visible. Run it on a GPU machine, or pass --device cpu "
                         f"to run it here anyway (days on a CPU).")
    out = args.out or Path(f"bench-{profile.name}.csv")
    rows = run_benchmark(out, profile, args.methods, args.seeds, pairs=args.pair)
    print(summary(rows))
    print(f"results: {out}")
    if args.step_costs:
        costs = step_costs(profile if not args.pair else replace(profile, pairs=tuple(args.pair)))
        _write_rows(out.with_name(out.stem + "-steps.csv"), costs, ["method", "step_ms", "ratio_to_kd"])
        for c in costs:
            print(f"{c['method']:<10} {c['step_ms']:>7.1f} ms  {c['ratio_to_kd']:.2f}× KD")


if __name__ == "__main__":
    main()
