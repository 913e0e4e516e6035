"""Substitution at the model boundary: template matching, isolation, run fields, interrupts,
recursion limits, probes and the errors that tell the truth."""

import asyncio
import dataclasses
import warnings
from typing import TypedDict

import pytest
from langchain_core.messages import SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

import gepa_graph as gg
from gepa_graph import Example
from gepa_graph.errors import PromptNeverUsed
from gepa_graph.integrations.langgraph import (
    LangGraphSystem,
    NoPromptsFound,
    describe,
    with_prompts,
)
from gepa_graph.integrations.langgraph.patterns import PromptPattern
from gepa_graph.testing.chat_model import ScriptedChatModel


class QA(TypedDict, total=False):
    question: str
    answer: str


def echo():
    return ScriptedChatModel(script=lambda messages: " | ".join(m.text for m in messages))


def test_a_template_is_found_in_rendered_text_and_re_rendered_with_its_values():
    seed = PromptPattern.of("You help {user}.\n\nTime: {time}")
    candidate = PromptPattern.of("Time is {time}. Be brief with {user}.")
    rendered = "Intro. You help  Ann.\nTime: 10:00"
    assert seed.replace(rendered, candidate) == "Intro. Time is 10:00. Be brief with Ann."
    assert (
        PromptPattern.of("Use {{json}} for {x}").replace(
            "Use {json} for A", PromptPattern.of("{x} as {{json}}")
        )
        == "A as {json}"
    )
    assert seed.replace("nothing here", candidate) is None
    assert PromptPattern.of("{a}{b}").matchable is False  # no literal text to recognise


KIND_PROMPT = "Answer kindly."
SPIN_PROMPT = "Keep going, always."


def test_concurrent_rollouts_keep_their_own_prompts_in_a_shared_model():
    model = ScriptedChatModel(script=lambda ms: ms[0].text, latency_s=0.01)

    def work(state):
        return {"answer": model.invoke([SystemMessage(KIND_PROMPT), state["question"]]).text}

    builder = StateGraph(QA)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    system = LangGraphSystem(builder.compile())

    async def many():
        return await asyncio.gather(
            *[
                system.arun({"work": f"Variant {n}."}, Example(id=str(n), question="q"))
                for n in range(20)
            ]
        )

    rollouts = asyncio.run(many())
    assert [r.output["answer"] for r in rollouts] == [f"Variant {n}." for n in range(20)]
    assert model.invoke([SystemMessage("Answer kindly.")]).text == "Answer kindly."  # outside


@dataclasses.dataclass
class Context:
    system_prompt: str = "You are terse. User: {user}"


def context_graph(model):
    def call(state: MessagesState, runtime: Runtime[Context]):
        text = runtime.context.system_prompt.format(user="ann")
        return {"messages": [model.invoke([SystemMessage(text), *state["messages"]])]}

    builder = StateGraph(MessagesState, context_schema=Context)
    builder.add_node("call", call)
    builder.add_edge(START, "call")
    return builder.compile()


def test_context_prompts_travel_in_context_and_examples_carry_context():
    model = echo()
    system = LangGraphSystem(context_graph(model))
    assert system.modules() == {"context.system_prompt": "You are terse. User: {user}"}
    rollout = asyncio.run(
        system.arun(
            {"context.system_prompt": "Be warm to {user}."}, Example(question="hi", context={})
        )
    )
    assert rollout.error is None and model.calls[-1][0].text == "Be warm to ann."
    copy = with_prompts(system.graph, {"context.system_prompt": "Copy for {user}."})
    copy.invoke({"messages": [("user", "x")]}, context=Context())
    assert model.calls[-1][0].text == "Copy for ann."
    with pytest.raises(ValueError, match="'context' must be a Mapping"):
        system.validate_example(Example(question="hi", context="nope"))


def test_a_graph_that_loops_forever_stops_at_the_recursion_limit():
    model = ScriptedChatModel(script=lambda ms: "again")

    def spin(state):
        return {"answer": model.invoke(SPIN_PROMPT).text}

    builder = StateGraph(QA)
    builder.add_node("spin", spin)
    builder.add_edge(START, "spin")
    builder.add_conditional_edges("spin", lambda s: "spin", ["spin"])
    system = LangGraphSystem(builder.compile())
    rollout = asyncio.run(system.arun(system.modules(), Example(question="q")))
    assert "GraphRecursionError" in rollout.error and len(model.calls) == 25
    limited = LangGraphSystem(builder.compile(), config={"recursion_limit": 5})
    model.reset()
    asyncio.run(limited.arun(limited.modules(), Example(question="q")))
    assert len(model.calls) == 5


ASK_PROMPT = "Ask politely for the date."
CONFIRM_PROMPT = "Confirm warmly: {answer}"


def interrupting_graph(model, dynamic):
    def ask(state):
        return {"answer": model.invoke(ASK_PROMPT).text}

    def confirm(state):
        if dynamic:
            state = {**state, "answer": interrupt("ok?")}
        return {"answer": model.invoke(CONFIRM_PROMPT.format(answer=state["answer"])).text}

    builder = StateGraph(QA)
    builder.add_node("ask", ask)
    builder.add_node("confirm", confirm)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "confirm")
    builder.add_edge("confirm", END)
    kwargs = {} if dynamic else {"interrupt_before": ["confirm"]}
    return builder.compile(checkpointer=InMemorySaver(), **kwargs)


def test_rollouts_run_past_compiled_interrupts_and_resume_dynamic_ones_from_the_example():
    model = ScriptedChatModel(script=lambda ms: "done")
    with pytest.warns(UserWarning, match="interrupts at"):
        system = LangGraphSystem(interrupting_graph(model, dynamic=False))
    rollout = asyncio.run(system.arun(system.modules(), Example(question="q")))
    assert rollout.error is None and len(model.calls) == 2  # both prompts ran
    dynamic = LangGraphSystem(interrupting_graph(model, dynamic=True))
    stopped = asyncio.run(dynamic.arun(dynamic.modules(), Example(question="q")))
    assert "stopped at an interrupt (ok?)" in stopped.error
    resumed = asyncio.run(dynamic.arun(dynamic.modules(), Example(question="q", resume=["yes"])))
    assert resumed.error is None and model.calls[-1][0].text == "Confirm warmly: yes"


def prose_graph(model, text):
    def work(state):
        return {"answer": model.invoke([SystemMessage(text), state["question"]]).text}

    builder = StateGraph(QA)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    return builder.compile()


def test_no_prompt_found_says_what_was_inspected_and_what_reached_a_model():
    model = echo()

    def work(state):  # the prompt exists only once the node runs
        text = " ".join(["You are a careful", "reviewer of", state["question"]])
        return {"answer": model.invoke([SystemMessage(text), "go"]).text}

    builder = StateGraph(QA)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    graph = builder.compile()
    with pytest.raises(NoPromptsFound, match="inspected nodes work") as error:
        describe(graph)
    assert "\n" not in str(error.value)
    # What reached a model is the ground truth: the instruction becomes a module, its
    # changing part (the example's own text) a variable.
    text = describe(graph, probe=[Example(question="contracts"), Example(question="leases")])
    assert "You are a careful reviewer of {value_1}" in text and "no home found" in text


def test_a_probe_confirms_prose_that_reaches_a_model_and_inspect_shows_it():
    graph = prose_graph(echo(), "You answer questions about the weather in one short line.")
    with pytest.raises(NoPromptsFound, match="candidates that no probe run confirmed"):
        LangGraphSystem(graph).modules()
    text = describe(graph, probe=Example(question="q"))
    assert "work" in text and "confirmed by the probe run: ['work']" in text


def test_a_declared_prompt_no_probe_run_uses_stops_the_run_before_the_search(tmp_path):
    model = echo()
    graph = prose_graph(model, "You answer questions about the weather in one short line.")
    system = LangGraphSystem(graph, prompts={"unused": "Never sent to any model at all."})
    data = [{"id": str(n), "question": f"q{n}", "answer": "x"} for n in range(3)]
    with pytest.raises(PromptNeverUsed, match=r"\['unused'\] reached no model"):
        gg.optimize(
            system,
            data,
            data,
            metric=lambda e, p: 0.0,
            reflection_lm=lambda p: "x",
            max_rollouts=20,
            run_dir=tmp_path / "run",
            progress=False,
        )
    assert len(model.calls) == 3  # the probe's three runs, before any search rollout


def test_a_warning_free_graph_gets_no_interrupt_notice():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LangGraphSystem(
            prose_graph(echo(), "You answer questions about the weather today."),
            prompts={"x": "Declared text for the test."},
        )


def test_a_probe_confirms_an_instruction_sent_as_a_plain_string_but_not_data_in_a_variable():
    model = echo()
    note = "Write the reply as a short poem about the sea and the sky."
    data = "a draft: text that is data which only fills the review prompt's variable"

    def work(state):
        poem = model.invoke(note + "\n" + state["question"]).text
        review = model.invoke(REVIEW_PROMPT.format(draft=data)).text
        return {"answer": poem + review}

    builder = StateGraph(QA)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    system = LangGraphSystem(builder.compile())
    report = system.probe(Example(question="q"))
    assert set(system.modules()) == {"work", "work.note"}  # the strong prompt keeps the node name
    assert report.confirmed == ["work.note"] and report.unreached == []


REVIEW_PROMPT = "Review this draft carefully: {draft}"


def test_the_probe_run_of_optimize_counts_in_the_rollout_ledger(tmp_path):
    model = echo()
    graph = prose_graph(model, "You answer questions about the weather in one short line.")
    data = [{"id": str(n), "question": f"q{n}", "answer": "x"} for n in range(3)]
    result = gg.optimize(
        graph,
        data,
        data,
        metric=lambda e, p: 0.5,
        max_rollouts=12,
        reflection_lm=lambda p: "```\nYou answer in one line.\n```",
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert list(result.best_candidate) == ["work"]
    assert result.rollouts_used == len(model.calls) <= 12  # one model call per rollout
    with pytest.raises(ValueError, match="after the probe run"):
        gg.optimize(
            graph,
            data,
            data,
            metric=lambda e, p: 0.5,
            max_rollouts=3,
            reflection_lm=lambda p: "x",
            run_dir=tmp_path / "r2",
            progress=False,
        )
