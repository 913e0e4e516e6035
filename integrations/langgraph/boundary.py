"""Prompt substitution at the model boundary: wherever a prompt lives, rewrite it where it arrives.

A run that carries a ``Substitution`` in its config (``configurable[CONFIG_KEY]``: a rollout, or a
graph from ``with_prompts``) has every model call inside it -- in a node, a tool, an edge
function, a subgraph, a model made at run time; through LangChain, LiteLLM or the OpenAI SDK
(``intercept``) -- rewritten on the way in: where a module's seed template occurs in a message,
it is re-rendered with the candidate's template and the values its variables had
(``patterns``), by identity (``Substitution``: a prompt contained in another's is not rewritten
inside it). LangChain hands the running node's config to everything called inside it through a
context variable, so concurrent runs (threads and tasks) never see each other's prompts, and
outside such a run nothing changes.

The same patterns, made from the texts the run actually uses, attribute each model call to the
modules whose prompt it carried (``modules_in``): that is what a module's reflection reads. After
a rollout, ``audit`` stops the run (``SubstitutionLeak``) if a recorded call still carried the
seed of a module the candidate changed: a path the rewrite did not reach is never scored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue

from gepa_graph import templates
from gepa_graph.errors import InvalidInput, SubstitutionLeak
from gepa_graph.integrations.langgraph._internals import run_context
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


RUN, SEED = "run", "seed"  # what a key of Substitution._keyed names: a module's text as this
# run uses it, or the seed text it replaces


class Substitution:
    """The prompts one run uses (module -> text), and the seeds they stand in for.

    Identity, not substring. In each message text, every module's template as this run uses it
    (and, for a module the run changes, its seed too) is matched, and only the outermost matches
    count: by start, the longer first at the same start, a match beginning inside one already
    taken is dropped; where a changed module's own text and its seed both match at the same
    start, its own text wins (the text already runs the candidate). So a prompt contained in
    another's (a replanner template opening with the planner's whole prompt, a sub-agent prompt
    equal to the tail of an orchestrator's) belongs to the other module there: it is never
    rewritten inside it, never attributed to it. Text inside a variable of a taken match (a
    value the code filled in) is read again by the same rule. ``rewrite`` re-renders the taken
    seed matches, ``modules_in`` names the modules of the taken matches, and ``leaks`` names the
    seeds still taken after a rewrite.
    """

    def __init__(self, seeds: Mapping[str, PromptSpec], prompts: Mapping[str, str]) -> None:
        self.seeds = dict(seeds)
        self.prompts = {name: prompts.get(name, spec.text) for name, spec in self.seeds.items()}
        for name, spec in self.seeds.items():
            spec.check(name, self.prompts[name])
        self._keyed: dict[tuple[str, str], PromptPattern] = {
            (RUN, name): spec.pattern(self.prompts[name]) for name, spec in self.seeds.items()
        }
        self._keyed.update(
            ((SEED, name), self.seeds[name].pattern())
            for name in self.changed
            if self.seeds[name].pattern().matchable
        )
        self._rewrites = any(kind == SEED for kind, _ in self._keyed)

    @property
    def changed(self) -> list[str]:
        """The modules whose text this run changes (and whose seed it rewrites)."""
        return [name for name in self.seeds if self.prompts[name] != self.seeds[name].text]

    def _outermost(self, text: str) -> list[tuple[tuple[str, str], re.Match[str]]]:
        found = [
            (match.start(), match.start() - match.end(), order, key, match)
            for order, (key, pattern) in enumerate(self._keyed.items())
            for match in pattern.matches(text)
        ]
        own = {(key[1], start) for start, _, _, key, _ in found if key[0] == RUN}
        found = [f for f in found if f[3][0] == RUN or (f[3][1], f[0]) not in own]
        found.sort(key=lambda item: item[:3])
        taken = []
        end = 0
        for start, _, _, key, match in found:
            if start >= end:
                taken.append((key, match))
                end = match.end()
        return taken

    def _carried(self, text: str) -> Iterator[tuple[str, str]]:
        """(kind, module) of every taken match in ``text``, the values of taken matches read
        again."""
        for key, match in self._outermost(text):
            yield key
            for value in self._keyed[key].captured(match).values():
                yield from self._carried(value)

    # -- rewriting

    def rewrite_text(self, text: str) -> str:
        """``text`` with each taken seed match re-rendered as the candidate's template (with the
        values its variables had, themselves rewritten by the same rule)."""
        return self._rewrite(text) if self._rewrites else text

    def _rewrite(self, text: str) -> str:
        pieces: list[str] = []
        position = 0
        for (kind, name), match in self._outermost(text):
            pattern = self._keyed[(kind, name)]
            captured = pattern.captured(match)
            values = {key: self._rewrite(value) for key, value in captured.items()}
            rendered = self._keyed[(RUN, name)].render(values) if kind == SEED else None
            if rendered is None and values != captured:  # a value carried a prompt
                rendered = _with_values(match, pattern, values)
            pieces += [
                text[position : match.start()],
                match.group(0) if rendered is None else rendered,
            ]
            position = match.end()
        pieces.append(text[position:])
        return "".join(pieces)

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
        """The modules whose prompt (this run's text, or a seed it changed) ``texts`` carry,
        by the outermost rule."""
        found = {name for text in texts for _, name in self._carried(text)}
        return [name for name in self.seeds if name in found]

    # -- the audit

    def leaks(self, calls: Iterable[Any]) -> list[tuple[Any, str]]:
        """(call, module) for each observed call (``tracing.ObservedCall``) whose system or
        human messages still carry, by the outermost rule, the seed of a module this run
        changed; a candidate that contains its own seed is no leak."""
        found = []
        for call in calls:
            names = {
                name
                for role, text in call.messages
                if role in ("system", "human")
                for kind, name in self._carried(text)
                if kind == SEED
            }
            found += [(call, name) for name in self.changed if name in names]
        return found

    def audit(self, calls: Iterable[Any]) -> None:
        """Raise SubstitutionLeak (one line) for the first of ``leaks(calls)``."""
        for call, module in self.leaks(calls)[:1]:
            where = f" in node {call.node!r}" if call.node else ""
            raise SubstitutionLeak(
                f"a model call ({call.entry}{where}) still sent the seed text of module "
                f"{module!r}, which the candidate changed: this call path was not rewritten, "
                "so the candidate cannot be scored on what it ran"
            )


def _with_values(match: re.Match[str], pattern: PromptPattern, values: Mapping[str, str]) -> str:
    """The matched text with its variables' values replaced (spacing kept as it was)."""
    text, base = match.group(0), match.start()
    pieces, position = [], 0
    for index, name in enumerate(dict.fromkeys(pattern.variables)):
        start, end = match.span(f"v{index}")
        pieces += [text[position : start - base], values[name]]
        position = end - base
    pieces.append(text[position:])
    return "".join(pieces)


def active(configurable: Mapping[str, Any] | None = None) -> Substitution | None:
    """The Substitution of the run now executing (or of ``configurable``), if any."""
    if configurable is None:
        configurable = run_context.current_configurable()
    value = configurable.get(CONFIG_KEY)
    return value if isinstance(value, Substitution) else None
