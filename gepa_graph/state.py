"""OptimizerState: what the engine accumulates in a run (the pool with lineage and score
vectors, rejections, the ledger), which ``gepa_graph.store.RunStore`` saves as the checkpoint
(``state.json``) and reads back into a Result."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from gepa_graph.records import CandidateRecord, HeldOutScores, Ledger, Rejection
from gepa_graph.result import Result

FORMAT = 1


class OptimizerState(BaseModel):
    """The checkpoint's content: status, iteration, ledger, inputs' keys, and every accepted
    candidate and rejected proposal so far.

    Fields: ``format`` (the checkpoint's format version, checked on load), ``status``
    ("running" until the run stops; a killed run stays "running" and one stopped by Ctrl-C
    says "interrupted": both can resume),
    ``stop_reason`` (None while running), ``reflection_lm`` (its name), ``config`` (the
    OptimizeConfig as JSON), ``seed_prompts`` (module -> seed text), ``train_keys`` and
    ``val_keys`` (the examples' keys, in order: which data the run used),
    ``candidates`` (accepted, in the order they joined, the seed first), ``best_id`` (the
    pool's best; None before the seed was evaluated), ``testset`` (the held-out scores of a
    finished run given a testset, else None). Written by the engine, but for ``testset``.
    """

    format: int = FORMAT
    status: Literal["running", "interrupted", "finished"] = "running"
    stop_reason: str | None = None
    iteration: int = 0
    ledger: Ledger = Field(default_factory=Ledger)
    reflection_lm: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    seed_prompts: dict[str, str] = Field(default_factory=dict)
    train_keys: list[str] = Field(default_factory=list)
    val_keys: list[str] = Field(default_factory=list)
    candidates: list[CandidateRecord] = Field(default_factory=list)
    rejected: list[Rejection] = Field(default_factory=list)
    best_id: str | None = None
    testset: HeldOutScores | None = None

    def to_result(self, run_dir: Path | None) -> Result:
        """The Result this state amounts to; ValueError before any candidate was evaluated."""
        if not self.candidates:
            raise ValueError("no candidate was evaluated, so there is no result")
        best = next(c for c in self.candidates if c.id == self.best_id)
        seed = self.candidates[0]
        return Result(
            best_id=best.id,
            best_candidate=dict(best.prompts),
            best_score=best.mean_score,
            seed_candidate=dict(seed.prompts),
            seed_score=seed.mean_score,
            candidates=list(self.candidates),
            rejected=list(self.rejected),
            rollouts_used=self.ledger.rollouts_used,
            ledger=self.ledger,
            iterations=self.iteration,
            stop_reason=self.stop_reason or "unknown",
            run_dir=str(run_dir) if run_dir is not None else None,
            val_keys=list(self.val_keys),
            test_seed_score=self.testset.seed_score if self.testset else None,
            test_best_score=self.testset.best_score if self.testset else None,
        )
