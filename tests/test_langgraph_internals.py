"""The LangGraph details `_internals` relies on still hold in the installed LangGraph.

Each test pins one assumption; a failure here after a LangGraph upgrade means
`gepa_graph/integrations/langgraph/_internals.py` needs updating (discovery or substitution
would otherwise silently find nothing or run the wrong prompts).
"""

import asyncio
from typing import TypedDict

from gepa_graph.integrations.langgraph import _internals
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableLambda
from langgraph.constants import START
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel


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
    runnables = _internals.node_runnables(graph())
    assert list(runnables) == ["double"]
    assert _internals.function_parts(runnables["double"])["func"] is double
    async_lambda = RunnableLambda(func=double, afunc=None)
    assert _internals.function_parts(async_lambda) == {"func": double}


def test_copy_graph_swaps_a_node_runnable_without_touching_the_original():
    original = graph()
    clone = _internals.copy_graph(original, {"double": RunnableLambda(lambda s: {"y": -1})})
    assert isinstance(clone, Pregel) and clone is not original
    assert clone.invoke({"x": 3}) == {"x": 3, "y": -1}
    assert original.invoke({"x": 3}) == {"x": 3, "y": 6}
    assert clone.__dict__.keys() >= original.__dict__.keys()  # no attribute lost by copying


def test_copy_graph_refreshes_the_subgraphs_of_a_swapped_node():
    parent = StateGraph(State)
    parent.add_node("child", graph())
    parent.add_edge(START, "child")
    compiled = parent.compile()
    other = graph()
    clone = _internals.copy_graph(compiled, {"child": other})
    assert clone.nodes["child"].subgraphs == [other]
    assert compiled.nodes["child"].subgraphs != [other]


def test_run_metadata_names_nodes_and_subgraph_namespaces():
    seen = []

    class Recorder(BaseCallbackHandler):
        def on_chain_start(self, serialized, inputs, *, metadata=None, **kwargs):
            seen.append(_internals.node_path_of(metadata))

    parent = StateGraph(State)
    parent.add_node("outer", graph())
    parent.add_edge(START, "outer")
    asyncio.run(parent.compile().ainvoke({"x": 1}, {"callbacks": [Recorder()]}))
    assert "outer" in seen and "outer/double" in seen


def test_input_fields_come_from_the_builder_schemas():
    assert _internals.input_fields(graph()) == (["x", "y"], [])
    assert _internals.input_fields(graph(Inputs)) == (["x"], ["x"])
