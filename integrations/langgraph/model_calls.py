"""One model call as it reached the model (``ObservedCall``), and messages as (role, text) pairs.

Every path to a model (LangChain callbacks, provider SDK calls) records its calls in this one
shape, which the probe (``observe``) and the substitution audit (``boundary``) read; it is kept
apart from the collector that records them (``tracing``) because those readers need only this.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

ROLES = ("system", "human", "ai", "tool")
_ROLE_OF = {
    "system": "system",
    "developer": "system",
    "human": "human",
    "user": "human",
    "ai": "ai",
    "assistant": "ai",
    "tool": "tool",
    "function": "tool",
}
CHAT_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}
"""Each of ``ROLES`` as a provider's chat API names it."""


def role_of(kind: str | None) -> str:
    """A LangChain message type or a provider role as one of ``ROLES`` (unknown: "human")."""
    return _ROLE_OF.get(kind or "", "human")


def content_text(content: Any) -> str:
    """A message content's text: the string, or its text parts joined by newlines."""
    return "\n".join(texts_of([content])) if content is not None else ""


def message_pairs(messages: Iterable[Any]) -> tuple[tuple[str, str], ...]:
    """LangChain messages as (role, text) pairs; a message's text blocks joined by newlines."""
    pairs = []
    for message in messages:
        kind = getattr(message, "type", None)
        if kind == "chat":  # ChatMessage: the role is free text
            kind = getattr(message, "role", None)
        pairs.append((role_of(kind), content_text(getattr(message, "content", None))))
    return tuple(pairs)


@dataclasses.dataclass(frozen=True)
class ObservedCall:
    """One model call as it reached the model, whatever path it took.

    ``node``: the node path the call ran in ("node", "parent/child"; None outside any node).
    ``entry``: the path to the model, one of ``ENTRY_POINTS``. ``messages``: what the model
    received, in order, as (role, text) pairs with role in ``ROLES`` (a plain-text LLM prompt is
    one "human" message; an OpenAI Responses ``instructions`` string is a "system" message).
    ``modules``: the modules the run's Substitution attributes the call to (empty without one).
    ``model``: the model's name where the call says it, else its class name. ``ordinal``: how many
    calls to the same ``entry`` and ``model`` the same node step (one task of one node) made
    before this one.

    ``site`` groups corresponding calls across examples: ``node|entry|model|ordinal``. A node
    that calls one model once per step has one site whichever step it is (an agent loop's model
    node); a node that calls two models, or one model twice, has one site per call in order.
    """

    node: str | None
    entry: str
    messages: tuple[tuple[str, str], ...]
    modules: tuple[str, ...] = ()
    model: str = ""
    ordinal: int = 0

    @property
    def site(self) -> str:
        """The key shared by this call and its counterparts in other examples' runs."""
        return f"{self.node or ''}|{self.entry}|{self.model}|{self.ordinal}"

    def texts(self, role: str | None = None) -> list[str]:
        """The messages' texts, in order (only those of ``role`` when given)."""
        return [text for r, text in self.messages if role is None or r == role]


ENTRY_POINTS = (
    "langchain.chat",
    "langchain.llm",
    "litellm.completion",
    "openai.chat.completions",
    "openai.responses",
)
"""The paths by which a call reaches a model, as ``ObservedCall.entry`` names them."""


def texts_of(messages: Iterable[Any]) -> Iterator[str]:
    """The text parts of LangChain messages (string content and text content blocks)."""
    for message in messages:
        content = getattr(message, "content", message)
        if isinstance(content, str):
            yield content
            continue
        for block in content if isinstance(content, list) else ():
            if isinstance(block, str):
                yield block
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                yield block["text"]
