"""Rollout reuse: a rollout depends only on the prompts it read.

A rollout that never read a module's prompt would have run exactly the same whatever that
prompt said: the system never saw it. So a candidate that agrees with another on every prompt
one of its rollouts read (``Trace.read``) takes that rollout's result instead of running the
example again. A child that rewrote the solver inherits its parent's results on every example
that never reached the solver; a merge inherits from either parent.

This is exact for a deterministic system. For a sampling one, the inherited result is the
sample the candidate would have drawn with the same randomness: the two runs are the same up to
the first read of a prompt they differ in, and there is none. A failed rollout is never reused
(a timeout or a crash says more about the moment than about the prompts), and neither is one
whose system could not say what it read (``Trace.read`` None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

R = TypeVar("R")


class RolloutReuse(Generic[R]):
    """Results by example, each with the texts of the prompts its rollout read."""

    def __init__(self) -> None:
        self._by_example: dict[str, list[tuple[dict[str, str], str, R]]] = {}

    def add(
        self,
        example_uid: str,
        candidate_id: str,
        prompts: Mapping[str, str],
        read: list[str] | None,
        result: R,
    ) -> None:
        """Offer ``result`` (``candidate_id``'s rollout on the example) for reuse; a rollout
        whose reads are unknown (``read`` None) is not offered."""
        if read is None:
            return
        texts = {module: prompts[module] for module in read if module in prompts}
        self._by_example.setdefault(example_uid, []).append((texts, candidate_id, result))

    def find(self, example_uid: str, prompts: Mapping[str, str]) -> tuple[str, R] | None:
        """The first offered result on the example whose rollout read only prompts that
        ``prompts`` has too, word for word, with the candidate that ran it; None if none."""
        for texts, candidate_id, result in self._by_example.get(example_uid, ()):
            if all(prompts.get(module) == text for module, text in texts.items()):
                return candidate_id, result
        return None
