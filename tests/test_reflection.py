import pytest

from gepa_graph.evaluation import EvalResult
from gepa_graph.example import Example
from gepa_graph.reflection import (
    InvalidProposal,
    build_reflective_dataset,
    parse_proposal,
    render_reflection_prompt,
    template_variables,
)
from gepa_graph.system import Trace
from gepa_graph.testing.reflection import current_prompt, module_name

CURRENT = 'Summarise {document} for {audience}. Output JSON like {{"k": 1}}.'


def test_template_variables_ignore_escaped_braces_and_json():
    assert template_variables(CURRENT) == {"document", "audience"}
    assert template_variables('Reply {"a": 1} literally') == set()


@pytest.mark.parametrize(
    ("reply", "finish", "reason"),
    [
        ("```\nnew {document} {audience}\n```", "length", "truncated"),
        ("Here:\n```\nnew {document} {audience}\nand it goes on", None, "truncated"),
        ("I would change nothing.", None, "no_fenced_block"),
        ("```\n   \n```", None, "empty"),
        (f"```\n{CURRENT}\n```", None, "unchanged"),
        ("```\nSummarise {document}.\n```", None, "missing_variable"),
        ("```\nSummarise {document} for {audience} in {language}.\n```", None, "unknown_variable"),
    ],
)
def test_unusable_replies_are_rejected_with_a_reason(reply, finish, reason):
    with pytest.raises(InvalidProposal) as info:
        parse_proposal(reply, finish, CURRENT)
    assert info.value.reason == reason


def test_last_fenced_block_wins_and_four_backticks_wrap_inner_fences():
    reply = (
        "The old one was:\n```\nold\n```\nNew:\n````\nSummarise {document} for {audience}.\n"
        'Example:\n```json\n{{"k": 1}}\n```\n````\n'
    )
    text = parse_proposal(reply, "stop", CURRENT)
    assert text.startswith("Summarise {document} for {audience}.")
    assert text.endswith("```")


def test_reflective_dataset_holds_only_the_modules_node_and_its_feedback():
    trace = Trace()
    trace.add("llm", node="planner", inputs="plan this", outputs="plan")
    trace.add("tool", node="executor", inputs={"q": 1}, outputs="tool says hi")
    trace.add("node", node=None, outputs="shared")
    result = EvalResult(
        example_key="x",
        score=0.0,
        feedback="overall bad",
        module_feedback={"planner": "plan skipped step 2"},
        output={"a": 1},
        trace=trace,
    )
    example = Example({"id": "x", "question": "q?"})
    [entry] = build_reflective_dataset("planner", "planner", [example], [result])
    nodes = [r.get("node") for r in entry["trace"]]
    assert nodes == ["planner", None]
    assert entry["feedback"] == "plan skipped step 2"
    [other] = build_reflective_dataset("executor", "executor", [example], [result])
    assert other["feedback"] == "overall bad"
    assert "tool says hi" in str(other["trace"]) and "plan this" not in str(other["trace"])


def test_reflection_prompt_shows_current_prompt_variables_and_cuts_long_fields():
    entry = {
        "inputs": {"question": "x" * 5000},
        "trace": [],
        "final_output": None,
        "score": 0.0,
        "feedback": "too long",
    }
    prompt = render_reflection_prompt("writer", CURRENT, [entry], max_chars_per_field=100)
    assert current_prompt(prompt) == CURRENT and module_name(prompt) == "writer"
    assert "{audience}, {document}" in prompt
    assert "more characters cut" in prompt and "x" * 200 not in prompt


def test_examples_render_compactly_without_repeating_the_instruction():
    trace = Trace()
    trace.add(
        "llm",
        node="agent",
        inputs={
            "messages": [
                {"role": "system", "content": CURRENT},
                {"role": "user", "content": "Summarise doc 7"},
            ]
        },
        outputs={
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"name": "fetch", "args": {"doc": 7}, "id": "c1"}],
            }
        },
        usage={"prompt_tokens": 99, "completion_tokens": 5},
    )
    trace.add(
        "tool", node="agent", inputs={"name": "fetch", "args": {"doc": 7}}, error="KeyError: 7"
    )
    result = EvalResult(
        example_key="x",
        score=0.0,
        feedback="doc 7 does not exist",
        output={"summary": ""},
        trace=trace,
    )
    [entry] = build_reflective_dataset("agent", "agent", [Example({"id": "x"})], [result])
    prompt = render_reflection_prompt("agent", CURRENT, [entry], max_chars_per_field=500)
    assert prompt.count(CURRENT) == 1  # shown once, at the top
    assert "[system] (the instruction above)" in prompt
    assert 'calls tool fetch({"doc": 7})' in prompt
    assert 'tool fetch({"doc": 7}) returned: (no output)\n  error: KeyError: 7' in prompt
    assert "prompt_tokens" not in prompt and "Feedback: doc 7 does not exist" in prompt


def test_discovery_and_the_reflection_guard_agree_on_variables():
    """One parser (issue 14 found two that disagreed on these)."""
    from gepa_graph.templates import variables

    for text, expected in [
        ("{{{x}}}", {"x"}),
        ("{x!r} and {y:>5}", {"x", "y"}),
        ("{{not}} {a}", {"a"}),
        ("unbalanced { brace {a}", set()),
    ]:
        assert template_variables(text) == set(variables(text)) == expected, text
