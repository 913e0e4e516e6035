"""ScriptedChatModel: scripted replies, recorded inputs, bind_tools, sync/async, concurrency."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool

from gepa_graph.testing.chat_model import ScriptedChatModel, ScriptExhausted


@tool
def lookup(term: str) -> str:
    """Look a term up."""
    return term


def test_list_script_replies_in_order_and_records_messages():
    model = ScriptedChatModel(script=["first", AIMessage("second")])
    assert model.invoke([HumanMessage("a")]).content == "first"
    assert model.invoke([SystemMessage("s"), HumanMessage("b")]).content == "second"
    assert [[m.content for m in call] for call in model.calls] == [["a"], ["s", "b"]]
    with pytest.raises(ScriptExhausted):
        model.invoke("c")


def test_function_script_sees_the_messages():
    model = ScriptedChatModel(script=lambda messages: "echo " + messages[-1].content)
    assert model.invoke("hello").content == "echo hello"


def test_tool_calls_get_ids_and_bind_tools_records_tool_names():
    reply = AIMessage("", tool_calls=[{"name": "lookup", "args": {"term": "x"}, "id": None}])
    model = ScriptedChatModel(script=[reply, "done"])
    bound = model.bind_tools([lookup])
    message = bound.invoke("q")
    assert message.tool_calls[0]["name"] == "lookup"
    assert message.tool_calls[0]["id"]  # filled in, ToolNode needs it
    model.invoke("unbound call")
    assert model.call_tools == [["lookup"], []]


def test_usage_is_counted_in_words():
    model = ScriptedChatModel(script=["two words"])
    message = model.invoke([HumanMessage("three little words")])
    assert message.usage_metadata["input_tokens"] == 3
    assert message.usage_metadata["output_tokens"] == 2


def test_async_and_concurrent_calls_are_all_recorded():
    model = ScriptedChatModel(script=lambda messages: messages[-1].content.upper())

    async def many():
        return await asyncio.gather(*(model.ainvoke(f"a{i}") for i in range(20)))

    replies = asyncio.run(many())
    assert [r.content for r in replies] == [f"A{i}" for i in range(20)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: model.invoke(f"t{i}"), range(40)))
    seen = sorted(call[-1].content for call in model.calls)
    assert seen == sorted([f"a{i}" for i in range(20)] + [f"t{i}" for i in range(40)])


def test_list_script_under_threads_hands_out_each_reply_once():
    model = ScriptedChatModel(script=[str(i) for i in range(50)])
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: model.invoke("x").content, range(50)))
    assert sorted(replies, key=int) == [str(i) for i in range(50)]
    model.reset()
    assert model.calls == [] and model.invoke("again").content == "0"
