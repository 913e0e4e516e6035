"""What every corpus agent hands the tests, and the small helpers their scripted models share.

Each ``tests/agents/<pattern>.py`` builds one agent in the style of a public LangGraph template
or tutorial, with every model a ``ScriptedChatModel`` whose reply depends on the prompt it
receives: the seed prompts give wrong-ish answers, and an answer becomes right once a module's
prompt carries that module's phrase in ``fixes`` (the metric's feedback names it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from gepa_graph import Score
from gepa_graph.testing.chat_model import ScriptedChatModel


@dataclass
class AgentCase:
    graph: Any  # the compiled graph, built fresh by build()
    models: dict[str, ScriptedChatModel]  # every scripted model the agent uses, by a short name
    examples: list[dict]  # "id", the graph's input fields (or "question"), and "answer"
    metric: Callable[[dict, Any], Any]  # (example, final_state) -> float | Score
    expected: dict[str, str]  # module name -> a distinctive substring of its SEED prompt
    system_kwargs: dict = field(default_factory=dict)  # extra kwargs for LangGraphSystem
    invoke_kwargs: dict = field(default_factory=dict)  # what production passes to graph.invoke
    needs_probe: bool = False  # only a probe run can find a prompt
    # module name -> phrase that, added to that module's prompt, makes its check pass
    fixes: dict[str, str] = field(default_factory=dict)
    # module -> key of ``models`` whose calls (and only those) carry it: for a prompt whose whole
    # text also occurs inside another module's prompt, where a substring cannot tell them apart
    owners: dict[str, str] = field(default_factory=dict)
    # substrings of a library's own prompts that reach a model: listed as library, never modules
    library: list[str] = field(default_factory=list)
    # texts that reach a model or the code but are no prompt (a document template, a stop phrase)
    not_modules: list[str] = field(default_factory=list)
    # module -> the file its seed prompt is read from (``result.export`` writes a copy)
    files: dict[str, Any] = field(default_factory=dict)


CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Canada": "Ottawa",
    "Egypt": "Cairo",
}


def says(messages: Sequence[BaseMessage], phrase: str) -> bool:
    """Whether a prompt-bearing (system or human) message holds ``phrase``, case-insensitively."""
    return any(
        phrase.lower() in m.text.lower()
        for m in messages
        if not isinstance(m, (AIMessage, ToolMessage))
    )


def last_human(messages: Sequence[BaseMessage]) -> str:
    return next(m.text for m in reversed(messages) if m.type == "human")


def tool_result(messages: Sequence[BaseMessage]) -> str | None:
    """The text of the last message when it is a tool's output (the model's turn after a tool)."""
    return messages[-1].text if isinstance(messages[-1], ToolMessage) else None


def call(name: str, **args: Any) -> AIMessage:
    """A model reply asking for one tool call (ScriptedChatModel fills in the id)."""
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": None}])


def country_in(text: str) -> str | None:
    return next((c for c in CAPITALS if c.lower() in text.lower()), None)


def final_text(state: dict) -> str:
    return state["messages"][-1].text.strip()


def graded(checks: Sequence[tuple[str, bool, str]]) -> Score:
    """Score = share of passed checks; each check is (module, passed, advice when it fails).

    Each module's feedback is its own checks' advice, so its reflection is never told to fix
    another module's part."""
    advice: dict[str, list[str]] = {module: [] for module, _, _ in checks}
    for module, ok, text in checks:
        if not ok:
            advice[module].append(text)
    failed = [text for texts in advice.values() for text in texts]
    return Score(
        1.0 - len(failed) / len(checks),
        feedback=" ".join(failed) or "correct",
        module_feedback={m: " ".join(t) or "this part is right" for m, t in advice.items()},
    )
