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

    Fields: ``parent_ids`` (none for the seed, one for a mutation, two for a merge), ``origin``
    ("seed", "mutation" or "merge"), ``changed_modules`` (modules whose text differs from the
    parent's), ``val_scores`` (example key -> score, only the examples it ran: a child stopped
    early by screening has fewer), ``mean_score`` (mean of ``val_scores``), ``iteration`` (the
    proposal that made it; 0 for the seed), ``rollouts_at_discovery`` (the ledger's
    ``rollouts_used`` when it joined the pool: x axis of a progress plot).
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
    """A proposal that did not enter the pool. ``reason`` is a short code, ``detail`` prose.

    Also: ``iteration`` (the proposal's number), ``kind`` ("mutation" or "merge"), ``module``
    (the modules it rewrote, joined by ``+``; None for a merge), ``parent_ids``, and
    ``proposed_text`` (the rejected prompt text, each module's under its name for a joint
    proposal; None when no text was produced; the checkpoint keeps it bounded in length).
    """

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

    Fields: ``rollouts_used`` (exact, every kind: minibatch, validation, merge, and rollouts a
    resumed run took from the journal), ``max_rollouts`` (the limit; None without one),
    ``cost_usd`` (reflection + task), ``reflection_cost_usd`` (the reflection LM's calls),
    ``task_cost_usd`` (LM calls inside rollouts, every retry included); costs leave out calls
    whose price LiteLLM does not know. ``reflection_calls`` (reflection replies used),
    ``lm_retries`` and ``lm_failures`` (reflection LM calls retried, and given up on after the
    retries), ``failed_rollouts`` (rollouts scored ``failure_score`` because the system or
    metric failed), ``rollout_retries`` (extra attempts of retryable rollout failures),
    ``seconds`` (wall time including the time before a resume, as of the last snapshot),
    ``probe_rollouts`` (the seed runs a probe made to see which prompts reach a model: in
    ``rollouts_used``, but not in the journal, so a resumed run probes again), ``metric_calls``
    (calls of the metric: one per scored rollout, ``score_repeats`` with repeated scoring),
    ``reused_rollouts`` (results a candidate took from another candidate's rollout instead of
    running it: not in ``rollouts_used``; see reuse.py).
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
    probe_rollouts: int = 0
    metric_calls: int = 0
    reused_rollouts: int = 0


class HeldOutScores(BaseModel):
    """A run's held-out scores (``optimize(testset=...)``): the seed and the best candidate run
    on the testset once the search is over, outside its budget. The checkpoint keeps them, so a
    run read back (``gg.load_result``) or resumed after it finished has them without a rollout.

    Fields: ``seed_id`` and ``best_id`` (the candidates scored), ``seed_scores`` and
    ``best_scores`` (example key -> score), ``seed_score`` and ``best_score`` (their means:
    ``Result.test_seed_score`` and ``test_best_score``).
    """

    model_config = ConfigDict(frozen=True)

    seed_id: str
    best_id: str
    seed_scores: dict[str, float]  # example key -> score
    best_scores: dict[str, float]
    seed_score: float  # means
    best_score: float
