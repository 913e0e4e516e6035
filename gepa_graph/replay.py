"""Reflection replies a killed run already paid for, served again in the same order on resume;
each reply is bounded (parsed the same) before it is journaled or used."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from gepa_graph.journal import Journal
from gepa_graph.lm import MAX_REPLY_CHARS, LMResponse
from gepa_graph.reflection import stored_reply


class ReflectionReplay:
    """Keys are (prompt hash, occurrence): the n-th identical prompt of a run gets the n-th
    reply it got before, so even a sampling LM resumes onto the same path."""

    def __init__(self, journal: Journal, journaled: dict[str, dict[str, Any]]) -> None:
        self.journal = journal
        self._journaled = journaled
        self._seen: Counter[str] = Counter()

    async def call(
        self, prompt_key: str, make_call: Callable[[], Awaitable[LMResponse]]
    ) -> LMResponse:
        """The journaled reply for this prompt's n-th occurrence if the run already paid for
        it, else ``make_call()``: a resumed run asks again only what it never got."""
        occurrence = self._seen[prompt_key]
        self._seen[prompt_key] += 1
        key = f"{prompt_key}#{occurrence}"
        stored = self._journaled.pop(key, None)
        if stored is not None:
            return LMResponse.model_validate(stored)
        response = await make_call()
        # Shortened so that it parses as the whole reply did: live and replayed runs read the
        # same text, and the journal stays small.
        response = response.model_copy(
            update={"text": stored_reply(response.text, MAX_REPLY_CHARS)}
        )
        self.journal.record_reflection(key, response.model_dump(mode="json"))
        return response
