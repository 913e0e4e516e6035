"""Prompt substitution at the chat-model boundary: wherever a prompt lives, rewrite it where it arrives.

A run that carries a ``Substitution`` in its config (``configurable[CONFIG_KEY]``: a rollout, or a
graph from ``with_prompts``) has every LangChain model call inside it -- in a node, a tool, an
edge function, a subgraph, a model made at run time -- rewritten on the way in: where a module's
seed template occurs in a message, it is re-rendered with the candidate's template and the values
its variables had (``patterns``). LangChain hands the running node's config to everything called
inside it through a context variable, so concurrent runs (threads and tasks) never see each
other's prompts, and outside such a run nothing changes.

The same patterns, made from the texts the run actually uses, attribute each model call to the
modules whose prompt it carried (``modules_in``): that is what a module's reflection reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue

from gepa_graph import templates
from gepa_graph.errors import InvalidInput
from gepa_graph.integrations.langgraph import _internals
from gepa_graph.integrations.langgraph.patterns import PromptPattern

CONFIG_KEY = "__gepa_graph_prompts"
"""The ``configurable`` key of the run's Substitution (``__``: LangGraph keeps it out of metadata)."""


@dataclass(frozen=True)
class PromptSpec:
    """A module's seed text and the template format its variables are written in."""

    text: str
    template_format: str = "f-string"

    def pattern(self, text: str | None = None) -> PromptPattern:
        """The matching pattern of ``text`` (default: the seed) in this prompt's template format."""
        return PromptPattern.of(self.text if text is None else text, self.template_format)

    def check(self, name: str, text: str) -> None:
        """Raise InvalidInput (a ValueError) when ``text`` is not a template of this prompt's
        format."""
        try:
            templates.check(text, self.template_format)
        except ValueError as exc:
            raise InvalidInput(
                f"prompt {name!r} is not a valid {self.template_format} template: {exc}"
            ) from None


class Substitution:
    """The prompts one run uses (module -> text), and the seeds they stand in for."""

    def __init__(self, seeds: Mapping[str, PromptSpec], prompts: Mapping[str, str]) -> None:
        self.seeds = dict(seeds)
        self.prompts = {name: prompts.get(name, spec.text) for name, spec in self.seeds.items()}
        for name, spec in self.seeds.items():
            spec.check(name, self.prompts[name])
        rewrites = [
            (spec.pattern(), spec.pattern(self.prompts[name]))
            for name, spec in self.seeds.items()
            if self.prompts[name] != spec.text and spec.pattern().matchable
        ]
        # Longer seeds first: a seed that contains another is rewritten as a whole.
        self._rewrites = sorted(rewrites, key=lambda pair: -len(pair[0].text))
        self._patterns = {
            name: spec.pattern(self.prompts[name]) for name, spec in self.seeds.items()
        }

    # -- rewriting

    def rewrite_text(self, text: str) -> str:
        """``text`` with every seed template that occurs in it re-rendered as the
        candidate's, longer seeds first."""
        for seed, candidate in self._rewrites:
            replaced = seed.replace(text, candidate)
            if replaced is not None:
                text = replaced
        return text

    def rewrite(self, value: PromptValue) -> PromptValue:
        """A prompt value on its way to a model, rewritten (``rewrite_text``) message by message."""
        if not self._rewrites:
            return value
        if isinstance(value, StringPromptValue):
            text = self.rewrite_text(value.text)
            return value if text == value.text else StringPromptValue(text=text)
        if isinstance(value, ChatPromptValue):
            messages = [self._rewrite_message(message) for message in value.messages]
            if all(new is old for new, old in zip(messages, value.messages, strict=True)):
                return value
            return ChatPromptValue(messages=messages)
        return value

    def _rewrite_message(self, message: BaseMessage) -> BaseMessage:
        content = message.content
        if isinstance(content, str):
            new: Any = self.rewrite_text(content)
            changed = new != content
        else:
            new = [self._rewrite_block(block) for block in content]
            changed = any(a is not b for a, b in zip(new, content, strict=True))
        return message.model_copy(update={"content": new}) if changed else message

    def _rewrite_block(self, block: Any) -> Any:
        if isinstance(block, str):
            text = self.rewrite_text(block)
            return block if text == block else text
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            text = self.rewrite_text(block["text"])
            return block if text == block["text"] else {**block, "text": text}
        return block

    # -- attribution

    def modules_in(self, texts: Iterable[str]) -> list[str]:
        """The modules whose text (as this run uses it) occurs in ``texts``."""
        texts = list(texts)
        return [
            name
            for name, pattern in self._patterns.items()
            if any(pattern.occurs_in(text) for text in texts)
        ]


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


def active(configurable: Mapping[str, Any] | None = None) -> Substitution | None:
    """The Substitution of the run now executing (or of ``configurable``), if any."""
    if configurable is None:
        configurable = _internals.current_configurable()
    value = configurable.get(CONFIG_KEY)
    return value if isinstance(value, Substitution) else None


def install() -> None:
    """Put the rewrite on every model call path (``intercept``; idempotent, a no-op outside
    runs that carry a Substitution)."""
    from gepa_graph.integrations.langgraph import intercept  # it builds on this module

    intercept.install()
