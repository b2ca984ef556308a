"""The benchmark's command line (``python -m hintlearn_mini.bench``)."""
from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from pathlib import Path

import torch

from ..distributed import is_writer, processes, start_from_torchrun, stop, torchrun_processes
from ..hardware import PRECISIONS
from ..models import MODEL_NAMES
from ..profiles import get_profile
from .fast import fast_optimization
from .convergence import plateau
from .recipes import ALL_RECIPES, CONTROLS, DIAGNOSTICS, METHODS, find_recipes
from .results import read_results, write_rows
from .runner import run_benchmark
from .speed import STEP_FIELDS, step_costs
from .data_axis import data_axis
from .tuning import BENCHMARK_SEEDS, TUNING_SEEDS, tune, tuned_benchmark, tuned_recipes

__all__ = ["main", "summary"]


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


def _names(recipes) -> str:
    return ", ".join(repr(r.name) for r in recipes)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hintlearn_mini.bench",
                                     description="Run every method of the book on the same pair and seeds.")
    parser.add_argument("--profile", default=None, help="quick, laptop or paper (default: $HINTLEARN_PROFILE or laptop)")
    parser.add_argument("--out", type=Path, default=None, help="results CSV (default: bench-<profile>.csv)")
    parser.add_argument("--methods", nargs="*", default=None,
                        help=f"subset of: {_names(ALL_RECIPES)} (default: {_names(METHODS)})")
    parser.add_argument("--diagnostics", action="store_true",
                        help=f"run the diagnostics ({_names(DIAGNOSTICS)}) instead of --methods")
    parser.add_argument("--controls", action="store_true",
                        help=f"run the epoch-matched controls ({_names(CONTROLS)}) instead of --methods")
    parser.add_argument("--seeds", nargs="*", type=int, default=None)
    parser.add_argument("--pair", type=_pair, action="append", default=None, metavar="TEACHER:STUDENT",
                        help="run only this pair (repeatable; default: the profile's pairs)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the profile's)")
    parser.add_argument("--precision", nargs="*", choices=PRECISIONS, default=None,
                        help="run every row in each of these precisions (default: $HINTLEARN_PRECISION or auto)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="train this many runs side by side, each in its own process (default: 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of each run (default: 1; the rows record it, the digits depend on it)")
    parser.add_argument("--plateau", nargs="*", type=int, default=None, metavar="EPOCHS",
                        help="instead: train the student alone for each of these epoch counts (plateau.csv)")
    parser.add_argument("--per-class", type=int, default=None,
                        help="training images per class (default: the profile's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per run (default: the profile's); the rows record it")
    parser.add_argument("--fast-optimization", nargs="*", type=int, default=None, metavar="EPOCHS",
                        help="instead: the student from scratch and from the FSP initialisation, "
                             "trained for each of these epoch counts (fsp-fast.csv)")
    parser.add_argument("--tune", action="store_true",
                        help="instead: every method's own setting at 0.1x to 10x its default, seeds 0-2, each run "
                             "scored on the validation split (tuning-<profile>.csv)")
    parser.add_argument("--tuned", type=Path, default=None, metavar="TUNING_CSV",
                        help="instead: every method at its default and at the setting chosen on validation "
                             "in TUNING_CSV (the output of --tune), seeds 0-4")
    parser.add_argument("--data-axis", type=Path, default=None, metavar="PLATEAU_CSV",
                        help="instead, with --tuned: every method at its chosen setting on 100 and 500 images "
                             "per class, each size for its plateau's epochs in PLATEAU_CSV (bench-data-axis.csv)")
    parser.add_argument("--step-costs", action="store_true",
                        help="also measure each method's images/s against a plain float32 loop and KD")
    return parser


def main(argv=None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        parser.error(f"--jobs {args.jobs} --threads {args.threads}: both must be at least 1")
    try:
        recipes = find_recipes(args.methods) if args.methods else METHODS
    except ValueError as error:
        parser.error(str(error))
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
    if torchrun_processes() > 1 and args.jobs > 1:
        parser.error(f"--jobs {args.jobs} under torchrun: the {torchrun_processes()} processes train each run "
                     f"together, one run at a time; leave out --jobs")
    profile = replace(profile, device=start_from_torchrun(profile.device))
    try:
        if processes()[1] > 1 and is_writer():
            print(_sharing(profile, processes()[1]))
        _run(args, parser, profile, recipes)
    except BaseException:
        stop(wait=False)  # the other processes may never reach the end
        raise
    stop()


def _sharing(profile, count: int) -> str:
    """How ``count`` processes share the profile's batch: what scales with them, what not."""
    share = profile.batch_size / count
    return (f"{count} processes (torchrun, {'NCCL' if profile.device.startswith('cuda') else 'gloo'}): "
            f"global batch {profile.batch_size} ({share:g} images per process), learning rate "
            f"{profile.lr} for the global batch, {profile.epochs} epochs; BatchNorm over "
            f"{'the global batch (SyncBatchNorm)' if profile.sync_batchnorm and profile.device.startswith('cuda') else 'each process’s share'}")


def _run(args, parser, profile, recipes) -> None:
    if args.plateau:
        out = args.out or Path("plateau.csv")
        plateau(out, profile, args.plateau, args.seeds, args.per_class)
        _say(f"results: {out}")
        return
    if args.fast_optimization:
        out = args.out or Path("fsp-fast.csv")
        fast_optimization(out, profile, args.fast_optimization, args.seeds)
        _say(f"results: {out}")
        return
    if args.tune:
        out = args.out or Path(f"tuning-{profile.name}.csv")
        tune(out, profile, args.seeds or TUNING_SEEDS, jobs=args.jobs, threads=args.threads)
        _say(f"results: {out}")
        return
    if args.data_axis:
        if not args.tuned:
            parser.error("--data-axis trains the settings chosen in --tuned TUNING_CSV: give both")
        out = args.out or Path("bench-data-axis.csv")
        data_axis(out, profile, tuned_recipes(read_results(args.tuned), profile), read_results(args.data_axis),
                  jobs=args.jobs, threads=args.threads)
        _say(f"results: {out}")
        return
    if args.tuned:
        out = args.out or Path(f"bench-{profile.name}.csv")
        tuned_benchmark(out, profile, read_results(args.tuned), args.seeds or BENCHMARK_SEEDS, jobs=args.jobs,
                        threads=args.threads)
        _say(f"results: {out}")
        return
    out = args.out or Path(f"bench-{profile.name}.csv")
    if args.diagnostics or args.controls:
        recipes = [*(DIAGNOSTICS if args.diagnostics else ()), *(CONTROLS if args.controls else ())]
    for precision in args.precision or [profile.precision]:
        rows = run_benchmark(out, replace(profile, precision=precision), recipes, args.seeds, pairs=args.pair,
                             jobs=args.jobs, threads=args.threads)
    _say(summary(rows))
    _say(f"results: {out}")
    if args.step_costs:
        costs = step_costs(profile if not args.pair else replace(profile, pairs=tuple(args.pair)), rounds=5)
        write_rows(out.with_name(out.stem + "-steps.csv"), costs, STEP_FIELDS)
        for c in costs:
            _say(f"{c['method']:<26} {c['images_per_s']:>6} images/s  {c['speed_vs_plain']:.2f}× the plain loop"
                  f"  {c['cost_vs_kd']:.2f}× KD's cost")


def _say(*text) -> None:
    """Print, once: in process 0 under torchrun."""
    if is_writer():
        print(*text)
