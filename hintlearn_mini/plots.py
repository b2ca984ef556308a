"""Figures that several chapters share (matplotlib); the result tables are in ``tables.py``.

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
from .stats import compare

__all__ = ["show_images", "plot_feature_shapes", "plot_histories", "plot_accuracies", "plot_differences",
           "plot_soft_targets", "plot_plateau", "plot_hint_fit"]


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


def plot_differences(results: dict, base: str, title: str = ""):
    """Each method's paired difference from ``base`` over the seeds both ran
    (:func:`stats.compare`; ``results``: ``{method: {seed: accuracy}}``): one dot per
    seed, the mean as a bar and its 95 % interval as a line, n in the label. A method is
    clearly above or below ``base`` only where its line misses zero."""
    names = [name for name in results if name != base]
    fig, ax = plt.subplots(figsize=(6.8, 0.34 * len(names) + 1.2))
    labels = []
    for i, name in enumerate(names):
        c = compare(results, name, base)
        labels.append(f"{name} (n={c.n})")
        y = len(names) - 1 - i
        ax.scatter(c.differences, [y] * c.n, color="grey", s=10, zorder=3)
        clear = c.verdict != "within the noise"
        ax.plot([c.low, c.high], [y, y], color="C3" if clear else "C0", linewidth=2.5)
        ax.scatter([c.difference], [y], marker="|", s=200, color="black", zorder=4)
    ax.set_yticks(range(len(names)), list(reversed(labels)), fontsize=9)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"test accuracy minus {base}'s, same seed (points)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or f"paired differences from {base}: 95 % intervals "
                          "(red: excludes zero)", fontsize=10)
    fig.tight_layout()
    return fig


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
