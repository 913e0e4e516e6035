"""The interception layer on LangChain's paths: every chat model and LLM entry point is
rewritten once and recorded inside a run, in the threads and pools a node starts too, and left
alone outside one."""

import asyncio
import concurrent.futures
import threading

import pytest
from langchain_core.language_models import FakeListLLM
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import START, StateGraph

from gepa_graph import Example
from gepa_graph.integrations.langgraph import LangGraphSystem, intercept
from tests.intercept_helpers import (
    NEW,
    SEED,
    State,
    echo_system,
    one_node,
    rollout,
)


@pytest.mark.parametrize(
    "call",
    [
        lambda m, q: m.invoke([SystemMessage(SEED), HumanMessage(q)]).text,
        lambda m, q: m.batch([[SystemMessage(SEED), HumanMessage(q)]])[0].text,
        lambda m, q: "".join(c.text for c in m.stream([SystemMessage(SEED), HumanMessage(q)])),
        lambda m, q: m.generate([[SystemMessage(SEED), HumanMessage(q)]]).generations[0][0].text,
        lambda m, q: m.bind_tools([]).invoke([SystemMessage(SEED), HumanMessage(q)]).text,
    ],
    ids=["invoke", "batch", "stream", "generate", "bound"],
)
def test_every_chat_model_entry_point_is_rewritten_once_and_recorded(call):
    model = echo_system()
    output, collector = rollout(one_node(lambda q: call(model, q)))
    assert output["answer"] == NEW
    assert [m[0].text for m in model.calls] == [NEW]
    [observed] = collector.calls
    assert observed.entry == "langchain.chat" and observed.modules == ("planner",)
    assert observed.messages[0] == ("system", NEW) and observed.node == "plan"


@pytest.mark.parametrize(
    "call",
    [
        lambda m, q: m.ainvoke([SystemMessage(SEED), HumanMessage(q)]),
        lambda m, q: m.abatch([[SystemMessage(SEED), HumanMessage(q)]]),
        lambda m, q: m.agenerate([[SystemMessage(SEED), HumanMessage(q)]]),
    ],
    ids=["ainvoke", "abatch", "agenerate"],
)
def test_async_chat_model_entry_points_are_rewritten(call):
    model = echo_system()

    async def work(question):
        await call(model, question)
        return "done"

    rollout(one_node(work, is_async=True))
    assert [m[0].text for m in model.calls] == [NEW]


class RecordingLLM(FakeListLLM):
    """A LangChain LLM (not a chat model) that keeps the prompts it received."""

    def _call(self, prompt, stop=None, run_manager=None, **kwargs):
        PROMPTS_SEEN.append(prompt)
        return super()._call(prompt, stop, run_manager, **kwargs)


PROMPTS_SEEN = []


def test_an_llm_generate_call_with_several_prompts_is_rewritten_for_each():
    """A tree-search agent's ``llm.generate([...])``: every prompt runs the candidate."""
    PROMPTS_SEEN.clear()
    llm = RecordingLLM(responses=["a", "b", "c"])
    output, collector = rollout(
        one_node(lambda q: llm.generate([f"{SEED}\nTask: {q}"] * 3).generations[2][0].text)
    )
    assert output["answer"] == "c"
    assert PROMPTS_SEEN == [f"{NEW}\nTask: q?"] * 3
    assert [c.entry for c in collector.calls] == ["langchain.llm"] * 3
    assert [c.site for c in collector.calls] == [
        f"plan|langchain.llm|RecordingLLM|{n}" for n in range(3)
    ]


def test_outside_a_run_nothing_is_rewritten():
    intercept.install()
    model = echo_system()
    assert model.invoke([SystemMessage(SEED)]).text == SEED
    assert model.generate([[SystemMessage(SEED)]]).generations[0][0].text == SEED


def pool_map(model, q):
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        calls = [[SystemMessage(SEED), HumanMessage(q)]] * 2
        return "".join(r.text for r in pool.map(model.invoke, calls))


def plain_thread(model, q):
    answers = []
    thread = threading.Thread(
        target=lambda: answers.append(model.invoke([SystemMessage(SEED), HumanMessage(q)]).text)
    )
    thread.start()
    thread.join()
    return answers[0]


@pytest.mark.parametrize("call", [pool_map, plain_thread], ids=["pool", "thread"])
def test_calls_from_threads_a_node_starts_are_rewritten_and_recorded(call):
    model = echo_system()
    output, collector = rollout(one_node(lambda q: call(model, q)))
    assert NEW in output["answer"] and SEED not in output["answer"]
    assert {m[0].text for m in model.calls} == {NEW}
    assert collector.calls and all(c.node == "plan" for c in collector.calls)
    assert all(c.modules == ("planner",) for c in collector.calls)


def test_a_pool_first_used_in_a_run_keeps_no_run_in_its_threads():
    """Its workers start inside the rollout's first submission, yet later work submitted
    outside any run is left alone; executor work from an async node is rewritten too."""
    model = echo_system()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)

    async def work(q):
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(
            pool, model.invoke, [SystemMessage(SEED), HumanMessage(q)]
        )
        return reply.text

    with pool:
        output, _ = rollout(one_node(work, is_async=True))
        assert output["answer"] == NEW
        later = pool.submit(model.invoke, [SystemMessage(SEED)]).result()
    assert later.text == SEED


def test_a_langgraph_system_rollout_rewrites_a_generate_call():
    """End to end through LangGraphSystem: the probe confirms the prompt that reaches the
    model through ``generate``, and a rollout sends the candidate's text there."""
    model = echo_system()

    def plan(state):
        result = model.generate([[SystemMessage(SEED), HumanMessage(state["question"])]])
        return {"answer": result.generations[0][0].text}

    builder = StateGraph(State)
    builder.add_node("plan", plan)
    builder.add_edge(START, "plan")
    system = LangGraphSystem(builder.compile())
    report = system.probe(Example(question="q?"))  # the probe sees the generate call too
    assert report.confirmed == ["plan"] and report.reached == {"plan": ["plan"]}
    [name] = system.modules()
    result = asyncio.run(system.arun({name: NEW}, Example(question="q?")))
    assert result.error is None and result.output["answer"] == NEW
