"""The promotion gate: move ``production`` only when the candidate prompts are shown to be better
on held-out data, not merely scored higher once.

``promote_if_better`` scores the ``candidate`` and the current ``production`` prompt sets of a
registration on the same held-out examples (same evaluator, same seed), compares the paired
scores (``tracking.stats``: bootstrap interval of the mean difference, sign and Wilcoxon
signed-rank tests) and promotes only if the one-sided lower bound of the mean difference clears
``margin`` and the Wilcoxon test rejects "no better" at ``alpha``. A per-module check reports
every module whose own model calls (the examples whose rollouts carried its prompt) scored
worse. The decision, its reason, both score vectors and the statistics are recorded as an MLflow
run (``promote-NAME-<date>``, tag ``gepa_graph.kind = promotion``, in the experiment of the run
that produced the candidate). Without a ``production`` set yet, the graph's own prompts are the
baseline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gepa_graph.errors import InvalidInput
from gepa_graph.redact import redact_text
from gepa_graph.tracking import registry
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.stats import PairedComparison, compare_paired

DEFAULT_EXPERIMENT = "gepa-graph-promotions"


@dataclass(frozen=True)
class ModuleCheck:
    """One module's own share of the comparison: the ``n`` examples whose rollouts (either
    side's) carried its prompt to a model, and the mean score difference on them."""

    module: str
    n: int
    mean_diff: float

    @property
    def worse(self) -> bool:
        """The candidate scored lower where this module's prompt was used."""
        return self.mean_diff < 0


@dataclass(frozen=True)
class GateDecision:
    """What the promotion gate decided and why: both mean scores, the ``margin``, the
    ``baseline`` compared against ("production", or "graph" before any production exists),
    the candidate's ``versions``, per-example scores, the paired statistics, the per-module
    check, whether the gate ``passed`` and whether the alias moved (``promoted``)."""

    name: str
    promoted: bool
    candidate_score: float
    production_score: float
    margin: float
    baseline: str  # "production" or "graph" (no production set yet)
    versions: dict[str, int]  # the candidate's versions
    example_scores: list[dict[str, Any]]  # example, candidate, production
    run_id: str | None = None
    stats: PairedComparison | None = None
    modules: list[ModuleCheck] = field(default_factory=list)
    passed: bool = False

    @property
    def verdict(self) -> str:
        """The verdict: promoted, kept (the gate said no) or passed (it said yes; no alias
        moved)."""
        return "promoted" if self.promoted else "passed" if self.passed else "kept"

    @property
    def worse_modules(self) -> list[str]:
        """Modules whose own calls scored worse with the candidate."""
        return [check.module for check in self.modules if check.worse]

    def reason(self) -> str:
        """Why, in one line: the statistics' verdict and any module that got worse."""
        text = self.stats.reason() if self.stats is not None else ""
        if self.worse_modules:
            text += f"; worse where these modules ran: {', '.join(self.worse_modules)}"
        return text

    def summary(self) -> str:
        """The decision in one line: both scores, the margin, the verdict, why, the statistics."""
        verdict = {"promoted": "promoted", "kept": "kept production", "passed": "passed"}
        line = (
            f"{self.name}: candidate {self.candidate_score:.4f} vs {self.baseline} "
            f"{self.production_score:.4f} (margin {self.margin:g}): {verdict[self.verdict]}"
        )
        if self.stats is None:
            return line
        s = self.stats
        return (
            f"{line}: {self.reason()}. Mean difference {s.mean_diff:+.4f}, "
            f"{1 - 2 * s.alpha:.0%} bootstrap interval [{s.ci_low:+.4f}, {s.ci_high:+.4f}], "
            f"Wilcoxon p={s.p_wilcoxon:.3g}, sign p={s.p_sign:.3g}; {s.wins} better, "
            f"{s.losses} worse, {s.ties} equal of {s.n}"
        )


def score_prompt_sets(
    system: Any,
    prompt_sets: Sequence[Mapping[str, str]],
    examples: Iterable[Mapping[str, Any]],
    metric: Any,
    seed: int = 0,
) -> tuple[list[list[Any]], list[str]]:
    """Per-example results (``EvalResult``: score and trace) of each prompt set on
    ``examples`` (modules a set does not name keep the system's own prompts), and the example
    keys. Every set runs on the same examples with the same seed; failures are scored as in an
    optimization (``gepa_graph.scoring``, which scores ``optimize``'s testset too)."""
    from gepa_graph.adapters import as_system
    from gepa_graph.config import OptimizeConfig
    from gepa_graph.example import as_dataset
    from gepa_graph.scoring import score_prompt_sets as score

    system = as_system(system)
    dataset = as_dataset(examples, "holdout")
    if not dataset:
        raise InvalidInput("the held-out set holds no examples")
    own = dict(system.modules())
    full_sets = []
    for prompts in prompt_sets:
        unknown = sorted(set(prompts) - set(own))
        if unknown:
            raise InvalidInput(
                f"registry modules {unknown} are not prompts of this graph; its "
                f"modules are {sorted(own)}"
            )
        full_sets.append({**own, **prompts})
    results = asyncio.run(score(system, metric, full_sets, dataset, OptimizeConfig(seed=seed)))
    return results, [example.key for example in dataset]


def _modules_called(result: Any) -> set[str]:
    return {m for record in result.trace.records for m in (record.modules or ())}


def module_checks(candidate: list[Any], production: list[Any]) -> list[ModuleCheck]:
    """Per module, the mean paired difference over the examples whose rollouts carried its
    prompt (a system that does not attribute model calls to modules gives none)."""
    diffs: dict[str, list[float]] = {}
    for ours, theirs in zip(candidate, production):
        for module in _modules_called(ours) | _modules_called(theirs):
            diffs.setdefault(module, []).append(ours.score - theirs.score)
    return [
        ModuleCheck(module, len(values), round(sum(values) / len(values), 12))
        for module, values in sorted(diffs.items())
    ]


def promote_if_better(
    name: str,
    system: Any,
    examples: Iterable[Mapping[str, Any]],
    metric: Any,
    *,
    margin: float = 0.02,
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = 0,
    promote: bool = True,
    from_alias: str = S.CANDIDATE_ALIAS,
    to_alias: str = S.PRODUCTION_ALIAS,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> GateDecision:
    """Score ``NAME@from_alias`` and ``NAME@to_alias`` on ``examples`` and move ``to_alias``
    only if the first is better beyond noise (see the module docstring); with
    ``promote=False`` the gate decides and records but moves nothing. The decision is
    recorded in MLflow either way (``tags`` are added to its run)."""
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
    (ours, theirs), keys = score_prompt_sets(system, sets, examples, metric, seed)
    candidate_scores = [r.score for r in ours]
    production_scores = [r.score for r in theirs]
    stats = compare_paired(
        candidate_scores,
        production_scores,
        margin=margin,
        alpha=alpha,
        resamples=resamples,
        seed=seed,
    )
    decision = GateDecision(
        name=name,
        promoted=stats.passes and promote,
        candidate_score=sum(candidate_scores) / len(candidate_scores),
        production_score=sum(production_scores) / len(production_scores),
        margin=margin,
        baseline=baseline,
        versions={m: int(v.version) for m, v in candidate_versions.items()},
        example_scores=[
            {"example": k, "candidate": c, "production": p}
            for k, c, p in zip(keys, candidate_scores, production_scores)
        ],
        stats=stats,
        modules=module_checks(ours, theirs),
        passed=stats.passes,
    )
    run_id = _record(
        client,
        decision,
        candidate_versions,
        production_versions,
        from_alias,
        to_alias,
        experiment,
        dict(tags or {}),
    )
    if decision.promoted:
        registry.promote(name, from_alias, to_alias, tracking_uri)
    return replace(decision, run_id=run_id)


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
    tags: dict[str, str],
) -> str:
    from mlflow.entities import Metric, Param, RunTag

    from gepa_graph.tracking.tables import log_table, tag_tables

    stats = decision.stats
    assert stats is not None  # gate() records only a decision it has just compared
    run = client.create_run(
        _experiment_id(client, candidate, experiment),
        run_name=f"promote-{decision.name}-{dt.datetime.now():%Y%m%d-%H%M%S}",
        tags={
            **tags,
            S.TAG_KIND: "promotion",
            S.TAG_PROMOTION_NAME: decision.name,
            S.TAG_PROMOTION_DECISION: decision.verdict,
            S.TAG_PROMOTION_REASON: redact_text(decision.reason())[:4000],
            S.TAG_PROMOTION_WORSE_MODULES: json.dumps(decision.worse_modules),
            S.MLFLOW_NOTE: redact_text(f"Promotion gate: {decision.summary()}."),
        },
    )
    run_id = run.info.run_id
    now = int(dt.datetime.now().timestamp() * 1000)
    metrics = [
        Metric(S.GATE_CANDIDATE_SCORE, round(decision.candidate_score, 6), now, 0),
        Metric(S.GATE_PRODUCTION_SCORE, round(decision.production_score, 6), now, 0),
        *(Metric(key, float(getattr(stats, key)), now, 0) for key in S.GATE_STATS),
    ]
    for step, row in enumerate(decision.example_scores):
        metrics.append(Metric(S.GATE_CANDIDATE_EXAMPLE, row["candidate"], now, step))
        metrics.append(Metric(S.GATE_PRODUCTION_EXAMPLE, row["production"], now, step))
    params = [
        Param("from_alias", from_alias),
        Param("to_alias", to_alias),
        Param(S.GATE_MARGIN, repr(decision.margin)),
        Param(S.GATE_ALPHA, repr(stats.alpha)),
        Param("baseline", decision.baseline),
        Param("n_examples", str(len(decision.example_scores))),
        Param("candidate_versions", json.dumps(decision.versions)),
        Param(
            "production_versions",
            json.dumps({m: int(v.version) for m, v in production.items()}),
        ),
    ]
    for start in range(0, len(metrics), 1000):  # MLflow takes up to 1000 metrics per batch
        client.log_batch(
            run_id,
            metrics=metrics[start : start + 1000],
            params=params if start == 0 else [],
            tags=[RunTag(S.TAG_PROMOTION_DECISION, decision.verdict)] if start == 0 else [],
        )
    log_table(client, run_id, S.TABLE_GATE, decision.example_scores)
    log_table(
        client,
        run_id,
        S.TABLE_GATE_MODULES,
        [{**check.__dict__, "worse": check.worse} for check in decision.modules],
    )
    tag_tables(client, run_id, [S.TABLE_GATE, S.TABLE_GATE_MODULES])
    registry.link_to_run(client, run_id, list(candidate.values()) + list(production.values()))
    client.set_terminated(run_id, "FINISHED")
    return run_id
