"""Paired comparisons over shared seeds: when a difference between two methods is real.

Two methods trained on the same seeds (same data, initial weights, batch order and
views) are *paired*: the seed-to-seed noise they share cancels in the per-seed
differences d_s = a_s − b_s. With n seeds, the 95 % interval of the mean difference is

    d̄ ± t_{0.975, n−1} · s_d / √n,

Student's t with n − 1 degrees of freedom, s_d the sample standard deviation of the
differences. The book calls a difference *clear* only when that interval excludes zero;
otherwise it is *within the noise*, and the interval is printed either way.

:func:`compare` is the one paired comparison of the package: every table and figure that
sets a method against a baseline (``tables.comparison_table``, ``tables.benchmark_table``,
``plots.plot_differences``) calls it, so all pair by seed, never by list position.

Chapter: ``book/02_knowledge_distillation.ipynb``.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy.stats import t as student_t

__all__ = ["paired_interval", "paired_differences", "verdict", "Comparison", "compare", "doubling_gains"]


def paired_differences(values, baseline_values) -> list[float]:
    """``values[i] − baseline_values[i]`` for seeds in the same order; an error if they
    do not pair (other lengths, or fewer than two seeds)."""
    values, baseline_values = [float(v) for v in values], [float(v) for v in baseline_values]
    if len(values) != len(baseline_values):
        raise ValueError(f"paired values need the same seeds in the same order: got {len(values)} values "
                         f"and {len(baseline_values)} baseline values")
    if len(values) < 2:
        raise ValueError(f"a paired interval needs at least 2 shared seeds, got {len(values)}")
    return [a - b for a, b in zip(values, baseline_values)]


def paired_interval(values, baseline_values, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean_difference, low, high)``: the mean of the paired differences and its
    ``confidence`` interval by Student's t with n − 1 degrees of freedom."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    differences = paired_differences(values, baseline_values)
    n = len(differences)
    mean = statistics.fmean(differences)
    half = student_t.ppf(0.5 + confidence / 2, n - 1) * statistics.stdev(differences) / math.sqrt(n)
    return mean, mean - half, mean + half


def verdict(low: float, high: float) -> str:
    """``"clearly above"`` / ``"clearly below"`` when the interval excludes zero, else
    ``"within the noise"``."""
    if low > 0:
        return "clearly above"
    if high < 0:
        return "clearly below"
    return "within the noise"


@dataclass(frozen=True)
class Comparison:
    """A method against a baseline over the seeds both ran (:func:`compare`)."""
    seeds: tuple           # the shared seeds, in order
    differences: tuple     # method − baseline at each of them (points)
    difference: float      # their mean
    low: float             # its 95 % interval
    high: float
    verdict: str           # :func:`verdict` of the interval

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def wins(self) -> int:
        """On how many of the shared seeds the method beat the baseline."""
        return sum(d > 0 for d in self.differences)


def compare(results: dict, name: str, base: str) -> Comparison:
    """``name`` against ``base``, paired by seed: ``results`` maps each method to
    ``{seed: accuracy}`` and only the seeds both ran count. An error when the rows are
    not such dicts or share fewer than two seeds (an interval needs two)."""
    a, b = results[name], results[base]
    if not (isinstance(a, dict) and isinstance(b, dict)):
        raise TypeError(f"compare pairs by seed: give {name!r} and {base!r} as {{seed: accuracy}}, not "
                        f"{type(a).__name__} and {type(b).__name__}; a list in seed order becomes one "
                        "with dict(zip(seeds, values))")
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        shared = f"only the seed {seeds[0]}" if seeds else "no seed"
        raise ValueError(f"{name!r} and {base!r} share {shared} ({sorted(a)} vs {sorted(b)}): a paired "
                         "interval needs at least 2 shared seeds; run them on the same seeds to compare them")
    values, baseline_values = [float(a[s]) for s in seeds], [float(b[s]) for s in seeds]
    differences = paired_differences(values, baseline_values)
    _, low, high = paired_interval(values, baseline_values)
    return Comparison(tuple(seeds), tuple(differences), statistics.mean(differences), low, high, verdict(low, high))


def doubling_gains(rows) -> list[dict]:
    """What doubling the epochs buys, paired on the seeds both lengths ran.

    ``rows``: dicts with ``train_per_class``, ``epochs``, ``seed`` and ``accuracy`` (the
    rows of ``bench.plateau``). Returns, for every data size and every length E that
    was also run at 2E on at least two common seeds, ``{"train_per_class", "epochs",
    "doubled", "seeds", "gain", "low", "high"}``: the mean paired gain of 2E over E with
    its 95 % interval.
    """
    runs: dict[tuple[int, int], dict[int, float]] = {}
    for r in rows:
        key = (int(r["train_per_class"]), int(r["epochs"]))
        runs.setdefault(key, {})[int(r["seed"])] = float(r["accuracy"])
    gains = []
    for (per_class, epochs), short in sorted(runs.items()):
        long = runs.get((per_class, 2 * epochs), {})
        if len(set(short) & set(long)) < 2:
            continue
        c = compare({"doubled": long, "epochs": short}, "doubled", "epochs")
        gains.append({"train_per_class": per_class, "epochs": epochs, "doubled": 2 * epochs,
                      "seeds": c.n, "gain": c.difference, "low": c.low, "high": c.high})
    return gains
