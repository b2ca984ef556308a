"""What every chapter does besides its lesson: start, train a set of methods over seeds,
quote measured numbers in the text, and say what it cost.

``start()`` sets a chapter up in one call (the profile from ``HINTLEARN_PROFILE``, its
training and test data, the shipped teacher, the clock); ``Lesson.train`` trains a set
of benchmark recipes over the profile's seeds through the run cache; ``glue`` and
``glue_experiment`` store the numbers a page quotes (myst-nb's glue); ``Lesson.finish``
prints the chapter's closing line. The cells that call the last three serve the book's
build only and are hidden from the page (cell tag ``remove-cell``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from torch import nn

from . import tables
from .bench import accuracies, run_seconds, train_recipe
from .data import ImageSet
from .profiles import Profile, get_profile, load_experiment_data
from .runs import cache_savings
from .train import History
from .zoo import load_teacher

__all__ = ["Lesson", "start", "glue", "glue_experiment", "glue_outcome", "report_time"]


@dataclass
class Lesson:
    """A chapter's set-up: its profile, data and teacher, and when it started."""

    profile: Profile
    train_set: ImageSet
    test_set: ImageSet
    teacher: nn.Module
    started: float = field(default_factory=time.perf_counter)

    def train(self, recipes, seeds=None) -> dict[str, list[History]]:
        """``{recipe name: [history of each seed]}`` of ``recipes`` (``bench.recipes``
        objects) trained on the profile's pair at each of ``seeds`` (default: the
        profile's), each read back from the run cache when it trained before."""
        seeds = self.profile.seeds if seeds is None else seeds
        pair = self.profile.for_pair(*self.profile.teacher_student_pairs()[0])
        return {recipe.name: [train_recipe(recipe, pair, self.teacher, self.train_set, self.test_set, seed,
                                           progress=True)[0] for seed in seeds] for recipe in recipes}

    def finish(self, what: str = "chapter") -> str:
        """The chapter's closing line (:func:`report_time` since :func:`start`)."""
        return report_time(self.started, self.profile, what)


def start(teacher: str = "resnet32_cifar10") -> Lesson:
    """Set a chapter up: the profile (printed), its data, the shipped ``teacher``
    (hash-checked, ``zoo.load_teacher``), and the clock of its closing line."""
    started = time.perf_counter()
    profile = get_profile()
    print(profile.describe())
    train_set, test_set = load_experiment_data(profile)
    return Lesson(profile, train_set, test_set, load_teacher(teacher), started)


def report_time(start: float, profile: Profile, what: str = "chapter") -> str:
    """A chapter's closing line: its time, and what it would take with an empty cache
    (its own time plus the recorded training time of every run it read back)."""
    elapsed = time.perf_counter() - start
    count, saved = cache_savings()
    line = f"{what} ran in {elapsed:.0f} s ({profile.name} profile, {profile.resolved_precision()})"
    if count:
        runs = "1 run was" if count == 1 else f"{count} runs were"
        line += (f"; {runs} read from the run cache, which had trained in {saved:.0f} s: "
                 f"with an empty cache it takes about {elapsed + saved:.0f} s")
    else:
        line += "; no run was read from the run cache, so this is also its time with an empty cache"
    print(line)
    return line


def glue(name: str, value) -> None:
    """Store ``value`` (a number, a ``tables.ResultTable``, a figure) under ``name`` for the
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


def glue_experiment(name: str, rows: list[dict], profile: Profile, recipes) -> None:
    """:func:`glue_outcome` of the benchmark's runs of ``recipes`` (rows as
    ``bench.accuracies`` selects them, the first recipe the baseline); an error names a
    recipe without rows."""
    names = [recipe.name for recipe in recipes]
    tables.run_times(rows, profile, names)  # the error for a method the file lacks
    found, seconds = accuracies(rows, profile), run_seconds(rows, profile)
    glue_outcome(name, {m: found[m] for m in names}, {m: seconds[m] for m in names})


def glue_outcome(name: str, results: dict[str, dict[int, float]], seconds: dict[str, list[float]],
                 baselines=None) -> None:
    """Store what an experiment exercise quotes: ``<name>_minutes``, the slowest method's
    fastest run (as ``tables.run_times`` counts), for the question, and
    ``<name>_outcome``, the paired table of ``results`` (``{method: {seed: accuracy}}``)
    against ``baselines`` (default: its first method), for the solution. ``seconds``:
    each method's run times."""
    glue(f"{name}_minutes", max(min(times) for times in seconds.values()) / 60)
    glue(f"{name}_outcome", tables.benchmark_table(results, baselines=baselines or list(results)[:1]))
