"""Rollouts leave the user's data as they found it: a private store layer per rollout over the
user's store (in memory and SQLite), a private node cache, the user's store, checkpointer and
files untouched by optimize, the probe and the gate, and stand-ins for tools with side effects."""

import asyncio
import hashlib
import warnings

import pytest
from langgraph.store.memory import InMemoryStore

import gepa_graph as gg
from gepa_graph.errors import WrongType
from gepa_graph.integrations.langgraph import LangGraphSystem
from gepa_graph.testing.reflection import ScriptedReflectionLM
from tests.agents import store_memory
from tests.store_helpers import everything, sqlite_store

# -- rollouts, the probe, optimize and the gate leave the user's store as it was


def memory_reflection(fix: bool):
    """Adds the phrase the metric asks for (``fix``), or only something that changes nothing,
    above the ``{user_info}`` the agent fills in."""
    tries = iter(range(1000))

    def rewrite(current, _):
        line = store_memory.FIX if fix else f"Be warm ({next(tries)})"
        return current.replace("{user_info}", f"{line}.\n\n{{user_info}}")

    return ScriptedReflectionLM(rewrite)


def optimize_memory_agent(case, tmp_path, fix=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        system = LangGraphSystem(case.graph, **case.system_kwargs)
    answer = case.examples[0]["answer"]
    train = [
        {"id": f"train-{i}", "question": f"Remember that I have {i} plants.", "answer": answer}
        for i in range(8)
    ]
    return gg.optimize(
        system,
        train,
        case.examples[:2],
        metric=case.metric,
        reflection_lm=memory_reflection(fix),
        max_rollouts=20,
        run_dir=tmp_path / "run",
        progress=False,
    )


def test_optimize_leaves_an_in_memory_store_with_exactly_its_items(tmp_path):
    case = store_memory.build()
    store = case.graph.store
    before = everything(store)
    result = optimize_memory_agent(case, tmp_path)  # max_rollouts=20: as many as fit
    assert result.rollouts_used >= 14
    assert everything(store) == before  # 1 profile, 1 memory: no rollout's memory landed
    answers = [call for call in case.models["agent"].calls if call[-1].type == "tool"]
    assert len(answers) == result.rollouts_used  # each: the memory it saved, then its answer
    for call in answers:  # each saw the user's profile, the user's memory and its own
        profile, memories = call[0].text.split("Name: ")[1].split("\nMemories:\n")
        fact = call[1].text.removeprefix("Remember that ").rstrip(".")
        assert profile == "Ada" and sorted(memories.splitlines()) == sorted(
            ["- likes hiking", f"- {fact}"]
        )


def test_optimize_probe_and_gate_leave_a_sqlite_store_and_its_file_untouched(tmp_path):
    path = tmp_path / "memory.db"
    store_memory.seed(sqlite_store(str(path))).conn.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    store = sqlite_store(str(path))
    before = everything(store)
    case = store_memory.build(store)

    result = optimize_memory_agent(case, tmp_path, fix=True)
    assert result.best_score == 1.0  # rollouts read the profile and their own new memory
    from gepa_graph.tracking.gate import score_prompt_sets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inspected = LangGraphSystem(case.graph, **case.system_kwargs)
        inspected.probe(case.examples[0])  # as `gepa-graph inspect --probe`, with the context
        assert "context.system_prompt" in inspected.describe()
        system = LangGraphSystem(case.graph, **case.system_kwargs)
    (results,), _ = score_prompt_sets(system, [result.best_candidate], case.examples, case.metric)
    assert [r.score for r in results] == [1.0] * len(case.examples)

    assert everything(store) == before
    store.conn.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.db", "run"]


def test_a_store_factory_gives_each_rollout_a_fresh_seeded_store():
    case = store_memory.build()
    made = []

    def seeded_store():
        made.append(store_memory.seed(InMemoryStore()))
        return made[-1]

    system = LangGraphSystem(case.graph, store=seeded_store, **case.system_kwargs)
    for example in case.examples[:3]:
        rollout = asyncio.run(system.arun(system.modules(), example))
        assert rollout.error is None
        assert "I now remember 2 things" in rollout.output["messages"][-1].text
    assert len(made) == 3
    assert all(len(everything(store)) == 2 for store in made)  # the factory's, too, untouched
    assert len(everything(case.graph.store)) == 2  # the graph's own store was never used


def test_a_store_that_is_neither_store_nor_factory_is_refused():
    case = store_memory.build()
    with pytest.raises(WrongType, match="store must be a langgraph BaseStore"):
        LangGraphSystem(case.graph, store={"profile": "Ada"})
    system = LangGraphSystem(case.graph, store=lambda: {"not": "a store"}, **case.system_kwargs)
    with pytest.raises(WrongType, match="returned a dict, not a langgraph BaseStore"):
        asyncio.run(system.arun(system.modules(), case.examples[0]))


def test_rollouts_get_a_private_node_cache():
    from typing import TypedDict

    from langchain_core.prompts import ChatPromptTemplate
    from langgraph.cache.memory import InMemoryCache
    from langgraph.graph import START, StateGraph
    from langgraph.types import CachePolicy

    from gepa_graph.testing.chat_model import ScriptedChatModel

    class State(TypedDict, total=False):
        question: str
        answer: str

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer briefly."), ("human", "{question}")]
    )
    model = ScriptedChatModel(script=lambda messages: messages[0].text)
    builder = StateGraph(State)
    builder.add_node(
        "answer",
        prompt | model | (lambda m: {"answer": m.text}),
        cache_policy=CachePolicy(),
    )
    builder.add_edge(START, "answer")
    cache = InMemoryCache()
    graph = builder.compile(cache=cache)
    system = LangGraphSystem(graph)
    example = {"question": "Why?"}
    first = asyncio.run(system.arun({"answer": "Answer in French."}, example))
    second = asyncio.run(system.arun({"answer": "Answer in Latin."}, example))
    assert (first.output["answer"], second.output["answer"]) == (
        "Answer in French.",
        "Answer in Latin.",
    )  # the second rollout did not get the first one's cached node output
    assert cache._cache == {}  # nothing landed in the user's cache


# -- side effects the framework cannot see: per-tool stand-ins


def email_agent(outbox):
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool

    from gepa_graph.testing.chat_model import ScriptedChatModel

    @tool
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        outbox.append((to, body))
        return f"sent to {to}"

    def reply(messages):
        if messages[-1].type == "tool":
            return f"Done: {messages[-1].text}"
        return AIMessage(
            "",
            tool_calls=[
                {"name": "send_email", "args": {"to": "bo@x.org", "body": "Hi"}, "id": None}
            ],
        )

    model = ScriptedChatModel(script=reply)
    return create_agent(model, [send_email], system_prompt="You send emails for the user.")


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_tool_stand_in_runs_in_rollouts_and_the_real_tool_does_not(asynchronous):
    outbox, faked = [], []

    def fake(to, body):
        faked.append((to, body))
        return f"(not sent) to {to}"

    async def afake(to, body):
        return fake(to, body)

    graph = email_agent(outbox)
    system = LangGraphSystem(graph, tools={"send_email": afake if asynchronous else fake})
    rollout = asyncio.run(system.arun(system.modules(), {"question": "Email Bo."}))
    assert rollout.error is None
    assert rollout.output["messages"][-1].text == "Done: (not sent) to bo@x.org"
    assert outbox == [] and faked == [("bo@x.org", "Hi")]
    tool_records = [r for r in rollout.trace.records if r.kind == "tool"]
    assert tool_records and "(not sent)" in str(tool_records[0].outputs)
    graph.invoke({"messages": [("user", "Email Bo.")]})  # the user's graph: the real tool
    assert outbox == [("bo@x.org", "Hi")]


def test_tool_stand_ins_must_be_functions_or_tools():
    with pytest.raises(WrongType, match=r"tools\['send_email'\] must be a function or a BaseTool"):
        LangGraphSystem(email_agent([]), tools={"send_email": "fake"})
