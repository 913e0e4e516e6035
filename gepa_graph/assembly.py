"""One optimization assembled from checked inputs: the collaborators of a run (budget,
evaluator, reflection, proposers, engine) wired and run (``run_search``), the held-out testset
scored and saved before the listeners hear the end, a finished run's result returned without a
rollout (``finished_run``), and the probe a system whose prompts only a run can show needs
(``run_probe``). ``gepa_graph.api`` checks the inputs and calls these."""

from __future__ import annotations

import logging
from typing import Any

from gepa_graph.budget import Budget
from gepa_graph.config import OptimizeConfig
from gepa_graph.engine import Engine
from gepa_graph.evaluation import EvalResult, Evaluator
from gepa_graph.events import (
    EventBus,
    ListenerLike,
    OptimizationFinished,
    OptimizationStarted,
    TestsetEvaluated,
)
from gepa_graph.example import Example
from gepa_graph.executor import Executor
from gepa_graph.guidance import Guidance
from gepa_graph.lm import LMResponse, ReflectionLM
from gepa_graph.metric import Metric
from gepa_graph.proposers.merge import Merge
from gepa_graph.proposers.mutation import ReflectiveMutation
from gepa_graph.proposers.reflective import ReflectiveProposer
from gepa_graph.records import HeldOutScores
from gepa_graph.replay import ReflectionReplay
from gepa_graph.result import Result
from gepa_graph.scoring import score_testset
from gepa_graph.state import OptimizerState
from gepa_graph.store import RunStore
from gepa_graph.system import BaseSystem, System
from gepa_graph.usercode import loop_deadline

log = logging.getLogger("gepa_graph")


async def run_search(
    system: System,
    train: list[Example],
    val: list[Example],
    metric: Metric,
    lm: ReflectionLM,
    config: OptimizeConfig,
    chosen: Any,
    seeds: dict[str, str],
    store: RunStore,
    resume: bool,
    listening: list[ListenerLike],
    test: list[Example],
    probe_cost: float | None = None,
    executor: Executor | None = None,
) -> Result:
    """Assemble one run from checked inputs (the budget, the evaluator, the proposers, the
    engine; on ``resume``, what the journal already paid for) and run it; the testset is
    scored before the listeners hear the end."""
    state = None
    journaled_rollouts: dict[tuple[str, str], dict[str, Any]] = {}
    journaled_reflections: dict[str, dict[str, Any]] = {}
    if resume:
        state = store.load_state()
        journaled_rollouts, journaled_reflections = store.load_journal(
            EvalResult.model_validate, LMResponse.model_validate, [*train, *val]
        )

    bus = EventBus(listening)
    budget = Budget(config, prior_seconds=state.ledger.seconds if state else 0.0)
    if probe_cost is not None:  # the probe's runs are rollouts like any other
        budget.add_probe(min(PROBE_EXAMPLES, len(train)), probe_cost or None)
    lm.deadline = budget.seconds_left
    lm.budget = budget  # reflection retries and failures are counted in the ledger
    evaluator = Evaluator(
        system, metric, config, budget, store.journal, journaled_rollouts, executor=executor
    )
    writer = ReflectiveProposer(
        lm,
        ReflectionReplay(store.journal, journaled_reflections),
        config.max_chars_per_field,
        Guidance.of(config),
    )
    engine = Engine(
        system=system,
        trainset=train,
        valset=val,
        evaluator=evaluator,
        reflection_lm=lm,
        proposers=[Merge(), ReflectiveMutation(writer, catch_up=config.catch_up)],
        config=config,
        budget=budget,
        bus=bus,
        seed_prompts=seeds,
        store=store,
        strategies=chosen,
        finish=lambda result: _testset(
            result, None, system, metric, config, test, bus, executor, store, journaled_rollouts
        ),
    )
    try:
        return await engine.run()
    finally:
        bus.close()


async def finished_run(
    state: OptimizerState,
    system: System,
    train: list[Example],
    val: list[Example],
    metric: Metric,
    config: OptimizeConfig,
    store: RunStore,
    listening: list[ListenerLike],
    test: list[Example],
    executor: Executor,
) -> Result:
    """The result of a run that finished with these inputs, without a rollout: the listeners
    are told it started (resumed) and finished, as for a resume, so a tracker re-syncs what it
    missed. The held-out scores are the checkpoint's (those of an older run folder, or of
    another testset, are scored again with the journal's rollouts)."""
    log.info("%s finished already with these inputs: its result, nothing run", store.directory)
    result = state.to_result(store.directory)
    journaled, _ = store.load_journal(EvalResult.model_validate, None, [*train, *val])
    bus = EventBus(listening)
    try:
        bus.emit(
            OptimizationStarted(
                run_dir=str(store.directory),
                resumed=True,
                config=state.config,
                seed_prompts=state.seed_prompts,
                n_train=len(train),
                n_val=len(val),
                reflection_lm=state.reflection_lm,
            )
        )
        result = await _testset(
            result, state.testset, system, metric, config, test, bus, executor, store, journaled
        )
        bus.emit(OptimizationFinished.of(result))
    finally:
        bus.close()
    return result


async def _testset(
    result: Result,
    saved: HeldOutScores | None,
    system: System,
    metric: Metric,
    config: OptimizeConfig,
    test: list[Example],
    bus: EventBus,
    executor: Executor | None,
    store: RunStore,
    journaled: dict[tuple[str, str], dict[str, Any]],
) -> Result:
    """``result`` with the held-out scores of its seed and best candidate on ``test``
    (``saved`` when they are those of this testset and best candidate, else scored now,
    outside the budget, and saved in the checkpoint), told to the listeners (TestsetEvaluated;
    ``saved`` is told also when no testset is given).
    The rollouts are journaled in ``store``, so a resumed run takes them from ``journaled``
    instead of paying again."""
    if not test:
        if saved is not None:  # a finished run resumed without its testset
            bus.emit(TestsetEvaluated(**saved.model_dump()))
        return result
    seed_id = next((c.id for c in result.candidates if not c.parent_ids), result.best_id)
    keys = {example.key for example in test}
    scores = saved
    if scores is None or scores.best_id != result.best_id or set(scores.best_scores) != keys:
        scores = await score_testset(
            system,
            metric,
            config,
            (seed_id, result.seed_candidate),
            (result.best_id, result.best_candidate),
            test,
            executor=executor,
            journal=store.journal,
            journaled=journaled,
        )
        store.save_testset(scores)
    bus.emit(TestsetEvaluated(**scores.model_dump()))
    return result.model_copy(
        update={"test_seed_score": scores.seed_score, "test_best_score": scores.best_score}
    )


PROBE_EXAMPLES = 3
"""Training examples a probe runs the seed on (``needs_probe``): what reaches a model in them
decides a LangGraph system's modules."""


async def run_probe(
    system: BaseSystem, train: list[Example], timeout: float | None
) -> float | None:
    """A system whose prompts only runs can show (``needs_probe``: a LangGraph agent) runs its
    seed on the first ``PROBE_EXAMPLES`` training examples; the USD cost of those runs (0.0
    where unknown), None when it had been probed already. An async node that blocks the loop
    past a rollout's time limit stops the probe as it stops a rollout (``LoopBlocked``)."""
    if system.probe_report is not None:
        return None
    with loop_deadline(timeout):
        report = await system.aprobe(train[:PROBE_EXAMPLES])
    for note in report.notes():
        log.info("probe: %s", note)
    return report.cost_usd or 0.0
