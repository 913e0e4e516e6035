"""The promotion gate: move ``production`` only when the candidate prompts win on held-out data.

``promote_if_better`` scores the ``candidate`` and the current ``production`` prompt sets of a
registration on held-out examples, with the same evaluator and metric handling as an
optimization, records the decision and both scores as an MLflow run (``promote-NAME-<date>``,
tag ``gepa_graph.kind = promotion``, in the experiment of the run that produced the candidate),
and promotes only if the candidate's mean score beats production's by ``margin``. Without a
``production`` set yet, the graph's own prompts are the baseline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gepa_graph.errors import InvalidInput
from gepa_graph.redact import redact_text
from gepa_graph.tracking import registry
from gepa_graph.tracking import schema as S

DEFAULT_EXPERIMENT = "gepa-graph-promotions"


@dataclass(frozen=True)
class GateDecision:
    """What the promotion gate decided and why, as the CLI prints it and the promotion run
    records it: both scores, the ``margin``, the ``baseline`` compared against ("production", or
    "graph" before any production exists), the candidate's ``versions``, per-example scores."""

    name: str
    promoted: bool
    candidate_score: float
    production_score: float
    margin: float
    baseline: str  # "production" or "graph" (no production set yet)
    versions: dict[str, int]  # the candidate's versions
    example_scores: list[dict[str, Any]]  # example, candidate, production
    run_id: str | None = None

    def summary(self) -> str:
        """The decision in one line: both scores, the margin, promoted or kept."""
        verdict = "promoted" if self.promoted else "kept production"
        return (
            f"{self.name}: candidate {self.candidate_score:.4f} vs {self.baseline} "
            f"{self.production_score:.4f} (margin {self.margin:g}): {verdict}"
        )


def score_prompt_sets(
    system: Any,
    prompt_sets: list[Mapping[str, str]],
    examples: Iterable[Mapping[str, Any]],
    metric: Any,
) -> tuple[list[list[float]], list[str]]:
    """Per-example scores of each prompt set on ``examples`` (modules a set does not name keep
    the system's own prompts), and the example keys. Failures are scored as in an
    optimization."""
    from gepa_graph.api import as_system
    from gepa_graph.budget import Budget
    from gepa_graph.candidate import Candidate
    from gepa_graph.config import OptimizeConfig
    from gepa_graph.evaluation import Evaluator
    from gepa_graph.example import as_dataset
    from gepa_graph.journal import Journal

    system = as_system(system)
    dataset = as_dataset(examples, "holdout")
    if not dataset:
        raise InvalidInput("the held-out set holds no examples")
    config = OptimizeConfig(max_rollouts=len(dataset) * len(prompt_sets))
    own = dict(system.modules())
    candidates = []
    for prompts in prompt_sets:
        unknown = sorted(set(prompts) - set(own))
        if unknown:
            raise InvalidInput(
                f"registry modules {unknown} are not prompts of this graph; its "
                f"modules are {sorted(own)}"
            )
        candidates.append(Candidate(prompts={**own, **prompts}))

    async def run() -> list[list[float]]:
        evaluator = Evaluator(system, metric, config, Budget(config), Journal(None))
        scores = []
        for candidate in candidates:
            results = await evaluator.evaluate(candidate, dataset)
            scores.append([r.score for r in results])
        return scores

    return asyncio.run(run()), [example.key for example in dataset]


def promote_if_better(
    name: str,
    system: Any,
    examples: Iterable[Mapping[str, Any]],
    metric: Any,
    *,
    margin: float = 0.02,
    from_alias: str = S.CANDIDATE_ALIAS,
    to_alias: str = S.PRODUCTION_ALIAS,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> GateDecision:
    """Score ``NAME@from_alias`` and ``NAME@to_alias`` on ``examples`` and move ``to_alias``
    only if the first wins by ``margin``; the decision is recorded in MLflow either way."""
    client = registry.client_for(tracking_uri)
    candidate_versions = registry.load_versions(f"{name}@{from_alias}", tracking_uri)
    try:
        production_versions = registry.load_versions(f"{name}@{to_alias}", tracking_uri)
        baseline = "production"
    except LookupError:
        production_versions, baseline = {}, "graph"
    sets = [
        {m: registry.template_of(v) for m, v in versions.items()}
        for versions in (candidate_versions, production_versions)
    ]
    (candidate_scores, production_scores), keys = score_prompt_sets(system, sets, examples, metric)
    candidate_mean = sum(candidate_scores) / len(candidate_scores)
    production_mean = sum(production_scores) / len(production_scores)
    promoted = candidate_mean - production_mean >= margin
    decision = GateDecision(
        name=name,
        promoted=promoted,
        candidate_score=candidate_mean,
        production_score=production_mean,
        margin=margin,
        baseline=baseline,
        versions={m: int(v.version) for m, v in candidate_versions.items()},
        example_scores=[
            {"example": k, "candidate": c, "production": p}
            for k, c, p in zip(keys, candidate_scores, production_scores)
        ],
    )
    run_id = _record(
        client, decision, candidate_versions, production_versions, from_alias, to_alias, experiment
    )
    if promoted:
        registry.promote(name, from_alias, to_alias, tracking_uri)
    return GateDecision(**{**decision.__dict__, "run_id": run_id})


def _experiment_id(client: Any, versions: dict[str, Any], experiment: str | None) -> str:
    """The named experiment, else the one of the run that produced the candidate."""
    if experiment is None:
        for version in versions.values():
            run_id = version.tags.get(S.VERSION_RUN_ID)
            if run_id:
                try:
                    return client.get_run(run_id).info.experiment_id
                except Exception:
                    break
        experiment = DEFAULT_EXPERIMENT
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(experiment, tags={S.EXPERIMENT_KIND: S.EXPERIMENT_KIND_RUNS})


def _record(
    client: Any,
    decision: GateDecision,
    candidate: dict[str, Any],
    production: dict[str, Any],
    from_alias: str,
    to_alias: str,
    experiment: str | None,
) -> str:
    from mlflow.entities import Metric, Param, RunTag

    from gepa_graph.tracking.mlflow import log_table, tag_tables

    verdict = "promoted" if decision.promoted else "kept"
    run = client.create_run(
        _experiment_id(client, candidate, experiment),
        run_name=f"promote-{decision.name}-{dt.datetime.now():%Y%m%d-%H%M%S}",
        tags={
            S.TAG_KIND: "promotion",
            S.TAG_PROMOTION_NAME: decision.name,
            S.TAG_PROMOTION_DECISION: verdict,
            S.MLFLOW_NOTE: redact_text(f"Promotion gate: {decision.summary()}."),
        },
    )
    run_id = run.info.run_id
    now = int(dt.datetime.now().timestamp() * 1000)
    client.log_batch(
        run_id,
        metrics=[
            Metric(S.GATE_CANDIDATE_SCORE, round(decision.candidate_score, 6), now, 0),
            Metric(S.GATE_PRODUCTION_SCORE, round(decision.production_score, 6), now, 0),
        ],
        params=[
            Param("from_alias", from_alias),
            Param("to_alias", to_alias),
            Param(S.GATE_MARGIN, repr(decision.margin)),
            Param("baseline", decision.baseline),
            Param("n_examples", str(len(decision.example_scores))),
            Param("candidate_versions", json.dumps(decision.versions)),
            Param(
                "production_versions",
                json.dumps({m: int(v.version) for m, v in production.items()}),
            ),
        ],
        tags=[RunTag(S.TAG_PROMOTION_DECISION, verdict)],
    )
    log_table(client, run_id, S.TABLE_GATE, decision.example_scores)
    tag_tables(client, run_id, [S.TABLE_GATE])
    registry.link_to_run(client, run_id, list(candidate.values()) + list(production.values()))
    client.set_terminated(run_id, "FINISHED")
    return run_id
