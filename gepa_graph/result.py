"""Result of an optimization: the best prompts, the whole pool with lineage, and the ledger."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr

from gepa_graph.events import Ledger, ProposalRejected


class CandidateRecord(BaseModel):
    """An accepted candidate: its prompts, lineage, and full validation score vector."""

    model_config = ConfigDict(frozen=True)

    id: str
    prompts: dict[str, str]
    parent_ids: tuple[str, ...] = ()
    origin: str = "seed"
    changed_modules: tuple[str, ...] = ()
    val_scores: dict[str, float]  # example key -> score
    mean_score: float
    iteration: int  # 0 for the seed
    rollouts_at_discovery: int


class Result(BaseModel):
    best_id: str
    best_candidate: dict[str, str]
    best_score: float
    seed_candidate: dict[str, str]
    seed_score: float
    candidates: list[CandidateRecord]
    rejected: list[ProposalRejected]  # every proposal that did not join the pool, and why
    rollouts_used: int
    ledger: Ledger
    iterations: int
    stop_reason: str
    run_dir: str | None = None
    val_keys: list[str]
    # Held-out scores (optimize(testset=...)): the seed's and the best candidate's mean.
    test_seed_score: float | None = None
    test_best_score: float | None = None

    _system: Any = PrivateAttr(default=None)

    def candidate(self, candidate_id: str) -> CandidateRecord:
        for record in self.candidates:
            if record.id == candidate_id:
                return record
        raise KeyError(f"no candidate {candidate_id!r} in this result")

    def best_by_example(self) -> dict[str, CandidateRecord]:
        """Per validation example (in ``mode="search"``: per task), the candidate that scored
        highest on it, the earliest among equals: the per-task answer of an inference-time
        search, where ``best_candidate`` is the best single prompt set for all of them."""
        best: dict[str, CandidateRecord] = {}
        for record in self.candidates:
            for key, score in record.val_scores.items():
                if key not in best or score > best[key].val_scores[key]:
                    best[key] = record
        return {key: best[key] for key in self.val_keys if key in best}

    def changed_modules(self) -> dict[str, tuple[str, str]]:
        """Modules whose best prompt differs from the seed: name -> (seed, best)."""
        return {
            name: (self.seed_candidate[name], text)
            for name, text in self.best_candidate.items()
            if self.seed_candidate.get(name) != text
        }

    def apply(self, target: Any) -> None:
        """Write the best prompts into ``target`` in place (e.g. the user's compiled graph)."""
        applier = getattr(self._system, "apply", None)
        if applier is None:
            raise TypeError(
                "this result's system cannot write prompts into an object; use "
                "result.best_candidate directly"
            )
        applier(target, self.best_candidate)
