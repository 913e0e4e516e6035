"""The examples/ agents, offline: their shipped data loads, their metrics score and explain, and
their graphs run (real tools included) with scripted models; one is optimized end to end."""

import asyncio
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

import gepa_graph as gg
from gepa_graph.testing.chat_model import ScriptedChatModel
from gepa_graph.testing.reflection import ScriptedReflectionLM

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name):
    path = EXAMPLES / name / "agent.py"
    module_name = f"gepa_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["instruction_following", "shop_assistant", "math_word_problems"])
def test_each_example_ships_data_a_readme_line_and_discoverable_prompts(name):
    from gepa_graph.integrations.langgraph import discover

    example = load(name)
    data = example.load_data()
    assert len(data) >= 16
    assert len({row["id"] for row in data}) == len(data)
    assert f"examples/{name}/" in (EXAMPLES / "README.md").read_text(encoding="utf-8")
    graph = example.build_graph(ScriptedChatModel(script=lambda messages: "x"))
    assert len(discover(graph)) == 1


# --- instruction following (IFEval) -----------------------------------------------------------


def test_ifeval_verifiers_run_offline_on_every_shipped_prompt():
    ifeval = load("instruction_following")
    for example in ifeval.load_data():
        for response in ("", "Hello there.", 'Here it is:\n* one\n* two\n{"a": 1}, P.S. bye'):
            score = ifeval.metric(example, {"response": response})
            assert 0.0 <= score.value <= 1.0
            if score.value < 1.0:
                assert "Missed:" in score.feedback


def test_ifeval_metric_names_the_missed_constraint():
    ifeval = load("instruction_following")
    example = {
        "prompt": "Write a limerick. Don't use any commas.",
        "instruction_id_list": ["punctuation:no_comma", "keywords:existence"],
        "kwargs": [{}, {"keywords": ["cat"]}],
    }
    assert ifeval.metric(example, {"response": "A cat sat on a mat"}).value == 1.0
    score = ifeval.metric(example, {"response": "A dog, it sat"})
    assert score.value == 0.0
    assert "punctuation:no_comma" in score.feedback and "cat" in score.feedback
    half = ifeval.metric(example, {"response": "A cat, it sat"})
    assert half.value == 0.5 and "keywords:existence" not in half.feedback


def test_ifeval_graph_runs_with_a_scripted_model():
    ifeval = load("instruction_following")
    model = ScriptedChatModel(script=lambda messages: "a reply without commas")
    output = ifeval.build_graph(model).invoke({"prompt": "Say hi. Do not use commas."})
    assert output["response"] == "a reply without commas"
    assert model.calls[0][0].text == ifeval.SYSTEM_PROMPT


# --- shop assistant (tools) -------------------------------------------------------------------


def test_shop_tools_are_real():
    shop = load("shop_assistant")
    assert json.loads(shop.find_product.invoke({"name": "Gel pen"}))["price_gbp"] == 1.20
    assert "error" in json.loads(shop.find_product.invoke({"name": "piano"}))
    assert shop.calculator.invoke({"expression": "3*3.5 + 2*1.2"}) == "12.9"
    assert shop.calculator.invoke({"expression": "__import__('os')"}).startswith("error")
    assert shop.convert_currency.invoke({"amount_gbp": 10, "currency": "eur"}) == "11.70 EUR"


def test_shop_data_answers_match_the_catalogue():
    shop = load("shop_assistant")
    for row in shop.load_data():
        assert float(row["answer"]) == shop.expected_total(row["items"], row["currency"])


def _tool_script(example, shop):
    """A model that uses every tool, then answers with the tool results."""

    def reply(messages):
        tool_outputs = [m.text for m in messages if m.type == "tool"]
        step = len(tool_outputs)
        names = list(example["items"])
        if step < len(names):
            return AIMessage(
                "",
                tool_calls=[
                    {"name": "find_product", "args": {"name": names[step]}, "id": f"c{step}"}
                ],
            )
        if step == len(names):
            prices = [json.loads(t)["price_gbp"] for t in tool_outputs]
            expression = " + ".join(f"{example['items'][n]}*{p}" for n, p in zip(names, prices))
            return AIMessage(
                "",
                tool_calls=[
                    {"name": "calculator", "args": {"expression": expression}, "id": "calc"}
                ],
            )
        if step == len(names) + 1:
            return AIMessage(
                "",
                tool_calls=[
                    {
                        "name": "convert_currency",
                        "args": {
                            "amount_gbp": float(tool_outputs[-1]),
                            "currency": example["currency"],
                        },
                        "id": "conv",
                    }
                ],
            )
        return f"The total is {tool_outputs[-1]}."

    return reply


def test_shop_agent_loop_runs_tools_and_scores():
    shop = load("shop_assistant")
    example = shop.load_data()[0]
    system = gg.integrations.langgraph.LangGraphSystem(
        shop.build_graph(ScriptedChatModel(script=_tool_script(example, shop)))
    )
    rollout = asyncio.run(system.arun(system.modules(), example))
    assert rollout.error is None
    tools = [r.inputs["name"] for r in rollout.trace.records if r.kind == "tool"]
    assert tools[-2:] == ["calculator", "convert_currency"]
    score = shop.metric(example, rollout.output, rollout.trace)
    assert score.value == 1.0, score.feedback

    lazy = gg.integrations.langgraph.LangGraphSystem(
        shop.build_graph(ScriptedChatModel(script=lambda messages: "About 12 euros."))
    )
    rollout = asyncio.run(lazy.arun(lazy.modules(), example))
    score = shop.metric(example, rollout.output, rollout.trace)
    assert score.value == 0.0
    assert "never looked up the unit prices" in score.feedback
    assert example["answer"] in score.feedback


# --- math word problems (GSM-Symbolic) --------------------------------------------------------


def test_math_answer_extraction_and_metric():
    math = load("math_word_problems")
    assert math.extract_number("3 + 4 = 7 apples.\nAnswer: 1,250") == "1250"
    assert math.extract_number("so she has 12.0 left") == "12"
    assert math.extract_number("no idea") is None
    example = {"answer": "42"}
    assert math.metric(example, {"answer": "42"}).value == 1.0
    wrong = math.metric(example, {"answer": "41", "working": "... 41"})
    assert wrong.value == 0.0 and "correct answer is 42" in wrong.feedback
    for row in math.load_data():
        assert math.extract_number(f"Answer: {row['answer']}") is not None


def test_math_example_optimizes_with_scripted_models(tmp_path):
    """The solver only writes 'Answer: N' once its prompt asks for it; the scripted reflection
    asks for it only when the feedback it reads says so."""
    math = load("math_word_problems")
    data = math.load_data()
    answers = {row["question"]: row["answer"] for row in data}

    def solver(messages):
        answer = answers[messages[-1].text]
        if "Answer:" in messages[0].text:
            return f"Step by step... 7 then 9.\nAnswer: {answer}"
        return f"Step by step... {answer} is what we get, checking 7 more times."

    def rewrite(current, prompt):
        if "Answer: <number>" in prompt:
            return current + " End with a line 'Answer: <number>'."
        return current + " Be careful."

    graph = math.build_graph(ScriptedChatModel(script=solver))
    result = gg.optimize(
        graph,
        data[:6],
        data[6:10],
        metric=math.metric,
        reflection_lm=ScriptedReflectionLM(rewrite),
        max_rollouts=30,
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert result.seed_score == 0.0 and result.best_score == 1.0
    assert re.search(r"Answer: <number>", result.best_candidate["solve"])
