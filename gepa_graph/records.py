"""What a run writes down, apart from the events that announce it: the record of an accepted
candidate, of a rejected proposal, and the budget ledger.

Records are plain data (no live objects): the checkpoint stores them, a ``Result`` holds them, and
events carry them, so a listener, a result loaded from disk and the running engine all read the
same shapes. ``Candidate`` (candidate.py) stays the engine's content-addressed identity of a
prompt set; a ``CandidateRecord`` is what the run learned about one that joined the pool.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class CandidateRecord(BaseModel):
    """An accepted candidate: its prompts, lineage, and full validation score vector.

    Its ``id`` is the content id of the prompts it was evaluated with; the stored ``prompts``
    are masked where they held a secret, so the id is kept as written, not derived again.
    """

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


class Rejection(BaseModel):
    """A proposal that did not enter the pool. ``reason`` is a short code, ``detail`` prose."""

    model_config = ConfigDict(frozen=True)

    iteration: int
    kind: Literal["mutation", "merge"]
    reason: str
    detail: str = ""
    module: str | None = None
    parent_ids: tuple[str, ...] = ()
    proposed_text: str | None = None


class Ledger(BaseModel):
    """What a run has spent: rollouts (exact), USD cost, wall time, and call counts.

    ``gepa_graph.budget.Budget`` is its one writer; everything else reads snapshots of it.
    """

    rollouts_used: int = 0
    max_rollouts: int | None = None
    cost_usd: float = 0.0
    reflection_cost_usd: float = 0.0
    task_cost_usd: float = 0.0
    reflection_calls: int = 0
    lm_retries: int = 0
    lm_failures: int = 0
    failed_rollouts: int = 0
    rollout_retries: int = 0
    seconds: float = 0.0
