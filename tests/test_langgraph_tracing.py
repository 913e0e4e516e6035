"""Per-node traces: LLM and tool records attributed to nodes, errors recorded, JSON-friendly."""

import asyncio
import json
from typing import TypedDict

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph

from gepa_graph import Example
from gepa_graph.integrations.langgraph import LangGraphSystem
from gepa_graph.testing.chat_model import ScriptedChatModel


class QA(TypedDict, total=False):
    question: str
    plan: str
    answer: str


@tool
def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b


def call(name, **args):
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": None}])


def two_node_graph(planner_model, writer_model):
    plan = ChatPromptTemplate.from_messages(
        [("system", "Plan the answer."), ("human", "Q: {question}")]
    )
    write = ChatPromptTemplate.from_messages([("system", "Write the answer from the plan: {plan}")])
    graph = StateGraph(QA)
    graph.add_node("planner", plan | planner_model | (lambda m: {"plan": m.content}))
    graph.add_node("writer", write | writer_model | (lambda m: {"answer": m.content}))
    graph.add_edge(START, "planner")
    graph.add_edge("planner", "writer")
    return graph.compile()


def run(system, example):
    return asyncio.run(system.arun(system.modules(), example))


def test_llm_and_node_records_are_attributed_to_their_nodes():
    system = LangGraphSystem(
        two_node_graph(ScriptedChatModel(script=["step 1"]), ScriptedChatModel(script=["four"]))
    )
    rollout = run(system, Example(question="2+2?"))
    assert rollout.error is None and rollout.output["answer"] == "four"
    kinds = [(r.kind, r.node) for r in rollout.trace.records]
    assert kinds == [("node", "planner"), ("llm", "planner"), ("node", "writer"), ("llm", "writer")]
    writer_llm = [r for r in rollout.trace.for_node(system.node_of("writer")) if r.kind == "llm"]
    assert len(writer_llm) == 1
    assert writer_llm[0].inputs["messages"] == [
        {"role": "system", "content": "Write the answer from the plan: step 1"}
    ]
    assert writer_llm[0].outputs["message"]["content"] == "four"
    planner_node = rollout.trace.for_node("planner")[0]
    assert planner_node.inputs == {"question": "2+2?"} and planner_node.outputs == {
        "plan": "step 1"
    }


def test_tool_calls_and_a_raising_tool_are_recorded_without_crashing():
    model = ScriptedChatModel(script=[call("divide", a=6, b=3), call("divide", a=1, b=0)])
    system = LangGraphSystem(create_agent(model, [divide], system_prompt="Use the tool."))
    rollout = run(system, Example(question="6/3 then 1/0"))
    assert rollout.output is None
    assert rollout.error.startswith("ZeroDivisionError")
    tools = [r for r in rollout.trace.records if r.kind == "tool"]
    assert [(t.node, t.inputs["name"], t.inputs["args"]) for t in tools] == [
        ("tools", "divide", {"a": 6, "b": 3}),
        ("tools", "divide", {"a": 1, "b": 0}),
    ]
    assert tools[0].outputs == "2.0" and tools[0].error is None
    assert tools[1].error.startswith("ZeroDivisionError")
    llm = [r for r in rollout.trace.records if r.kind == "llm"]
    assert {r.node for r in llm} == {"model"}
    assert llm[0].outputs["message"]["tool_calls"][0]["args"] == {"a": 6, "b": 3}
    errors = [r for r in rollout.trace.records if r.kind == "error"]
    assert [r.node for r in errors] == ["tools"]
    assert rollout.trace.for_node(system.node_of("model")) == [
        r for r in rollout.trace.records if r.node == "model"
    ]


def test_subgraph_records_use_the_same_names_as_modules():
    model = ScriptedChatModel(script=[call("divide", a=8, b=2), "4"])
    parent = StateGraph(MessagesState)
    parent.add_node("math", create_agent(model, [divide], system_prompt="Use the tool."))
    parent.add_edge(START, "math")
    system = LangGraphSystem(parent.compile())
    rollout = run(system, Example(question="8/2"))
    assert rollout.error is None
    node = system.node_of("math/model")
    assert node == "math/model"
    llm_nodes = {r.node for r in rollout.trace.records if r.kind == "llm"}
    tool_nodes = {r.node for r in rollout.trace.records if r.kind == "tool"}
    assert llm_nodes == {"math/model"} and tool_nodes == {"math/tools"}
    assert len([r for r in rollout.trace.for_node(node) if r.kind == "llm"]) == 2


def test_usage_and_cost_where_litellm_knows_the_model():
    priced = ScriptedChatModel(script=["four"], model_name="gpt-4o-mini")
    unpriced = ScriptedChatModel(script=["step"])
    rollout = run(LangGraphSystem(two_node_graph(unpriced, priced)), Example(question="2+2?"))
    planner, writer = [r for r in rollout.trace.records if r.kind == "llm"]
    # ScriptedChatModel counts words: "Plan the answer." + "Q: 2+2?" -> 5, "four" -> 1
    assert (planner.usage.prompt_tokens, planner.usage.completion_tokens) == (5, 1)
    assert planner.usage.cost_usd is None  # "scripted" has no price
    import litellm

    expected = sum(
        litellm.cost_per_token(
            model="gpt-4o-mini", prompt_tokens=writer.usage.prompt_tokens, completion_tokens=1
        )
    )
    assert writer.usage.completion_tokens == 1
    assert writer.usage.cost_usd == pytest.approx(expected) and expected > 0


def test_traces_are_json_serialisable():
    model = ScriptedChatModel(script=[call("divide", a=6, b=3), "2"])
    system = LangGraphSystem(create_agent(model, [divide], system_prompt="Use the tool."))
    rollout = run(system, Example(question="6/3"))
    text = json.dumps(rollout.trace.model_dump())
    assert "divide" in text and "Use the tool." in text


def test_every_model_call_is_observed_with_roles_modules_and_a_site_per_call_place():
    from langchain_core.language_models import FakeListLLM

    from gepa_graph.integrations.langgraph.model_calls import ObservedCall

    critic = ScriptedChatModel(script=lambda messages: "fine")
    drafter = FakeListLLM(responses=["draft"])

    def review(state):
        draft = drafter.invoke("Draft an answer to: " + state["question"])
        verdict = critic.invoke([("system", "You are a strict critic."), ("human", draft)])
        again = critic.invoke([("system", "You are a strict critic."), ("human", "twice")])
        return {"answer": verdict.content + again.content}

    graph = StateGraph(QA)
    graph.add_node("review", review)
    graph.add_edge(START, "review")
    system = LangGraphSystem(graph.compile())
    for question in ("2+2?", "3+3?"):
        collector_calls = _observed(system, Example(question=question))
        assert [type(c) for c in collector_calls] == [ObservedCall] * 3
        llm, first, second = collector_calls
        assert (llm.entry, llm.node, llm.messages) == (
            "langchain.llm",
            "review",
            (("human", f"Draft an answer to: {question}"),),
        )
        assert first.messages == (("system", "You are a strict critic."), ("human", "draft"))
        assert (first.entry, first.model, first.ordinal) == ("langchain.chat", "scripted", 0)
        assert second.ordinal == 1 and second.site != first.site
        assert first.site == "review|langchain.chat|scripted|0"
        assert llm.site == "review|langchain.llm|FakeListLLM|0"
        assert first.modules == ()  # the static walk finds no module in this graph


def test_an_agent_loop_model_node_keeps_one_site_and_tool_results_have_the_tool_role():
    model = ScriptedChatModel(script=[call("divide", a=6, b=3), "2"])
    system = LangGraphSystem(create_agent(model, [divide], system_prompt="Use the tool."))
    first, second = _observed(system, Example(question="6/3"))
    assert first.site == second.site == "model|langchain.chat|scripted|0"
    assert [role for role, _ in second.messages] == ["system", "human", "ai", "tool"]
    assert second.messages[-1] == ("tool", "2.0")
    assert first.modules == second.modules and first.modules  # the system prompt's module


def _observed(system, example):
    from gepa_graph.integrations.langgraph import boundary
    from gepa_graph.integrations.langgraph.tracing import TraceCollector

    specs = {name: slot.spec for name, slot in system.slots.items()}
    substitution = boundary.Substitution(specs, {})
    collector = TraceCollector(substitution)
    config = {"callbacks": [collector], "configurable": {boundary.CONFIG_KEY: substitution}}
    system.graph.invoke(system.graph_input(example), config)
    assert collector.system_texts == [t for c in collector.calls for t in c.texts("system")]
    return collector.calls
