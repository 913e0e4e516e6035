"""A fake of the engine's ``Search`` view, for testing strategies on their own."""

import random
from types import SimpleNamespace

import gepa_graph as gg
from gepa_graph import pareto
from gepa_graph.evaluation import EvalResult
from gepa_graph.example import Example


class FakeSearch(SimpleNamespace):
    """Just enough of the engine for a strategy: a pool, scores, and scripted rollouts."""

    def __init__(self, train=(), val=(), outcomes=None, cache=None, **config):
        super().__init__(
            config=gg.OptimizeConfig(**config),
            rng=random.Random(0),
            trainset=[Example(id=k) for k in train],
            valset=[Example(id=k) for k in val],
            val_keys=list(val),
            modules=["a", "b"],
            candidates={},
            scores={},
        )
        self.outcomes = outcomes or {}  # candidate id -> example key -> score
        self.cache = cache or {}  # candidate id -> example key -> score
        self.ran: list[tuple[str, tuple[str, ...]]] = []

    @property
    def best_id(self):
        return pareto.best_candidate(self.scores, self.val_keys, list(self.scores))

    def mean(self, cid):
        return pareto.mean_score(self.scores[cid], self.val_keys)

    def known(self, cid, examples):
        return {
            ex.key: self.cache[cid][ex.key] for ex in examples if ex.key in self.cache.get(cid, {})
        }

    async def evaluate(self, candidate, examples):
        self.ran.append((candidate.id, tuple(ex.key for ex in examples)))
        return [
            EvalResult(example_key=ex.key, score=self.outcomes[candidate.id][ex.key])
            for ex in examples
        ]

    @property
    def rollouts(self) -> int:
        """Rollouts paid so far (each (candidate, example) once, as the evaluator's cache)."""
        return len({(cid, key) for cid, keys in self.ran for key in keys})
