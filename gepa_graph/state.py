"""OptimizerState: the pool with lineage and score vectors, rejections and the ledger, saved as
JSON (never pickle) with write-then-rename so a checkpoint is never torn."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from gepa_graph.events import Ledger, ProposalRejected
from gepa_graph.journal import CorruptRunDir
from gepa_graph.result import CandidateRecord, Result

STATE_FILE = "state.json"
JOURNAL_FILE = "journal.jsonl"
FORMAT = 1


class OptimizerState(BaseModel):
    format: int = FORMAT
    status: Literal["running", "finished"] = "running"
    stop_reason: str | None = None
    iteration: int = 0
    ledger: Ledger = Field(default_factory=Ledger)
    reflection_lm: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    seed_prompts: dict[str, str] = Field(default_factory=dict)
    train_keys: list[str] = Field(default_factory=list)
    val_keys: list[str] = Field(default_factory=list)
    candidates: list[CandidateRecord] = Field(default_factory=list)
    rejected: list[ProposalRejected] = Field(default_factory=list)
    best_id: str | None = None

    def to_result(self, run_dir: Path | None) -> Result:
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
        )


def save_state(state: OptimizerState, run_dir: Path) -> None:
    """Atomic: write a temporary file beside the target, fsync it, rename over the target."""
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / STATE_FILE
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=run_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(state.model_dump_json(indent=1))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(run_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_state(run_dir: Path) -> OptimizerState | None:
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        state = OptimizerState.model_validate(data)
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise CorruptRunDir(f"checkpoint {path} is corrupt: {first}") from None
    if state.format != FORMAT:
        raise CorruptRunDir(f"checkpoint {path} has format {state.format}, expected {FORMAT}")
    return state


def load_result(run_dir: str | Path) -> Result:
    """The Result saved in a run directory (finished or not)."""
    state = load_state(Path(run_dir))
    if state is None:
        raise FileNotFoundError(f"no {STATE_FILE} in {run_dir}")
    return state.to_result(Path(run_dir))
