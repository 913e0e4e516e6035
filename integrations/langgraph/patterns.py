"""Find a prompt template inside the text a model receives, and re-render it with another template.

A seed template like ``"You are a helpful agent.\\nSystem time: {system_time}"`` reaches the model
as rendered text. ``PromptPattern`` turns the template into a regular expression whose literal
parts must appear (runs of whitespace may differ) and whose ``{variables}`` capture what was put
in them, so that ``replace`` can render the candidate's template with the same values, and
``occurs_in`` can tell whether a message carried the prompt at all.

Formats: ``f-string`` (LangChain's default and ``str.format``), ``mustache`` (``{{var}}``) and
``plain`` (no variables: the text itself). A template whose variables cannot be captured (jinja2
logic, positional ``{}`` fields) is matched as plain text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gepa_graph.templates import parse

_WHITESPACE = re.compile(r"\s+")


def _literal_regex(literal: str) -> str:
    return r"\s+".join(re.escape(token) for token in _WHITESPACE.split(literal))


@dataclass(frozen=True)
class PromptPattern:
    """A template compiled for matching; build with ``PromptPattern.of(text, format)``."""

    text: str
    template_format: str
    literals: tuple[str, ...]
    variables: tuple[str, ...]
    regex: re.Pattern[str]
    anchor: str  # the longest literal token: a cheap substring test before the regex

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def of(text: str, template_format: str = "f-string") -> PromptPattern:
        literals, variables = parse(text.strip(), template_format)
        groups: dict[str, str] = {}
        parts: list[str] = []
        for index, literal in enumerate(literals):
            if literal:
                parts.append(_literal_regex(literal))
            if index < len(variables):
                name = variables[index]
                if name in groups:
                    parts.append(f"(?P={groups[name]})")
                else:
                    groups[name] = f"v{len(groups)}"
                    last = index == len(variables) - 1 and not literals[-1].strip()
                    parts.append(f"(?P<{groups[name]}>.*{'' if last else '?'})")
        tokens = [t for literal in literals for t in _WHITESPACE.split(literal) if t]
        anchor = max(tokens, key=len) if tokens else ""
        regex = re.compile("".join(parts), re.DOTALL)
        return PromptPattern(text, template_format, literals, variables, regex, anchor)

    @property
    def matchable(self) -> bool:
        """Whether the template has enough literal text to be recognised in a message."""
        return len(self.anchor) >= 3

    def matches(self, content: str) -> list[re.Match[str]]:
        """The non-overlapping occurrences of this template in ``content``, in order."""
        if not self.matchable or self.anchor not in content:
            return []
        return list(self.regex.finditer(content))

    def occurs_in(self, content: str) -> bool:
        """Whether this template, with any values for its variables, occurs in ``content``."""
        return bool(self.matches(content))

    def captured(self, match: re.Match[str]) -> dict[str, str]:
        """The values a match gave the template's variables, by name."""
        names = list(dict.fromkeys(self.variables))
        return {name: match.group(f"v{i}") for i, name in enumerate(names)}

    def replace(self, content: str, template: PromptPattern) -> str | None:
        """``content`` with every occurrence of this template re-rendered as ``template``.

        None when this template does not occur, or ``template`` needs a value that was not
        captured (a rewrite that invents a variable; the reflection guard rejects those).
        """
        matches = self.matches(content)
        if not matches:
            return None
        pieces: list[str] = []
        position = 0
        for match in matches:
            rendered = template.render(self.captured(match))
            if rendered is None:
                return None
            pieces += [content[position : match.start()], rendered]
            position = match.end()
        pieces.append(content[position:])
        return "".join(pieces)

    def render(self, values: Mapping[str, str]) -> str | None:
        """The template with ``values`` filled in; None when one is missing."""
        if any(name not in values for name in self.variables):
            return None
        out = [self.literals[0]]
        for name, literal in zip(self.variables, self.literals[1:], strict=True):
            out += [values[name], literal]
        return "".join(out)
