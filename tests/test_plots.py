"""The result tables and verdicts the chapters show."""
import math

import pytest

from hintlearn_mini import plots
from hintlearn_mini.plots import accuracy_table, compare, comparison_table, verdict
from hintlearn_mini.stats import paired_interval


def test_accuracy_table_keeps_columns_for_rows_with_fewer_seeds():
    table = accuracy_table({"alone": [30.0, 32.0, 34.0], "KD": [40.0, 42.0]}, seeds=[0, 1, 2]).data
    assert list(table.columns) == ["seed 0", "seed 1", "seed 2", "n", "mean", "sd"]
    kd = table.loc["KD"]
    assert kd["seed 0"] == 40.0 and kd["seed 1"] == 42.0 and math.isnan(kd["seed 2"])
    assert (kd["n"], kd["mean"], round(kd["sd"], 2)) == (2, 41.0, 1.41)
    with pytest.raises(ValueError, match="3 values for the 2 seeds"):
        accuracy_table({"alone": [1.0, 2.0, 3.0]}, seeds=[0, 1])


def test_accuracy_table_renders_two_decimals_and_a_dash_for_a_seed_not_run():
    table = accuracy_table({"alone": {0: 30.0, 1: 32.125}, "KD": {1: 40.0}})
    html, text = table._repr_html_(), str(table)
    assert "<table" in html and "32.12" in html and "32.125" not in html and "–" in html
    header, alone, kd = text.splitlines()[0], text.splitlines()[-2], text.splitlines()[-1]
    assert header.split()[:2] == ["seed", "0"] and kd.split()[:3] == ["KD", "–", "40.00"]
    assert alone.split()[:3] == ["alone", "30.00", "32.12"]


def test_comparisons_pair_only_the_seeds_both_methods_ran():
    results = {"a": {0: 50.0, 1: 42.0, 2: 43.5, 3: 60.0}, "b": {1: 40.0, 2: 40.0, 4: 10.0}}
    row = compare(results, "a", "b")
    # seeds 1 and 2: differences 2.0 and 3.5, mean 2.75, sd 1.0607, t(0.975, 1) = 12.706
    assert row["seeds"] == 2 and row["difference"] == 2.75 and row["wins"] == "2 of 2"
    assert (round(row["low"], 2), round(row["high"], 2)) == (-6.78, 12.28)
    assert row["verdict"] == "within the noise"
    table = comparison_table(results, [("a", "b"), ("b", "a")]).data
    assert table.loc[("b", "a"), "difference"] == -2.75
    assert compare({"x": [41.0, 40.0, 37.0], "y": [37.0, 36.0, 35.0]}, "x", "y", seeds=[0, 1, 2])[
        "verdict"] == "clearly above"
    assert compare({"x": {0: 1.0}, "y": {0: 0.0, 1: 2.0}}, "x", "y")["verdict"].startswith("one seed")
    with pytest.raises(ValueError, match="share no seed"):
        compare({"x": {0: 1.0}, "y": {1: 1.0}}, "x", "y")


def test_verdict_of_identical_rows_is_no_difference():
    assert "within the noise of" in verdict({"a": [10.0, 10.0], "b": [10.0, 10.0]}, "a", "b")
    assert "clearly above" in verdict({"a": [12.0, 13.0], "b": [10.0, 11.0]}, "a", "b")  # same gain on every seed


def test_verdict_is_clear_only_when_the_paired_95_interval_excludes_zero():
    # differences 2.0 and 3.5: t = 3.67 (> 2), but with 1 degree of freedom the 95 %
    # interval is 2.75 ± 12.71 · 0.75, so the gain is within the noise
    sentence = verdict({"a": [42.0, 43.5], "b": [40.0, 40.0]}, "a", "b")
    assert "within the noise of" in sentence and "95 % interval [-6.78, +12.28]" in sentence
    assert "clearly above" in verdict({"a": [42.0, 43.0, 44.1], "b": [40.0, 41.0, 42.0]}, "a", "b")


def test_plot_plateau_draws_every_size_and_the_marked_runs():
    from hintlearn_mini.plots import plot_plateau
    rows = [{"train_per_class": n, "epochs": e, "seed": s, "accuracy": 40 + e / 4 + s,
             "train_accuracy": 45 + e / 3} for n in (100, 200) for e in (8, 16) for s in (0, 1)]
    fig = plot_plateau(rows, marked={"profile": (6, [36.0, 35.0])})
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["100 per class: test", "100 per class: training", "200 per class: test",
                      "200 per class: training", "profile"]
    test_line = ax.get_lines()[0]
    assert list(test_line.get_xdata()) == [8, 16] and list(test_line.get_ydata()) == [42.5, 44.5]
    assert ax.get_xscale() == "log"


def test_benchmark_table_pairs_each_method_with_each_baseline_over_shared_seeds():
    results = {"student alone": {0: 50.0, 1: 52.0, 2: 51.0},
               "KD": {0: 55.0, 1: 56.0, 2: 58.0},
               "AT": {0: 50.5, 1: 52.4}}  # seed 2 not run
    table = plots.benchmark_table(results).data
    assert table.loc["AT", ("", "n")] == 2
    assert table.loc["AT", ("vs student alone", "Δ")] == pytest.approx(0.45)  # seeds 0, 1 only
    assert table.loc["AT", ("vs KD", "Δ")] == pytest.approx(-4.05)
    _, low, high = paired_interval([50.5, 52.4], [55.0, 56.0])
    assert table.loc["AT", ("vs KD", "95 % interval")] == f"[{low:+.2f}, {high:+.2f}]"
    assert table.loc["KD", ("vs student alone", "verdict")] == "clearly above"
    assert table.loc["KD", ("vs KD", "verdict")] == ""  # a baseline against itself
    with pytest.raises(ValueError, match="no rows of the baseline 'student alone'; methods: AT"):
        plots.benchmark_table({"AT": results["AT"]})


def test_plot_differences_draws_every_method_but_the_baseline_with_its_shared_seeds():
    results = {"KD": {0: 55.0, 1: 56.0, 2: 58.0}, "AT": {0: 50.5, 1: 52.4},
               "CRD": {0: 56.0, 1: 57.0, 2: 59.5}}
    fig = plots.plot_differences(results, "KD")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["CRD (n=3)", "AT (n=2)"]  # top to bottom: AT first
    lines = [l for l in fig.axes[0].lines if len(l.get_xdata()) == 2 and l.get_ydata()[0] == l.get_ydata()[1]]
    _, low, high = paired_interval([50.5, 52.4], [55.0, 56.0])
    assert any(list(l.get_xdata()) == [low, high] for l in lines)


def test_glue_stores_plain_numbers_the_page_can_format(monkeypatch):
    """``{glue:text}`name:.1f``` formats the stored repr: a NumPy scalar's repr
    ('np.float64(1.5)') fails the book's build, so glue stores a Python number."""
    import numpy as np
    import myst_nb

    stored = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: stored.update({name: value}))
    plots.glue("minutes", np.float64(1.5))
    plots.glue("table", plots.ResultTable(None))
    assert type(stored["minutes"]) is float and f"{eval(repr(stored['minutes'])):.1f}" == "1.5"
    assert isinstance(stored["table"], plots.ResultTable)


def test_history_legend_counts_its_seeds_in_words():
    from hintlearn_mini.train import History

    def history(seed):
        return History(seed, [{"loss": 1.0, "train_acc": 10.0}, {"loss": 0.5, "train_acc": 20.0}])

    fig = plots.plot_histories({"KD": [history(0)], "AT": [history(0), history(1)]})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["KD (1 seed)", "AT (2 seeds)"]
    fig.clf()
