"""The benchmark: every method of the book on the same pair, data and seeds.

    python -m hintlearn_mini.bench [--profile laptop] [--out bench-laptop.csv]
                                   [--methods kd at ...] [--step-costs]

Each finished (method, seed) run becomes one row of a tidy CSV file: method, seed,
test accuracy after the last epoch, wall time, extra trainable parameters, the
process's peak resident memory so far. The file is rewritten atomically after every
run, and a restarted benchmark skips the rows already there, so an interrupted run
resumes where it stopped and never leaves a half-written file.

``--step-costs`` also times one training step of every method against a KD step (the
teacher's forward pass once per batch, without gradients, plus the student's step),
interleaved in one process so that the ratios hold on a noisy machine, and writes them
to ``<out>-steps.csv``.

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
from pathlib import Path

from tqdm.auto import tqdm

from .methods import CRD, FSP, KD, AttentionTransfer, FitNets, ReviewKD
from .models import build_model
from .profiles import Profile, fit_kwargs, get_profile, load_experiment_data
from .train import fit, seed_everything, step_time
from .zoo import load_teacher

__all__ = ["METHODS", "run_benchmark", "step_costs", "read_results", "main"]

FIELDS = ["method", "seed", "accuracy", "wall_seconds", "extra_parameters", "peak_rss_mb", "profile"]


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
        **dict(fit_kwargs(profile), epochs=max(1, profile.epochs // 2)))
    extra = sum(p.numel() for p in hints.regressor.parameters())
    return fit(KD(hints.student, teacher), train_set, test_set, seed=seed, progress=False, **fit_kwargs(profile)), extra


def _fsp_two_stage(profile, teacher, train_set, test_set, seed):
    seed_everything(seed)
    distiller = FSP(_student(profile), teacher)
    fit(distiller, train_set, None, seed=seed, parameters=distiller.feature_parameters(), progress=False,
        **dict(fit_kwargs(profile), epochs=max(1, profile.epochs // 2)))
    return fit(distiller.student, train_set, test_set, seed=seed, progress=False, **fit_kwargs(profile)), 0


def _crd(profile, teacher, train_set, kd_weight=0.0):
    with warnings.catch_warnings():  # K adapts to small training sets; the chapter shows the warning
        warnings.simplefilter("ignore")
        return CRD(_student(profile), teacher, train_labels=train_set.labels, kd_weight=kd_weight)


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
    "ReviewKD": _one_stage(lambda p, t, d: ReviewKD(_student(p), t)),
}

# The modules whose training step is timed against KD's.
STEP_MODULES = {
    "FitNets": lambda p, t, d: FitNets(_student(p), t),
    "AT": lambda p, t, d: AttentionTransfer(_student(p), t),
    "FSP": lambda p, t, d: FSP(_student(p), t, ce_weight=1.0),
    "CRD": lambda p, t, d: _crd(p, t, d),
    "ReviewKD": lambda p, t, d: ReviewKD(_student(p), t),
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
                  train_set=None, test_set=None) -> list[dict]:
    """Train every (method, seed) not yet in ``out``; append each result as it finishes."""
    methods = list(methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid methods: {', '.join(METHODS)}")
    seeds = list(profile.seeds if seeds is None else seeds)
    if train_set is None or test_set is None:
        train_set, test_set = load_experiment_data(profile)
    teacher = teacher if teacher is not None else load_teacher()
    rows = read_results(out)
    done = {(r["method"], int(r["seed"])) for r in rows if r["profile"] == profile.name}
    todo = [(m, s) for m in methods for s in seeds if (m, s) not in done]
    for method, seed in tqdm(todo, desc=f"benchmark ({profile.name})", unit="run"):
        start = time.perf_counter()
        history, extra = METHODS[method](profile, teacher, train_set, test_set, seed)
        rows.append({"method": method, "seed": seed, "accuracy": round(history.final_accuracy, 2),
                     "wall_seconds": round(time.perf_counter() - start, 1), "extra_parameters": extra,
                     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                     "profile": profile.name})
        _write_rows(out, rows, FIELDS)
    return rows


def step_costs(profile: Profile, teacher=None, train_set=None, rounds: int = 3) -> list[dict]:
    """Median step time of every method and of KD, measured in alternation, and their ratio."""
    if train_set is None:
        train_set, _ = load_experiment_data(profile)
    teacher = teacher if teacher is not None else load_teacher()
    times = {name: [] for name in ["KD", *STEP_MODULES]}
    for _ in range(rounds):  # interleaved rounds: a slow spell of the machine hits every method
        for name in times:
            make = STEP_MODULES.get(name, lambda p, t, d: KD(_student(p), t))
            times[name].append(step_time(make(profile, teacher, train_set), train_set, profile.batch_size))
    kd = statistics.median(times["KD"])
    return [{"method": name, "step_ms": round(statistics.median(t), 1),
             "ratio_to_kd": round(statistics.median(t) / kd, 3)} for name, t in times.items()]


def summary(rows: list[dict]) -> str:
    """Mean ± standard deviation of the accuracy per method, as text."""
    by_method: dict[str, list[float]] = {}
    for r in rows:
        by_method.setdefault(r["method"], []).append(float(r["accuracy"]))
    lines = [f"{'method':<20}{'seeds':>6}{'mean':>8}{'sd':>7}"]
    for name, acc in by_method.items():
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        lines.append(f"{name:<20}{len(acc):>6}{statistics.mean(acc):>8.2f}{sd:>7.2f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Run every method of the book on the same pair and seeds.")
    parser.add_argument("--profile", default=None, help="quick, laptop or paper (default: $HINTLEARN_PROFILE or laptop)")
    parser.add_argument("--out", type=Path, default=None, help="results CSV (default: bench-<profile>.csv)")
    parser.add_argument("--methods", nargs="*", default=None, help=f"subset of: {', '.join(METHODS)}")
    parser.add_argument("--seeds", nargs="*", type=int, default=None)
    parser.add_argument("--step-costs", action="store_true", help="also time each method's step against KD")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    out = args.out or Path(f"bench-{profile.name}.csv")
    if profile.dataset != "cifar10":
        raise SystemExit(f"profile {profile.name!r} needs a {profile.dataset} teacher of {profile.teacher}; "
                         f"only the CIFAR-10 teacher ships with the package (see `python -m hintlearn_mini.zoo`).")
    rows = run_benchmark(out, profile, args.methods, args.seeds)
    print(summary(rows))
    print(f"results: {out}")
    if args.step_costs:
        costs = step_costs(profile)
        _write_rows(out.with_name(out.stem + "-steps.csv"), costs, ["method", "step_ms", "ratio_to_kd"])
        for c in costs:
            print(f"{c['method']:<10} {c['step_ms']:>7.1f} ms  {c['ratio_to_kd']:.2f}× KD")


if __name__ == "__main__":
    main()
