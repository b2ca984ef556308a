"""Paired intervals over shared seeds, checked against a case computed by hand."""
import math

import pytest

from hintlearn_mini.stats import compare, doubling_gains, paired_interval


def test_paired_interval_matches_a_hand_computed_case():
    # differences 2, 3, 1: mean 2, sd 1, n 3; t(0.975, 2 dof) = 4.302653 (t tables)
    mean, low, high = paired_interval([3.0, 5.0, 4.0], [1.0, 2.0, 3.0])
    half = 4.302653 * 1.0 / math.sqrt(3)
    assert mean == pytest.approx(2.0)
    assert (low, high) == (pytest.approx(2.0 - half, abs=1e-5), pytest.approx(2.0 + half, abs=1e-5))
    _, low90, high90 = paired_interval([3.0, 5.0, 4.0], [1.0, 2.0, 3.0], confidence=0.90)
    assert high90 - low90 == pytest.approx(2 * 2.919986 / math.sqrt(3), abs=1e-5)  # t(0.95, 2)


def test_pairing_matters_and_identical_runs_give_a_zero_interval():
    a, b = [40.0, 36.0, 38.0, 41.0, 35.0], [39.0, 35.0, 37.0, 40.0, 34.0]  # b = a − 1 per seed
    assert paired_interval(a, b) == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0))
    assert paired_interval(a, a) == (0.0, 0.0, 0.0)
    mean, low, high = paired_interval(a, b[::-1])  # the same numbers, unpaired: a wide interval
    assert low < 0 < high


def test_lists_that_do_not_pair_are_an_error():
    with pytest.raises(ValueError, match="same seeds in the same order: got 3 values and 2"):
        paired_interval([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2 shared seeds"):
        paired_interval([1], [2])


def test_clear_only_when_the_interval_excludes_zero():
    from hintlearn_mini.stats import verdict
    assert verdict(0.1, 2.0) == "clearly above" and verdict(-2.0, -0.1) == "clearly below"
    assert verdict(-0.1, 2.0) == "within the noise" and verdict(0.0, 1.0) == "within the noise"


def test_compare_pairs_only_the_seeds_both_methods_ran():
    results = {"a": {0: 50.0, 1: 42.0, 2: 43.5, 3: 60.0}, "b": {2: 40.0, 1: 40.0, 4: 10.0}}
    c = compare(results, "a", "b")
    # seeds 1 and 2: differences 2.0 and 3.5, mean 2.75, sd 1.0607, t(0.975, 1) = 12.706
    assert (c.seeds, c.differences, c.difference, c.n, c.wins) == ((1, 2), (2.0, 3.5), 2.75, 2, 2)
    assert (round(c.low, 2), round(c.high, 2), c.verdict) == (-6.78, 12.28, "within the noise")
    assert (compare(results, "b", "a").difference, compare(results, "b", "a").wins) == (-2.75, 0)


def test_compare_refuses_rows_by_position_and_fewer_than_two_shared_seeds():
    with pytest.raises(TypeError, match=r"pairs by seed.*dict\(zip\(seeds, values\)\)"):
        compare({"x": [41.0, 40.0], "y": [37.0, 36.0]}, "x", "y")
    with pytest.raises(ValueError, match=r"share only the seed 0 \(\[0\] vs \[0, 1\]\).*at least 2 shared seeds"):
        compare({"x": {0: 1.0}, "y": {0: 0.0, 1: 2.0}}, "x", "y")
    with pytest.raises(ValueError, match="share no seed"):
        compare({"x": {0: 1.0}, "y": {1: 1.0}}, "x", "y")


def test_a_gain_is_clear_only_when_its_paired_interval_excludes_zero():
    same = {"a": {0: 10.0, 1: 10.0}, "b": {0: 10.0, 1: 10.0}}
    assert compare(same, "a", "b").verdict == "within the noise"
    steady = {"a": {0: 12.0, 1: 13.0}, "b": {0: 10.0, 1: 11.0}}  # the same gain on every seed
    assert compare(steady, "a", "b").verdict == "clearly above"
    three = {"a": {0: 42.0, 1: 43.0, 2: 44.1}, "b": {0: 40.0, 1: 41.0, 2: 42.0}}
    assert compare(three, "a", "b").verdict == "clearly above" and compare(three, "b", "a").verdict == "clearly below"


def test_doubling_gains_pair_the_seeds_both_lengths_ran():
    rows = [{"train_per_class": 100, "epochs": e, "seed": s, "accuracy": a}
            for e, s, a in [(8, 0, 40.0), (8, 1, 42.0), (8, 2, 41.0),
                            (16, 0, 45.0), (16, 1, 46.0),   # seed 2 never ran 16 epochs
                            (32, 0, 47.0)]]                  # one common seed: no interval
    gains = doubling_gains(rows)
    assert [(g["epochs"], g["doubled"], g["seeds"]) for g in gains] == [(8, 16, 2)]
    mean, low, high = paired_interval([45.0, 46.0], [40.0, 42.0])
    assert gains[0]["gain"] == pytest.approx(4.5) == pytest.approx(mean)
    assert (gains[0]["low"], gains[0]["high"]) == pytest.approx((low, high))


def test_every_comparison_helper_pairs_by_seed_when_the_seeds_come_shuffled():
    import random

    from hintlearn_mini import bench
    from hintlearn_mini.profiles import PROFILES
    from hintlearn_mini.tables import benchmark_table, comparison_table

    seeds = list(range(6))
    a = {s: 40.0 + 3 * (s % 3) + 0.1 * s for s in seeds}   # the seed decides most of the accuracy
    b = {s: 38.0 + 3 * (s % 3) for s in seeds}             # ... of both methods alike
    by_seed = tuple(a[s] - b[s] for s in seeds)             # 2.0 ... 2.5: clearly above
    mean, low, high = paired_interval([a[s] for s in seeds], [b[s] for s in seeds])
    order_a, order_b = seeds[:], seeds[:]
    random.Random(0).shuffle(order_a)
    random.Random(1).shuffle(order_b)
    assert order_a != order_b
    results = {"a": {s: a[s] for s in order_a}, "b": {s: b[s] for s in order_b}}
    c = compare(results, "a", "b")
    assert c.differences == pytest.approx(by_seed) and (c.low, c.high) == pytest.approx((low, high))
    assert c.verdict == "clearly above"
    row = comparison_table(results, [("a", "b")]).data.loc[("a", "b")]
    assert (row["difference"], row["low"], row["high"]) == pytest.approx((mean, low, high))
    cells = benchmark_table(results, baselines=("b",)).data.loc["a"]
    assert cells[("vs b", "Δ")] == pytest.approx(mean)
    assert cells[("vs b", "95 % interval")] == f"[{low:+.2f}, {high:+.2f}]"
    # two budgets of one method: the plateau's rows, written in whatever order runs finished
    rows = [{"train_per_class": 10, "epochs": e, "seed": s, "accuracy": (b if e == 8 else a)[s]}
            for e, order in ((8, order_b), (16, order_a)) for s in order]
    random.Random(2).shuffle(rows)
    (gain,) = doubling_gains(rows)
    assert (gain["gain"], gain["low"], gain["high"]) == pytest.approx((mean, low, high))
    # the benchmark's rows, read back as {method: {seed: accuracy}}
    laptop = PROFILES["laptop"]
    stored = [dict(profile="laptop", teacher=laptop.teacher, student=laptop.student, epochs=str(laptop.epochs),
                   train_per_class=str(laptop.train_per_class), method=m, seed=str(s), accuracy=str(v[s]))
              for m, v, order in (("KD", a, order_a), ("student alone", b, order_b)) for s in order]
    random.Random(3).shuffle(stored)
    found = bench.accuracies(stored, laptop)
    assert compare(found, "KD", "student alone").differences == pytest.approx(by_seed)
