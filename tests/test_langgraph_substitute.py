"""Rollouts run candidate prompts in isolated copies; apply() and with_prompts() write them."""

import asyncio
import warnings
from typing import TypedDict

import pytest
from langchain.agents import create_agent
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph

import gepa_graph.integrations.langgraph as lg
from gepa_graph import Example
from gepa_graph.integrations.langgraph import LangGraphSystem, discover, with_prompts
from gepa_graph.testing.chat_model import ScriptedChatModel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langgraph.prebuilt import create_react_agent

SUMMARY_PROMPT = "Summarize for {reader}: {question}"


class QA(TypedDict, total=False):
    question: str
    answer: str


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def echo_model():
    """Replies with the text of every message it got, so a rollout's output shows its prompt."""
    return ScriptedChatModel(script=lambda messages: " | ".join(m.text for m in messages))


def single_node(fn):
    graph = StateGraph(QA)
    graph.add_node("work", fn)
    graph.add_edge(START, "work")
    return graph.compile()


def chain_graph(model):
    template = ChatPromptTemplate.from_messages(
        [("system", "Be brief."), ("human", "Q: {question}")]
    )
    return single_node(template | model | (lambda m: {"answer": m.content}))


def constant_graph(model):
    def work(state):
        text = SUMMARY_PROMPT.format(reader="a child", question=state["question"])
        return {"answer": model.invoke(text).content}

    return single_node(work)


def declared_graph(model):
    def work(state):
        return {"answer": model.invoke(lg.prompt("tone", "Be kind.")).content}

    return single_node(work)


def agent_graph(model):
    return create_agent(model, [add], system_prompt="You add numbers.")


def react_graph(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_react_agent(model, [add], prompt="You add numbers.")


def subgraph_graph(model):
    parent = StateGraph(MessagesState)
    parent.add_node("math", agent_graph(model))
    parent.add_edge(START, "math")
    return parent.compile()


BUILDERS = {
    "chain": (chain_graph, "work.system"),
    "constant": (constant_graph, "work"),
    "declared": (declared_graph, "tone"),
    "create_agent": (agent_graph, "model"),
    "react_agent": (react_graph, "agent"),
    "subgraph": (subgraph_graph, "math/model"),
}
EXAMPLE = Example(question="what is 2+2?", answer="4")


def first_message(model, call=-1):
    return model.calls[call][0].text


@pytest.mark.parametrize("kind", BUILDERS)
def test_rollout_sees_the_candidate_and_the_graph_keeps_its_prompt(kind):
    build, module = BUILDERS[kind]
    model = echo_model()
    graph = build(model)
    system = LangGraphSystem(graph)
    seed = system.modules()[module]
    new = "NEW PROMPT for {reader}: {question}" if kind == "constant" else "NEW PROMPT"
    rollout = asyncio.run(system.arun({**system.modules(), module: new}, EXAMPLE))
    assert rollout.error is None
    assert first_message(model).startswith("NEW PROMPT")
    asyncio.run(graph.ainvoke(system.graph_input(EXAMPLE)))  # the user's graph, afterwards
    assert not first_message(model).startswith("NEW PROMPT")
    assert seed.split("{")[0].strip() in first_message(model)
    assert discover(graph)[module].text == seed


@pytest.mark.parametrize("kind", ["constant", "create_agent", "declared", "subgraph"])
def test_concurrent_rollouts_of_two_candidates_stay_isolated(kind):
    build, module = BUILDERS[kind]
    model = echo_model()
    system = LangGraphSystem(build(model))
    suffix = " {reader}: {question}" if kind == "constant" else ""
    candidates = [{**system.modules(), module: f"PROMPT-{tag}" + suffix} for tag in "AB"]

    async def run_all():
        return await asyncio.gather(*(system.arun(candidates[i % 2], EXAMPLE) for i in range(40)))

    rollouts = asyncio.run(run_all())
    for i, rollout in enumerate(rollouts):
        assert rollout.error is None
        final = (
            rollout.output["answer"]
            if "answer" in rollout.output
            else rollout.output["messages"][-1].content
        )
        mine, other = ("PROMPT-A", "PROMPT-B") if i % 2 == 0 else ("PROMPT-B", "PROMPT-A")
        assert final.startswith(mine) and other not in final
    firsts = [first_message(model, n) for n in range(len(model.calls))]
    assert (
        sorted(f.split(" ")[0].split(":")[0] for f in firsts)
        == ["PROMPT-A"] * 20 + ["PROMPT-B"] * 20
    )


def test_with_prompts_returns_a_copy_and_leaves_the_original_alone():
    model = echo_model()
    graph = chain_graph(model)
    copy = with_prompts(graph, {"work.system": "Be exhaustive."})
    assert copy is not graph
    assert copy.invoke({"question": "x"})["answer"].startswith("Be exhaustive.")
    assert graph.invoke({"question": "x"})["answer"].startswith("Be brief.")
    assert discover(copy)["work.system"].text == "Be exhaustive."
    with pytest.raises(KeyError, match="unknown prompt module"):
        with_prompts(graph, {"nope": "x"})


@pytest.mark.parametrize("kind", BUILDERS)
def test_apply_writes_into_the_original_graph(kind, monkeypatch):
    build, module = BUILDERS[kind]
    if kind == "constant":  # apply reassigns the module constant: restore it after the test
        monkeypatch.setattr(f"{__name__}.SUMMARY_PROMPT", SUMMARY_PROMPT)
    model = echo_model()
    graph = build(model)
    system = LangGraphSystem(graph)
    new = "APPLIED for {reader}: {question}" if kind == "constant" else "APPLIED"
    system.apply(graph, {module: new})
    asyncio.run(graph.ainvoke(system.graph_input(EXAMPLE)))
    assert first_message(model).startswith("APPLIED")
    assert discover(graph)[module].text == new


def test_apply_keeps_chat_template_variables_consistent():
    graph = chain_graph(echo_model())
    LangGraphSystem(graph).apply(graph, {"work.human": "Topic {topic}, question {question}"})
    template = graph.nodes["work"].bound.first
    assert template.input_variables == ["question", "topic"]


def test_a_template_that_does_not_parse_is_a_failed_rollout_not_a_crash():
    system = LangGraphSystem(chain_graph(echo_model()))
    rollout = asyncio.run(
        system.arun({"work.system": "Broken {", "work.human": "Q: {question}"}, EXAMPLE)
    )
    assert rollout.output is None and rollout.error and "Broken" not in str(rollout.output)


def test_unknown_module_in_a_candidate_fails_loudly():
    system = LangGraphSystem(chain_graph(echo_model()))
    with pytest.raises(KeyError, match="unknown module"):
        asyncio.run(system.arun({"nope": "x"}, EXAMPLE))


COUNTDOWN_PROMPT = "Count down, then answer."
countdown_model = echo_model()


def countdown(state, steps=2):
    """A node that calls itself through its module-level name before using its prompt."""
    if steps == 0:
        return {"answer": countdown_model.invoke(COUNTDOWN_PROMPT).content}
    return countdown(state, steps - 1)


def test_a_node_calling_itself_by_global_name_keeps_the_candidate_prompt():
    system = LangGraphSystem(single_node(countdown))
    assert system.modules() == {"work": COUNTDOWN_PROMPT}
    rollout = asyncio.run(system.arun({"work": "Candidate countdown."}, EXAMPLE))
    assert rollout.output["answer"] == "Candidate countdown."
    assert COUNTDOWN_PROMPT == "Count down, then answer."


# ----------------------------------------------------------------------------- identity

PLANNER_PROMPT = "You are a planner. Make a short plan for the objective."
REPLANNER_PROMPT = PLANNER_PROMPT + "\nYour plan so far: {plan}\nUpdate the plan."
RESEARCHER_PROMPT = "Research the topic thoroughly and cite every source."
ORCHESTRATOR_PROMPT = "You coordinate a team. Each researcher is told: " + RESEARCHER_PROMPT


def _substitution(prompts, *names):
    from gepa_graph.integrations.langgraph.boundary import PromptSpec, Substitution

    seeds = {
        "planner": PromptSpec(PLANNER_PROMPT),
        "replanner": PromptSpec(REPLANNER_PROMPT),
        "researcher": PromptSpec(RESEARCHER_PROMPT),
        "orchestrator": PromptSpec(ORCHESTRATOR_PROMPT),
    }
    return Substitution(seeds, prompts)


REPLANNER_SENT = REPLANNER_PROMPT.format(plan="1. look")


@pytest.mark.parametrize(
    ("changed", "planner_sent", "replanner_sent"),
    [
        ({"planner": "Plan boldly."}, "Plan boldly.", REPLANNER_SENT),
        (
            {"replanner": "Revise the plan {plan}."},
            PLANNER_PROMPT,
            "Revise the plan 1. look.",
        ),
        (  # the replanner's candidate still opens with the planner's seed: left as it is
            {"planner": "Plan boldly.", "replanner": PLANNER_PROMPT + " Revise {plan}."},
            "Plan boldly.",
            PLANNER_PROMPT + " Revise 1. look.",
        ),
    ],
    ids=["shorter-changed", "longer-changed", "both-changed"],
)
def test_a_prompt_opening_another_is_rewritten_and_attributed_by_identity(
    changed, planner_sent, replanner_sent
):
    substitution = _substitution(changed)
    assert substitution.rewrite_text(PLANNER_PROMPT) == planner_sent
    assert substitution.rewrite_text(REPLANNER_SENT) == replanner_sent
    assert substitution.modules_in([planner_sent]) == ["planner"]
    assert substitution.modules_in([replanner_sent]) == ["replanner"]
    seed_run = _substitution({})
    assert seed_run.modules_in([REPLANNER_SENT]) == ["replanner"]
    assert seed_run.modules_in([PLANNER_PROMPT, REPLANNER_SENT]) == ["planner", "replanner"]


@pytest.mark.parametrize("changed", ["researcher", "orchestrator"])
def test_a_prompt_equal_to_the_tail_of_another_is_not_rewritten_inside_it(changed):
    substitution = _substitution({changed: "Do it differently."})
    orchestrator = substitution.rewrite_text("Intro.\n" + ORCHESTRATOR_PROMPT)
    researcher = substitution.rewrite_text(RESEARCHER_PROMPT)
    if changed == "researcher":
        assert orchestrator == "Intro.\n" + ORCHESTRATOR_PROMPT
        assert researcher == "Do it differently."
    else:
        assert orchestrator == "Intro.\nDo it differently."
        assert researcher == RESEARCHER_PROMPT
    assert substitution.modules_in([researcher]) == ["researcher"]
    assert substitution.modules_in([orchestrator]) == ["orchestrator"]


def test_a_prompt_inside_another_prompts_variable_is_still_rewritten():
    """A value the code put into a template's variable is read again by the same rule."""
    from gepa_graph.integrations.langgraph.boundary import PromptSpec, Substitution

    seeds = {
        "wrapper": PromptSpec("Follow these instructions:\n{instructions}\nThen answer."),
        "researcher": PromptSpec(RESEARCHER_PROMPT),
    }
    sent = f"Follow these instructions:\n{RESEARCHER_PROMPT}\nThen answer."
    both = Substitution(seeds, {"wrapper": "Rules: {instructions}", "researcher": "Dig deep."})
    assert both.rewrite_text(sent) == "Rules: Dig deep."
    inner = Substitution(seeds, {"researcher": "Dig deep."})
    assert inner.rewrite_text(sent) == "Follow these instructions:\nDig deep.\nThen answer."
    assert Substitution(seeds, {}).modules_in([sent]) == ["wrapper", "researcher"]


def test_a_planner_and_replanner_graph_runs_each_candidate_only_where_it_belongs():
    model = ScriptedChatModel(script=lambda messages: "1. look")

    def plan(state):
        return {"answer": model.invoke([("system", PLANNER_PROMPT), state["question"]]).text}

    def replan(state):
        text = REPLANNER_PROMPT.format(plan=state["answer"])
        return {"answer": model.invoke([("system", text), state["question"]]).text}

    graph = StateGraph(QA)
    graph.add_node("plan", plan)
    graph.add_node("replan", replan)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "replan")
    system = LangGraphSystem(graph.compile())
    names = {slot.text: name for name, slot in system.slots.items()}
    planner, replanner = names[PLANNER_PROMPT], names[REPLANNER_PROMPT]
    rollout = asyncio.run(system.arun({planner: "Plan boldly."}, Example(question="go")))
    assert rollout.error is None
    sent = [m[0].text for m in model.calls]
    assert sent == ["Plan boldly.", REPLANNER_SENT]
    calls = [r for r in rollout.trace.records if r.kind == "llm"]
    assert [(r.node, r.modules) for r in calls] == [("plan", [planner]), ("replan", [replanner])]


def test_a_text_that_already_runs_the_candidate_is_left_as_it_is():
    """A context or configurable prompt reaches the model already substituted; a seed ending
    in a variable matches that text too (the variable takes the rest) but must not rewrite it
    again, and the audit must not call it a leak."""
    from gepa_graph.integrations.langgraph.boundary import PromptSpec, Substitution
    from gepa_graph.integrations.langgraph.model_calls import ObservedCall

    seed = "Be helpful.\nSystem time: {time}"
    substitution = Substitution({"m": PromptSpec(seed)}, {"m": seed + "\nAnswer in capitals."})
    runs = "Be helpful.\nSystem time: 10:00\nAnswer in capitals."
    assert substitution.rewrite_text(runs) == runs
    assert substitution.rewrite_text("Be helpful.\nSystem time: 10:00") == runs
    call = ObservedCall(node="n", entry="langchain.chat", messages=(("system", runs),))
    assert substitution.leaks([call]) == [] and substitution.modules_in([runs]) == ["m"]
