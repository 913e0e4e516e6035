"""OptimizerState: the pool with lineage and score vectors, rejections and the ledger, saved as
JSON (never pickle) with write-then-rename so a checkpoint is never torn."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, Field

from gepa_graph.errors import GepaGraphError
from gepa_graph.events import Ledger, ProposalRejected
from gepa_graph.journal import CorruptRunDir
from gepa_graph.redact import clip, redact
from gepa_graph.result import CandidateRecord, Result

try:
    import fcntl
except ImportError:  # Windows: no folder lock
    fcntl = None

STATE_FILE = "state.json"
JOURNAL_FILE = "journal.jsonl"
LOCK_FILE = ".lock"
FORMAT = 1
# A rejected proposal's text is kept for reading, not for resuming: bounded, so a run of huge
# unusable replies cannot grow the checkpoint without limit.
MAX_REJECTED_CHARS = 4000


class RunDirError(GepaGraphError, OSError):
    """The run folder cannot be used: not writable, a file, or held by another run."""


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
            handle.write(json.dumps(_stored(state), indent=1, ensure_ascii=False))
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


def _stored(state: OptimizerState) -> dict[str, Any]:
    """The checkpoint's JSON: secrets masked, rejected proposals' text bounded."""
    data = state.model_dump(mode="json")
    for rejection in data["rejected"]:
        rejection["detail"] = clip(rejection["detail"], MAX_REJECTED_CHARS)
        if rejection["proposed_text"] is not None:
            rejection["proposed_text"] = clip(rejection["proposed_text"], MAX_REJECTED_CHARS)
    return redact(data)


def load_state(run_dir: Path) -> OptimizerState | None:
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        state = OptimizerState.model_validate(data)
        if state.best_id is not None and state.best_id not in {c.id for c in state.candidates}:
            raise ValueError(f"best_id {state.best_id!r} is not among its candidates")
    except (OSError, ValueError) as exc:  # bad JSON, bad UTF-8, failed validation
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CorruptRunDir(f"checkpoint {path} is corrupt: {first}") from None
    if state.format != FORMAT:
        raise CorruptRunDir(f"checkpoint {path} has format {state.format}, expected {FORMAT}")
    return state


def lock_run_dir(run_dir: Path) -> IO[str]:
    """Create ``run_dir`` if needed, prove it writable, and lock it for this run: a second
    optimization (another process, or this one) on the same folder refuses in one line
    instead of paying for the same rollouts twice. Close the returned file to release."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(run_dir / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise RunDirError(
            f"run_dir {run_dir} cannot be used: {exc.strerror or type(exc).__name__}"
        ) from None
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunDirError(
                f"run_dir {run_dir} is in use by another optimization (pid {holder}); wait for "
                "it to finish or choose another run_dir"
            ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def load_result(run_dir: str | Path) -> Result:
    """The Result saved in a run directory (finished or not)."""
    state = load_state(Path(run_dir))
    if state is None:
        raise FileNotFoundError(f"no {STATE_FILE} in {run_dir}")
    return state.to_result(Path(run_dir))
