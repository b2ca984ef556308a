"""Our ordering against a published one: only decided method-against-method pairs count."""
import pytest

from hintlearn_mini.published import ordering_agreement


def _seeds(*values):
    return dict(enumerate(values))


def test_only_pairs_both_sides_decide_count_and_baselines_are_left_out():
    ours = {"student alone": _seeds(30, 31, 32),
            "KD": _seeds(40, 41, 42),          # clearly above CRD and AT (+10 on every seed)
            "CRD": _seeds(30, 31, 32.2),
            "AT": _seeds(30.5, 30.5, 32.5),    # CRD vs AT: within the noise
            "FitNets": _seeds(50, 51, 52)}     # clearly above all
    published = {"student alone": 69.0, "KD": 70.66, "CRD": 71.16, "AT": 70.55, "FitNets": 69.21,
                 "teacher": 72.3, "ReviewKD": 71.9}  # ReviewKD: not ours, left out
    agreement = ordering_agreement(ours, published, tie_below=0.3)
    pairs = {(p.a, p.b): p for p in agreement.pairs}
    assert set(pairs) == {("KD", "CRD"), ("KD", "AT"), ("KD", "FitNets"), ("CRD", "AT"), ("CRD", "FitNets"),
                          ("AT", "FitNets")}
    assert pairs["KD", "CRD"].ours == "a" and pairs["KD", "CRD"].published == "b"     # disagree
    assert pairs["KD", "AT"].published == "tie" and not pairs["KD", "AT"].decided      # 0.11 apart
    assert pairs["CRD", "AT"].ours == "noise" and not pairs["CRD", "AT"].decided
    assert pairs["KD", "FitNets"].agrees is False and pairs["KD", "FitNets"].ours == "b"
    decided = {(p.a, p.b) for p in agreement.decided}
    assert decided == {("KD", "CRD"), ("KD", "FitNets"), ("CRD", "FitNets"), ("AT", "FitNets")}
    assert agreement.agreeing == 0 and agreement.fraction == 0.0 and agreement.chance == 0.5
    assert agreement.p_value == pytest.approx(1.0)
    assert pairs["KD", "CRD"].difference == pytest.approx(41 - 31.0667, abs=1e-3)


def test_the_chance_of_an_agreement_is_a_coin_toss_per_decided_pair():
    ours = {m: _seeds(v, v + 1, v + 2.5) for m, v in (("A", 10), ("B", 20), ("C", 30), ("D", 40))}
    published = {"A": 1.0, "B": 2.0, "C": 3.0, "D": 4.0}  # the same order, every gap decided
    agreement = ordering_agreement(ours, published, tie_below=0.5)
    assert agreement.agreeing == len(agreement.decided) == 6 and agreement.fraction == 1.0
    assert agreement.p_value == pytest.approx(0.5 ** 6)
    everything_tied = ordering_agreement(ours, published, tie_below=5.0)
    assert everything_tied.decided == [] and everything_tied.fraction != everything_tied.fraction  # NaN
