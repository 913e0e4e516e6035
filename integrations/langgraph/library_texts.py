"""Text written in library code, told apart from the user's: library prompts are listed, not
optimized.

A middleware or a tool that a library ships (langchain's, deepagents') sends its own
instructions to the model; the probe sees them reach a model like the user's own. ``LibraryTexts``
collects the string constants of the libraries a graph runs (the packages the walk met) and says
whether a text is mostly made of them. Separate from ``observe`` because it reads installed code,
not model calls.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterable

from gepa_graph.integrations.langgraph.observe import SENTINEL, words


class LibraryTexts:
    """String constants written in library code (langchain, langgraph, deepagents...): a prompt
    whose text comes from there is the library's, listed but optimized only on request."""

    def __init__(self, packages: Iterable[str]) -> None:
        self._pieces: set[str] = set()
        for name, module in list(sys.modules.items()):
            if name.split(".")[0] in packages and isinstance(module, types.ModuleType):
                for text in _module_strings(module):
                    self._pieces.update(_pieces(text))

    def owns(self, text: str) -> bool:
        """Whether library constants make up most of ``text``."""
        flat = " ".join(SENTINEL.sub(" ", text).split())
        if not flat or not self._pieces:
            return False
        covered = sum(len(piece) for piece in self._pieces if piece in flat)
        return covered * 2 >= len(flat) or any(flat in piece for piece in self._pieces)


def _pieces(text: str) -> list[str]:
    """The long literal runs of a library string (its ``{variables}`` split out)."""
    flat = " ".join(text.split())
    if words(flat) < 3:
        return []
    return [p.strip() for p in re.split(r"\{[^{}]*\}", flat) if len(p.strip()) >= 20]


def _module_strings(module: types.ModuleType) -> list[str]:
    found: list[str] = []
    for value in list(vars(module).values()):
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            found.extend(_code_strings(value.__code__))
        elif isinstance(value, type) and value.__module__ == module.__name__:
            for member in list(vars(value).values()):
                if isinstance(member, str):
                    found.append(member)
                elif isinstance(member, types.FunctionType):
                    found.extend(_code_strings(member.__code__))
    return found


def _code_strings(code: types.CodeType) -> list[str]:
    found: list[str] = []
    for constant in code.co_consts:
        if isinstance(constant, str):
            found.append(constant)
        elif isinstance(constant, types.CodeType):
            found.extend(_code_strings(constant))
    return found
