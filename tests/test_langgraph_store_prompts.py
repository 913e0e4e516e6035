"""Prompts kept in a store item: optimized where the agent reads them, served by each
rollout's layer, written into a store only when asked; subgraphs write into the layer too."""

import asyncio

from langgraph.store.memory import InMemoryStore

import gepa_graph as gg
from gepa_graph.integrations.langgraph import LangGraphSystem
from gepa_graph.testing.reflection import ScriptedReflectionLM

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
