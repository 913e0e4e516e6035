"""LangGraphSystem: graph input convention, example validation, checkpointers, exclusions."""

import asyncio
from typing import TypedDict

import pytest
from langchain.agents import create_agent
from langchain_core.prompts import ChatPromptTemplate
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph

import gepa_graph.integrations.langgraph as lg
from gepa_graph import Example
from gepa_graph.integrations.langgraph import LangGraphSystem
from gepa_graph.testing.chat_model import ScriptedChatModel


class QA(TypedDict, total=False):
    question: str
    context: str
    answer: str


class QuestionOnly(TypedDict):
    question: str


def qa_graph(model, input_schema=None, checkpointer=None):
    template = ChatPromptTemplate.from_messages([("system", "Answer: {question} {context}")])
    builder = StateGraph(QA, input_schema=input_schema)
    builder.add_node("answer", template | model | (lambda m: {"answer": m.content}))
    builder.add_edge(START, "answer")
    return builder.compile(checkpointer=checkpointer)


def echo():
    return ScriptedChatModel(script=lambda messages: messages[0].text)


def test_graph_input_takes_schema_fields_and_never_the_labels():
    system = LangGraphSystem(qa_graph(echo()))
    example = Example(id="e1", question="q", context="c", answer="LEAK", extra="ignored")
    assert system.graph_input(example) == {"question": "q", "context": "c"}
    assert system.graph_input(Example(inputs={"question": "q2", "answer": "given"})) == {
        "question": "q2",
        "answer": "given",
    }
    custom = LangGraphSystem(qa_graph(echo()), input_fn=lambda ex: {"question": ex["text"]})
    assert custom.graph_input(Example(text="t")) == {"question": "t"}


def test_message_graphs_get_the_question_as_the_first_user_message():
    model = ScriptedChatModel(script=["done"])
    system = LangGraphSystem(create_agent(model, [], system_prompt="Be helpful."))
    rollout = asyncio.run(system.arun(system.modules(), Example(question="hello?", answer="x")))
    assert rollout.error is None
    assert [(m.type, m.text) for m in model.calls[0]] == [
        ("system", "Be helpful."),
        ("human", "hello?"),
    ]


def test_validate_example_names_what_is_missing():
    system = LangGraphSystem(qa_graph(echo(), input_schema=QuestionOnly))
    system.validate_example(Example(question="q"))
    system.validate_example(Example(inputs={"question": "q"}))
    with pytest.raises(ValueError, match=r"\['question'\]"):
        system.validate_example(Example(id="e7", text="q"))
    loose = LangGraphSystem(qa_graph(echo()))
    with pytest.raises(ValueError, match="none of the graph's input fields"):
        loose.validate_example(Example(prompt_text="q", answer="a"))
    loose.validate_example(Example(context="only context"))


def test_checkpointed_graphs_roll_out_without_touching_the_users_saver():
    saver = InMemorySaver()
    graph = qa_graph(echo(), checkpointer=saver)
    system = LangGraphSystem(graph)
    rollout = asyncio.run(system.arun(system.modules(), Example(question="q", context="c")))
    assert rollout.error is None and rollout.output["answer"] == "Answer: q c"
    assert list(saver.list(None)) == []
    assert graph.checkpointer is saver


def test_exclude_leaves_a_module_at_its_seed_text():
    builder = StateGraph(QA)
    model = echo()
    template = ChatPromptTemplate.from_messages(
        [("system", "Sys {question}"), ("human", "Hum {question}")]
    )
    builder.add_node("answer", template | model | (lambda m: {"answer": m.content}))
    builder.add_edge(START, "answer")
    system = LangGraphSystem(builder.compile(), exclude=["answer.human"])
    assert list(system.modules()) == ["answer.system"]
    with pytest.raises(KeyError):
        LangGraphSystem(builder.compile(), exclude=["nope"])


def test_gg_prompt_outside_a_run_returns_the_default():
    assert lg.prompt("anything", "the default") == "the default"
    with pytest.raises(TypeError):
        lg.prompt("x", 3)
