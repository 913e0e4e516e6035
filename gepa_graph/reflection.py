"""The reflection step's text: the reflective dataset, the prompt shown to the reflection LM,
and strict parsing of its reply into a new prompt (or a reason to reject it)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from gepa_graph.evaluation import EvalResult
from gepa_graph.example import Example
from gepa_graph.jsonable import to_jsonable
from gepa_graph.redact import clip
from gepa_graph.templates import variables as variables_in

_OPEN_FENCE = re.compile(r"^(`{3,})[^`]*$")


def template_variables(text: str) -> set[str]:
    """The f-string variables of a prompt (``gepa_graph.templates``, as discovery sees them)."""
    return set(variables_in(text))


class InvalidProposal(Exception):
    """The reflection reply cannot become a prompt. ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str, text: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.text = text


def build_reflective_dataset(
    module: str, node: str | None, examples: Sequence[Example], results: Sequence[EvalResult]
) -> list[dict[str, Any]]:
    """What the reflection LM reads about one module: per example, the inputs, this module's
    node's part of the trace, the final output, the score and the metric's feedback."""
    dataset = []
    for example, result in zip(examples, results, strict=True):
        records = [
            {
                k: v
                for k, v in record.model_dump(mode="json", exclude={"modules"}).items()
                if v not in (None, {}, [])
            }
            for record in result.trace.for_module(module, node)
        ]
        entry: dict[str, Any] = {"inputs": to_jsonable(example.to_dict()), "trace": records}
        entry["final_output"] = result.output
        if result.error:
            entry["error"] = result.error
        entry["score"] = result.score
        entry["feedback"] = result.feedback_for(module)
        dataset.append(entry)
    return dataset


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f" ...[{len(text) - limit} more characters cut]"


def _text(value: Any) -> str:
    """Strings as they are; a flat mapping as `key: value` lines; anything else compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and all(
        isinstance(v, (str, int, float, bool)) or v is None for v in value.values()
    ):
        return "\n".join(f"{k}: {v}" for k, v in value.items())
    return json.dumps(value, ensure_ascii=False)


def _message_line(message: Any, current: str, limit: int) -> str:
    if not isinstance(message, dict):
        return _clip(_text(message), limit)
    role, content = message.get("role", "?"), message.get("content", "")
    if role == "system" and isinstance(content, str) and content.strip() == current.strip():
        return "[system] (the instruction above)"
    line = f"[{role}] {_clip(_text(content), limit)}"
    for call in message.get("tool_calls") or ():
        args = json.dumps(call.get("args"), ensure_ascii=False)
        line += f"\n  calls tool {call.get('name')}({args})"
    return line


def _record_lines(record: dict[str, Any], current: str, limit: int) -> list[str]:
    """One trace record as short readable lines: what a model needs, not the bookkeeping."""
    kind, inputs, outputs = record.get("kind"), record.get("inputs"), record.get("outputs")
    error = f"\n  error: {record['error']}" if record.get("error") else ""
    if kind == "llm":
        messages = inputs.get("messages") if isinstance(inputs, dict) else None
        if messages and isinstance(messages[0], list):  # batched calls: show the first
            messages = messages[0]
        received = [_message_line(m, current, limit) for m in messages or [inputs]]
        reply = outputs.get("message", outputs) if isinstance(outputs, dict) else outputs
        said = _message_line(reply, current, limit) if reply is not None else "(nothing)"
        lines = ["- LLM call, received:"] + [f"    {line}" for line in received]
        return lines + [f"  replied: {said}{error}"]
    if kind == "tool" and isinstance(inputs, dict) and "name" in inputs:
        args = json.dumps(inputs.get("args"), ensure_ascii=False)
        result = _clip(_text(outputs), limit) if outputs is not None else "(no output)"
        return [f"- tool {inputs['name']}({_clip(args, limit)}) returned: {result}{error}"]
    if kind == "node":
        return [
            f"- step {record.get('node')}: got {_clip(_text(inputs), limit)}",
            f"  returned {_clip(_text(outputs), limit)}{error}",
        ]
    if kind == "error":
        return [f"- error: {_clip(str(record.get('error')), limit)}"]
    return [f"- {kind}: {_clip(_text({'inputs': inputs, 'outputs': outputs}), limit)}{error}"]


def render_example(entry: dict[str, Any], current: str, limit: int) -> str:
    """One reflective-dataset entry as the reflection LM reads it."""
    parts = [f"Inputs:\n{_clip(_text(entry['inputs']), limit)}"]
    if entry.get("trace"):
        lines = [
            line for record in entry["trace"] for line in _record_lines(record, current, limit)
        ]
        parts.append("What this module did:\n" + "\n".join(lines))
    if entry.get("error"):
        parts.append(f"The system failed: {entry['error']}")
    parts.append(f"Final output:\n{_clip(_text(entry['final_output']), limit)}")
    parts.append(f"Score: {entry['score']:g}")
    parts.append(f"Feedback: {entry['feedback'] or '(none)'}")
    return "\n".join(parts)


def render_reflection_prompt(
    module: str,
    current: str,
    dataset: Sequence[dict[str, Any]],
    max_chars_per_field: int,
    rejected: Sequence[tuple[str, str]] = (),
    instructions: str = "",
    max_prompt_chars: int | None = None,
) -> str:
    """The prompt asking for a new ``current``; ``rejected`` lists (text, why) of earlier
    rewrites of this instruction that did not make it, so the LM tries something else;
    ``instructions`` are the user's standing instructions (a section of their own) and
    ``max_prompt_chars`` the length the new instruction must stay within (gepa_graph/guidance.py)."""
    current_fence = "````" if "```" in current else "```"
    parts = [
        "You are improving one instruction inside an AI system. The instruction belongs to the "
        f"module `{module}`. Here it is, exactly as the module uses it now:",
        f"{current_fence}\n{current}\n{current_fence}",
        "Below are examples of the module at work: the inputs, what this module did (its LLM "
        "calls, tool calls and tool outputs), the system's final output, its score, and feedback "
        "on what went wrong or right.",
    ]
    for number, entry in enumerate(dataset, start=1):
        parts.append(f"## Example {number}\n{render_example(entry, current, max_chars_per_field)}")
    if rejected:
        tried = [
            f"### Attempt {n} ({why})\n{current_fence}\n{text}\n{current_fence}"
            for n, (text, why) in enumerate(rejected, start=1)
        ]
        parts.append(
            "## Rewrites already tried and rejected\nThese rewrites of the instruction "
            "were tried and did not do better. Do not repeat them; try a different "
            "improvement.\n\n" + "\n\n".join(tried)
        )
    if instructions:
        parts.append(_standing(instructions))
    rules = [
        "Read the examples and the feedback carefully. Work out what the instruction misses or "
        "gets wrong, and what general rules, domain facts and strategies would make the module "
        "succeed on these and similar inputs.",
        "Then write the complete new instruction. Keep what already works. Where the feedback "
        "asks for an exact output form (a format, a label set, a length), state it explicitly.",
    ]
    if instructions:
        rules.append("Follow the standing instructions from the user above.")
    if max_prompt_chars is not None:
        rules.append(
            f"The new instruction must have at most {max_prompt_chars} characters (spaces and "
            f"line breaks included; the current one has {len(current.strip())})."
        )
    parts.append(_task(rules, current))
    return "\n\n".join(parts)


def _standing(instructions: str) -> str:
    return (
        "## Standing instructions from the user\nThe user who owns this system asks every "
        f"rewrite to follow these instructions:\n\n{instructions}"
    )


def _task(rules: list[str], current: str) -> str:
    """The closing task section: ``rules``, then the template and reply-format rules."""
    variables = sorted(template_variables(current))
    if variables:
        listed = ", ".join("{" + name + "}" for name in variables)
        rules.append(
            f"The instruction is a template: keep every variable ({listed}) exactly as written, "
            "with single braces, and add no new variables. Write literal braces as {{ and }}."
        )
    rules.append(
        "Put the new instruction, and nothing else, inside one ``` fenced block at the end of "
        "your reply (if the instruction itself contains ``` lines, fence it with ```` instead)."
    )
    return "## Your task\n" + "\n".join(f"- {rule}" for rule in rules)


def render_compression_prompt(module: str, text: str, max_chars: int, instructions: str) -> str:
    """The one call that asks for a proposal over ``max_chars`` characters within them,
    keeping every rule it states (gepa_graph/guidance.py)."""
    fence = "````" if "```" in text else "```"
    parts = [
        "You are shortening one instruction inside an AI system. The instruction belongs to "
        f"the module `{module}`. This new version of it has {len(text)} characters, more than "
        f"the limit of {max_chars}:",
        f"{fence}\n{text}\n{fence}",
    ]
    if instructions:
        parts.append(_standing(instructions))
    rules = [
        f"Rewrite it in at most {max_chars} characters (spaces and line breaks included).",
        "Keep every rule, constraint, output format and domain fact it states; cut repetition, "
        "filler, long examples and wording first. Change nothing it asks for.",
    ]
    if instructions:
        rules.append("Keep following the standing instructions from the user above.")
    parts.append(_task(rules, text))
    return "\n\n".join(parts)


def _fenced_blocks(reply: str) -> tuple[list[str], bool]:
    """CommonMark-style fenced blocks: a block opened by N backticks closes at a line of at
    least N backticks and nothing else, so ```` can wrap a prompt that contains ```.
    Returns the blocks and whether the last one was left open."""
    blocks: list[str] = []
    fence_len = 0
    current: list[str] = []
    for line in reply.splitlines():
        stripped = line.strip()
        if fence_len == 0:
            match = _OPEN_FENCE.match(stripped)
            if match:
                fence_len = len(match.group(1))
                current = []
        elif set(stripped) == {"`"} and len(stripped) >= fence_len:
            blocks.append("\n".join(current))
            fence_len = 0
        else:
            current.append(line)
    return blocks, fence_len > 0


def stored_reply(reply: str, limit: int) -> str:
    """The reply as a run keeps it (the journal, and what is parsed, live or replayed): itself
    when it has at most ``limit`` characters, else a short text that ``parse_proposal`` reads
    exactly as the whole reply. A long reasoning reply keeps its last fenced block whole (only
    the text around it is cut); a reply with no complete block keeps its head, or, with its
    last fence left open, stays open."""
    if len(reply) <= limit:
        return reply
    blocks, unclosed = _fenced_blocks(reply)
    cut = f"[a reply of {len(reply)} characters; the text around its last fenced block is cut]"
    if unclosed:
        return f"{cut}\n```\n(the rest of the reply: its last fence is never closed)"
    if not blocks:
        return clip(reply, limit)  # no fence at all: no cut can make one
    block = blocks[-1]
    inner = [len(line.strip()) for line in block.splitlines() if set(line.strip()) == {"`"}]
    fence = "`" * max(3, 1 + max(inner, default=0))  # longer than any fence line inside
    return f"{cut}\n{fence}\n{block}\n{fence}\n"


def parse_proposal(reply: str, finish_reason: str | None, current: str) -> str:
    """The new prompt in ``reply``'s last fenced block, or InvalidProposal.

    Rejected: a reply cut off by the token limit or with an unclosed fence (truncated), no
    fenced block, an empty block, the current prompt unchanged, or a template whose variables
    differ from the current prompt's (a dropped variable starves the node of its input; a new
    one fails at format time).
    """
    if finish_reason == "length":
        raise InvalidProposal("truncated", "the reply hit the token limit", reply)
    blocks, unclosed = _fenced_blocks(reply)
    if unclosed:
        raise InvalidProposal("truncated", "the reply's last ``` fence is never closed", reply)
    if not blocks:
        raise InvalidProposal("no_fenced_block", "the reply has no ``` fenced block", reply)
    text = blocks[-1].strip()
    if not text:
        raise InvalidProposal("empty", "the fenced block is empty", reply)
    if text == current.strip():
        raise InvalidProposal("unchanged", "the proposal is identical to the current prompt", text)
    wanted, got = template_variables(current), template_variables(text)
    if wanted - got:
        missing = ", ".join("{" + v + "}" for v in sorted(wanted - got))
        raise InvalidProposal("missing_variable", f"the proposal drops {missing}", text)
    if got - wanted:
        extra = ", ".join("{" + v + "}" for v in sorted(got - wanted))
        raise InvalidProposal("unknown_variable", f"the proposal adds {extra}", text)
    return text
