"""The check of chapter 8, ``book/08_comparison.ipynb``: how alike two orderings of the
methods are, ours and the published one (Tian et al. 2020, Table 1), as the fraction of
pairs ordered alike and as Kendall's τ (Kendall 1938, "A new measure of rank correlation")."""
from __future__ import annotations

from itertools import combinations

from ._checking import Wrong, check, float_answer

__all__ = ["ordering_agreement", "check_kendall_tau"]


def _pair_signs(ours: dict, theirs: dict) -> list[float]:
    """(ours[a] − ours[b]) · (theirs[a] − theirs[b]) for each pair of shared methods:
    positive where the two order the pair alike, 0 where either ties it."""
    pairs = combinations(sorted(set(ours) & set(theirs)), 2)
    return [(ours[a] - ours[b]) * (theirs[a] - theirs[b]) for a, b in pairs]


def ordering_agreement(ours: dict[str, float], theirs: dict[str, float]) -> float:
    """Fraction of method pairs ordered the same way by two {method: accuracy} dicts
    (ties count as disagreement)."""
    signs = _pair_signs(ours, theirs)
    if not signs:
        raise ValueError("ordering_agreement: the two dicts share fewer than two methods")
    return sum(x > 0 for x in signs) / len(signs)


def _kendall_tau(ours: dict, theirs: dict, ties_disagree=False) -> float:
    """The reference of ``ex-ordering``: Kendall's τ_a over the shared methods,
    (concordant − discordant) / pairs; a pair tied in either ranking counts as neither."""
    signs = _pair_signs(ours, theirs)
    concordant = sum(x > 0 for x in signs)
    discordant = sum(x < 0 or (ties_disagree and x == 0) for x in signs)
    return (concordant - discordant) / len(signs)


@check
def check_kendall_tau(fn):
    """Exercise ``ex-ordering``: ``fn(ours, theirs)`` -> Kendall's τ_a between two
    {method: accuracy} rankings: (concordant − discordant) / number of pairs, from −1
    (reversed) to 1 (the same order); a tie in either ranking counts as neither."""
    cases = [({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 3.0, "c": 2.0}),
             ({"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 1.0}),
             ({"a": 1.0, "b": 1.0, "c": 2.0, "d": 0.5}, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})]
    for ours, theirs in cases:
        expected = _kendall_tau(ours, theirs)
        answer = float_answer(fn, (ours, theirs), "a number between −1 and 1")
        if abs(answer - expected) < 1e-9:
            continue
        hint = "(concordant − discordant) / number of pairs"
        if abs(answer - ordering_agreement(ours, theirs)) < 1e-9:
            hint = "that is the fraction of pairs that agree; τ subtracts the pairs that disagree"
        elif abs(answer - _kendall_tau(ours, theirs, ties_disagree=True)) < 1e-9:
            hint = "a tied pair is neither concordant nor discordant"
        raise Wrong(f"for {ours} and {theirs} expected {expected:+.3f}, got {answer:+.3f}: {hint}")
    return "correct, reversed rankings and ties included."
