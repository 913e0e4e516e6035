"""The places that hold prompt text in a graph's code (*leaves*), each able to say where it is
and to take a new text in place (``Result.apply``), and how a named string is judged a prompt.

A leaf is a ``PromptTemplate`` (alone or inside a ``ChatPromptTemplate``) or one of its partial
variables, a literal ``SystemMessage``, a string in a closure cell, a module global or a module
attribute (``prompts.MAIN_PROMPT``), an attribute of your own object, a field default of a
configuration class your code reads, a string literal inside a function, a prompt file the code
names, or a ``gg.prompt`` call. The walk (``walk``) finds them; naming them is ``discover``'s.

Leaves are *strong* when the code says they are prompts (template and message objects, names
matching ``PROMPT_NAME``, ``gg.prompt``) and *weak* otherwise (prose held under another name, a
string literal in a function, a file): a weak leaf becomes a module only when a probe run shows
it reaching a model.
"""

from __future__ import annotations

import pathlib
import re
import types
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate

from gepa_graph.integrations.langgraph._internals import schemas
from gepa_graph.templates import variables as template_vars

PROMPT_NAME = re.compile(r"prompt|instruction|template|system|persona|guideline|rubric", re.I)
"""A string variable is a (strong) prompt when its name matches this (case-insensitive)."""


def named_prompt(name: str, text: str) -> bool | None:
    """Whether a string held under ``name`` is a prompt: True when the name says so (strong),
    False when it is prose under another name (a candidate), None when it is neither."""
    if not text.strip():
        return None
    if PROMPT_NAME.search(name):
        return True
    return False if looks_like_prose(text) else None


def looks_like_prose(text: str) -> bool:
    """Whether a string under a name that does not say "prompt" could still be one."""
    return len(text.strip()) >= 24 and len(text.split()) >= 4


class CannotWriteInPlace(Exception):
    """``apply`` has no place to write this prompt; ``str(exc)`` says how to load it instead."""


# ----------------------------------------------------------------------------- leaves


@dataclass(eq=False)
class Leaf:
    """A place holding prompt text. ``key`` identifies the place, not the text."""

    kind: str
    label: str
    where: str
    text: str
    key: Hashable
    template_format: str = "f-string"
    strong: bool = True

    @property
    def variables(self) -> tuple[str, ...]:
        """The template variables of the text (none for plain text)."""
        return template_vars(self.text, self.template_format)

    def write(self, text: str) -> None:
        """Change the text in place (``Result.apply``)."""
        raise CannotWriteInPlace(
            f"{self.where} cannot be changed in place; run the graph returned by "
            "gepa_graph.integrations.langgraph.with_prompts(graph, prompts) (or "
            "tracking.registry.with_registry_prompts) instead"
        )


@dataclass(eq=False)
class TemplateLeaf(Leaf):
    """A prompt template's text (alone, or a message of a ChatPromptTemplate ``chat``)."""

    template: PromptTemplate = field(repr=False, kw_only=True)
    chat: ChatPromptTemplate | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls,
        template: PromptTemplate,
        label: str,
        where: str,
        chat: ChatPromptTemplate | None = None,
    ) -> TemplateLeaf:
        """The leaf for a template object: its text, format and identity come from it."""
        return cls(
            kind="template",
            label=label,
            where=where,
            text=template.template,
            key=("object", id(template)),
            template_format=template.template_format,
            template=template,
            chat=chat,
        )

    def write(self, text: str) -> None:
        # from_template validates the text and finds its variables (raises on a broken one).
        parsed = PromptTemplate.from_template(
            text,
            template_format=self.template.template_format,
            partial_variables=dict(self.template.partial_variables),
        )
        self.template.template = text
        self.template.input_variables = parsed.input_variables
        if self.chat is not None:
            self.chat.input_variables = chat_input_variables(self.chat, self.chat.messages)


@dataclass(eq=False)
class MessageLeaf(Leaf):
    """A SystemMessage's content, written in place by ``apply``."""

    message: SystemMessage = field(repr=False, kw_only=True)

    def write(self, text: str) -> None:
        self.message.content = text


@dataclass(eq=False)
class CellLeaf(Leaf):
    """A closure variable holding prompt text, written in place by ``apply``."""

    cell: types.CellType = field(repr=False, kw_only=True)

    def write(self, text: str) -> None:
        self.cell.cell_contents = text


@dataclass(eq=False)
class AttributeLeaf(Leaf):
    """A module global, a module attribute or an attribute of a user object."""

    owner: Any = field(default=None, repr=False)
    name: str = ""

    def write(self, text: str) -> None:
        setattr(self.owner, self.name, text)


@dataclass(eq=False)
class FieldLeaf(Leaf):
    """The default of a field of a dataclass or pydantic configuration/context class."""

    owner: type = field(repr=False, kw_only=True)
    name: str = ""

    def write(self, text: str) -> None:
        schemas.set_field_default(self.owner, self.name, text)


@dataclass(eq=False)
class PartialLeaf(Leaf):
    """A partial variable of a prompt template (``template.partial(name=text)``)."""

    owner: Any = field(default=None, repr=False)
    name: str = ""

    def write(self, text: str) -> None:
        self.owner.partial_variables = {**self.owner.partial_variables, self.name: text}


@dataclass(eq=False)
class FileLeaf(Leaf):
    """A prompt kept in a file the code reads (a Markdown, text or Jinja2 template): the run
    carries a new text in its config, ``Result.export`` writes it to a copy of the file."""

    path: pathlib.Path = field(repr=False, kw_only=True)

    @classmethod
    def of(cls, path: pathlib.Path) -> FileLeaf:
        """The leaf for a prompt file: Jinja2 and ``{{var}}`` files are mustache templates."""
        text = path.read_text(encoding="utf-8")
        jinja = path.suffix in (".j2", ".jinja", ".jinja2") or "{{" in text
        return cls(
            kind="file",
            label=path.stem.replace(".", "_"),
            where=f"file {path.name}",
            text=text,
            key=("file", str(path)),
            template_format="mustache" if jinja else "f-string",
            strong=bool(PROMPT_NAME.search(path.stem)),
            path=path,
        )

    def write(self, text: str) -> None:
        raise CannotWriteInPlace(
            f"{self.path} is a file your code reads; result.export(directory) writes the new "
            "text to a copy of it (the graph carries it in graph.config meanwhile)"
        )


@dataclass(eq=False)
class DeclaredLeaf(Leaf):
    """A ``gg.prompt(name, default)`` call: its text travels in the run's config."""


def chat_input_variables(chat: ChatPromptTemplate, messages: list[Any]) -> list[str]:
    """Input variables of a chat template with ``messages``, computed as ChatPromptTemplate does."""
    names: set[str] = set()
    for message in messages:
        if not isinstance(message, BaseMessage):
            names.update(getattr(message, "input_variables", ()))
    return sorted(names - set(chat.partial_variables))


def string_leaf(owner: Any, name: str, text: str, where: str) -> Leaf | None:
    """The leaf for a named string (global, attribute), or None when it cannot be a prompt."""
    strong = named_prompt(name, text)
    if strong is None:
        return None
    return AttributeLeaf(
        kind="string",
        label=name.lower(),
        where=where,
        text=text,
        key=("attribute", id(owner), name),
        strong=strong,
        owner=owner,
        name=name,
    )


def field_leaves(schema: Any, kind: str) -> list[Leaf]:
    """Leaves for the string defaults of a dataclass or pydantic class's fields."""
    leaves: list[Leaf] = []
    for name, default in schemas.field_defaults(schema).items():
        strong = named_prompt(name, default) if isinstance(default, str) else None
        if strong is not None:
            leaves.append(
                FieldLeaf(
                    kind=kind,
                    label=name,
                    where=f"{kind} field {schema.__name__}.{name}",
                    text=default,
                    key=("field", id(schema), name),
                    strong=strong,
                    owner=schema,
                    name=name,
                )
            )
    return leaves


def has_words(text: str) -> bool:
    """Whether a template has text besides its placeholders."""
    stripped = re.sub(r"\{[^{}]*\}", "", text)
    return bool(re.search(r"\w", stripped))
