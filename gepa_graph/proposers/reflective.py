"""Reflective mutation: rewrite one module's prompt from its own trace and the metric's feedback."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from gepa_graph.candidate import Candidate
from gepa_graph.evaluation import EvalResult
from gepa_graph.example import Example
from gepa_graph.lm import LMResponse, PromptTooLong, ReflectionLM
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
    proposal can be reported with what the LM was shown."""

    prompt: str
    response: LMResponse


class ReflectiveProposer:
    """Turns a parent's minibatch run into a new prompt for one module: builds the
    reflective dataset from that module's own trace and feedback and asks the reflection LM,
    through the replay so a resumed run never pays for a reply it already has."""

    def __init__(
        self, lm: ReflectionLM, replay: ReflectionReplay, max_chars_per_field: int
    ) -> None:
        self.lm = lm
        self.replay = replay
        self.max_chars_per_field = max_chars_per_field

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
        while True:
            dataset = build_reflective_dataset(module, node, examples[:shown], results[:shown])
            prompt = render_reflection_prompt(
                module, parent.prompts[module], dataset, limit, rejected
            )
            key = hashlib.sha256(f"{self.lm.name}\n{prompt}".encode()).hexdigest()
            try:
                response = await self.replay.call(key, functools.partial(self.lm, prompt))
            except PromptTooLong:
                if limit <= _MIN_CHARS and shown == 1:
                    raise
                # Over the model's context window: a shorter reflective dataset, then reject.
                limit, shown = max(_MIN_CHARS, limit // 4), max(1, shown // 2)
                continue
            return Reflection(prompt=prompt, response=response)

    @staticmethod
    def proposal(parent: Candidate, module: str, reflection: Reflection) -> str:
        """The module's new text; raises InvalidProposal for a reply that cannot be used."""
        return parse_proposal(
            reflection.response.text, reflection.response.finish_reason, parent.prompts[module]
        )
