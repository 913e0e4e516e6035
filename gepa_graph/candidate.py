"""Candidate: one full assignment of prompt text to every module, identified by content.

This is the engine's identity of a prompt set (its id is derived from the prompts; ``mutate``
makes children). What a run learned about a candidate that joined the pool (scores, when) is
its ``gepa_graph.records.CandidateRecord``, which events, the checkpoint and the Result carry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator


def content_id(prompts: Mapping[str, str]) -> str:
    """Stable id of a prompt set: the same prompts always get the same id, in any process."""
    blob = json.dumps(dict(sorted(prompts.items())), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class Candidate(BaseModel):
    """Immutable prompt set with its lineage, so the pool, the checkpoint and MLflow can say
    where each prompt came from.

    ``prompts``: module name -> text. ``parent_ids``: the candidates it was made from (none for
    the seed, two for a merge). ``origin``: "seed", "mutation" or "merge". ``changed_modules``:
    the modules whose text differs from the parent's. ``id`` is derived from the prompts.
    """

    model_config = ConfigDict(frozen=True)

    prompts: dict[str, str]
    parent_ids: tuple[str, ...] = ()
    origin: str = "seed"  # "seed", "mutation" or "merge"
    changed_modules: tuple[str, ...] = ()
    id: str = Field(default="")

    @model_validator(mode="after")
    def _derive_id(self) -> Candidate:
        expected = content_id(self.prompts)
        if self.id and self.id != expected:
            raise ValueError(f"candidate id {self.id} does not match its prompts ({expected})")
        object.__setattr__(self, "id", expected)
        return self

    def mutate(self, module: str, text: str) -> Candidate:
        """The child with new text for one module (a single-module proposal)."""
        return self.mutate_many({module: text})

    def mutate_many(self, texts: Mapping[str, str]) -> Candidate:
        """The child with new text for one module, or for several (a joint proposal)."""
        for module in texts:
            if module not in self.prompts:
                raise KeyError(f"unknown module {module!r}; modules are {sorted(self.prompts)}")
        return Candidate(
            prompts={**self.prompts, **texts},
            parent_ids=(self.id,),
            origin="mutation",
            changed_modules=tuple(texts),
        )
