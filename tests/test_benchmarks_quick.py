"""Quick modes of benchmarks 1-3 (seconds each): they run and write well-formed results.

No timing is asserted here; the full runs live in benchmarks/ and benchmarks/README.md.
"""

import json
import math
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not installed
    sys.path.append(str(ROOT))

pytest.importorskip("gepa", reason="the reference gepa package (pip install '.[bench]')")

from benchmarks import local_runtime, overhead, real_model, report, search_efficiency, wall_clock
from benchmarks.rule_family import FAMILY, RuleAdapter, RuleTask


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_reflection_lm_reads_both_optimizers_prompts():
    """The shared scripted reflection LM finds the same instruction and feedback in
    gepa_graph's reflection prompt and in gepa 0.1.4's, so both get the same proposal."""
    from gepa.strategies.instruction_proposal import InstructionProposalSignature

    import gepa_graph as gg
    from gepa_graph.evaluation import EvalResult
    from gepa_graph.example import as_dataset
    from gepa_graph.reflection import build_reflective_dataset, render_reflection_prompt

    task = RuleTask(FAMILY["two-module"], data_seed=3)
    current = "You are the solver.\nrule-1. For type 1 questions, apply procedure 1."
    prompts = {**task.seed_prompts(), "solver": current}
    examples = [ex for ex in task.train if any(k % 2 for k in ex["types"])][:3]
    trace = gg.Trace()
    outputs = [task.student(prompts, ex, trace) for ex in examples]
    scores = [task.score(ex, out) for ex, out in zip(examples, outputs)]
    assert any("missing rule-" in s.feedback_for("solver") for s in scores)

    results = [
        EvalResult(
            example_key=ex["id"],
            score=s.value,
            feedback=s.feedback,
            module_feedback=s.module_feedback,
            output=out,
        )
        for ex, s, out in zip(examples, scores, outputs)
    ]
    ours = render_reflection_prompt(
        "solver",
        current,
        build_reflective_dataset("solver", None, as_dataset(examples, "x"), results),
        2000,
    )
    adapter = RuleAdapter(task)
    batch = adapter.evaluate(examples, prompts, capture_traces=True)
    dataset = adapter.make_reflective_dataset(prompts, batch, ["solver"])["solver"]
    theirs = InstructionProposalSignature.prompt_renderer(
        {"current_instruction_doc": current, "dataset_with_feedback": dataset}
    )

    lm = task.reflection_lm(noise_seed=0)
    assert lm(ours) == lm(theirs)
    assert lm.unparsed == 0
    assert [r["Feedback"] for r in dataset] == [s.feedback_for("solver") for s in scores]


def test_search_efficiency_quick(tmp_path):
    out = tmp_path / "search.json"
    results = search_efficiency.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(results))
    variant = "gg validation=best_bound"
    assert {r["optimizer"] for r in data["runs"]} == {"gepa_graph", "gepa", variant}
    for run in data["runs"]:
        assert run["candidates"] and all(
            _finite(c["val"]) and _finite(c["test"]) for c in run["candidates"]
        )
        assert run["rollouts_used"] > 0 and run["unparsed_prompts"] == 0
        # Rollouts counted at the student, by split: some went to validation, not all.
        assert 0 < run["validation_share"] < 1
    (summary,) = data["summaries"]
    assert summary["seeds"] == data["params"]["seeds"]
    budget = str(summary["budget"])  # JSON keys are strings
    assert [row["budget"] for row in summary["checkpoints"]] == data["params"]["checkpoints"][
        budget
    ]
    for row in summary["checkpoints"]:
        for optimizer in ("gepa_graph", "gepa", variant):
            assert all(_finite(v) for v in row[optimizer]["val"] + row[optimizer]["test"])
    for optimizer in ("gepa_graph", variant):
        assert 0 <= summary["reach_gepa_final"][optimizer]["reached"] <= summary["seeds"]
    text = search_efficiency.markdown(data)
    assert "| task |" in text and "| optimizer | budget |" in text and variant in text


def test_wall_clock_quick(tmp_path):
    out = tmp_path / "wall.json"
    wall_clock.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    assert [row["optimizer"] for row in data["rows"]] == ["gepa_graph", "gepa_graph sequential"]
    for row in data["rows"]:
        for optimizer in ("gepa_graph", "gepa"):
            run = row[optimizer]
            assert run["rollouts"] > 0 and run["seconds"] > 0
            assert _finite(run["efficiency"]) and _finite(run["ideal_seconds"])
        assert _finite(row["speedup"]) and _finite(row["speedup_per_rollout"])
    assert "| C |" in wall_clock.markdown(data)


def test_overhead_quick(tmp_path):
    out = tmp_path / "overhead.json"
    overhead.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    m = data["measurements"]
    for key in ("bare_invoke_ms", "bare_ainvoke_ms", "system_rollout_ms"):
        assert _finite(m[key]) and m[key] > 0
    for key in ("optimize", "gepa"):
        assert m[key]["rollouts"] > 0 and _finite(m[key]["per_rollout"])
    assert "bare `graph.invoke`" in overhead.markdown(data)


def test_real_model_exits_cleanly_without_the_local_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(real_model, "unavailable_reason", lambda: "not installed (test)")
    assert real_model.main(["--out", str(tmp_path / "real.json")]) is None
    assert "skipped" in capsys.readouterr().out
    assert not (tmp_path / "real.json").exists()


def test_report_renders_results_into_the_readme(tmp_path):
    results = tmp_path / "results"
    search_efficiency.main(["--quick", "--out", str(results / "search_efficiency.json")])
    readme = tmp_path / "README.md"
    readme.write_text(f"# B\n\n{report.START}\nold\n{report.END}\n\ntail\n")
    assert report.main(["--readme", str(readme), "--results", str(results), "--check"]) == 1
    assert report.main(["--readme", str(readme), "--results", str(results)]) == 0
    text = readme.read_text()
    assert "old" not in text and text.endswith("tail\n")
    assert "quick-mode numbers" in text and "No results yet" in text
    assert report.main(["--readme", str(readme), "--results", str(results), "--check"]) == 0


def test_real_model_runs_end_to_end_on_a_fake_local_engine(tmp_path, monkeypatch):
    """The real-model benchmark's whole path (LiteLLM `local/` provider, both optimizers, the
    report) with the local model's backend replaced by a scripted stand-in."""
    from gepa_graph import local as lm

    pytest.importorskip("langchain_litellm")
    labels = dict(real_model.DATA)
    rule = "Answer with exactly one lowercase word: positive, negative or neutral."

    class FakeBackend:
        slots = 1

        def chat(self, request):
            messages = request["messages"]
            text = "\n".join(str(m.get("content", "")) for m in messages)
            if messages[0]["role"] == "system":  # the classifier
                user = messages[-1]["content"]
                reply = labels[user] if rule in text else f"This text says: {user}"
            else:  # a reflection prompt
                reply = f"Here is the instruction:\n```\n{rule}\n```"
            return {
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": reply},
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            }

        def close(self):
            pass

    old = lm.set_engine(
        lm.LocalEngine(factory=lambda path: FakeBackend(), path=lambda: "fake.gguf")
    )
    try:
        monkeypatch.setattr(real_model, "unavailable_reason", lambda: None)
        out = tmp_path / "real_model.json"
        results = real_model.main(
            ["--budget", "17", "--n-train", "3", "--n-val", "4", "--n-test", "4", "--out", str(out)]
        )
    finally:
        lm.set_engine(old)
    data = json.loads(out.read_text())
    assert set(data["runs"]) == {"gepa_graph", "gepa"}
    for (run,) in data["runs"].values():  # one seed: one run per optimizer
        assert run["seed_val"] == 0.0 and run["best_val"] == 1.0 and run["test"] == 1.0
        assert run["seed_test"] == 0.0 and run["seed"] == 0
        assert run["best_prompt"] == rule
    assert results["params"]["budget"] == 17
    assert "| optimizer |" in real_model.markdown(data)


@pytest.mark.local_model
def test_local_runtime_quick_mode(tmp_path):
    """The runtime benchmark's quick mode on the real model: one worker process, every figure."""
    from gepa_graph import local

    if local.runtime_problem():
        pytest.skip(local.runtime_problem())
    out = tmp_path / "local_runtime.json"
    local_runtime.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    row = data["variants"]["xllamacpp"]
    assert _finite(row["load_s"]) and row["peak_rss_mb"] > 500  # the 1.1 GB model is in memory
    for key in (
        "prompt_tps_1",
        "prompt_tps_4",
        "gen_tps_1",
        "gen_tps_4",
        "demo_rps_1",
        "demo_rps_4",
    ):
        assert _finite(row["quiet"][key]) and row["quiet"][key] > 0
    assert "| xllamacpp | as it is |" in local_runtime.markdown(data)


def test_concurrency_quality_quick(tmp_path):
    from benchmarks import concurrency_quality

    out = tmp_path / "cq.json"
    concurrency_quality.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    for by_c in data["rows"].values():
        assert set(by_c) == {"16", "64"}
        for settings in by_c.values():
            assert set(settings) == set(concurrency_quality.SETTINGS)
            for runs in settings.values():
                assert len(runs) == data["params"]["seeds"]
                assert all(0 <= r["val"] <= 1 and 0 <= r["test"] <= 1 for r in runs)
                assert all(r["seconds"] > 0 and 0 < r["slot_use"] <= 1 for r in runs)
                assert all(r["rollouts"] <= data["params"]["budget"] for r in runs)
            # One proposal at a time is never faster than several in flight (virtual time).
            wall = {name: sum(r["seconds"] for r in runs) for name, runs in settings.items()}
            assert wall["sequential"] >= wall["default"]
    text = concurrency_quality.markdown(data)
    header = next(line for line in text.splitlines() if line.startswith("| task |"))
    for column in ("C", "val", "val vs sequential", "test", "wall", "slot use"):
        assert f"| {column} |" in header
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| two-module |")]
    assert len(rows) == 2 * len(concurrency_quality.SETTINGS)
    for row in rows:
        assert row[1] in ("16", "64")
        assert re.fullmatch(r"[+-]\d\.\d{3}", row[4])  # val vs sequential
        assert 0 < float(row[8]) <= 1  # slot use
    assert all(row[4] == "+0.000" for row in rows if row[2] == "sequential")
