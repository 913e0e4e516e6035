"""The real-model benchmark's aggregation over seeds, and the noisy-metric benchmark's quick
mode (no model, no reference gepa needed)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not installed
    sys.path.append(str(ROOT))
noisy_metric = importlib.import_module("benchmarks.noisy_metric")
real_model = importlib.import_module("benchmarks.real_model")


def run(seed: int, seed_val: float, best_val: float, seed_test: float, test: float) -> Any:
    return {
        "seed": seed,
        "seconds": 120.0,
        "rollouts": 30,
        "seed_val": seed_val,
        "best_val": best_val,
        "seed_test": seed_test,
        "test": test,
        "candidates": 3,
        "best_prompt": "x",
    }


def results(runs: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    params = {"model": "m", "n_train": 6, "n_val": 6, "n_test": 12, "budget": 30}
    return {"params": {**params, "seeds": seeds}, "seconds": 600.0, "runs": runs}


def test_real_model_reports_mean_and_sd_over_seeds_per_optimizer() -> None:
    data = results(
        {
            "gepa_graph": [run(0, 0.0, 1.0, 0.1, 0.9), run(1, 0.2, 0.8, 0.3, 0.7)],
            "gepa": [run(0, 0.0, 0.5, 0.1, 0.5), run(1, 0.2, 0.7, 0.3, 0.5)],
        },
        [0, 1],
    )
    rows = {row[0]: row for row in real_model.aggregate(data)}
    # seeds, wall, rollouts, seed val, best val, seed test, best test, test gain, candidates
    assert rows["gepa_graph"][1:] == [
        2,
        "2.0 min",
        "30",
        "0.10 ± 0.14",
        "0.90 ± 0.14",
        "0.20 ± 0.14",
        "0.80 ± 0.14",
        "0.60 ± 0.28",
        "3.0",
    ]
    assert rows["gepa"][5:9] == ["0.60 ± 0.14", "0.20 ± 0.14", "0.50 ± 0.00", "0.30 ± 0.14"]
    text = real_model.markdown(data)
    assert "seeds 0, 1 (mean ± sd over seeds)" in text
    assert "| optimizer | seeds | wall (mean) |" in text


def test_real_model_reads_a_single_seed_result_file_of_the_old_shape() -> None:
    old = results({"gepa_graph": {k: v for k, v in run(0, 0.0, 1.0, 0, 1.0).items()}}, [0])
    del old["runs"]["gepa_graph"]["seed_test"]
    del old["params"]["seeds"]
    old["params"]["seed"] = 0
    (row,) = real_model.aggregate(old)
    assert row[4:9] == ["0.00", "1.00", "n/a", "1.00", "n/a"]  # one seed: no ± sd
    assert "seeds 0 (mean" in real_model.markdown(old)


def test_noisy_metric_benchmark_quick(tmp_path: Path) -> None:
    out = tmp_path / "noisy.json"
    noisy_metric.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    assert {row["config"] for row in data["summary"]} == set(noisy_metric.CONFIGS)
    for single in data["runs"]:
        repeats = noisy_metric.CONFIGS[single["name"]].get("score_repeats", 1)
        assert single["metric_calls"] == repeats * single["rollouts"]  # the judge never fails
        assert 0 <= single["true_val"] <= 1 and single["rollouts"] <= 90
    assert "| task | configuration | true val |" in noisy_metric.markdown(data)
