"""The LangGraph details `_internals` relies on still hold in the installed LangGraph.

Each test pins one assumption; a failure here after a LangGraph upgrade means
`integrations/langgraph/_internals/` needs updating (discovery or substitution
would otherwise silently find nothing or run the wrong prompts).
"""

import asyncio
import concurrent.futures
import dataclasses
import functools
import threading
from typing import TypedDict

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.prompt_values import StringPromptValue
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.constants import START
from langgraph.graph import StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.pregel import Pregel

from gepa_graph.integrations.langgraph._internals import (
    graphs,
    langchain_models,
    patching,
    run_context,
    schemas,
)
from gepa_graph.testing.chat_model import ScriptedChatModel


class State(TypedDict, total=False):
    x: int
    y: int


class Inputs(TypedDict):
    x: int


def double(state):
    return {"y": state["x"] * 2}


def graph(input_schema=None):
    builder = StateGraph(State, input_schema=input_schema)
    builder.add_node("double", double)
    builder.add_edge(START, "double")
    return builder.compile()


def test_compiled_nodes_expose_the_user_function_as_func_and_afunc():
    runnables = graphs.node_runnables(graph())
    assert list(runnables) == ["double"]
    assert graphs.function_parts(runnables["double"])["func"] is double
    async_lambda = RunnableLambda(func=double, afunc=None)
    assert graphs.function_parts(async_lambda) == {"func": double}


def test_copy_graph_replaces_attributes_without_touching_the_original():
    original = graph()
    saver = InMemorySaver()
    clone = graphs.copy_graph(original, checkpointer=saver, config={"tags": ["x"]})
    assert isinstance(clone, Pregel) and clone is not original
    assert clone.checkpointer is saver and original.checkpointer is None
    assert original.config != {"tags": ["x"]}
    assert clone.invoke({"x": 3}, {"configurable": {"thread_id": "t"}}) == {"x": 3, "y": 6}
    assert clone.__dict__.keys() >= original.__dict__.keys()  # no attribute lost by copying


def test_interrupt_nodes_of_a_compiled_graph():
    builder = StateGraph(State)
    builder.add_node("double", double)
    builder.add_edge(START, "double")
    compiled = builder.compile(checkpointer=InMemorySaver(), interrupt_before=["double"])
    assert graphs.interrupt_nodes(compiled) == ["double"]
    assert graphs.interrupt_nodes(graph()) == []


def test_branches_tool_nodes_context_schema_and_field_defaults():
    @dataclasses.dataclass
    class Context:
        system_prompt: str = "Seed."
        other: int = 1

    @tool
    def ping(text: str) -> str:
        """Echo."""
        return text

    def route(state):
        return "tools"

    builder = StateGraph(State, context_schema=Context)
    builder.add_node("double", double)
    builder.add_node("tools", ToolNode([ping]))
    builder.add_edge(START, "double")
    builder.add_conditional_edges("double", route, ["tools"])
    compiled = builder.compile()
    [(source, path)] = graphs.branch_runnables(compiled)
    assert source == "double" and graphs.function_parts(path)["func"] is route
    tools = graphs.node_tools(graphs.node_runnables(compiled)["tools"])
    assert [t.name for t in tools] == ["ping"]
    assert graphs.tool_functions(tools[0])[0].__name__ == "ping"
    assert schemas.context_schema(compiled) is Context
    assert schemas.field_defaults(Context) == {"system_prompt": "Seed.", "other": 1}
    schemas.set_field_default(Context, "system_prompt", "Written.")
    assert Context().system_prompt == "Written." and Context(other=2).other == 2


def test_model_entry_points_hand_the_prompt_and_the_configurable_to_the_hook():
    """The wrappers install_input_hook puts on every BaseChatModel/BaseLLM entry point."""
    seen = []

    def hook(value, configurable):
        seen.append((value.to_string(), dict(configurable)))
        return StringPromptValue(text="rewritten")

    class Hooked(ScriptedChatModel):
        pass

    for name, rewrite in langchain_models.ENTRY_POINTS.items():
        method = getattr(ScriptedChatModel, name)
        setattr(Hooked, name, langchain_models.hooked(method, functools.partial(rewrite, hook)))
    model = Hooked(script=lambda messages: messages[-1].text)
    assert model.invoke("hi", {"configurable": {"k": 1}}).text == "rewritten"
    assert seen == [("hi", {"k": 1})]  # invoke's own generate call is not asked again
    assert asyncio.run(model.ainvoke("a", {"configurable": {"k": 2}})).text == "rewritten"
    assert [c.text for c in model.stream("s", {"configurable": {"k": 3}})] == ["rewritten"]
    batch = model.batch(["x", "y"], [{"configurable": {"k": 4}}, {"configurable": {"k": 5}}])
    assert [m.text for m in batch] == ["rewritten", "rewritten"]
    assert [c for _, c in seen[-2:]] == [{"k": 4}, {"k": 5}]
    assert model.invoke("outside").text == "outside"  # no configurable: the hook is not asked
    assert model.generate([[HumanMessage("g")]]).generations[0][0].text == "g"
    assert len(seen) == 5

    def in_a_node(messages):  # generate gets no config: the running runnable's is used
        return model.generate([messages]).generations[0][0].text

    assert RunnableLambda(in_a_node).invoke([HumanMessage("n")], {"configurable": {"k": 6}}) == (
        "rewritten"
    )
    assert seen[-1] == ("Human: n", {"k": 6})


def test_model_call_marks_nested_calls_and_the_running_config_is_readable():
    assert not patching.in_model_call()
    with patching.model_call():
        assert patching.in_model_call()
    assert run_context.current_config() == {}

    def look(_):
        config = run_context.current_config()
        handlers = run_context.config_handlers(config)
        return config["configurable"], handlers, run_context.config_parent_run_id(config)

    handler = BaseCallbackHandler()
    configurable, handlers, parent = RunnableLambda(look).invoke(
        1, {"configurable": {"k": 1}, "callbacks": [handler]}
    )
    assert configurable == {"k": 1} and handler in handlers and parent is not None


def test_pools_submit_each_item_and_start_their_workers_inside_submit_and_threads_call_run():
    """``propagate_context`` wraps ``ThreadPoolExecutor.submit`` (``map`` goes through it, and
    the pool starts its worker threads inside it) and replaces a started thread's ``run`` by
    an instance attribute (what ``Thread`` calls); LangChain's config does not cross into a
    pool thread by itself."""
    submitted, started = [], []

    class Watched(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            submitted.append(args)
            return super().submit(fn, *args, **kwargs)

    start = threading.Thread.start

    def watched_start(thread):
        started.append(list(submitted))
        start(thread)

    threading.Thread.start = watched_start
    try:
        with Watched(max_workers=1) as pool:
            assert list(pool.map(str, [1, 2])) == ["1", "2"]
    finally:
        threading.Thread.start = start
    assert submitted == [(1,), (2,)] and started == [[(1,)]]  # the worker: in the 1st submit

    ran = []
    thread = threading.Thread(target=lambda: ran.append("target"))
    thread.run = lambda: ran.append("instance run")
    thread.start()
    thread.join()
    assert ran == ["instance run"]

    def in_pool(_):
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(run_context.current_configurable).result()

    assert RunnableLambda(in_pool).invoke(1, {"configurable": {"k": 1}}) == {}


def test_sdk_patch_points_exist_with_the_request_keywords_the_hook_reads():
    import importlib
    import inspect
    import types

    from gepa_graph.integrations.langgraph._internals import sdk

    for module_name, path, _, kind in sdk.PATCH_POINTS:
        owner = importlib.import_module(module_name)
        for part in path.split("."):
            owner = getattr(owner, part)
        if not path.count("."):  # a module's function, patched in place: a plain function
            assert isinstance(owner, types.FunctionType), path
        function = inspect.unwrap(owner)
        parameters = inspect.signature(function).parameters
        expected = ("messages", "model") if kind == sdk.CHAT else ("input", "instructions")
        assert all(name in parameters for name in expected), (path, list(parameters)[:5])
    import litellm

    assert list(inspect.signature(litellm.completion).parameters)[:2] == ["model", "messages"]


def test_run_metadata_names_nodes_and_subgraph_namespaces():
    seen = []

    class Recorder(BaseCallbackHandler):
        def on_chain_start(self, serialized, inputs, *, metadata=None, **kwargs):
            seen.append(graphs.node_path_of(metadata))

    parent = StateGraph(State)
    parent.add_node("outer", graph())
    parent.add_edge(START, "outer")
    asyncio.run(parent.compile().ainvoke({"x": 1}, {"callbacks": [Recorder()]}))
    assert "outer" in seen and "outer/double" in seen


def test_input_fields_come_from_the_builder_schemas():
    assert schemas.input_fields(graph()) == (["x", "y"], [])
    assert schemas.input_fields(graph(Inputs)) == (["x"], ["x"])


def test_an_invoke_that_stops_at_interrupt_reports_its_value():
    from langgraph.types import interrupt

    def ask(state):
        return {"y": interrupt("which x?")}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    compiled = builder.compile(checkpointer=InMemorySaver())
    output = compiled.invoke({"x": 1}, {"configurable": {"thread_id": "t"}})
    assert graphs.pending_interrupts(output) == ["which x?"]
    assert graphs.pending_interrupts({"x": 1}) == [] == graphs.pending_interrupts(None)
