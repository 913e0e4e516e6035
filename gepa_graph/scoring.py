"""Held-out scoring: prompt sets run on examples outside any search budget, the way the search
runs them (the evaluator: concurrency, retries, the metric, failures as scores). One function
for both places that score held-out data: ``optimize(testset=...)`` scores the seed and the best
candidate when the search is over (``score_testset``), and the promotion gate
(``gepa_graph.tracking.gate``) scores the candidate and production prompts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gepa_graph.budget import Budget
from gepa_graph.candidate import Candidate
from gepa_graph.config import OptimizeConfig
from gepa_graph.evaluation import EvalResult, Evaluator
from gepa_graph.example import Example
from gepa_graph.executor import Executor
from gepa_graph.journal import Journal
from gepa_graph.metric import Metric
from gepa_graph.records import HeldOutScores
from gepa_graph.system import System


async def score_prompt_sets(
    system: System,
    metric: Metric,
    prompt_sets: Sequence[Mapping[str, str]],
    examples: Sequence[Example],
    config: OptimizeConfig,
    *,
    executor: Executor | None = None,
    journal: Journal | None = None,
    journaled: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> list[list[EvalResult]]:
    """Per prompt set, its results on ``examples`` (in order), all run with ``config``'s
    settings (concurrency, seed, timeouts) but none of its budgets. Rollouts are journaled in
    ``journal`` (none by default), and those in ``journaled`` are taken instead of run again."""
    free = config.model_copy(
        update={
            "max_rollouts": len(examples) * len(prompt_sets),
            "max_cost_usd": None,
            "max_seconds": None,
        }
    )
    evaluator = Evaluator(
        system,
        metric,
        free,
        Budget(free),
        journal if journal is not None else Journal(None),
        journaled,
        executor,
    )
    return [
        await evaluator.evaluate(Candidate(prompts=dict(prompts)), examples)
        for prompts in prompt_sets
    ]


async def score_testset(
    system: System,
    metric: Metric,
    config: OptimizeConfig,
    seed: tuple[str, Mapping[str, str]],
    best: tuple[str, Mapping[str, str]],
    test: Sequence[Example],
    *,
    executor: Executor | None = None,
    journal: Journal | None = None,
    journaled: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> HeldOutScores:
    """The held-out scores of a run's ``seed`` and ``best`` candidates (each ``(id,
    prompts)``) on the examples ``test``; see ``score_prompt_sets``."""
    outcomes = await score_prompt_sets(
        system,
        metric,
        [seed[1], best[1]],
        test,
        config,
        executor=executor,
        journal=journal,
        journaled=journaled,
    )
    seed_scores, best_scores = (
        {outcome.example_key: outcome.score for outcome in results} for results in outcomes
    )
    return HeldOutScores(
        seed_id=seed[0],
        best_id=best[0],
        seed_scores=seed_scores,
        best_scores=best_scores,
        seed_score=sum(seed_scores.values()) / len(test),
        best_score=sum(best_scores.values()) / len(test),
    )
