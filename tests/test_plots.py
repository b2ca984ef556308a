"""The figures the chapters share."""
from hintlearn_mini import plots, tables
from hintlearn_mini.stats import paired_interval


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


def test_plot_differences_draws_every_method_but_the_baseline_with_its_shared_seeds():
    results = {"KD": {0: 55.0, 1: 56.0, 2: 58.0}, "AT": {1: 50.5, 2: 52.4},  # seed 0 not run
               "CRD": {0: 56.0, 1: 57.0, 2: 59.5}}
    fig = plots.plot_differences(results, "KD")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["CRD (n=3)", "AT (n=2)"]  # top to bottom: AT first
    lines = [l for l in fig.axes[0].lines if len(l.get_xdata()) == 2 and l.get_ydata()[0] == l.get_ydata()[1]]
    _, low, high = paired_interval([50.5, 52.4], [56.0, 58.0])  # AT's seeds 1 and 2
    assert any(list(l.get_xdata()) == [low, high] for l in lines)
    dots = [list(c.get_offsets()[:, 0]) for c in fig.axes[0].collections]
    assert [50.5 - 56.0, 52.4 - 58.0] in dots


def test_history_legend_counts_its_seeds_in_words():
    from hintlearn_mini.train import History

    def history(seed):
        return History(seed, [{"loss": 1.0, "train_acc": 10.0}, {"loss": 0.5, "train_acc": 20.0}])

    fig = plots.plot_histories({"KD": [history(0)], "AT": [history(0), history(1)]})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["KD (1 seed)", "AT (2 seeds)"]
    fig.clf()
