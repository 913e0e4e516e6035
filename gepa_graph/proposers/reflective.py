"""Reflective mutation: rewrite one module's prompt from its own trace and the metric's feedback."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gepa_graph.candidate import Candidate
from gepa_graph.evaluation import EvalResult
from gepa_graph.example import Example
from gepa_graph.guidance import Guidance
from gepa_graph.lm import LMCallFailed, LMResponse, PromptTooLong, ReflectionLM
from gepa_graph.reflection import (
    build_reflective_dataset,
    parse_proposal,
    render_reflection_prompt,
)
from gepa_graph.replay import ReflectionReplay

_MIN_CHARS = 200  # the shortest per-field cut tried when the prompt exceeds the context window


@dataclass(frozen=True)
class Reflection:
    """One reflection call: the ``prompt`` sent and the ``response``, kept together so a rejected
    proposal can be reported with what the LM was shown. A proposal over ``max_prompt_chars``
    carries its ``compression`` call (or why that call failed: ``compression_failed``)."""

    prompt: str
    response: LMResponse
    compression: Reflection | None = None
    compression_failed: str | None = None

    @property
    def calls(self) -> tuple[Reflection, ...]:
        """Every reflection LM call this took, in order (each one is paid and reported)."""
        return (self,) if self.compression is None else (self, self.compression)


class ReflectiveProposer:
    """Turns a parent's minibatch run into a new prompt for one module: builds the
    reflective dataset from that module's own trace and feedback and asks the reflection LM,
    through the replay so a resumed run never pays for a reply it already has. ``guidance``
    adds the user's standing instructions and the length cap (gepa_graph/guidance.py)."""

    def __init__(
        self,
        lm: ReflectionLM,
        replay: ReflectionReplay,
        max_chars_per_field: int,
        guidance: Guidance | None = None,
    ) -> None:
        self.lm = lm
        self.replay = replay
        self.max_chars_per_field = max_chars_per_field
        self.guidance = guidance or Guidance()

    async def reflect(
        self,
        parent: Candidate,
        module: str,
        node: str | None,
        examples: Sequence[Example],
        results: Sequence[EvalResult],
        rejected: Sequence[tuple[str, str]] = (),
    ) -> Reflection:
        """The reflection prompt and reply for ``module`` of ``parent``; a prompt over the
        model's context window is retried with shorter fields and fewer examples."""
        limit, shown = self.max_chars_per_field, len(examples)
        current, guidance = parent.prompts[module], self.guidance
        while True:
            dataset = build_reflective_dataset(module, node, examples[:shown], results[:shown])
            prompt = render_reflection_prompt(
                module,
                current,
                dataset,
                limit,
                rejected,
                guidance.for_module(module),
                guidance.max_prompt_chars,
            )
            try:
                response = await self._ask(prompt)
            except PromptTooLong:
                if limit <= _MIN_CHARS and shown == 1:
                    raise
                # Over the model's context window: a shorter reflective dataset, then reject.
                limit, shown = max(_MIN_CHARS, limit // 4), max(1, shown // 2)
                continue
            return await self._compressed(module, current, Reflection(prompt, response))

    async def _ask(self, prompt: str) -> LMResponse:
        key = hashlib.sha256(f"{self.lm.name}\n{prompt}".encode()).hexdigest()
        return await self.replay.call(key, functools.partial(self.lm, prompt))

    async def _compressed(self, module: str, current: str, reflection: Reflection) -> Reflection:
        """``reflection`` with its one compression call when its proposal is over the cap."""
        long = self.guidance.over_cap(reflection.response, current)
        if long is None:
            return reflection
        prompt = self.guidance.compression_prompt(module, long)
        try:
            response = await self._ask(prompt)
        except LMCallFailed as exc:
            return replace(reflection, compression_failed=f"its compression call failed: {exc}")
        return replace(reflection, compression=Reflection(prompt, response))

    def proposal(self, parent: Candidate, module: str, reflection: Reflection) -> str:
        """The module's new text (compressed when it was over the cap); raises
        InvalidProposal for a reply that cannot be used."""
        current, response = parent.prompts[module], reflection.response
        text = parse_proposal(response.text, response.finish_reason, current)
        compressed = reflection.compression.response if reflection.compression else None
        return self.guidance.capped(text, current, compressed, reflection.compression_failed)
