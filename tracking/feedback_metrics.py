"""Ready metrics for examples made from production traces (``traces.dataset_from_traces``).

``expectation_metric`` scores a rollout against the expectation someone attached to the trace
(an expected answer); ``judge_metric`` asks a judge model, with the trace's feedback rationales
(and an optional rubric of your own) as what to judge by. Both return ``gg.Score`` with feedback
text the reflection LM reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from gepa_graph.errors import WrongType
from gepa_graph.metric import Score
from gepa_graph.tracking.traces import TRACE_FIELD

_ANSWER_FIELDS = ("answer", "output", "response", "result")


def answer_of(prediction: Any, output: str | Callable[[Any], Any] | None = None) -> Any:
    """What the agent answered: ``output`` (a state field name, or a function of the final
    state) when given; else the last message's text of a ``messages`` state, else its
    ``answer``/``output``/``response``/``result`` field, else the prediction itself."""
    if callable(output):
        return output(prediction)
    if isinstance(prediction, Mapping):
        if output is not None:
            return prediction[output]
        messages = prediction.get("messages")
        if isinstance(messages, list) and messages:
            last = messages[-1]
            return getattr(last, "text", None) or getattr(last, "content", last)
        for name in _ANSWER_FIELDS:
            if name in prediction:
                return prediction[name]
    return prediction


def trace_of(example: Mapping[str, Any]) -> Mapping[str, Any]:
    """The production trace an example was made from (``TRACE_FIELD``); ValueError if none."""
    trace = example.get(TRACE_FIELD)
    if not isinstance(trace, Mapping):
        raise ValueError(f"example {example.get('id')!r} was not made from a trace")
    return trace


def _normalized(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.split()).casefold()
    return value


def _rationales(trace: Mapping[str, Any]) -> str:
    lines = []
    for item in trace.get("feedback", []):
        text = f"- {item['name']} = {json.dumps(item['value'])}"
        if item.get("rationale"):
            text += f": {item['rationale']}"
        lines.append(text)
    return "\n".join(lines)


def expectation_metric(
    name: str | None = None,
    *,
    output: str | Callable[[Any], Any] | None = None,
    compare: Callable[[Any, Any], float] | None = None,
) -> Callable[[Mapping[str, Any], Any], Score]:
    """A metric scoring the answer (``answer_of(prediction, output)``) against the trace's
    expectation ``name`` (default: its only expectation): 1.0 when they match (strings
    compared ignoring case and runs of whitespace), else 0.0, or ``compare(answer, expected)``
    when given. The feedback names what was expected and quotes the production feedback."""

    def metric(example: Mapping[str, Any], prediction: Any) -> Score:
        trace = trace_of(example)
        expectations = trace.get("expectations") or {}
        key = name
        if key is None:
            if len(expectations) != 1:
                raise ValueError(
                    f"trace {trace.get('trace_id')} has expectations {sorted(expectations)}; "
                    "name the one to score against (expectation_metric(name=...))"
                )
            key = next(iter(expectations))
        if key not in expectations:
            raise ValueError(f"trace {trace.get('trace_id')} has no expectation {key!r}")
        expected = expectations[key]
        answer = answer_of(prediction, output)
        if compare is not None:
            value = float(compare(answer, expected))
        else:
            value = float(_normalized(answer) == _normalized(expected))
        if value >= 1.0:
            return Score(value=value, feedback=f"Correct: matches the expected {key}.")
        feedback = f"Expected {key}: {json.dumps(expected)}; the agent answered {json.dumps(answer, default=str)}."
        notes = _rationales(trace)
        if notes:
            feedback += f"\nFeedback on the production answer:\n{notes}"
        return Score(value=value, feedback=feedback)

    metric.__name__ = f"expectation_metric({name or ''})"
    return metric


JUDGE_PROMPT = """You grade an AI agent's answer.

The agent was asked:
{question}

The agent answered:
{answer}
{expected}
Judge it by these criteria:
{rubric}

Reply with two lines:
SCORE: a number from 0 (fails the criteria) to 1 (fully meets them)
FEEDBACK: one or two sentences on what to change, addressed to whoever writes the agent's prompt
"""

_SCORE = re.compile(r"SCORE:\s*([-+]?\d*\.?\d+)", re.I)
_FEEDBACK = re.compile(r"FEEDBACK:\s*(.+)", re.I | re.S)


def _ask(model: str | Callable[[str], str], prompt: str) -> str:
    if callable(model):
        return str(model(prompt))
    import litellm

    reply = litellm.completion(
        model=model, messages=[{"role": "user", "content": prompt}], temperature=0
    )
    return reply.choices[0].message.content or ""


def judge_metric(
    model: str | Callable[[str], str],
    *,
    rubric: str | None = None,
    output: str | Callable[[Any], Any] | None = None,
) -> Callable[[Mapping[str, Any], Any], Score]:
    """A metric asking a judge ``model`` (a LiteLLM model string, or ``callable(prompt) ->
    str``) to grade the answer against ``rubric`` plus the trace's feedback rationales (and
    its expectations, when it has any). The judge's ``SCORE:`` line is the value (clamped to
    0..1), its ``FEEDBACK:`` the feedback; a reply without a score is a metric failure."""
    if isinstance(model, str):
        from gepa_graph.lm import check_model_string

        check_model_string(model)
    elif not callable(model):
        raise WrongType(f"judge model must be a LiteLLM model string or a callable, not {model!r}")

    def metric(example: Mapping[str, Any], prediction: Any) -> Score:
        trace = trace_of(example)
        criteria = "\n".join(part for part in (rubric or "", _rationales(trace)) if part)
        if not criteria:
            raise ValueError(
                f"trace {trace.get('trace_id')} has no feedback and no rubric was given"
            )
        question = {k: v for k, v in example.items() if k not in ("id", TRACE_FIELD)}
        expectations = trace.get("expectations") or {}
        expected = (
            f"\nExpected (ground truth): {json.dumps(expectations)}\n" if expectations else ""
        )
        prompt = JUDGE_PROMPT.format(
            question=json.dumps(question, default=str),
            answer=json.dumps(answer_of(prediction, output), default=str),
            expected=expected,
            rubric=criteria,
        )
        reply = _ask(model, prompt)
        found = _SCORE.search(reply)
        if found is None:
            raise ValueError(f"the judge's reply has no 'SCORE:' line: {reply[:200]!r}")
        value = min(max(float(found.group(1)), 0.0), 1.0)
        note = _FEEDBACK.search(reply)
        return Score(value=value, feedback=note.group(1).strip() if note else reply.strip())

    metric.__name__ = "judge_metric"
    return metric
