"""Result tables that several chapters share (pandas): accuracies by seed, paired
comparisons, the benchmark, what a run costs.

Each function returns a :class:`ResultTable`, so a notebook cell ends with the table and
it renders. Every comparison in a table is :func:`stats.compare` (paired by seed, its
95 % interval, its verdict); the figures are in ``plots.py``.

Chapters: every chapter's results; ``book/08_comparison.ipynb`` shows each kind.
"""
from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

from .stats import compare

if TYPE_CHECKING:
    from .profiles import Profile

__all__ = ["ResultTable", "accuracy_table", "comparison_table", "benchmark_table", "run_times"]


class ResultTable:
    """A table of results: a rendered HTML table as a notebook cell's last expression,
    aligned text under ``print``; two decimals, "–" where a seed did not run.
    ``.data`` is the ``pandas.DataFrame`` itself."""

    def __init__(self, frame):
        self.data = frame

    def _repr_html_(self) -> str:
        return self.data.style.format(precision=2, na_rep="–").to_html()

    def __str__(self) -> str:
        return self.data.to_string(float_format=lambda v: f"{v:.2f}", na_rep="–")

    __repr__ = __str__


def _by_seed(values, seeds) -> dict[int, float]:
    """A row as {seed: accuracy}: a dict already is one; a list holds the first seeds
    of ``seeds`` in order."""
    if isinstance(values, dict):
        return {int(s): float(v) for s, v in values.items()}
    if seeds is None:
        raise ValueError("a row given as a list needs the seeds it ran with: pass seeds=")
    seeds = list(seeds)
    if len(values) > len(seeds):
        raise ValueError(f"a row has {len(values)} values for the {len(seeds)} seeds {seeds}")
    return dict(zip(seeds, map(float, values)))


def accuracy_table(results: dict, seeds=None) -> ResultTable:
    """A row per method with its accuracy at every seed, the number of seeds ``n``, mean
    and sd.

    ``results`` maps a method to ``{seed: accuracy}``, or to a list of accuracies in the
    order of ``seeds`` (a shorter list ran the first seeds only; its other cells are
    empty). Means of rows with other seeds do not compare: use :func:`comparison_table`.
    """
    import pandas as pd

    rows = {label: _by_seed(values, seeds) for label, values in results.items()}
    columns = sorted({s for row in rows.values() for s in row})
    if seeds is not None:
        extra = [s for s in columns if s not in list(seeds)]
        if extra:
            raise ValueError(f"accuracy_table: seeds {extra} are not among the seeds {list(seeds)}")
        columns = list(seeds)
    frame = pd.DataFrame([[row.get(s, float("nan")) for s in columns] for row in rows.values()],
                         index=pd.Index(list(rows), name="method"),
                         columns=[f"seed {s}" for s in columns])
    frame["n"] = [len(row) for row in rows.values()]
    frame["mean"] = [statistics.mean(row.values()) for row in rows.values()]
    frame["sd"] = [statistics.stdev(row.values()) if len(row) > 1 else float("nan") for row in rows.values()]
    return ResultTable(frame)


def comparison_table(results: dict, comparisons) -> ResultTable:
    """A row per ``(method, baseline)`` in ``comparisons``, paired over the seeds both
    ran (:func:`stats.compare`): the shared seeds, the mean difference, its 95 %
    interval, the verdict ("clearly above/below" only when the interval excludes zero)
    and on how many seeds the method won. ``results``: ``{method: {seed: accuracy}}``."""
    import pandas as pd

    rows = []
    for name, base in comparisons:
        c = compare(results, name, base)
        rows.append({"method": name, "against": base, "seeds": c.n, "difference": c.difference,
                     "low": c.low, "high": c.high, "verdict": c.verdict, "wins": f"{c.wins} of {c.n}"})
    return ResultTable(pd.DataFrame(rows).set_index(["method", "against"]))


def _against(results: dict, name: str, base: str) -> dict:
    """The cells of ``name``'s row under ``vs base``: the paired difference Δ, its 95 %
    interval and the verdict; empty in the baseline's own row."""
    if name == base:
        cells = (float("nan"), "", "")
    else:
        c = compare(results, name, base)
        cells = (c.difference, f"[{c.low:+.2f}, {c.high:+.2f}]", c.verdict)
    return {(f"vs {base}", column): cell for column, cell in zip(("Δ", "95 % interval", "verdict"), cells)}


def benchmark_table(results: dict, baselines=("student alone", "KD")) -> ResultTable:
    """A row per method: its seeds ``n``, mean and sd, and for each baseline the paired
    difference over the seeds both ran with its 95 % interval ``[low, high]`` and the
    verdict (:func:`stats.compare`). A baseline's own row leaves its column empty.
    ``results``: ``{method: {seed: accuracy}}`` (e.g. ``bench.accuracies``)."""
    import pandas as pd

    for base in baselines:
        if base not in results:
            raise ValueError(f"benchmark_table: no rows of the baseline {base!r}; methods: {', '.join(results)}")
    table = {}
    for name, row in results.items():
        values = [float(v) for v in row.values()]
        table[name] = {("", "n"): len(values), ("", "mean"): statistics.mean(values),
                       ("", "sd"): statistics.stdev(values) if len(values) > 1 else float("nan")}
        for base in baselines:
            table[name].update(_against(results, name, base))
    frame = pd.DataFrame.from_dict(table, orient="index")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    frame.index.name = "method"
    return ResultTable(frame)


def run_times(rows: list[dict], profile: Profile, methods: list[str], student: str | None = None,
              teacher: str | None = None) -> ResultTable:
    """What an experiment costs before a reader starts it: for each of ``methods``, the
    runs the benchmark stored (rows as ``bench.accuracies`` selects them) and the minutes
    its fastest run trained on this machine's cores. The fastest, as ``timeit`` reports
    it: other work on the cores only ever slows a run down, and a reader runs one
    experiment on an idle laptop. An error names a method without rows and the methods
    that have some."""
    import pandas as pd

    from . import bench  # the running layer (torch), only for the table that reads it

    seconds = bench.run_seconds(rows, profile, student, teacher)
    missing = [m for m in methods if m not in seconds]
    if missing:
        raise ValueError(f"run_times: no benchmark rows of {missing} for {profile.name}; "
                         f"methods with rows: {', '.join(seconds)}. Run them with "
                         f"python -m hintlearn_mini.bench --methods NAME")
    frame = pd.DataFrame({"runs": [len(seconds[m]) for m in methods],
                          "minutes per run": [min(seconds[m]) / 60 for m in methods]},
                         index=pd.Index(methods, name="method"))
    return ResultTable(frame)
