"""Validation economy: a child runs on the validation set in stages and stops as soon as its
full vector could no longer change anything (bounds.py), so validation's rollouts go to the
children that can.

Every policy runs the seed (and every candidate of a validation set under ``MIN_EXAMPLES``) on
everything. They differ in the order a child runs the examples, the bound that stops it, what
it must still be able to beat, and what happens to a child that cannot:

    name          order, bound                                  must beat   a stopped child
    parent_test   its parent's failures first; exact            its parent  is rejected
    best_bound    its parent's failures first; exact            the best    joins partially
    predicted     random; nearest neighbour + margin (bounds)   the best    joins partially
    lazy          random, a quarter then all; parent, no margin the best    joins partially

A partial vector counts on the fronts of the examples it ran and is never the best; final
selection completes the contenders (``bounds.contenders``).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Sequence

from gepa_graph import pareto
from gepa_graph.candidate import Candidate
from gepa_graph.example import Example
from gepa_graph.strategies.base import Search, Verdict, scores_of
from gepa_graph.strategies.bounds import EPS, Z, anchor_of, best_total, bound_of

# Below this many validation examples every candidate runs on all of them.
MIN_EXAMPLES = 8


class Sequential:
    """Validate in ``stages`` (fractions of the validation set) and stop a child once the
    upper bound on its full total no longer beats its target (``best`` or ``parent``).

    ``exact``: the child runs first where its anchor (its parent) falls short of the top
    score, the only examples where it can gain on it, and the bound is exact (every example
    left scored at the top): a stopped child provably could not have beaten its target.
    Otherwise the order is random and the bound statistical (``bounds.upper_total``)."""

    stages: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    target = "best"
    exact = True
    nearest = False  # predict unrun examples from the nearest complete candidate
    reject_stopped = False  # a stopped child is rejected instead of joining partially
    z = Z

    def __init__(self) -> None:
        self._order: list[Example] | None = None

    async def validate(self, search: Search, candidates: Sequence[Candidate]) -> list[Verdict]:
        """Run each candidate through the stages, concurrently."""
        return list(await asyncio.gather(*(self._run(search, c) for c in candidates)))

    def order(self, search: Search) -> list[Example]:
        """The validation set in the run's fixed order (its own generator, so switching the
        policy on does not change the search's draws)."""
        if self._order is None:
            self._order = list(search.valset)
            random.Random(f"{search.config.seed}/validation-order").shuffle(self._order)
        return self._order

    def plan(self, search: Search, candidate: Candidate) -> tuple[list[Example], list[int]]:
        """The order a child runs the validation set in, and the stage ends (prefix sizes)."""
        order, n = self.order(search), len(search.valset)
        ends = [max(1, math.ceil(n * fraction)) for fraction in self.stages]
        if not self.exact:
            return order, ends
        anchor = search.scores[anchor_of(search, candidate, {}, nearest=False)]
        high = _high(search)
        order = sorted(order, key=lambda ex: anchor.get(ex.key, -math.inf) >= high)
        room = sum(anchor.get(ex.key, -math.inf) < high for ex in order)
        return order, sorted({max(1, room), *ends})

    def target_total(self, search: Search, candidate: Candidate) -> float | None:
        """What the child's full total must beat; None where the test does not apply (a
        parent without a complete vector)."""
        if self.target == "best":
            return best_total(search)
        parents = [p for p in candidate.parent_ids if p in search.scores]
        complete = [p for p in parents if pareto.is_complete(search.scores[p], search.val_keys)]
        if not complete:
            return None
        return max(search.mean(p) for p in complete) * len(search.val_keys)

    def hopeless(self, search: Search, candidate: Candidate, scores: dict[str, float]) -> bool:
        """Whether the child's full vector could no longer beat its target."""
        target = self.target_total(search, candidate)
        if target is None:
            return False
        if self.exact:
            bound = sum(scores.values()) + (len(search.val_keys) - len(scores)) * _high(search)
        else:
            bound = bound_of(search, candidate, scores, nearest=self.nearest, z=self.z)
        return bound <= target + EPS

    async def _run(self, search: Search, candidate: Candidate) -> Verdict:
        n = len(search.valset)
        if (
            candidate.origin == "seed"
            or n < MIN_EXAMPLES
            or (self.exact and search.config.score_range is None)
        ):
            return Verdict(scores_of(await search.evaluate(candidate, search.valset)))
        order, ends = self.plan(search, candidate)
        scores: dict[str, float] = {}
        for end in ends:
            scores = scores_of(await search.evaluate(candidate, order[:end]))
            if len(scores) == n or not self.hopeless(search, candidate, scores):
                continue
            if self.reject_stopped:
                return Verdict(scores, ("cannot_beat_on_validation", self._detail(scores)))
            break
        return Verdict(scores)

    def _detail(self, scores: dict[str, float]) -> str:
        return (
            f"stopped after {len(scores)} validation examples: it cannot beat its "
            f"{self.target} (mean so far {sum(scores.values()) / len(scores):.3g})"
        )


def _high(search: Search) -> float:
    """The top score an example can get (``score_range``'s upper end, else +inf)."""
    return search.config.score_range[1] if search.config.score_range else math.inf


class ParentTest(Sequential):
    """A sequential test of the child against its parent (the better one for a merge):
    rejected once it provably cannot beat the parent on the full set."""

    target = "parent"
    reject_stopped = True


class BestBound(Sequential):
    """Bounds against the best: a child that cannot beat the best joins with its partial
    vector (it may still be best on some example, and a parent)."""


class Predicted(Sequential):
    """Like ``BestBound`` in a random order with the statistical bound, the unrun examples
    predicted from the complete candidate that agrees with the child most on the examples it
    ran (a nearest-neighbour, item-response guess)."""

    exact = False
    nearest = True


class Lazy(Sequential):
    """A quarter first; completed only when its estimate (no margin) beats the best,
    otherwise it joins with the quarter and waits for final selection."""

    stages = (0.25, 1.0)
    exact = False
    z = 0.0
