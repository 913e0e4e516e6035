"""Result of an optimization: the best prompts, the whole pool with lineage, and the ledger.

A Result is plain data: the same object comes back from ``optimize``, from a run folder and from
an MLflow run (``gg.load_result``), and each can ``apply`` its best prompts to a graph (through
``gepa_graph.adapters``, which the composition root fills with the integrations' adapters).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from gepa_graph.adapters import apply_prompts, export_prompts
from gepa_graph.errors import WrongType
from gepa_graph.records import CandidateRecord, Ledger, Rejection

__all__ = ["CandidateRecord", "Result"]


class Result(BaseModel):
    """The outcome of one optimization (finished or not): best and seed prompts with their mean
    validation scores, every accepted candidate and rejected proposal, and what it spent.

    Fields: ``best_id``, ``best_candidate`` (module -> text) and ``best_score`` (its mean
    validation score); ``seed_candidate`` and ``seed_score`` likewise for the seed;
    ``candidates`` (every pool member's record, in the order they joined, the seed first);
    ``rejected``; ``rollouts_used`` (the same as ``ledger.rollouts_used``); ``ledger`` (the
    full spend); ``iterations`` (proposals and merges started); ``stop_reason`` (e.g.
    ``max_rollouts``, or ``unknown`` for a run still marked running); ``run_dir`` (None for a
    run without a folder); ``val_keys`` (the validation examples' keys, in order);
    ``test_seed_score`` and ``test_best_score`` (None unless a testset was given).
    """

    best_id: str
    best_candidate: dict[str, str]
    best_score: float
    seed_candidate: dict[str, str]
    seed_score: float
    candidates: list[CandidateRecord]
    rejected: list[Rejection]  # every proposal that did not join the pool, and why
    rollouts_used: int
    ledger: Ledger
    iterations: int
    stop_reason: str
    run_dir: str | None = None
    val_keys: list[str]
    # Held-out scores (optimize(testset=...)): the seed's and the best candidate's mean.
    test_seed_score: float | None = None
    test_best_score: float | None = None

    def candidate(self, candidate_id: str) -> CandidateRecord:
        """The record of candidate ``candidate_id``; KeyError if it is not in the pool."""
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

    def apply(
        self, target: Any, system: PromptApplier | None = None, store: Any = None
    ) -> dict[str, str] | None:
        """Write the best prompts into ``target`` in place (e.g. the user's compiled graph).

        A LangGraph graph needs nothing more, whether this result came from ``optimize`` or from
        ``gg.load_result``; it returns module -> where each changed prompt was written. Prompts
        that live in a LangGraph store item are written into ``store`` only when it is given.
        Any other target needs ``system``: the gg.System that ran the optimization, if it
        defines ``apply(target, prompts)``.
        """
        if system is None:
            return apply_prompts(target, self.best_candidate, self.seed_candidate, store)
        if not isinstance(system, PromptApplier):
            raise WrongType(
                f"a {type(system).__name__} cannot write prompts into an object (it has no "
                "apply(target, prompts)); use result.best_candidate directly"
            )
        system.apply(target, self.best_candidate)
        return None

    def export(self, directory: str | Path, source: Any = None) -> dict[str, str]:
        """Write the best text of each prompt kept in a file (a Markdown or Jinja2 template
        the code reads) to a copy of that file under ``directory``; module -> path written.

        ``source`` is the System that ran the optimization (its ``export(directory, prompts)``)
        or the graph; by default, the graphs probed in this process. Your files stay as they
        are: copy the ones you want over them.
        """
        if isinstance(source, PromptExporter):
            return source.export(directory, self.best_candidate)
        return export_prompts(source, directory, self.best_candidate, self.seed_candidate)


@runtime_checkable
class PromptApplier(Protocol):
    """What ``Result.apply(target, system=...)`` takes: a System that writes prompts."""

    def apply(self, target: Any, prompts: Mapping[str, str]) -> None:
        """Write ``prompts`` into ``target``."""
        ...


@runtime_checkable
class PromptExporter(Protocol):
    """What ``Result.export(directory, source)`` calls for a System: its own export."""

    def modules(self) -> dict[str, str]:
        """The system's seed prompts."""
        ...

    def export(self, directory: Any, prompts: Mapping[str, str]) -> dict[str, str]:
        """Write the file-based ``prompts`` to copies under ``directory``."""
        ...
