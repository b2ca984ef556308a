"""Our ordering of the methods against a published one, pair by pair (chapter 8).

Two orderings agree on a pair of methods only where both decide it: ours when the paired
95 % interval of the two methods' difference over their shared seeds excludes zero
(``stats.compare``), the published one when its gap is at least ``tie_below`` points
(smaller published gaps are ties: a table of single means cannot order them). Pairs with
a baseline (the student alone, the teacher) are left out: every method beats the student
alone in both settings, so those pairs would agree by construction. Against the fraction
that agrees stands what chance gives (one half) and the binomial probability of at least
that many agreements by chance.

Chapter: ``book/08_comparison.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from scipy.stats import binomtest

from .stats import compare

__all__ = ["BASELINES", "PairOrder", "Agreement", "ordering_agreement"]

BASELINES = ("student alone", "teacher")


@dataclass(frozen=True)
class PairOrder:
    """One pair of methods (a, b), as each side orders it."""
    a: str
    b: str
    ours: str             # "a", "b" (a clear paired difference) or "noise"
    difference: float     # our mean paired difference a − b (points)
    low: float            # its 95 % interval
    high: float
    published_gap: float  # published a − b (points)
    published: str        # "a", "b" or "tie" (a gap below tie_below)

    @property
    def decided(self) -> bool:
        return self.ours != "noise" and self.published != "tie"

    @property
    def agrees(self) -> bool:
        return self.decided and self.ours == self.published


@dataclass(frozen=True)
class Agreement:
    pairs: tuple          # every PairOrder, method against method
    tie_below: float

    @property
    def decided(self) -> list[PairOrder]:
        return [p for p in self.pairs if p.decided]

    @property
    def agreeing(self) -> int:
        return sum(p.agrees for p in self.pairs)

    @property
    def fraction(self) -> float:
        """Of the pairs both sides decide, the share ordered alike (NaN if none)."""
        return self.agreeing / len(self.decided) if self.decided else float("nan")

    chance = 0.5  # two orders of a pair, equally likely

    @property
    def p_value(self) -> float:
        """P(at least this many agreements | each decided pair a coin toss)."""
        if not self.decided:
            return float("nan")
        return binomtest(self.agreeing, len(self.decided), 0.5, alternative="greater").pvalue


def ordering_agreement(ours: dict, published: dict, *, tie_below: float, baselines=BASELINES) -> Agreement:
    """Every pair of the methods in both ``ours`` (``{method: {seed: accuracy}}``) and
    ``published`` (``{method: accuracy}``), baselines left out, ordered by each side."""
    names = [m for m in ours if m in published and m not in baselines]
    pairs = []
    for a, b in combinations(names, 2):
        c = compare(ours, a, b)
        gap = float(published[a]) - float(published[b])
        pairs.append(PairOrder(a, b, {"clearly above": "a", "clearly below": "b"}.get(c.verdict, "noise"),
                               c.difference, c.low, c.high, gap,
                               "tie" if abs(gap) < tie_below else ("a" if gap > 0 else "b")))
    return Agreement(tuple(pairs), tie_below)
