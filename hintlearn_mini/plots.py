"""Figures and result tables that several chapters share (matplotlib, pandas).

Every function draws on a new figure and returns it, so a notebook cell ends with the
figure and nothing else is needed to show it.
"""
from __future__ import annotations

import statistics

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from .data import ImageSet
from .models import Features
from .stats import paired_interval
from .stats import verdict as stats_verdict

__all__ = ["show_images", "plot_feature_shapes", "plot_histories", "plot_accuracies",
           "ResultTable", "accuracy_table", "compare", "comparison_table", "benchmark_table",
           "plot_differences", "verdict", "plot_soft_targets", "plot_plateau",
           "plot_hint_fit", "glue"]


def show_images(data: ImageSet, count: int = 20, columns: int = 10, seed: int = 0):
    """A grid of ``count`` random images of ``data`` with their class names."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(data), generator=g)[:count]
    fig, axes = plt.subplots((count + columns - 1) // columns, columns,
                             figsize=(columns * 1.1, 1.3 * ((count + columns - 1) // columns)))
    for ax, i in zip(axes.flat, rows.tolist()):
        ax.imshow(data.images[i].permute(1, 2, 0).numpy())
        ax.set_title(data.classes[data.labels[i]], fontsize=8)
        ax.axis("off")
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_feature_shapes(features: dict[str, Features]):
    """One row per network: a box per tapped tensor, its width ∝ channels, height ∝ H.

    ``features`` maps a network's name to the ``Features`` of one forward pass.
    """
    fig, axes = plt.subplots(len(features), 1, figsize=(10, 1.9 * len(features)), squeeze=False)
    for ax, (name, feats) in zip(axes[:, 0], features.items()):
        tensors = [("stem", feats.stem)] + [(f"stage {i}", s) for i, s in enumerate(feats.stages, 1)]
        x = 0.0
        for label, t in tensors:
            c, h, w = t.shape[1:]
            width, height = c / 16, h / 32
            ax.add_patch(plt.Rectangle((x, (1 - height) / 2), width, height, color="tab:blue", alpha=0.35))
            ax.text(x + width / 2, 1.05, f"{label}\n{c}×{h}×{w}", ha="center", va="bottom", fontsize=8)
            x += width + 0.6
        c = feats.pooled.shape[1]
        ax.add_patch(plt.Rectangle((x, 0.45), c / 16, 0.1, color="tab:orange", alpha=0.6))
        ax.text(x + c / 32, 1.05, f"pooled\n{c}", ha="center", va="bottom", fontsize=8)
        ax.set_xlim(-0.3, x + c / 16 + 0.3)
        ax.set_ylim(-0.05, 1.6)
        ax.set_title(name, loc="left", fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_histories(histories: dict[str, list], keys=("loss", "train_acc")):
    """Mean (line) and min–max over seeds (band) of per-epoch values, one panel per key.

    ``histories`` maps a label (a method) to a list of ``History`` objects (one per seed).
    """
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, runs in histories.items():
            values = torch.tensor([run.column(key) for run in runs])  # (seeds, epochs)
            epochs = range(1, values.shape[1] + 1)
            line, = ax.plot(epochs, values.mean(0), label=f"{label} ({len(runs)} seed{'' if len(runs) == 1 else 's'})")
            ax.fill_between(epochs, values.min(0).values, values.max(0).values,
                            color=line.get_color(), alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0, 0].legend()
    fig.tight_layout()
    return fig


def plot_accuracies(results: dict[str, list[float]], reference: dict[str, float] | None = None):
    """Test accuracy of each method: one dot per seed and the mean as a bar.

    ``reference`` draws horizontal lines (e.g. ``{"teacher": 88.2}``).
    """
    fig, ax = plt.subplots(figsize=(min(1.6 * len(results) + 2, 7.5), 3.4))  # the text column
    for i, (label, values) in enumerate(results.items()):
        ax.bar(i, statistics.mean(values), color=f"C{i}", alpha=0.35, width=0.6)
        ax.scatter([i] * len(values), values, color=f"C{i}", zorder=3)
    for name, value in (reference or {}).items():
        ax.axhline(value, color="grey", linestyle="--", linewidth=1)
        ax.text(len(results) - 0.5, value, f" {name} {value:.1f}", va="bottom", ha="right", fontsize=8)
    ax.set_xticks(range(len(results)), list(results))
    ax.set_ylabel("test accuracy (%)")
    low = min(min(v) for v in results.values())
    top = max([max(v) for v in results.values()] + list((reference or {}).values()))
    ax.set_ylim(max(0, low - 5), top + 3)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


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


def glue(name: str, value) -> None:
    """Store ``value`` (a number, a :class:`ResultTable`, a figure) under ``name`` for the
    page's text to quote: ``{glue:text}`name:.1f``` inline, or a ``{glue} name``
    directive, as in an exercise's solution (myst-nb's glue, shown nowhere else). Outside
    the book's build (on Colab, where myst-nb is not installed) no page quotes it, and
    nothing is stored."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # a NumPy or torch scalar: its repr would not format
    myst_glue(name, value, display=False)


def accuracy_table(results: dict, seeds=None):
    """A :class:`ResultTable` (``.data`` is the ``DataFrame``): a row per
    method with its accuracy at every seed, the number of seeds ``n``, mean and sd.

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


def compare(results: dict, name: str, base: str, seeds=None) -> dict:
    """``name`` against ``base`` over the seeds both ran: ``{"seeds", "difference", "low",
    "high", "verdict", "wins"}`` (the paired 95 % interval of ``stats.paired_interval``;
    ``low``/``high`` are NaN and the verdict says so with fewer than two shared seeds)."""
    a, b = _by_seed(results[name], seeds), _by_seed(results[base], seeds)
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError(f"{name!r} and {base!r} share no seed ({sorted(a)} vs {sorted(b)}): "
                         "run them on the same seeds to compare them")
    diffs = [a[s] - b[s] for s in shared]
    row = {"seeds": len(shared), "difference": statistics.mean(diffs), "low": float("nan"),
           "high": float("nan"), "wins": f"{sum(d > 0 for d in diffs)} of {len(shared)}"}
    if len(shared) > 1:
        _, row["low"], row["high"] = paired_interval([a[s] for s in shared], [b[s] for s in shared])
        row["verdict"] = stats_verdict(row["low"], row["high"])
    else:
        row["verdict"] = "one seed: no interval"
    return row


def comparison_table(results: dict, comparisons, seeds=None):
    """A :class:`ResultTable` of paired comparisons, one row per ``(method, baseline)`` in
    ``comparisons``: shared seeds, mean difference, its 95 % interval, the verdict
    ("clearly above/below" only when the interval excludes zero) and on how many seeds
    the method won. ``results`` as for :func:`accuracy_table`."""
    import pandas as pd

    rows = [{"method": name, "against": base, **compare(results, name, base, seeds)}
            for name, base in comparisons]
    frame = pd.DataFrame(rows).set_index(["method", "against"])
    return ResultTable(frame[["seeds", "difference", "low", "high", "verdict", "wins"]])


def benchmark_table(results: dict, baselines=("student alone", "KD"), seeds=None):
    """A :class:`ResultTable` with one row per method: its seeds ``n``, mean and sd, and
    for each baseline the paired difference over the seeds both ran with its 95 %
    interval ``[low, high]`` and the verdict. A baseline's own row leaves its column
    empty. ``results`` as for :func:`accuracy_table` (e.g. ``bench.accuracies``)."""
    import pandas as pd

    table = {}
    for name, values in results.items():
        row = _by_seed(values, seeds)
        line = {("", "n"): len(row), ("", "mean"): statistics.mean(row.values()),
                ("", "sd"): statistics.stdev(row.values()) if len(row) > 1 else float("nan")}
        for base in baselines:
            if base not in results:
                raise ValueError(f"benchmark_table: no rows of the baseline {base!r}; "
                                 f"methods: {', '.join(results)}")
            c = compare(results, name, base, seeds) if name != base else {}
            line[f"vs {base}", "Δ"] = c.get("difference", float("nan"))
            line[f"vs {base}", "95 % interval"] = (f"[{c['low']:+.2f}, {c['high']:+.2f}]"
                                                   if c and c["seeds"] > 1 else "")
            line[f"vs {base}", "verdict"] = c.get("verdict", "")
        table[name] = line
    frame = pd.DataFrame.from_dict(table, orient="index")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    frame.index.name = "method"
    return ResultTable(frame)


def plot_differences(results: dict, base: str, seeds=None, title: str = ""):
    """Each method's paired difference from ``base`` over the seeds both ran: one dot
    per seed, the mean as a bar and its 95 % interval as a line, n in the label. A
    method is clearly above or below ``base`` only where its line misses zero."""
    names = [name for name in results if name != base]
    fig, ax = plt.subplots(figsize=(6.8, 0.34 * len(names) + 1.2))
    labels = []
    for i, name in enumerate(names):
        a, b = _by_seed(results[name], seeds), _by_seed(results[base], seeds)
        shared = sorted(set(a) & set(b))
        diffs = [a[s] - b[s] for s in shared]
        labels.append(f"{name} (n={len(shared)})")
        y = len(names) - 1 - i
        mean = statistics.mean(diffs)
        ax.scatter(diffs, [y] * len(diffs), color="grey", s=10, zorder=3)
        if len(shared) > 1:
            _, low, high = paired_interval([a[s] for s in shared], [b[s] for s in shared])
            clear = low > 0 or high < 0
            ax.plot([low, high], [y, y], color="C3" if clear else "C0", linewidth=2.5)
        ax.scatter([mean], [y], marker="|", s=200, color="black", zorder=4)
    ax.set_yticks(range(len(names)), list(reversed(labels)), fontsize=9)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"test accuracy minus {base}'s, same seed (points)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or f"paired differences from {base}: 95 % intervals "
                          "(red: excludes zero)", fontsize=10)
    fig.tight_layout()
    return fig


def verdict(results: dict[str, list[float]], name: str, base: str) -> str:
    """One sentence comparing two rows of results over the seeds they share.

    Each row lists its accuracies in the order of the profile's seeds; a shorter row ran
    with the first seeds only. Over the shared seeds (the same initial student, batch
    order and views) the per-seed differences are paired: the gain is called clear only
    when its 95 % interval (``stats.paired_interval``, Student's t with n − 1 degrees of
    freedom) excludes zero, and the interval is printed either way. With a single shared
    seed there is no spread to judge by, and the sentence says so.
    """
    a, b = results[name], results[base]
    n = min(len(a), len(b))
    diffs = [x - y for x, y in zip(a[:n], b[:n])]
    gain = statistics.mean(diffs)
    wins = sum(d > 0 for d in diffs)
    if n > 1:
        _, low, high = paired_interval(a[:n], b[:n])
        word = {"clearly above": "clearly above", "clearly below": "clearly below",
                "within the noise": "within the noise of"}[stats_verdict(low, high)]
        detail = f"95 % interval [{low:+.2f}, {high:+.2f}], better on {wins} of {n} seeds"
    else:
        word, detail = "one seed only, no spread to judge by:", "more seeds are needed to tell"
    sentence = f"{name}: {gain:+.2f} points against {base} over {n} shared seed{'s' * (n > 1)}, {word} it ({detail})"
    sentence = sentence.replace("by: it", "by")
    print(sentence)
    return sentence


def plot_soft_targets(logits: Tensor, classes: list[str], temperatures=(1, 4, 10), title: str = ""):
    """The softened distribution softmax(logits / T) of one image for several T."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    width = 0.8 / len(temperatures)
    for i, T in enumerate(temperatures):
        probs = torch.softmax(logits / T, dim=0)
        ax.bar([c + (i - (len(temperatures) - 1) / 2) * width for c in range(len(classes))],
               probs, width=width, label=f"T = {T}")
    ax.set_xticks(range(len(classes)), classes, rotation=30)
    ax.set_ylabel("probability")
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_plateau(rows, marked: dict[str, tuple[int, list[float]]] | None = None):
    """Test (solid, one dot per seed) and training accuracy (dashed) of the student
    alone against the number of epochs, one colour per training-set size.

    ``rows``: the rows of ``bench.plateau``. ``marked``: extra runs drawn as crosses,
    ``{label: (epochs, accuracies)}`` (e.g. the profile's own runs).
    """
    sizes = sorted({int(r["train_per_class"]) for r in rows})
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for colour, size in enumerate(sizes):
        mine = [r for r in rows if int(r["train_per_class"]) == size]
        epochs = sorted({int(r["epochs"]) for r in mine})
        def mean(key, e):
            return statistics.mean(float(r[key]) for r in mine if int(r["epochs"]) == e)
        ax.plot(epochs, [mean("accuracy", e) for e in epochs], "-o", color=f"C{colour}",
                label=f"{size} per class: test", markersize=3)
        ax.plot(epochs, [mean("train_accuracy", e) for e in epochs], "--", color=f"C{colour}",
                alpha=0.7, label=f"{size} per class: training")
        ax.scatter([int(r["epochs"]) for r in mine], [float(r["accuracy"]) for r in mine],
                   color=f"C{colour}", s=10, alpha=0.5)
    for label, (epochs, values) in (marked or {}).items():
        ax.scatter([epochs] * len(values), values, marker="x", color="black", zorder=3, label=label)
    ax.set_xscale("log", base=2)
    ticks = sorted({int(r["epochs"]) for r in rows} | {e for e, _ in (marked or {}).values()})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("epochs (log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_hint_fit(hint: Tensor, predictions: dict[str, tuple[Tensor, float]], channels=(0, 1, 2, 3),
                  title: str = ""):
    """The teacher's hint of one image and its predictions, channel by channel, on one
    colour scale (the hint's range) with one colour bar.

    ``hint``: (C, H, W); ``predictions``: ``{label: ((C, H, W) prediction, R²)}``, one
    row each under the hint's row, its R² (``probes.explained_variance``) in the label.
    """
    rows = [("teacher's hint", hint)] + [(f"{label}\nR² = {r2:.2f}", p) for label, (p, r2) in predictions.items()]
    fig, axes = plt.subplots(len(rows), len(channels), figsize=(1.45 * len(channels) + 1.6, 1.5 * len(rows)),
                             squeeze=False, layout="constrained")
    low, high = float(hint[list(channels)].min()), float(hint[list(channels)].max())
    for r, (label, maps) in enumerate(rows):
        for c, channel in enumerate(channels):
            image = axes[r, c].imshow(maps[channel], cmap="viridis", vmin=low, vmax=high)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(f"channel {channel}", fontsize=9)
        axes[r, 0].set_ylabel(label, fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8, label="activation")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
