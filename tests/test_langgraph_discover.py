"""discover()/describe(): the prompts of the six supported graph styles and their names."""

import warnings
from typing import TypedDict

import pytest
from langchain.agents import create_agent
from langchain_core.messages import SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph

import gepa_graph.integrations.langgraph as lg
from gepa_graph.integrations.langgraph import (
    NoPromptsFound,
    describe,
    discover,
    is_langgraph,
)
from gepa_graph.testing.chat_model import ScriptedChatModel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langgraph.prebuilt import create_react_agent

REVIEW_PROMPT = "Review this draft for {audience}: {draft}"
DRAFT_TEXT = "a draft: text whose variable name does not say it is a prompt"


class QA(TypedDict, total=False):
    question: str
    draft: str
    answer: str


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def model():
    return ScriptedChatModel(script=lambda messages: "ok")


def chain_graph():
    """Kind 1: a node that is `ChatPromptTemplate | model`."""
    template = ChatPromptTemplate.from_messages(
        [
            ("system", "You answer in one word."),
            ("human", "Question: {question}"),
            ("placeholder", "{history}"),
        ]
    )
    graph = StateGraph(QA)
    graph.add_node("answer", template | model() | (lambda message: {"answer": message.content}))
    graph.add_edge(START, "answer")
    return graph.compile()


def function_graph():
    """Kind 4: plain functions using a module constant, a closure-held chain, a global chain."""
    llm = model()
    critic = ChatPromptTemplate.from_messages([("system", "Criticise: {draft}")]) | llm

    def review(state):
        return {
            "answer": llm.invoke(
                REVIEW_PROMPT.format(audience="kids", draft=state["draft"])
            ).content
        }

    def criticise(state):
        return {"answer": critic.invoke({"draft": state["draft"]}).content}

    def plain(state):
        return {"draft": DRAFT_TEXT}

    graph = StateGraph(QA)
    for name, fn in [("plain", plain), ("review", review), ("criticise", criticise)]:
        graph.add_node(name, fn)
    graph.add_edge(START, "plain")
    graph.add_edge("plain", "review")
    graph.add_edge("review", "criticise")
    return graph.compile()


def declared_graph():
    """Kind 6: gg.prompt inside a node."""

    def grade(state):
        return {"answer": model().invoke(lg.prompt("grader", "Grade from 1 to 5.")).content}

    graph = StateGraph(QA)
    graph.add_node("grade", grade)
    graph.add_edge(START, "grade")
    return graph.compile()


def test_chat_template_node_keeps_roles_and_variables():
    slots = discover(chain_graph())
    assert list(slots) == ["answer.system", "answer.human"]
    assert slots["answer.human"].text == "Question: {question}"
    assert slots["answer.human"].variables == ("question",)
    assert {slot.node for slot in slots.values()} == {"answer"}


def test_create_agent_system_prompt():
    agent = create_agent(model(), [add], system_prompt="You add numbers.")
    slots = discover(agent)
    assert list(slots) == ["model"]
    assert slots["model"].text == "You add numbers." and slots["model"].node == "model"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "prompt", ["You are a calculator.", SystemMessage("You are a calculator.")]
)
def test_create_react_agent_prompt_as_string_or_system_message(prompt):
    slots = discover(create_react_agent(model(), [add], prompt=prompt))
    assert list(slots) == ["agent"]
    assert slots["agent"].text == "You are a calculator."


def test_function_nodes_module_constant_closure_chain_and_global_chain():
    slots = discover(function_graph())
    assert list(slots) == ["review", "criticise"]  # `plain` uses a constant not named like a prompt
    assert slots["review"].kind == "string" and slots["review"].variables == ("audience", "draft")
    assert "REVIEW_PROMPT" in slots["review"].where
    assert slots["criticise"].text == "Criticise: {draft}"


def test_subgraph_prompts_are_prefixed_by_the_parent_node():
    agent = create_agent(model(), [add], system_prompt="You add numbers.")
    parent = StateGraph(MessagesState)
    parent.add_node("math", agent)
    parent.add_edge(START, "math")
    slots = discover(parent.compile())
    assert list(slots) == ["math/model"]
    assert slots["math/model"].node == "math/model"


def test_a_graph_two_nodes_invoke_is_reached_under_each_of_them():
    """The code reaches the inner graph's prompt from both nodes, so a probe can name it after
    whichever one's calls carried it (a sub-agent in a tool: the tool node, not the model
    node that binds the tool)."""
    inner = create_agent(model(), [add], system_prompt="You add numbers.")
    graph = StateGraph(MessagesState)
    graph.add_node("first", lambda state: inner.invoke(state))
    graph.add_node("second", lambda state: inner.invoke(state))
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    [slot] = discover(graph.compile()).values()
    assert slot.name == "first/model"
    assert {"first/model", "second/model"} <= set(slot.nodes)


def test_a_graph_run_by_a_tool_of_create_agent_is_named_after_the_tool_node():
    """The model node binds the tool (and holds the tool node), the tool node runs it."""
    inner = create_agent(model(), [add], system_prompt="You add numbers.")

    @tool
    def ask(question: str) -> str:
        """Ask the adder."""
        return inner.invoke({"messages": [("user", question)]})["messages"][-1].text

    slots = discover(create_agent(model(), [ask], system_prompt="You delegate sums."))
    assert sorted(slots) == ["model", "tools/model"]
    assert slots["tools/model"].text == "You add numbers."


def test_gg_prompt_calls_are_found_in_node_source():
    slots = discover(declared_graph())
    assert list(slots) == ["grader"]
    assert slots["grader"].kind == "declared" and slots["grader"].text == "Grade from 1 to 5."
    assert slots["grader"].node == "grade"


def test_declared_prompts_the_scan_cannot_see():
    slots = discover(chain_graph(), declared={"router": "Route the question."})
    assert slots["router"].text == "Route the question." and slots["router"].node is None


def test_a_prompt_shared_by_two_nodes_is_one_module_reading_both_nodes():
    chain = ChatPromptTemplate.from_messages([("system", "Be brief.")]) | model()
    graph = StateGraph(QA)
    graph.add_node("first", lambda s: {"draft": chain.invoke({}).content})
    graph.add_node("second", lambda s: {"answer": chain.invoke({}).content})
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    slots = discover(graph.compile())
    assert list(slots) == ["first"]
    assert slots["first"].nodes == ("first", "second") and slots["first"].node is None


def test_no_prompt_is_a_clear_error():
    graph = StateGraph(QA)
    graph.add_node("echo", lambda state: {"answer": state["question"]})
    graph.add_edge(START, "echo")
    graph.add_edge("echo", END)
    with pytest.raises(NoPromptsFound, match="gg.prompt"):
        discover(graph.compile())
    assert issubclass(NoPromptsFound, ValueError)


def test_uncompiled_graph_is_rejected_with_advice():
    graph = StateGraph(QA)
    assert is_langgraph(graph) and is_langgraph(chain_graph()) and not is_langgraph(object())
    with pytest.raises(TypeError, match="compile"):
        discover(graph)


def test_describe_lists_modules_nodes_kinds_and_variables():
    text = describe(function_graph())
    lines = text.splitlines()
    assert lines[0] == "2 prompt(s) in graph 'LangGraph'"
    assert lines[1].split() == ["module", "kind", "nodes", "home", "variables", "text"]
    review = next(line for line in lines if line.startswith("review"))
    assert "user" in review and "REVIEW_PROMPT" in review and "audience, draft" in review
