"""The run folder's one owner (RunStore), records apart from events, the budget as the only
writer of the ledger, and the Listener base class."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import gepa_graph as gg
from gepa_graph.errors import RunDirError
from gepa_graph.events import (
    BudgetUpdated,
    CandidateAccepted,
    Event,
    EventBus,
    Listener,
    OptimizationFinished,
)
from gepa_graph.records import CandidateRecord, Ledger
from gepa_graph.state import OptimizerState
from gepa_graph.store import ATTRIBUTES_FILE, RunStore

ROOT = Path(__file__).resolve().parents[1]
SEED = CandidateRecord(
    id="s",
    prompts={"m": "x"},
    val_scores={"a": 0.5},
    mean_score=0.5,
    iteration=0,
    rollouts_at_discovery=1,
)


def test_attributes_live_in_one_file_and_older_folders_still_read(tmp_path):
    store = RunStore(tmp_path / "run")
    assert store.attribute("mlflow_run_id") is None
    store.set_attribute("mlflow_run_id", "abc")
    store.set_attributes({"mlflow_tracking_uri": "sqlite:///x.db", "note": [1, 2]})
    again = RunStore(tmp_path / "run")  # another handle on the same folder
    assert again.attributes() == {
        "mlflow_run_id": "abc",
        "mlflow_tracking_uri": "sqlite:///x.db",
        "note": [1, 2],
    }
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [ATTRIBUTES_FILE]
    # A folder written before the store: the tracker's mlflow_run.json reads as attributes.
    old = tmp_path / "old"
    old.mkdir()
    (old / "mlflow_run.json").write_text(json.dumps({"run_id": "r1", "tracking_uri": "u"}))
    assert RunStore(old).attribute("mlflow_run_id") == "r1"
    assert RunStore(old).attribute("mlflow_tracking_uri") == "u"


def test_a_store_without_a_folder_keeps_everything_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = RunStore(None)
    with store:
        store.check(resume=False, current={"config": "x"})
        store.save_state(OptimizerState(candidates=[SEED], best_id="s"))
        store.journal.record_rollout("s", gg.Example(id="a"), {"score": 1.0})
        store.set_attribute("k", "v")
        assert store.attribute("k") == "v"
        assert store.load_state() is None
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_round_trip_and_one_lock_per_folder(tmp_path):
    store = RunStore(tmp_path / "run").lock()
    try:
        with pytest.raises(RunDirError, match="in use by another optimization"):
            RunStore(tmp_path / "run").lock()
        store.save_state(OptimizerState(candidates=[SEED], best_id="s", status="finished"))
        result = RunStore(tmp_path / "run").load_result()
    finally:
        store.close()
    assert result.best_id == "s" and result.run_dir == str(tmp_path / "run")
    assert gg.load_result(tmp_path / "run") == result
    RunStore(tmp_path / "run").lock().close()  # released
    with pytest.raises(FileNotFoundError, match="no state.json"):
        gg.load_result(tmp_path / "empty")


def test_a_result_without_a_system_applies_through_the_given_system():
    result = OptimizerState(candidates=[SEED], best_id="s").to_result(None)
    with pytest.raises(TypeError, match="cannot write prompts into a object"):
        result.apply(object())
    written = []

    class Writer:
        def apply(self, target, prompts):
            written.append((target, prompts))

    result.apply("target", system=Writer())
    assert written == [("target", {"m": "x"})]


def test_events_carry_records():
    event = CandidateAccepted(candidate=SEED, is_best=True)
    assert (event.iteration, event.mean_score, event.val_scores, event.rollouts_used) == (
        0,
        0.5,
        {"a": 0.5},
        1,
    )
    fields = OptimizationFinished.model_fields
    assert fields["result"].annotation == gg.Result | None


def test_only_the_budget_writes_the_ledger():
    """No module but budget.py assigns a field of a ledger (``x.ledger.field = / +=``)."""
    offending = []
    for path in [
        *(ROOT / "gepa_graph").rglob("*.py"),
        *(ROOT / "tracking").rglob("*.py"),
        *(ROOT / "integrations").rglob("*.py"),
    ]:
        if path.name == "budget.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AugAssign)
                else []
            )
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Attribute)
                    and target.value.attr == "ledger"
                ):
                    offending.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offending == []


def test_listener_hooks_dispatch_by_event_type():
    seen = []

    class Recorder(Listener):
        def on_candidate_accepted(self, event):
            seen.append(("accepted", event.candidate.id))

        def on_event(self, event):
            seen.append(("other", type(event).__name__))

    class Custom(Event):
        pass

    class OnEventOnly:  # not callable: the bus hands it every event through on_event
        def on_event(self, event):
            seen.append(("on_event", type(event).__name__))

    base = Listener()  # every hook a no-op
    budget = BudgetUpdated(
        iteration=1, ledger=Ledger(), best_score=0.5, best_id="s", pool_size=1, pareto_score=0.5
    )
    bus = EventBus([Recorder(), base, seen.append, OnEventOnly()])
    for event in (CandidateAccepted(candidate=SEED, is_best=True), budget, Custom()):
        bus.emit(event)
    bus.close()
    assert seen[0] == ("accepted", "s")
    assert seen[1:3] == [seen[1], ("on_event", "CandidateAccepted")] and seen[1].candidate == SEED
    assert ("other", "Custom") in seen and ("on_event", "BudgetUpdated") in seen
    assert ("other", "BudgetUpdated") not in seen  # BudgetUpdated has a hook (a no-op here)
