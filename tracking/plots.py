"""PNG plots of an optimization: best score vs rollouts, the Pareto front, the lineage tree.

Every function takes a ``gg.Result``, a run directory (its ``state.json`` checkpoint), or a JSON
file holding a Result or a checkpoint, so the plots can be drawn from files on disk after the fact.
Figures are built with matplotlib's object API on the Agg canvas: no pyplot, no global backend
switch, safe off the main thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gepa_graph import pareto
from gepa_graph.result import CandidateRecord, Result

_ORIGIN_COLORS = {"seed": "#444444", "mutation": "#1f77b4", "merge": "#d62728"}


def load_source(source: Result | str | Path) -> Result:
    """A Result from a Result, a run directory, or a JSON file (Result dump or checkpoint)."""
    if isinstance(source, Result):
        return source
    path = Path(source)
    from gepa_graph.state import OptimizerState
    from gepa_graph.store import RunStore

    if path.is_dir():
        return RunStore(path).load_result()
    data = json.loads(path.read_text(encoding="utf-8"))
    if "best_candidate" in data:
        return Result.model_validate(data)
    return OptimizerState.model_validate(data).to_result(path.parent)


def _by_discovery(records: Sequence[CandidateRecord]) -> list[CandidateRecord]:
    return sorted(records, key=lambda r: (r.rollouts_at_discovery, r.iteration))


def _x(record: CandidateRecord) -> int:
    """Where a candidate sits on a rollouts axis: the seed at 0 (as in MLflow's charts)."""
    return record.rollouts_at_discovery if record.parent_ids else 0


def score_history(result: Result) -> list[tuple[int, float, float]]:
    """(rollouts, best mean so far, Pareto aggregate so far) after each accepted candidate,
    the seed at rollout 0.

    The Pareto aggregate is the mean over validation examples of the best score any candidate
    accepted so far reached on that example: what a per-example oracle over the pool would score.
    """
    history = []
    best = float("-inf")
    seen: dict[str, dict[str, float]] = {}
    for record in _by_discovery(result.candidates):
        best = max(best, record.mean_score)
        seen[record.id] = record.val_scores
        keys = result.val_keys or sorted({k for scores in seen.values() for k in scores})
        history.append((_x(record), best, pareto.pareto_aggregate(seen, keys) if keys else 0.0))
    return history


def _keys(result: Result) -> list[str]:
    """The validation examples' keys, in order (those the candidates ran, for an old result
    without ``val_keys``)."""
    return result.val_keys or sorted({k for r in result.candidates for k in r.val_scores})


def _fronts(result: Result) -> dict[str, set[str]]:
    """Validation example key -> ids of the candidates with the top score on it."""
    return pareto.fronts({r.id: r.val_scores for r in result.candidates}, _keys(result))


def _finish(figure: Figure, path: str | Path | None) -> Figure:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=110)
    return figure


def plot_score_vs_rollouts(source: Result | str | Path, path: str | Path | None = None) -> Figure:
    """The best and Pareto-front validation scores over rollouts spent, from anything
    ``load_source`` reads; saved as PNG to ``path`` when given (a run's ``plots/`` artifact)."""
    result = load_source(source)
    history = score_history(result)
    end = max(result.rollouts_used, history[-1][0])
    xs = [h[0] for h in history] + [end]
    figure = Figure(figsize=(7, 4.2))
    axes = figure.add_subplot()
    axes.step(xs, [h[1] for h in history] + [history[-1][1]], where="post", label="best mean (val)")
    axes.step(
        xs,
        [h[2] for h in history] + [history[-1][2]],
        where="post",
        linestyle="--",
        label="Pareto aggregate",
    )
    axes.scatter(
        [_x(r) for r in result.candidates],
        [r.mean_score for r in result.candidates],
        s=18,
        color="#888888",
        label="accepted candidates",
        zorder=3,
    )
    axes.set_xlabel("rollouts used")
    axes.set_ylabel("validation score")
    axes.set_title("Best validation score vs rollouts")
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    return _finish(figure, path)


def pareto_members(result: Result) -> dict[str, int]:
    """Candidate id -> number of validation examples on which it reaches the best score (> 0)."""
    wins: dict[str, int] = {}
    for members in _fronts(result).values():
        for cid in members:
            wins[cid] = wins.get(cid, 0) + 1
    return wins


def plot_pareto_front(source: Result | str | Path, path: str | Path | None = None) -> Figure:
    """Heatmap of every candidate's score on every validation example; dots mark per-example
    best scores, so rows with dots are the Pareto front."""
    result = load_source(source)
    keys = _keys(result)
    rows = sorted(result.candidates, key=lambda r: r.mean_score, reverse=True)
    wins = pareto_members(result)
    front = _fronts(result)
    matrix = [[r.val_scores.get(k, float("nan")) for k in keys] for r in rows]
    figure = Figure(figsize=(min(4 + 0.35 * len(keys), 16), 1.5 + 0.35 * len(rows)))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, aspect="auto", cmap="viridis", interpolation="nearest")
    for i, record in enumerate(rows):
        for j, key in enumerate(keys):
            if record.id in front.get(key, ()):
                axes.plot(j, i, "o", color="white", markersize=3)
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels(
        [f"{'* ' if r.id in wins else ''}{r.id[:8]} ({r.mean_score:.3f})" for r in rows]
    )
    axes.set_xticks(range(len(keys)))
    axes.set_xticklabels([k[:12] for k in keys], rotation=90, fontsize=7)
    axes.set_xlabel("validation example (dot: best score on that example; *: on the Pareto front)")
    axes.set_title("Pareto front: per-example validation scores")
    figure.colorbar(image, ax=axes, fraction=0.03)
    return _finish(figure, path)


def plot_lineage(source: Result | str | Path, path: str | Path | None = None) -> Figure:
    """Lineage tree: each candidate at (rollouts when found, mean score), edges from parents."""
    result = load_source(source)
    by_id = {r.id: r for r in result.candidates}
    figure = Figure(figsize=(8, 5))
    axes = figure.add_subplot()
    for record in result.candidates:
        for parent_id in record.parent_ids:
            parent = by_id.get(parent_id)
            if parent is not None:
                axes.annotate(
                    "",
                    xy=(_x(record), record.mean_score),
                    xytext=(_x(parent), parent.mean_score),
                    arrowprops={"arrowstyle": "->", "color": "#999999", "lw": 0.8},
                )
    for origin, color in _ORIGIN_COLORS.items():
        members = [r for r in result.candidates if r.origin == origin]
        if members:
            axes.scatter(
                [_x(r) for r in members],
                [r.mean_score for r in members],
                color=color,
                label=origin,
                zorder=3,
            )
    best = by_id[result.best_id]
    axes.scatter(
        [_x(best)],
        [best.mean_score],
        s=220,
        facecolors="none",
        edgecolors="#2ca02c",
        linewidths=2,
        label="best",
        zorder=4,
    )
    for record in result.candidates:
        axes.annotate(
            record.id[:6],
            (_x(record), record.mean_score),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
        )
    axes.set_xlabel("rollouts used when found")
    axes.set_ylabel("mean validation score")
    axes.set_title("Candidate lineage")
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    return _finish(figure, path)


PLOTS = {
    "score_vs_rollouts.png": plot_score_vs_rollouts,
    "pareto_front.png": plot_pareto_front,
    "lineage.png": plot_lineage,
}


def save_plots(source: Result | str | Path, out_dir: str | Path) -> list[Path]:
    """Write every plot as PNG into ``out_dir``; returns the paths."""
    result = load_source(source)
    paths = []
    for filename, plot in PLOTS.items():
        target = Path(out_dir) / filename
        plot(result, target)
        paths.append(target)
    return paths
