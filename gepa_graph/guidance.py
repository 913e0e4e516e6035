"""Reflection guidance: the user's standing instructions for the reflection LM, and a cap on a
prompt's length.

The instructions (``OptimizeConfig.reflection_instructions``: one text, or one per module) go
into every reflection prompt in a section of their own. The cap (``max_prompt_chars``) counts
the characters of a module's prompt text exactly as the module would use it (the fenced
block's content, stripped of surrounding blank space; ``{variables}`` count as written). A
proposal over the cap is sent back to the reflection LM once, asking for a version within it
that keeps every rule; if that one is still over (or unusable), the proposal is rejected as
``over_length_cap``. A seed prompt over the cap is an error before the search starts: the cap
is a promise about every candidate a run returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gepa_graph.config import OptimizeConfig
from gepa_graph.errors import ConfigError
from gepa_graph.lm import LMResponse
from gepa_graph.reflection import InvalidProposal, parse_proposal, render_compression_prompt


@dataclass(frozen=True)
class Guidance:
    """What the user asks of every reflection: ``instructions`` (a text for every module, or
    module -> text) and ``max_prompt_chars`` (None: no cap)."""

    instructions: str | Mapping[str, str] | None = None
    max_prompt_chars: int | None = None

    @classmethod
    def of(cls, config: OptimizeConfig) -> Guidance:
        """The guidance ``config`` asks for."""
        return cls(config.reflection_instructions, config.max_prompt_chars)

    def for_module(self, module: str) -> str:
        """The standing instructions a reflection on ``module`` shows ("" for none)."""
        if isinstance(self.instructions, str):
            return self.instructions.strip()
        return (self.instructions or {}).get(module, "").strip()

    def check_seeds(self, seeds: Mapping[str, str]) -> None:
        """Refuse, in one line, instructions for a module the system does not have, and a
        seed prompt already over the cap (checked once the prompts are known, before the
        search pays for anything)."""
        if isinstance(self.instructions, Mapping):
            unknown = sorted(set(self.instructions) - set(seeds))
            if unknown:
                raise ConfigError(
                    f"reflection_instructions names unknown module {unknown[0]!r}; "
                    f"modules are {sorted(seeds)}"
                )
        cap = self.max_prompt_chars
        for module, text in seeds.items():
            if cap is not None and len(text.strip()) > cap:
                raise ConfigError(
                    f"the seed prompt of module {module!r} has {len(text.strip())} characters, "
                    f"over max_prompt_chars={cap}; raise the cap or shorten the seed"
                )

    def over_cap(self, reply: LMResponse, current: str) -> str | None:
        """The proposal in ``reply`` when it is usable but over the cap (it needs the one
        compression call), else None."""
        if self.max_prompt_chars is None:
            return None
        try:
            text = parse_proposal(reply.text, reply.finish_reason, current)
        except InvalidProposal:
            return None  # rejected for its own reason, not for its length
        return text if len(text) > self.max_prompt_chars else None

    def compression_prompt(self, module: str, text: str) -> str:
        """The one call asking the reflection LM to bring ``text`` within the cap."""
        assert self.max_prompt_chars is not None
        return render_compression_prompt(
            module, text, self.max_prompt_chars, self.for_module(module)
        )

    def capped(
        self, text: str, current: str, compressed: LMResponse | None, failure: str | None = None
    ) -> str:
        """``text`` when within the cap, else its compression (``compressed``, the reply to
        ``compression_prompt``) when that is usable and within it; otherwise
        InvalidProposal("over_length_cap") with the lengths. ``failure`` says why there is no
        compression reply (its call failed)."""
        cap = self.max_prompt_chars
        if cap is None or len(text) <= cap:
            return text
        over = f"the proposal has {len(text)} characters, over max_prompt_chars={cap}"
        if compressed is None:
            why = failure or "it was not compressed"
            raise InvalidProposal("over_length_cap", f"{over}; {why}", text)
        try:
            short = parse_proposal(compressed.text, compressed.finish_reason, current)
        except InvalidProposal as exc:
            detail = f"{over}; its compression was unusable ({exc.reason}: {exc.detail})"
            raise InvalidProposal("over_length_cap", detail, text) from None
        if len(short) > cap:
            detail = f"{over}; compressed once to {len(short)}, still over"
            raise InvalidProposal("over_length_cap", detail, short)
        return short
