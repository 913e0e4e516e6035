"""A fake of the engine's ``Search`` view, for testing strategies on their own."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import gepa_graph as gg
from gepa_graph import pareto
from gepa_graph.candidate import Candidate
from gepa_graph.evaluation import EvalResult
from gepa_graph.example import Example


class FakeSearch(SimpleNamespace):
    """Just enough of the engine for a strategy: a pool, scores, and scripted rollouts."""

    def __init__(
        self,
        train: Iterable[str] = (),
        val: Iterable[str] = (),
        outcomes: dict[str, dict[str, float]] | None = None,
        cache: Mapping[str, Mapping[str, float]] | None = None,
        **config: Any,
    ) -> None:
        val = list(val)
        super().__init__(
            config=gg.OptimizeConfig(**config),
            rng=random.Random(0),
            trainset=[Example(id=k) for k in train],
            valset=[Example(id=k) for k in val],
            val_keys=val,
            modules=["a", "b"],
            candidates={},
            scores={},
            exhausted=set(),
        )
        self.outcomes = outcomes or {}  # candidate id -> example key -> score
        self.cache = cache or {}  # candidate id -> example key -> score
        self.ran: list[tuple[str, tuple[str, ...]]] = []

    @property
    def best_id(self) -> str:
        """The best complete candidate, as the engine computes it."""
        return pareto.best_candidate(self.scores, self.val_keys, list(self.scores))

    def mean(self, cid: str) -> float:
        """A candidate's mean over the examples it ran."""
        return pareto.mean_score(self.scores[cid], self.val_keys)

    def known(self, cid: str, examples: Sequence[Example]) -> dict[str, float]:
        """Scores in the scripted cache."""
        return {
            ex.key: self.cache[cid][ex.key] for ex in examples if ex.key in self.cache.get(cid, {})
        }

    async def evaluate(self, candidate: Candidate, examples: Sequence[Example]) -> list[EvalResult]:
        """The scripted outcomes; every call is recorded in ``ran``."""
        self.ran.append((candidate.id, tuple(ex.key for ex in examples)))
        return [
            EvalResult(example_key=ex.key, score=self.outcomes[candidate.id][ex.key])
            for ex in examples
        ]

    @property
    def rollouts(self) -> int:
        """Rollouts paid so far (each (candidate, example) once, as the evaluator's cache)."""
        return len({(cid, key) for cid, keys in self.ran for key in keys})
