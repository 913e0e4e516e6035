"""The optimization's report: the headline a user reads first (the gain and what it cost) and
``report.md`` (scores, budget, and per module the best prompt with its diff to the seed), secrets
masked; ``log_report`` writes it with the result and the plots to the optimization's run."""

from __future__ import annotations

import difflib
import json
import re
import tempfile
from pathlib import Path

from mlflow import MlflowClient

from gepa_graph.redact import redact, redact_text
from gepa_graph.result import Result
from gepa_graph.tracking import schema as S


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def headline(seed_score: float, best_score: float, rollouts: int, cost_usd: float) -> str:
    """One line a user reads first: the gain and what it cost."""
    return (
        f"validation score {seed_score:.3f} (seed) -> {best_score:.3f} (best), "
        f"{best_score - seed_score:+.3f}; {rollouts} rollouts, ${cost_usd:.4f}"
    )


def render_report(result: Result) -> str:
    """Markdown report: scores, budget, and per module the best prompt and its diff to the seed."""
    best = result.candidate(result.best_id)
    lines = [
        "# gepa_graph optimization report",
        "",
        headline(
            result.seed_score, result.best_score, result.rollouts_used, result.ledger.cost_usd
        ),
        "",
        "| what | value |",
        "|---|---|",
        f"| best candidate | `{result.best_id}` ({best.origin}, iteration {best.iteration}) |",
        f"| validation score | {result.seed_score:.4f} (seed) -> {result.best_score:.4f} (best) |",
        f"| stop reason | {result.stop_reason} |",
        f"| iterations | {result.iterations} |",
        f"| rollouts used | {result.rollouts_used} |",
        f"| cost (USD) | {result.ledger.cost_usd:.4f} |",
        f"| candidates accepted | {len(result.candidates)} |",
        f"| proposals rejected | {len(result.rejected)} |",
        "",
    ]
    changed = result.changed_modules()
    for module, text in sorted(result.best_candidate.items()):
        state = "changed" if module in changed else "unchanged"
        lines.append(f"## Module `{module}` ({state})")
        lines.append("")
        if module in changed:
            seed_text = result.seed_candidate.get(module, "")
            diff = "\n".join(
                difflib.unified_diff(
                    seed_text.splitlines(),
                    text.splitlines(),
                    fromfile="seed",
                    tofile="best",
                    lineterm="",
                )
            )
            fence = _fence(diff)
            lines += ["Diff against the seed:", "", f"{fence}diff", diff, fence, ""]
        fence = _fence(text)
        lines += ["Best prompt:", "", f"{fence}text", text, fence, ""]
    return redact_text("\n".join(lines))


def log_report(client: MlflowClient, run_id: str, result: Result, plots: bool = True) -> None:
    """The end-of-run artifacts of run ``run_id``: ``report.md``, ``best_prompts.json``,
    ``result.json`` (what ``gg.load_result`` reads back) and, with ``plots``, the PNG plots."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / S.REPORT_FILE).write_text(render_report(result), encoding="utf-8")
        (root / S.BEST_PROMPTS_FILE).write_text(
            json.dumps(redact(result.best_candidate), indent=2), encoding="utf-8"
        )
        (root / S.RESULT_FILE).write_text(
            json.dumps(redact(result.model_dump(mode="json")), indent=1), encoding="utf-8"
        )
        if plots:
            from gepa_graph.tracking.plots import save_plots

            save_plots(result, root / S.PLOTS_DIR)
        client.log_artifacts(run_id, tmp)
