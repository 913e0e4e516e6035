"""What determines a run, so a resume refuses other inputs instead of paying again.

The run folder's ``run.json`` (written and read by ``gepa_graph.store.RunStore``) holds a hash
of each input that decides what a run computes: the config (budgets aside: extending a budget on
resume is what resume is for), the seed prompts, the training and validation examples (contents,
not just keys), the reflection LM and the metric (its qualified name and a hash of its source,
or the ``version`` attribute a metric may carry: a resume must not mix two metrics' scores). A resume compares them and names, in one line, what
differs. The folder's other inconsistent states are one-line errors too: nothing to resume, or a
checkpoint whose journal is gone (every finished rollout would be paid for again), or a new run
over an old one. This module decides; the store reads and writes the files.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gepa_graph.config import OptimizeConfig
from gepa_graph.errors import ResumeMismatch, RunExists
from gepa_graph.example import Example, stable_json

BUDGET_FIELDS = frozenset(
    {"max_rollouts", "max_cost_usd", "max_seconds", "max_iterations", "max_stale_iterations"}
)


def _digest(value: Any) -> str:
    return hashlib.sha256(stable_json(value).encode()).hexdigest()[:16]


def fingerprint(
    config: OptimizeConfig,
    seed_prompts: Mapping[str, str] | None,
    train: Sequence[Example],
    val: Sequence[Example],
    reflection_lm: str | None,
    metric: Callable[..., object] | None = None,
) -> dict[str, str | None]:
    """A hash per input that decides what the run computes (budgets left out: a resume may
    extend them); ``run.json`` holds it and a resume must match it. ``seed_prompts`` None (a
    system whose prompts a probe confirms, not yet probed) leaves them out, to be compared
    once known."""
    settings = {k: v for k, v in config.model_dump(mode="json").items() if k not in BUDGET_FIELDS}
    found: dict[str, str | None] = {
        "config": _digest(settings),
        "trainset": _digest([example.to_dict() for example in train]),
        "valset": _digest([example.to_dict() for example in val]),
        "reflection LM": reflection_lm,
    }
    if metric is not None:
        found["metric"] = metric_identity(metric)
    if seed_prompts is not None:
        found["seed prompts"] = _digest(dict(seed_prompts))
    return found


def metric_identity(metric: Callable[..., object]) -> str:
    """What identifies a metric across processes: its ``version`` attribute when it has one
    (for a metric whose meaning does not live in its source), else its qualified name and a
    hash of its source (of its class, for a callable object)."""
    version = getattr(metric, "version", None)
    if isinstance(version, (str, int)):
        return f"version {version}"
    while isinstance(metric, functools.partial):  # the function it wraps says what it does
        metric = metric.func
    target = metric if inspect.isroutine(metric) else type(metric)
    target = getattr(target, "__func__", target)  # a bound method: its function
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
    source: str | list[object]
    try:
        source = inspect.getsource(target)
    except (OSError, TypeError):  # defined where no source is kept (a REPL, a C function)
        code = getattr(target, "__code__", None)
        source = (
            [
                code.co_code.hex(),
                code.co_names,
                [repr(c) for c in code.co_consts if not inspect.iscode(c)],
            ]
            if code is not None
            else ""
        )
    return f"{name} {_digest(source)}"


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
    # A name the folder lacks was not fingerprinted when it was written (an older run).
    differing = [name for name, value in current.items() if name in saved and saved[name] != value]
    if differing:
        raise ResumeMismatch(
            f"cannot resume {run_dir}: the {', '.join(differing)} differ from the run's; resume "
            "with the same inputs (budgets may change), or start a new run_dir"
        )
