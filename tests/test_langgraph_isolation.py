"""Rollouts leave the user's data as they found it: a private store layer per rollout over the
user's store (in memory and SQLite), a private node cache, and the user's store, checkpointer
and files untouched by optimize, the probe and the gate."""

import asyncio
import hashlib
import sqlite3
import warnings

import pytest
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

import gepa_graph as gg
from gepa_graph.errors import InvalidInput, WrongType
from gepa_graph.integrations.langgraph import LangGraphSystem
from gepa_graph.integrations.langgraph.isolation import LayeredStore
from gepa_graph.testing.reflection import ScriptedReflectionLM
from tests.agents import store_memory, sync_middleware

SqliteStore = pytest.importorskip("langgraph.store.sqlite").SqliteStore


def sqlite_store(path, **kwargs) -> BaseStore:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    store = SqliteStore(conn, **kwargs)
    store.setup()
    return store


def everything(store: BaseStore) -> dict:
    """Every item of ``store``: (namespace, key) -> (value, created_at, updated_at)."""
    return {
        (item.namespace, item.key): (item.value, item.created_at, item.updated_at)
        for namespace in store.list_namespaces(limit=1000)
        for item in store.search(namespace, limit=1000, refresh_ttl=False)
        if item.namespace == namespace
    }


def seeded(store: BaseStore) -> BaseStore:
    store.put(("docs",), "a", {"kind": "note", "n": 1})
    store.put(("docs",), "b", {"kind": "todo", "n": 2})
    store.put(("docs", "old"), "c", {"kind": "note", "n": 3})
    store.put(("users", "ada"), "profile", {"name": "Ada"})
    return store


@pytest.fixture(params=["memory", "sqlite"])
def base(request, tmp_path):
    if request.param == "memory":
        return seeded(InMemoryStore())
    return seeded(sqlite_store(str(tmp_path / "user.db")))


# -- the layer's semantics, sync and async, over both stores


def test_reads_see_the_user_store_and_writes_stay_in_the_layer(base):
    before = everything(base)
    layer = LayeredStore(base)
    assert layer.get(("docs",), "a").value == {"kind": "note", "n": 1}
    layer.put(("docs",), "a", {"kind": "note", "n": 10})
    layer.put(("docs",), "d", {"kind": "todo", "n": 4})
    layer.delete(("docs",), "b")
    assert layer.get(("docs",), "a").value["n"] == 10
    assert layer.get(("docs",), "b") is None
    assert layer.get(("docs",), "d").value["n"] == 4
    assert {i.key for i in layer.search(("docs",), limit=10)} == {"a", "c", "d"}
    assert {i.key for i in layer.search(("docs",), filter={"kind": "note"})} == {"a", "c"}
    assert [i.key for i in layer.search(("docs",), filter={"n": {"$gte": 4}})] == ["a", "d"]
    keys = [i.key for i in layer.search(("docs",), limit=10)]
    assert [i.key for i in layer.search(("docs",), limit=2, offset=1)] == keys[1:3]
    assert everything(base) == before  # the user's store is as it was
    assert LayeredStore(base).get(("docs",), "d") is None  # another rollout sees none of it


def test_list_namespaces_sees_the_layered_view(base):
    layer = LayeredStore(base)
    layer.put(("memories", "ada"), "m1", {"content": "tea"})
    layer.delete(("users", "ada"), "profile")  # the namespace's only item
    layer.delete(("docs",), "a")  # ("docs",) keeps "b"
    assert layer.list_namespaces() == [("docs",), ("docs", "old"), ("memories", "ada")]
    assert layer.list_namespaces(prefix=("docs",)) == [("docs",), ("docs", "old")]
    assert layer.list_namespaces(suffix=("ada",)) == [("memories", "ada")]
    assert layer.list_namespaces(max_depth=1) == [("docs",), ("memories",)]
    assert layer.list_namespaces(limit=1, offset=1) == [("docs", "old")]
    assert ("users", "ada") in base.list_namespaces()


def test_a_batch_reads_before_it_writes_and_async_honours_the_layer():
    base = seeded(InMemoryStore())
    layer = LayeredStore(base)

    async def run():
        await layer.aput(("docs",), "a", {"n": 99})
        got = await layer.aget(("docs",), "a")
        found = await layer.asearch(("docs",), filter={"n": 99})
        await layer.adelete(("docs",), "b")
        spaces = await layer.alist_namespaces(prefix=("docs",))
        return got.value, [i.key for i in found], await layer.aget(("docs",), "b"), spaces

    assert asyncio.run(run()) == ({"n": 99}, ["a"], None, [("docs",), ("docs", "old")])
    from langgraph.store.base import GetOp, PutOp

    results = layer.batch([PutOp(("x",), "k", {"v": 1}), GetOp(("x",), "k")])
    assert results == [None, None]  # the get saw the state before the batch's put
    assert layer.get(("x",), "k").value == {"v": 1}
    assert base.get(("docs",), "a").value == {"kind": "note", "n": 1}
    assert base.get(("x",), "k") is None


def test_reads_do_not_refresh_the_user_store_ttls(tmp_path):
    path = str(tmp_path / "ttl.db")
    store = sqlite_store(path, ttl={"default_ttl": 60, "refresh_on_read": True})
    store.put(("docs",), "a", {"n": 1})
    rows = "SELECT prefix, key, value, expires_at, updated_at FROM store ORDER BY key"
    before = store.conn.execute(rows).fetchall()
    layer = LayeredStore(store)
    layer.get(("docs",), "a")
    layer.search(("docs",))
    layer.put(("docs",), "b", {"n": 2}, ttl=5)  # a TTL is accepted where the store takes one
    assert store.conn.execute(rows).fetchall() == before


def test_semantic_search_ranks_the_layer_items_with_the_store_embeddings():
    from langchain_core.embeddings import Embeddings

    class Letters(Embeddings):
        """Counts of a few letters: texts sharing letters are similar."""

        def embed_documents(self, texts):
            return [self.embed_query(t) for t in texts]

        def embed_query(self, text):
            return [text.count(c) + 0.01 for c in "aeiost"]

    base = InMemoryStore(index={"dims": 6, "embed": Letters(), "fields": ["text"]})
    base.put(("docs",), "x", {"text": "zzz"})
    layer = LayeredStore(base)
    layer.put(("docs",), "y", {"text": "tea toast"})
    ranked = layer.search(("docs",), query="tea toast", limit=2)
    assert [i.key for i in ranked] == ["y", "x"] and ranked[0].score > ranked[1].score
    assert base.search(("docs",), query="tea", limit=5)[0].key == "x"  # the user's: only x


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


# -- run the graph the way it runs: sync-only parts roll out with invoke on worker threads


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


# -- prompts that live in the store


PREFERENCES = ("assistant", "ada", "triage")
RULE = "NEVER IGNORE EMAIL FROM THE BOSS"


def triage_agent(store):
    """Triage in the style of the email-assistant templates: the rules the assistant learned
    live in a store item and go into the system prompt."""
    from typing import TypedDict

    from langgraph.graph import START, StateGraph
    from langgraph.runtime import Runtime

    from gepa_graph.testing.chat_model import ScriptedChatModel

    class Email(TypedDict, total=False):
        sender: str
        label: str

    def classify(messages):
        boss = "from: boss" in messages[-1].text.lower()
        return "respond" if boss and RULE.lower() in messages[0].text.lower() else "ignore"

    model = ScriptedChatModel(script=classify)

    def triage(state: Email, runtime: Runtime) -> dict:
        rules = runtime.store.get(PREFERENCES, "preferences").value["content"]
        system = f"Label the email respond or ignore.\n\nRules:\n{rules}"
        reply = model.invoke([("system", system), ("human", f"From: {state['sender']}")])
        return {"label": reply.text}

    builder = StateGraph(Email)
    builder.add_node("triage", triage)
    builder.add_edge(START, "triage")
    return builder.compile(store=store)


def test_a_prompt_kept_in_a_store_item_is_optimized_there_and_written_only_when_asked(tmp_path):
    store = InMemoryStore()
    store.put(PREFERENCES, "preferences", {"content": "Ignore newsletters.", "version": 3})
    graph = triage_agent(store)
    system = LangGraphSystem(
        graph, store_prompts=[(PREFERENCES, "preferences")], exclude=["triage"]
    )
    module = "store:assistant/ada/triage:preferences#content"
    assert system.modules()[module] == "Ignore newsletters."
    examples = [
        {"id": f"e{i}", "sender": sender, "label": label}
        for i, (sender, label) in enumerate([("Boss", "respond"), ("news@x.org", "ignore")] * 3)
    ]

    def metric(example, state):
        ok = state["label"] == example["label"]
        return gg.Score(float(ok), feedback="" if ok else f"the boss must get a reply: {RULE}")

    result = gg.optimize(
        system,
        examples[:4],
        examples[4:],
        metric=metric,
        reflection_lm=ScriptedReflectionLM(
            lambda current, prompt: f"{current} {RULE}." if RULE in prompt else current + "!"
        ),
        max_rollouts=30,
        run_dir=tmp_path / "run",
        progress=False,
        config=gg.OptimizeConfig(module_selection="round_robin"),
    )
    assert result.best_score == 1.0 and RULE in result.best_candidate[module]
    assert store.get(PREFERENCES, "preferences").value["content"] == "Ignore newsletters."

    result.apply(graph)  # no store given: the store is left alone, the graph carries the text
    assert store.get(PREFERENCES, "preferences").value["content"] == "Ignore newsletters."
    assert graph.invoke({"sender": "Boss"})["label"] == "respond"

    fresh = triage_agent(store)
    assert fresh.invoke({"sender": "Boss"})["label"] == "ignore"
    written = gg.load_result(tmp_path / "run").apply(fresh, store=store)
    assert written == {
        module: "store item 'preferences' of ('assistant', 'ada', 'triage'), field 'content'"
    }
    assert store.get(PREFERENCES, "preferences").value == {
        "content": result.best_candidate[module],
        "version": 3,
    }
    assert fresh.invoke({"sender": "Boss"})["label"] == "respond"


def test_a_subgraph_invoked_inside_a_node_writes_into_the_rollout_layer_too():
    from typing import TypedDict

    from langchain_core.prompts import ChatPromptTemplate
    from langgraph.config import get_store
    from langgraph.graph import START, StateGraph

    from gepa_graph.testing.chat_model import ScriptedChatModel

    class State(TypedDict, total=False):
        question: str
        answer: str

    def remember(state):
        get_store().put(("notes",), "last", {"q": state["question"]})
        return {}

    child_builder = StateGraph(State)
    child_builder.add_node("remember", remember)
    child_builder.add_edge(START, "remember")
    child = child_builder.compile()

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer briefly."), ("human", "{question}")]
    )
    model = ScriptedChatModel(script=lambda messages: "ok")

    def answer(state):
        child.invoke(state)  # a compiled graph run inside a node: it gets the run's store
        seen = get_store().get(("notes",), "last")
        reply = (prompt | model).invoke(state)
        return {"answer": f"{reply.text} ({seen.value['q'] if seen else 'nothing'})"}

    builder = StateGraph(State)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    store = InMemoryStore()
    system = LangGraphSystem(builder.compile(store=store))
    rollout = asyncio.run(system.arun(system.modules(), {"question": "Why?"}))
    assert rollout.error is None and rollout.output["answer"] == "ok (Why?)"
    assert store.list_namespaces() == []
