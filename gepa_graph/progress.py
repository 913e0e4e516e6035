"""A live terminal display of an optimization, driven only by events."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from gepa_graph.events import (
    BudgetUpdated,
    CandidateAccepted,
    Listener,
    OptimizationFinished,
    OptimizationStarted,
)


class ProgressDisplay(Listener):
    """A listener (``progress=True``) that shows the budget as a bar and each accepted
    candidate as a line, on stderr so it never mixes with a program's output."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task: TaskID | None = None  # the bar, while _progress shows it

    def on_optimization_started(self, event: OptimizationStarted) -> None:
        """Print what is optimized and start the bar."""
        self._start(event)

    def on_candidate_accepted(self, event: CandidateAccepted) -> None:
        """Print the candidate's line."""
        star = "[bold green]new best[/]" if event.is_best else ""
        self.console.print(
            f"iteration {event.iteration}: accepted {event.candidate.origin} "
            f"{event.candidate.id[:8]} val {event.mean_score:.3f} "
            f"({event.rollouts_used} rollouts) {star}"
        )

    def on_budget_updated(self, event: BudgetUpdated) -> None:
        """Move the bar."""
        if self._progress is None or self._task is None:
            return
        ledger = event.ledger
        self._progress.update(
            self._task,
            completed=ledger.rollouts_used,
            best=f"{event.best_score:.3f}",
            pool=event.pool_size,
            cost=f"${ledger.cost_usd:.4f}",
            iteration=event.iteration,
            slots=_slots(event),
        )

    def on_optimization_finished(self, event: OptimizationFinished) -> None:
        """Stop the bar and print the outcome."""
        self.close()
        self.console.print(
            f"[bold]done[/] ({event.stop_reason}): best {event.best_score:.3f} vs seed "
            f"{event.seed_score:.3f}, {event.ledger.rollouts_used} rollouts, "
            f"${event.ledger.cost_usd:.4f}, {event.iterations} iterations"
        )

    def _start(self, event: OptimizationStarted) -> None:
        where = f" in {event.run_dir}" if event.run_dir else ""
        verb = "resuming" if event.resumed else "optimizing"
        self.console.print(
            f"{verb} {len(event.seed_prompts)} module(s) on {event.n_train} train / "
            f"{event.n_val} val examples{where}"
        )
        self._progress = Progress(
            TextColumn("iter {task.fields[iteration]}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} rollouts"),
            TextColumn(
                "best {task.fields[best]} · pool {task.fields[pool]} · {task.fields[cost]}"
                "{task.fields[slots]}"
            ),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._task = self._progress.add_task(
            "gepa",
            total=event.config.get("max_rollouts"),
            best="-",
            pool=0,
            cost="$0",
            iteration=0,
            slots="",
        )
        self._progress.start()

    def close(self) -> None:
        """Stop the live bar, leaving the terminal as it was."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _slots(event: BudgetUpdated) -> str:
    """' · 12 in flight, slots 87% busy': how well the run keeps its rollout slots full."""
    if event.slot_utilization is None:
        return ""
    return f" · {event.rollouts_in_flight} in flight, slots {event.slot_utilization:.0%} busy"
