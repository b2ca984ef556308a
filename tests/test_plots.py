"""The text tables and verdicts the chapters print."""
import pytest

from hintlearn_mini.plots import accuracy_table, verdict


def test_accuracy_table_keeps_columns_for_rows_with_fewer_seeds():
    table = accuracy_table({"alone": [30.0, 32.0, 34.0], "KD": [40.0, 42.0]}, seeds=[0, 1, 2])
    head, _, alone, kd = table.splitlines()
    assert kd.split()[:4] == ["KD", "40.00", "42.00", "–"]
    assert kd.split()[4:] == ["41.00", "±", "1.41", "+9.00"]
    assert len(kd) == len(alone) == len(head)
    with pytest.raises(ValueError, match="more values than the 2 seeds"):
        accuracy_table({"alone": [1.0, 2.0, 3.0]}, seeds=[0, 1])


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
