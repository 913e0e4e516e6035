"""Prompts that live in the store: instructions an agent keeps in a store item and sends to a model.

Some agents keep instructions in the LangGraph store rather than in code (the preferences an
email assistant learns, a system prompt the agent itself edits). Such a prompt is a module whose
home is the item: ``LangGraphSystem(graph, store_prompts=[(namespace, key, field)])`` names it
``store:<namespace labels joined by "/">:<key>#<field>``, so whatever holds the module name (a
Result read back by ``gg.load_result``) knows where it lives. Each rollout's store layer serves
the candidate's text wherever the agent reads that item (``isolation.LayeredStore``); the user's
store is never written. ``apply(graph, prompts, store=...)`` writes a winner into a store only
when given one, and says which items it wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import BaseStore

from gepa_graph.errors import InvalidInput

PREFIX = "store:"


@dataclass(frozen=True)
class StorePrompt:
    """A prompt kept as the text field ``field`` of the store item (``namespace``, ``key``)."""

    namespace: tuple[str, ...]
    key: str
    field: str = "content"

    @property
    def name(self) -> str:
        """The module name, which says where the prompt lives."""
        return f"{PREFIX}{'/'.join(self.namespace)}:{self.key}#{self.field}"

    @classmethod
    def parse(cls, name: str) -> StorePrompt | None:
        """The StorePrompt a module name stands for; None for any other module."""
        if not name.startswith(PREFIX):
            return None
        body, _, field = name[len(PREFIX) :].rpartition("#")
        namespace, _, key = body.partition(":")
        return cls(tuple(namespace.split("/")), key, field)

    def read(self, store: BaseStore) -> str:
        """The prompt's text in ``store`` (InvalidInput when the item or field is missing)."""
        item = store.get(self.namespace, self.key, refresh_ttl=False)
        text = None if item is None else item.value.get(self.field)
        if not isinstance(text, str):
            raise InvalidInput(
                f"store prompt {self.name!r}: the store has no text field {self.field!r} in item "
                f"{self.key!r} of namespace {self.namespace}"
            )
        return text

    def write(self, store: BaseStore, text: str) -> None:
        """Put ``text`` in the item's field, keeping the item's other fields."""
        item = store.get(self.namespace, self.key, refresh_ttl=False)
        store.put(self.namespace, self.key, {**(item.value if item else {}), self.field: text})


def store_prompts(entries: Iterable[Any]) -> dict[str, StorePrompt]:
    """``LangGraphSystem(store_prompts=...)``: StorePrompts or ``(namespace, key[, field])``
    tuples, by module name."""
    found = {}
    for entry in entries:
        if not isinstance(entry, StorePrompt):
            if not isinstance(entry, tuple) or len(entry) not in (2, 3):
                raise InvalidInput(
                    f"store_prompts entries are (namespace, key) or (namespace, key, field) "
                    f"tuples, got {entry!r}"
                )
            entry = StorePrompt(tuple(entry[0]), *entry[1:])
        found[entry.name] = entry
    return found


def seed_texts(prompts: Mapping[str, StorePrompt], store: Any) -> dict[str, str]:
    """The texts the store holds for ``prompts`` (``store``: a store or a factory of one)."""
    if not prompts:
        return {}
    if store is None:
        raise InvalidInput("store_prompts need a store: the graph has none; pass store=")
    base = store if isinstance(store, BaseStore) else store()
    return {name: prompt.read(base) for name, prompt in prompts.items()}


def served(
    prompts: Mapping[str, StorePrompt], texts: Mapping[str, str]
) -> dict[tuple[tuple[str, ...], str], dict[str, str]]:
    """What a rollout's store layer serves in place of the stored fields: (namespace, key) ->
    field -> the candidate's text."""
    fields: dict[tuple[tuple[str, ...], str], dict[str, str]] = {}
    for name, prompt in prompts.items():
        if name in texts:
            fields.setdefault((prompt.namespace, prompt.key), {})[prompt.field] = texts[name]
    return fields


def write(store: BaseStore, prompts: Mapping[str, str]) -> dict[str, str]:
    """Write the store prompts among ``prompts`` into ``store``; module -> the item written
    (a text the store already holds is left alone)."""
    written = {}
    for name, text in prompts.items():
        prompt = StorePrompt.parse(name)
        if prompt is None:
            continue
        item = store.get(prompt.namespace, prompt.key, refresh_ttl=False)
        if item is None or item.value.get(prompt.field) != text:
            prompt.write(store, text)
            written[name] = (
                f"store item {prompt.key!r} of {prompt.namespace}, field {prompt.field!r}"
            )
    return written
