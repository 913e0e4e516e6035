"""Run the graph the way it runs: a graph with sync-only parts is found at the probe and rolled
out with ``invoke`` on worker threads (store still isolated), ``execution=`` chooses up front,
and a graph that runs neither way names both parts."""

import asyncio
import warnings

import pytest
from langgraph.store.memory import InMemoryStore

import gepa_graph as gg
from gepa_graph.errors import InvalidInput
from gepa_graph.integrations.langgraph import LangGraphSystem
from gepa_graph.testing.reflection import ScriptedReflectionLM
from tests.agents import sync_middleware


def test_a_sync_only_middleware_is_found_at_the_probe_and_rolled_out_with_invoke(tmp_path):
    case = sync_middleware.build()
    system = LangGraphSystem(case.graph)
    with pytest.warns(UserWarning, match=r"CallLog\.awrap_model_call in node 'model' has no async"):
        rollout = asyncio.run(system.arun(system.modules(), case.examples[0]))
    assert (
        rollout.error is None and rollout.output["messages"][-1].text == "Your order has shipped."
    )
    calls = len(case.models["agent"].calls)
    result = gg.optimize(
        system,
        case.examples[:2],
        case.examples[2:],
        metric=case.metric,
        reflection_lm=ScriptedReflectionLM(lambda current, _: f"{current} {sync_middleware.FIX}."),
        max_rollouts=12,
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert result.seed_score == 0.0 and result.best_score == 1.0
    assert len(case.models["agent"].calls) - calls == 2 * result.rollouts_used  # none failed


def test_execution_sync_chosen_up_front_and_a_bad_mode_refused():
    case = sync_middleware.build()
    system = LangGraphSystem(case.graph, execution="sync")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to find out: no notice
        rollout = asyncio.run(system.arun(system.modules(), case.examples[1]))
    assert rollout.error is None
    assert len(case.models["agent"].calls) == 2  # no async attempt before it
    with pytest.raises(InvalidInput, match="execution must be one of"):
        LangGraphSystem(case.graph, execution="threads")


def test_the_probe_of_a_sync_only_graph_keeps_the_store_isolated():
    """A sync-only graph with a store: the sync rollouts write into their own layer too."""
    from langchain.agents.middleware import AgentMiddleware

    class Remember(AgentMiddleware):
        def wrap_model_call(self, request, handler):
            request.runtime.store.put(("log",), str(len(request.messages)), {"n": 1})
            return handler(request)

    from langchain.agents import create_agent

    from gepa_graph.testing.chat_model import ScriptedChatModel

    store = InMemoryStore()
    model = ScriptedChatModel(script=lambda messages: "ok")
    graph = create_agent(model, [], system_prompt="Be kind.", middleware=[Remember()], store=store)
    system = LangGraphSystem(graph)
    with pytest.warns(UserWarning, match="has no async implementation"):
        report = system.probe({"question": "hi"})
    assert report.error is None and report.reached == {"model": ["model"]}
    assert store.list_namespaces() == []


def test_a_graph_that_runs_neither_way_names_both_parts():
    from langchain.agents import create_agent
    from langchain.agents.middleware import AgentMiddleware

    from gepa_graph.testing.chat_model import ScriptedChatModel

    class SyncOnly(AgentMiddleware):
        def wrap_model_call(self, request, handler):
            return handler(request)

    class AsyncOnly(AgentMiddleware):
        async def awrap_model_call(self, request, handler):
            return await handler(request)

    model = ScriptedChatModel(script=lambda messages: "ok")
    graph = create_agent(model, [], system_prompt="Be kind.", middleware=[SyncOnly(), AsyncOnly()])
    system = LangGraphSystem(graph)
    rollout = asyncio.run(system.arun(system.modules(), {"question": "hi"}))
    assert rollout.error == (
        "the graph runs neither with ainvoke() (SyncOnly.awrap_model_call in node 'model' has "
        "no async implementation) nor with invoke() (AsyncOnly.wrap_model_call in node 'model' "
        "has no sync one)"
    )


def test_a_node_that_raises_not_implemented_itself_keeps_its_own_error():
    from typing import TypedDict

    from langgraph.graph import START, StateGraph

    class State(TypedDict, total=False):
        question: str

    def unfinished(state):
        raise NotImplementedError("the refund flow is not written yet")

    builder = StateGraph(State)
    builder.add_node("refund", unfinished)
    builder.add_edge(START, "refund")
    system = LangGraphSystem(builder.compile(), prompts={"policy": "Refund politely."})
    rollout = asyncio.run(system.arun({"policy": "Refund politely."}, {"question": "x"}))
    assert rollout.error.startswith("NotImplementedError: the refund flow is not written yet")
    assert system._execution == "auto"
