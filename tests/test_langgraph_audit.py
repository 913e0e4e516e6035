"""The substitution audit: a rollout whose model call still carries a seed its candidate
replaced (a call path the boundary could record but not rewrite) stops the run, naming the
call path, instead of being scored."""

import asyncio

import litellm
import pytest

from gepa_graph import Example
from gepa_graph.integrations.langgraph import LangGraphSystem, boundary
from tests.intercept_helpers import (
    NEW,
    PROVIDER,
    SEED,
    SEEDS,
    one_node,
    registered_provider,
)


@pytest.fixture
def provider():
    with registered_provider() as recorder:
        yield recorder


def observed(*messages, entry="litellm.completion", node="plan"):
    from gepa_graph.integrations.langgraph.model_calls import ObservedCall

    return ObservedCall(node=node, entry=entry, messages=tuple(messages))


def test_leaks_are_calls_that_still_carry_a_changed_seed_and_nothing_else():
    substitution = boundary.Substitution(SEEDS, {"planner": NEW})
    leaked = observed(("system", SEED), ("human", "q"))
    assert substitution.leaks([leaked]) == [(leaked, "planner")]
    assert substitution.leaks([observed(("system", NEW))]) == []
    assert substitution.leaks([observed(("ai", SEED)), observed(("tool", SEED))]) == []
    grown = boundary.Substitution(SEEDS, {"planner": SEED + " Then check."})
    assert grown.leaks([observed(("system", SEED + " Then check."))]) == []  # its own text
    assert boundary.Substitution(SEEDS, {}).leaks([leaked]) == []  # the seed run changes nothing
    with pytest.raises(boundary.SubstitutionLeak, match=r"litellm.completion in node 'plan'"):
        substitution.audit([observed(("system", NEW)), leaked])


def test_a_seed_inside_another_modules_template_is_no_leak():
    seeds = {
        "planner": boundary.PromptSpec(SEED),
        "replanner": boundary.PromptSpec(SEED + " Revise the plan {plan}."),
    }
    substitution = boundary.Substitution(seeds, {"planner": NEW})
    assert substitution.leaks([observed(("system", SEED + " Revise the plan 1. look."))]) == []


def leaky_graph():
    """A node whose LiteLLM call passes arguments positionally beyond model and messages:
    recorded, but not rewritten."""

    def work(question):
        messages = [{"role": "system", "content": SEED}, {"role": "user", "content": question}]
        reply = litellm.completion(f"{PROVIDER}/m", messages, None)  # timeout=None, positional
        return reply.choices[0].message.content

    return one_node(work)


def test_a_rollout_that_did_not_run_its_candidate_stops_with_the_call_path(provider):
    system = LangGraphSystem(leaky_graph())
    system.probe(Example(question="q?"))  # the recorded call confirms the prompt
    [name] = [n for n, text in system.modules().items() if text == SEED]
    with pytest.raises(boundary.SubstitutionLeak) as info:
        asyncio.run(system.arun({name: NEW}, Example(question="q?")))
    assert "litellm.completion in node 'plan'" in str(info.value) and f"{name!r}" in str(info.value)
    assert "\n" not in str(info.value)
    seed = asyncio.run(system.arun({}, Example(question="q?")))  # the seed itself runs fine
    assert seed.error is None and seed.output["answer"] == "planned"


def test_a_leak_stops_optimize_instead_of_being_scored(provider, tmp_path):
    import gepa_graph as gg
    from gepa_graph.testing.reflection import ScriptedReflectionLM

    examples = [Example(id=str(n), question=f"q{n}") for n in range(4)]
    with pytest.raises(boundary.SubstitutionLeak, match="litellm.completion"):
        gg.optimize(
            LangGraphSystem(leaky_graph()),
            examples[:2],
            examples[2:],
            metric=lambda example, output: 0.0,
            reflection_lm=ScriptedReflectionLM(lambda current, _: NEW),
            max_rollouts=20,
            run_dir=tmp_path / "run",
            progress=False,
        )
