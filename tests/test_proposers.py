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
