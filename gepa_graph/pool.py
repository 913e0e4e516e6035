"""The pool: the candidates a run has admitted, their validation scores, every score the search
has seen, and how the search is progressing (new bests, exhausted parents). The one writer of
candidate records (the checkpoint's ``candidates`` and ``best_id``), so the pool and what a run
saves can never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gepa_graph import pareto
from gepa_graph.candidate import Candidate
from gepa_graph.evaluation import EvalResult
from gepa_graph.example import Example
from gepa_graph.records import CandidateRecord
from gepa_graph.state import OptimizerState

# Proposals in a row from one parent that produced nothing new (its minibatch known, its child
# a repeat) before the parent counts as exhausted and selection turns to other candidates.
EXHAUSTED_AFTER = 5


class Pool:
    """Candidates and scores, as of the last turn taken (see ``known``)."""

    def __init__(self, state: OptimizerState) -> None:
        self.state = state
        self.val_keys = list(state.val_keys)
        self.candidates: dict[str, Candidate] = {}  # in order of joining
        self.scores: dict[str, dict[str, float]] = {}  # candidate id -> example key -> score
        self.validating: set[str] = set()  # candidates being validated now
        self._known: dict[tuple[str, str], float] = {}  # (candidate, example uid) -> score
        self._idle: dict[str, int] = {}  # parent id -> proposals in a row with nothing new
        self.stale_iterations = 0  # work settled in a row without a new best
        self.idle_iterations = 0  # work settled in a row that ran nothing new
        self._best_seen = -math.inf  # the best mean when work last settled (first: the seed's)

    @property
    def best_id(self) -> str:
        """The best candidate: highest mean validation score among those scored on every
        validation example, the earliest on ties. Needs the seed in the pool."""
        return pareto.best_candidate(self.scores, self.val_keys, list(self.scores))

    def mean(self, candidate_id: str) -> float:
        """Mean validation score of a pooled candidate over the examples it has run (a child
        stopped early by screening has a partial mean); KeyError if it is not in the pool."""
        return pareto.mean_score(self.scores[candidate_id], self.val_keys)

    def is_duplicate(self, candidate_id: str) -> bool:
        """True if the candidate is in the pool or being validated."""
        return candidate_id in self.candidates or candidate_id in self.validating

    def known(self, candidate_id: str, examples: Sequence[Example]) -> dict[str, float]:
        """Scores the search has seen: results reach it at a step's turn (``remember``), never
        the moment a rollout lands in the evaluator's cache, so decisions do not depend on
        timing."""
        return {
            ex.key: self._known[(candidate_id, ex.uid)]
            for ex in examples
            if (candidate_id, ex.uid) in self._known
        }

    def unknown(self, candidate: Candidate, examples: Sequence[Example]) -> int:
        """How many of ``examples`` the search has not yet seen ``candidate`` run."""
        return len(examples) - len(self.known(candidate.id, examples))

    def remember(
        self, candidate: Candidate, examples: Sequence[Example], results: Sequence[EvalResult]
    ) -> None:
        """Let the search see a candidate's results (at the turn of the step that ran them)."""
        for example, result in zip(examples, results, strict=True):
            self._known[(candidate.id, example.uid)] = result.score

    @property
    def exhausted(self) -> set[str]:
        """Candidates whose last proposals yielded nothing new: parent selection skips them
        while others remain, so a run explores instead of stalling."""
        return {cid for cid, idle in self._idle.items() if idle >= EXHAUSTED_AFTER}

    def note_proposal(self, parent_id: str, novel: bool) -> None:
        """Count a proposal from ``parent_id`` that brought something new or nothing new."""
        self._idle[parent_id] = 0 if novel else self._idle.get(parent_id, 0) + 1

    def settled(self, productive: bool) -> None:
        """Count a piece of work that settled: toward ``stale_iterations`` unless the best mean
        rose, toward ``idle_iterations`` unless it ran rollouts not run before."""
        best = self.mean(self.best_id)
        self.stale_iterations = 0 if best > self._best_seen else self.stale_iterations + 1
        self._best_seen = max(best, self._best_seen)
        self.idle_iterations = 0 if productive else self.idle_iterations + 1

    def add(
        self, candidate: Candidate, scores: dict[str, float], iteration: int, rollouts: int
    ) -> tuple[CandidateRecord, bool]:
        """Admit a validated candidate with its (possibly partial) scores, ``rollouts`` used
        when it was found: its record, and whether it is the new best."""
        best_before = self.mean(self.best_id) if self.scores else None
        self.candidates[candidate.id] = candidate
        self.scores[candidate.id] = {k: scores[k] for k in self.val_keys if k in scores}
        mean = self.mean(candidate.id)
        if best_before is None:
            self._best_seen = mean  # the seed: what later work must beat to count as progress
        record = CandidateRecord(
            id=candidate.id,
            prompts=candidate.prompts,
            parent_ids=candidate.parent_ids,
            origin=candidate.origin,
            changed_modules=candidate.changed_modules,
            val_scores=self.scores[candidate.id],
            mean_score=mean,
            iteration=iteration,
            rollouts_at_discovery=rollouts,
        )
        self.state.candidates.append(record)
        self.state.best_id = self.best_id
        complete = pareto.is_complete(self.scores[candidate.id], self.val_keys)
        return record, best_before is None or (complete and mean > best_before)

    def complete(self, candidate_id: str, scores: dict[str, float], rollouts: int) -> None:
        """Replace a partial candidate's scores by its whole validation vector (final
        selection), ``rollouts`` used by then; its record says so and the best is recomputed."""
        self.scores[candidate_id] = {k: scores[k] for k in self.val_keys if k in scores}
        at = next(i for i, r in enumerate(self.state.candidates) if r.id == candidate_id)
        self.state.candidates[at] = self.state.candidates[at].model_copy(
            update={
                "val_scores": self.scores[candidate_id],
                "mean_score": self.mean(candidate_id),
                "rollouts_at_discovery": rollouts,
            }
        )
        self.state.best_id = self.best_id
