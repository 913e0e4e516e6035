"""Every bad input is one clear line naming the problem, raised before any LLM call."""

from typing import TypedDict

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import START, StateGraph
from typer.testing import CliRunner

import gepa_graph as gg
from gepa_graph.cli import app
from gepa_graph.integrations.langgraph import NoPromptsFound
from gepa_graph.testing.chat_model import ScriptedChatModel


class State(TypedDict, total=False):
    question: str
    answer: str


class InputState(TypedDict):
    question: str


def build_graph(model, with_prompt=True):
    chain = (
        ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("human", "{question}")])
        | model
    )

    def answer(state: State) -> State:
        return {"answer": chain.invoke({"question": state["question"]}).text}

    def bare(state: State) -> State:  # sends the question alone: no prompt to optimize
        return {"answer": model.invoke(state["question"]).text}

    builder = StateGraph(State, input_schema=InputState)
    builder.add_node("answer", answer if with_prompt else bare)
    builder.add_edge(START, "answer")
    return builder.compile()


GOOD = [{"id": i, "question": f"q{i}", "answer": "a"} for i in range(4)]


def metric(example, prediction):
    return float(prediction["answer"] == example["answer"])


CASES = {
    "empty trainset": (dict(trainset=[]), ValueError, "trainset is empty"),
    "empty valset": (dict(valset=[]), ValueError, "valset is empty"),
    "budget below the valset": (dict(max_rollouts=2), ValueError, "cannot even evaluate the seed"),
    "example missing a graph field": (
        dict(trainset=[{"id": 1, "query": "x"}]),
        ValueError,
        r"trainset\[0\] \(1\): .*question",
    ),
    "duplicate example ids": (
        dict(trainset=GOOD + [GOOD[0]]),
        ValueError,
        r"trainset\[4\] duplicates trainset\[0\]",
    ),
    "metric with the wrong signature": (
        dict(metric=lambda prediction: 1.0),
        TypeError,
        "must accept .example, prediction",
    ),
    "unknown module name": (
        dict(seed_prompts={"answr": "x"}),
        ValueError,
        "unknown module 'answr'",
    ),
    "zero budget": (
        dict(max_rollouts=0),
        ValueError,
        "max_rollouts: Input should be greater than 0",
    ),
    "negative cost budget": (
        dict(max_cost_usd=-1.0),
        ValueError,
        "max_cost_usd: Input should be greater than 0",
    ),
    "unknown LiteLLM model": (
        dict(reflection_lm="gpt-nonexistent-9"),
        ValueError,
        "unknown LiteLLM model 'gpt-nonexistent-9'",
    ),
    "not a system": (dict(graph="number"), TypeError, "cannot optimize a int"),
    "a string that is no import path": (
        dict(graph="string"),
        ValueError,
        "a system given as a string must be an import path 'package.module:attribute'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_fast_with_one_clear_line(case, tmp_path):
    overrides, error, message = CASES[case]
    model = ScriptedChatModel(script=lambda messages: "a")
    reflections = []
    graph = overrides.pop("graph", None)
    graph = {
        "no_prompt": build_graph(model, with_prompt=False),
        "string": "my_graph",
        "number": 42,
        None: build_graph(model),
    }[graph]
    kwargs = dict(
        trainset=GOOD,
        metric=metric,
        reflection_lm=lambda prompt: reflections.append(prompt) or "```\nx\n```",
        max_rollouts=50,
        run_dir=tmp_path / "run",
        progress=False,
    )
    kwargs.update(overrides)
    with pytest.raises(error, match=message) as info:
        gg.optimize(graph, kwargs.pop("trainset"), kwargs.pop("valset", None), **kwargs)
    assert "\n" not in str(info.value).strip()
    assert model.calls == [] and reflections == []
    assert not (tmp_path / "run").exists()


def test_a_graph_whose_probe_sends_no_instruction_stops_after_the_probe(tmp_path):
    """Code that holds no text may still load its prompts (data files, the environment): the
    probe runs, and only what reached no model makes it NoPromptsFound, before any reflection."""
    model = ScriptedChatModel(script=lambda messages: "a")
    reflections = []
    with pytest.raises(NoPromptsFound, match="gg.prompt") as info:
        gg.optimize(
            build_graph(model, with_prompt=False),
            GOOD,
            metric=metric,
            reflection_lm=lambda prompt: reflections.append(prompt) or "```\nx\n```",
            max_rollouts=50,
            run_dir=tmp_path / "run",
            progress=False,
        )
    assert "\n" not in str(info.value).strip()
    assert sorted(m.content for call in model.calls for m in call) == ["q0", "q1", "q2"]
    assert reflections == []


@pytest.mark.parametrize("case", ["broken JSONL line", "module:attr that does not import"])
def test_cli_bad_input_is_one_error_line_and_exit_2(case, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "agent_mod.py").write_text(
        "from gepa_graph.testing.chat_model import ScriptedChatModel\n"
        "from gepa_graph.testing.rules import RuleTask\n"
        "task = RuleTask()\n"
        "system = task.system()\n"
        "metric = task.metric\n"
    )
    data = tmp_path / "train.jsonl"
    data.write_text('{"id": 1, "type": 0, "question": "q"}\n{"id": 2, "type": 1,\n')
    args = [
        "optimize",
        "agent_mod:system",
        "agent_mod:metric",
        "--train",
        str(data),
        "--reflection-lm",
        "agent_mod:nothing",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    expected = "train.jsonl:2"
    if case == "module:attr that does not import":
        data.write_text('{"id": 1, "type": 0, "question": "q"}\n')
        args[1] = "no_such_module_xyz:graph"
        expected = "no_such_module_xyz"
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0]
    assert not (tmp_path / "run").exists()
