"""Plots: the numbers behind them, and PNGs drawn from a Result or from files on disk."""

from __future__ import annotations

from gepa_graph.events import Ledger
from gepa_graph.result import CandidateRecord, Result
from gepa_graph.state import OptimizerState
from gepa_graph.store import RunStore
from gepa_graph.tracking import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _record(cid, parents, origin, rollouts, scores) -> CandidateRecord:
    return CandidateRecord(
        id=cid,
        prompts={"m": cid},
        parent_ids=parents,
        origin=origin,
        val_scores=scores,
        mean_score=sum(scores.values()) / len(scores),
        iteration=rollouts // 10,
        rollouts_at_discovery=rollouts,
    )


# Two children good on different examples: the Pareto aggregate beats every single candidate.
CANDIDATES = [
    _record("seed", (), "seed", 3, {"a": 0.0, "b": 0.0, "c": 0.5}),
    _record("left", ("seed",), "mutation", 12, {"a": 1.0, "b": 0.0, "c": 0.5}),
    _record("right", ("seed",), "mutation", 20, {"a": 0.0, "b": 1.0, "c": 1.0}),
    _record("both", ("left", "right"), "merge", 31, {"a": 1.0, "b": 1.0, "c": 0.5}),
]


def _result() -> Result:
    return Result(
        best_id="both",
        best_candidate={"m": "both"},
        best_score=2.5 / 3,
        seed_candidate={"m": "seed"},
        seed_score=0.5 / 3,
        candidates=CANDIDATES,
        rejected=[],
        rollouts_used=40,
        ledger=Ledger(rollouts_used=40),
        iterations=4,
        stop_reason="max_rollouts",
        val_keys=["a", "b", "c"],
    )


def test_score_history_tracks_best_mean_and_pareto_aggregate():
    history = plots.score_history(_result())
    assert [h[0] for h in history] == [0, 12, 20, 31]  # the seed at rollout 0
    assert [round(h[1], 4) for h in history] == [0.1667, 0.5, 0.6667, 0.8333]
    assert [round(h[2], 4) for h in history] == [0.1667, 0.5, 1.0, 1.0]


def test_pareto_members_count_examples_won():
    assert plots.pareto_members(_result()) == {"left": 1, "right": 2, "both": 2}


def test_plots_from_a_run_dir_and_a_result_file(tmp_path):
    result = _result()
    state = OptimizerState(
        candidates=CANDIDATES,
        best_id="both",
        val_keys=["a", "b", "c"],
        ledger=Ledger(rollouts_used=40),
        stop_reason="max_rollouts",
    )
    RunStore(tmp_path / "run").save_state(state)
    paths = plots.save_plots(tmp_path / "run", tmp_path / "from_run_dir")
    assert sorted(p.name for p in paths) == [
        "lineage.png",
        "pareto_front.png",
        "score_vs_rollouts.png",
    ]
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in paths)

    (tmp_path / "result.json").write_text(result.model_dump_json())
    figure = plots.plot_lineage(tmp_path / "result.json", tmp_path / "lineage.png")
    assert (tmp_path / "lineage.png").read_bytes().startswith(PNG_MAGIC)
    # one arrow per parent link: left, right from seed; both from left and right
    assert len(figure.axes[0].texts) - len(CANDIDATES) == 4
