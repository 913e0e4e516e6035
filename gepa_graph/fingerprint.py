"""What determines a run, so a resume refuses other inputs instead of paying again.

The run folder's ``run.json`` (written and read by ``gepa_graph.store.RunStore``) holds a hash
of each input that decides what a run computes: the config (budgets aside: extending a budget on
resume is what resume is for), the seed prompts, the training and validation examples (contents,
not just keys) and the reflection LM. A resume compares them and names, in one line, what
differs. The folder's other inconsistent states are one-line errors too: nothing to resume, or a
checkpoint whose journal is gone (every finished rollout would be paid for again), or a new run
over an old one. This module decides; the store reads and writes the files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gepa_graph.config import OptimizeConfig
from gepa_graph.errors import GepaGraphError
from gepa_graph.example import Example, stable_json

BUDGET_FIELDS = frozenset(
    {"max_rollouts", "max_cost_usd", "max_seconds", "max_iterations", "max_stale_iterations"}
)


class ResumeMismatch(GepaGraphError, ValueError):
    """A resume whose inputs or run folder do not match the run it would continue."""


class RunExists(GepaGraphError, FileExistsError):
    """A new run asked for a folder that already holds one."""


def _digest(value: Any) -> str:
    return hashlib.sha256(stable_json(value).encode()).hexdigest()[:16]


def fingerprint(
    config: OptimizeConfig,
    seed_prompts: Mapping[str, str],
    train: Sequence[Example],
    val: Sequence[Example],
    reflection_lm: str | None,
) -> dict:
    """A hash per input that decides what the run computes (budgets left out: a resume may
    extend them); ``run.json`` holds it and a resume must match it."""
    settings = {k: v for k, v in config.model_dump(mode="json").items() if k not in BUDGET_FIELDS}
    return {
        "config": _digest(settings),
        "seed prompts": _digest(dict(seed_prompts)),
        "trainset": _digest([example.to_dict() for example in train]),
        "valset": _digest([example.to_dict() for example in val]),
        "reflection LM": reflection_lm,
    }


def check_folder(
    run_dir: Path,
    resume: bool,
    *,
    has_state: bool,
    has_journal: bool,
    journal_empty: bool,
    state_file: str,
    journal_file: str,
) -> None:
    """Refuse, in one line, a new run over an old one, or a resume with nothing to continue or
    whose journal is gone (``RunExists``, ``ResumeMismatch``)."""
    if not resume:
        if has_state or has_journal:
            raise RunExists(
                f"{run_dir} already holds a run; pass resume=True to continue it, or choose "
                "another run_dir"
            )
        return
    if not (has_state or has_journal):
        raise ResumeMismatch(
            f"nothing to resume in {run_dir} (no {state_file} or {journal_file}); "
            "drop resume=True to start a new run there"
        )
    if has_state and (not has_journal or journal_empty):
        raise ResumeMismatch(
            f"{run_dir} has a checkpoint but its {journal_file} is missing or empty: resuming "
            "would pay again for every finished rollout; restore the journal or start a new run"
        )


def compare(run_dir: Path, saved: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Refuse, in one line naming what differs, a resume whose inputs are not the run's."""
    differing = [name for name, value in current.items() if saved.get(name) != value]
    if differing:
        raise ResumeMismatch(
            f"cannot resume {run_dir}: the {', '.join(differing)} differ from the run's; resume "
            "with the same inputs (budgets may change), or start a new run_dir"
        )
