"""The result tables the chapters show: their numbers, their text, their errors."""
import math

import pytest

from hintlearn_mini import tables
from hintlearn_mini.profiles import PROFILES
from hintlearn_mini.stats import paired_interval


def test_accuracy_table_keeps_columns_for_rows_with_fewer_seeds():
    table = tables.accuracy_table({"alone": [30.0, 32.0, 34.0], "KD": [40.0, 42.0]}, seeds=[0, 1, 2]).data
    assert list(table.columns) == ["seed 0", "seed 1", "seed 2", "n", "mean", "sd"]
    kd = table.loc["KD"]
    assert kd["seed 0"] == 40.0 and kd["seed 1"] == 42.0 and math.isnan(kd["seed 2"])
    assert (kd["n"], kd["mean"], round(kd["sd"], 2)) == (2, 41.0, 1.41)
    with pytest.raises(ValueError, match="3 values for the 2 seeds"):
        tables.accuracy_table({"alone": [1.0, 2.0, 3.0]}, seeds=[0, 1])


def test_accuracy_table_renders_two_decimals_and_a_dash_for_a_seed_not_run():
    table = tables.accuracy_table({"alone": {0: 30.0, 1: 32.125}, "KD": {1: 40.0}})
    html, text = table._repr_html_(), str(table)
    assert "<table" in html and "32.12" in html and "32.125" not in html and "–" in html
    header, alone, kd = text.splitlines()[0], text.splitlines()[-2], text.splitlines()[-1]
    assert header.split()[:2] == ["seed", "0"] and kd.split()[:3] == ["KD", "–", "40.00"]
    assert alone.split()[:3] == ["alone", "30.00", "32.12"]


def test_comparison_table_pairs_each_row_over_the_seeds_both_ran():
    results = {"a": {0: 50.0, 1: 42.0, 2: 43.5, 3: 60.0}, "b": {2: 40.0, 1: 40.0, 4: 10.0}}
    table = tables.comparison_table(results, [("a", "b"), ("b", "a")])
    # seeds 1 and 2: differences 2.0 and 3.5, mean 2.75, its 95 % interval [-6.78, 12.28]
    assert str(table).splitlines()[0].split() == ["seeds", "difference", "low", "high", "verdict", "wins"]
    assert str(table).splitlines()[-2].split() == ["a", "b", "2", "2.75", "-6.78", "12.28", "within", "the",
                                                   "noise", "2", "of", "2"]
    assert table.data.loc[("b", "a"), "difference"] == -2.75 and table.data.loc[("b", "a"), "wins"] == "0 of 2"
    with pytest.raises(ValueError, match="share only the seed 1"):
        tables.comparison_table({"x": {1: 1.0}, "y": {0: 0.0, 1: 2.0}}, [("x", "y")])


def test_benchmark_table_pairs_each_method_with_each_baseline_over_shared_seeds():
    results = {"student alone": {0: 50.0, 1: 52.0, 2: 51.0},
               "KD": {0: 55.0, 1: 56.0, 2: 58.0},
               "AT": {0: 50.5, 1: 52.4}}  # seed 2 not run
    table = tables.benchmark_table(results).data
    assert table.loc["AT", ("", "n")] == 2
    assert table.loc["AT", ("vs student alone", "Δ")] == pytest.approx(0.45)  # seeds 0, 1 only
    assert table.loc["AT", ("vs KD", "Δ")] == pytest.approx(-4.05)
    _, low, high = paired_interval([50.5, 52.4], [55.0, 56.0])
    assert table.loc["AT", ("vs KD", "95 % interval")] == f"[{low:+.2f}, {high:+.2f}]"
    assert table.loc["KD", ("vs student alone", "verdict")] == "clearly above"
    assert table.loc["KD", ("vs KD", "verdict")] == ""  # a baseline against itself
    with pytest.raises(ValueError, match="no rows of the baseline 'student alone'; methods: AT"):
        tables.benchmark_table({"AT": results["AT"]})


def test_run_times_count_each_methods_runs_and_its_fastest_at_the_profiles_budget():
    laptop = PROFILES["laptop"]
    budget = dict(profile="laptop", teacher=laptop.teacher, student=laptop.student,
                  epochs=str(laptop.epochs), train_per_class=str(laptop.train_per_class))
    rows = [dict(budget, method=m, seed=str(s), wall_seconds=str(w))
            for m, s, w in [("KD", 0, 90), ("KD", 1, 900), ("AT", 0, 60), ("AT", 1, 45)]]
    rows.append(dict(budget, method="KD", seed="2", wall_seconds="6", epochs="1"))  # another budget
    table = tables.run_times(rows, laptop, ["KD", "AT"])
    assert table.data.to_dict() == {"runs": {"KD": 2, "AT": 2}, "minutes per run": {"KD": 1.5, "AT": 0.75}}
    with pytest.raises(ValueError, match=r"no benchmark rows of \['CRD'\] for laptop; methods with rows: KD, AT"):
        tables.run_times(rows, laptop, ["AT", "CRD"])
