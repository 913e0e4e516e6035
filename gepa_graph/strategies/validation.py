"""Validation policies: how much of the validation set a minibatch winner runs on."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterable, Sequence

from gepa_graph.candidate import Candidate
from gepa_graph.example import Example
from gepa_graph.strategies.base import Search, ValidationPolicy, Verdict, scores_of
from gepa_graph.strategies.sequential import BestBound, Lazy, ParentTest, Predicted


class FullValidation:
    """Every candidate runs on the whole validation set."""

    async def validate(self, search: Search, candidates: Sequence[Candidate]) -> list[Verdict]:
        """Run each candidate on the whole validation set, concurrently."""
        results = await asyncio.gather(*(search.evaluate(c, search.valset) for c in candidates))
        return [Verdict(scores_of(r)) for r in results]


class Screening(FullValidation):
    """Adaptive validation size: a mutation child runs on a fixed quarter of the validation
    set first and is dropped there if it does worse than its parent and sets no new
    per-example best; the rest run on the other three quarters."""

    def __init__(self) -> None:
        self._sample: list[Example] | None = None

    async def validate(self, search: Search, candidates: Sequence[Candidate]) -> list[Verdict]:
        """Screen mutation children on the fixed quarter first, then run the survivors (and
        every other candidate) on the whole set."""
        if self._sample is None:
            valset = search.valset
            size = max(1, len(valset) // 4) if len(valset) >= 8 else len(valset)
            # Its own generator, so switching screening on does not change the search's draws.
            self._sample = random.Random(search.config.seed + 1).sample(valset, size)
        sample = self._sample
        mutations = [c for c in candidates if c.origin == "mutation"]
        hopeless: dict[str, Verdict] = {}
        if mutations and len(sample) < len(search.valset):
            results = await asyncio.gather(*(search.evaluate(c, sample) for c in mutations))
            for child, child_results in zip(mutations, results, strict=True):
                parent = search.scores[child.parent_ids[0]]
                mine = scores_of(child_results)
                tops = _tops(search, mine)
                theirs = sum(parent.get(k, 0.0) for k in mine)
                if sum(mine.values()) < theirs and not any(mine[k] > tops[k] for k in mine):
                    hopeless[child.id] = Verdict(
                        mine,
                        (
                            "worse_than_parent_on_validation_sample",
                            f"{sum(mine.values()):g} vs parent {theirs:g} on {len(mine)} "
                            "validation examples",
                        ),
                    )
        rest = [c for c in candidates if c.id not in hopeless]
        full = dict(zip((c.id for c in rest), await super().validate(search, rest), strict=True))
        return [hopeless.get(c.id) or full[c.id] for c in candidates]


class Racing:
    """Validate in stages (a quarter, a half, all) and stop a candidate as soon as it can no
    longer reach the best mean nor a new per-example best, whatever it scores on the examples
    left (bounds from ``score_range``). A stopped candidate joins the pool with its partial
    vector: it still counts on the fronts of the examples it ran, and is never the best."""

    stages = (0.25, 0.5, 1.0)

    async def validate(self, search: Search, candidates: Sequence[Candidate]) -> list[Verdict]:
        """Race each candidate through the stages, concurrently."""
        return list(await asyncio.gather(*(self._race(search, c) for c in candidates)))

    async def _race(self, search: Search, candidate: Candidate) -> Verdict:
        valset, n = search.valset, len(search.valset)
        if candidate.origin == "seed" or n < 8 or search.config.score_range is None:
            return (await FullValidation().validate(search, [candidate]))[0]
        # A fixed order per candidate, so the stages of one candidate are nested.
        order = list(valset)
        random.Random(f"{search.config.seed}/{candidate.id}").shuffle(order)
        high = search.config.score_range[1]
        best_total = search.mean(search.best_id) * n
        mine: dict[str, float] = {}
        for fraction in self.stages:
            stage = order[: max(1, math.ceil(n * fraction))]
            mine = scores_of(await search.evaluate(candidate, stage))
            if len(mine) == n:
                break
            rest = [ex.key for ex in order if ex.key not in mine]
            tops = _tops(search, {k: 0.0 for k in search.val_keys})
            can_lead = sum(mine.values()) + high * len(rest) > best_total + 1e-9
            new_best = any(mine[k] > tops[k] for k in mine) or any(tops[k] < high for k in rest)
            if not (can_lead or new_best):
                break
        return Verdict(mine)


def _tops(search: Search, keys: Iterable[str]) -> dict[str, float]:
    """Per example, the top score any pool candidate has on it (-inf where none ran it)."""
    return {
        k: max((s[k] for s in search.scores.values() if k in s), default=-math.inf) for k in keys
    }


VALIDATIONS: dict[str, type[ValidationPolicy]] = {
    "full": FullValidation,
    "screening": Screening,
    "racing": Racing,
    "parent_test": ParentTest,
    "best_bound": BestBound,
    "predicted": Predicted,
    "lazy": Lazy,
}
