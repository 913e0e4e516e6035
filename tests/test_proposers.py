"""The engine is composed, not self-built: it runs exactly the proposers it is given."""

import asyncio

import gepa_graph as gg
from gepa_graph.budget import Budget
from gepa_graph.engine import Engine
from gepa_graph.evaluation import Evaluator
from gepa_graph.events import EventBus, IterationStarted
from gepa_graph.example import Example
from gepa_graph.lm import ReflectionLM
from gepa_graph.proposers.merge import Merge
from gepa_graph.proposers.mutation import ReflectiveMutation
from gepa_graph.proposers.reflective import ReflectiveProposer
from gepa_graph.replay import ReflectionReplay
from gepa_graph.store import RunStore
from gepa_graph.testing.rules import RuleTask
from tests.test_engine import ConflictTask


def build(task, proposers_for, events, **config):
    config = gg.OptimizeConfig(seed=0, parallel_proposals=1, **config)
    system, store, budget = task.system(), RunStore(None), Budget(config)
    lm = ReflectionLM(task.reflection_lm())
    writer = ReflectiveProposer(lm, ReflectionReplay(store.journal, {}), 2000)
    return Engine(
        system=system,
        trainset=[Example(e) for e in task.examples(18, seed=1, prefix="t")],
        valset=[Example(e) for e in task.examples(12, seed=2, prefix="v")],
        evaluator=Evaluator(system, task.metric, config, budget, store.journal),
        reflection_lm=lm,
        proposers=proposers_for(writer),
        config=config,
        budget=budget,
        bus=EventBus([events.append]),
        seed_prompts=task.seed_prompts(),
        store=store,
    )


def test_the_engine_runs_only_the_proposers_it_is_given():
    task = ConflictTask()  # two lineages improve different modules: merges are due
    for proposers_for, kinds in (
        (lambda writer: [ReflectiveMutation(writer)], {"mutation"}),
        (lambda writer: [Merge(), ReflectiveMutation(writer)], {"mutation", "merge"}),
    ):
        events = []
        engine = build(task, proposers_for, events, max_rollouts=300, skip_perfect_score=False)
        result = asyncio.run(engine.run())
        started = {e.kind for e in events if isinstance(e, IterationStarted)}
        assert started == kinds
        assert result.best_score > result.seed_score
        assert {c.origin for c in result.candidates} <= {"seed", *kinds}


def catching_up_run(budget: int = 400):
    """A run on the virtual clock with proposals in flight and ``catch_up`` on: the events,
    the result, and the candidates' ids in order of joining."""
    from gepa_graph.testing.clock import run_on_virtual_clock
    from tests.test_steady_state import SleepySystem

    task = RuleTask(n_types=8, modules=("a", "b"))
    # Unstaged minibatches: the trajectory where both ways of catching up happen.
    # Stale proposals not cancelled: catching up is what handles them here.
    config = gg.OptimizeConfig(
        seed=6,
        concurrency=16,
        max_rollouts=budget,
        staged_minibatch=False,
        cancel_stale=False,
    )
    system, store, budget_ = SleepySystem(task), RunStore(None), Budget(config)
    reflect = task.reflection_lm()

    async def reflection(prompt):
        await asyncio.sleep(2.0)
        return reflect(prompt)

    async def metric(example, prediction, trace=None):
        return task.metric(example, prediction, trace)

    lm = ReflectionLM(reflection)
    writer = ReflectiveProposer(lm, ReflectionReplay(store.journal, {}), 2000)
    events = []
    engine = Engine(
        system=system,
        trainset=[Example(e) for e in task.examples(24, seed=1, prefix="t")],
        valset=[Example(e) for e in task.examples(16, seed=2, prefix="v")],
        evaluator=Evaluator(system, metric, config, budget_, store.journal),
        reflection_lm=lm,
        proposers=[Merge(), ReflectiveMutation(writer, catch_up=True)],
        config=config,
        budget=budget_,
        bus=EventBus([events.append]),
        seed_prompts=task.seed_prompts(),
        store=store,
    )
    result = run_on_virtual_clock(engine.run())
    return events, result


def test_proposals_in_flight_catch_up_with_the_pool_on_the_virtual_clock():
    events, result = catching_up_run()
    started = {e.iteration: e.parent_ids for e in events if isinstance(e, IterationStarted)}
    superseded = [r for r in result.rejected if r.reason == "superseded_on_minibatch"]
    rebased = [
        c
        for c in result.candidates
        if c.origin == "mutation" and c.parent_ids != started[c.iteration]
    ]
    # Both ways of catching up happened: children rebased onto a newer sibling joined the
    # pool, and children a newer sibling beat were stopped before their validation.
    assert rebased and superseded
    assert all(r.detail.endswith("newer than its parent") for r in superseded)
    assert result.rollouts_used <= 400
    # Reproducible on a deterministic clock, with proposals in flight.
    again = catching_up_run()[1]
    assert [c.id for c in again.candidates] == [c.id for c in result.candidates]
