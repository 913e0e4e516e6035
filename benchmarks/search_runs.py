"""Benchmark 1's runs: one optimization per (optimizer, task, seed, budget, configuration),
gepa_graph or gepa 0.1.4 on the same rule-learning task (rule_family.py), each reduced to the
candidates it found (when, validation and held-out test score) and where its rollouts went.

Rollouts are counted at the student, by the split of the example they ran (``va`` validation,
``tr`` training), the same way for both optimizers: the validation share is exact.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import gepa_graph as gg
from benchmarks.rule_family import FAMILY, RuleAdapter, RuleTask

CONFIGS: list[dict[str, Any]] = [
    {"selection": "pareto", "merge": True},
    {"selection": "pareto", "merge": False},
    {"selection": "current_best", "merge": True},
    {"selection": "current_best", "merge": False},
]
OPTIMIZERS = ("gepa_graph", "gepa")
# The search features of issue 12 switched off: the ablation rows add one feature to this;
# "gg all_on" switches every one on (bandit and joint proposals are alternative module
# selectors: it takes the adaptive one); "gg steady state" lets the engine start proposals beside
# each other as it does by default (every other row runs one at a time: see run_gepa_graph).
BASELINE: dict[str, Any] = {
    "minibatch_sampler": "epoch",
    "module_selection": "round_robin",
    "validation": "full",
    "merge_schedule": "after_accept",
    "rejected_attempts_shown": 0,
}
# Issue 22's validation economy: each policy on top of the defaults, and the defaults before it.
ECONOMY: dict[str, dict[str, Any]] = {
    "gg previous defaults": {"reuse_rollouts": False, "staged_minibatch": False},
    "gg reuse off": {"reuse_rollouts": False},
    **{
        f"gg validation={name}": {"validation": name}
        for name in ("parent_test", "best_bound", "predicted", "lazy")
    },
    "gg without staged_minibatch": {"staged_minibatch": False},
    "gg regression_screen=3": {"regression_screen": 3},
    "gg regression_screen=6": {"regression_screen": 6},
}
VARIANTS: dict[str, dict[str, Any]] = {
    **ECONOMY,
    "gg baseline": BASELINE,
    "gg +failure_aware": {**BASELINE, "minibatch_sampler": "failure_aware"},
    "gg +racing": {**BASELINE, "validation": "racing"},
    "gg +screening": {**BASELINE, "validation": "screening"},
    "gg +joint_adaptive": {**BASELINE, "module_selection": "adaptive"},
    "gg +joint_all": {**BASELINE, "module_selection": "all"},
    "gg +bandit": {**BASELINE, "module_selection": "bandit"},
    "gg +diversity_merge": {**BASELINE, "merge_schedule": "diversity"},
    "gg +rejected_shown": {**BASELINE, "rejected_attempts_shown": 3},
    "gg all_on": {
        "minibatch_sampler": "failure_aware",
        "module_selection": "adaptive",
        "validation": "racing",
        "merge_schedule": "diversity",
        "rejected_attempts_shown": 3,
    },
    "gg steady state": {"parallel_proposals": None},
}


class CountingStudent:
    """The task's student, counting the rollouts it runs per split (by example id prefix)."""

    def __init__(self, task: RuleTask) -> None:
        self.task = task
        self.calls: dict[str, int] = {"va": 0, "tr": 0}

    def count(self, example: Mapping[str, Any]) -> None:
        split = str(example["id"])[:2]
        self.calls[split] = self.calls.get(split, 0) + 1

    def __call__(
        self, prompts: Mapping[str, str], example: Mapping[str, Any], trace: gg.Trace | None = None
    ) -> str:
        self.count(example)
        return self.task.student(prompts, example, trace)

    def validation_share(self) -> float:
        """Validation rollouts / all rollouts the student ran."""
        total = sum(self.calls.values())
        return self.calls["va"] / total if total else 0.0


class CountingAdapter(RuleAdapter):
    """gepa's adapter over the same student, counting rollouts per split."""

    def __init__(self, task: RuleTask, counter: CountingStudent) -> None:
        super().__init__(task)
        self.counter = counter

    def evaluate(
        self, batch: list[dict[str, Any]], candidate: dict[str, str], capture_traces: bool = False
    ) -> Any:
        for example in batch:
            self.counter.count(example)
        return super().evaluate(batch, candidate, capture_traces)


def run_gepa_graph(
    task: RuleTask,
    seed: int,
    budget: int,
    selection: str,
    merge: bool,
    minibatch: int,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One gepa_graph run (its defaults plus ``options``) reduced to what the report needs.

    One proposal at a time (``parallel_proposals=1``) unless ``options`` says otherwise: the
    rollouts here are instant, so on a quiet machine the default engine goes one proposal at a
    time anyway, but on a busy one its 0.1 s overlap rule starts proposals beside each other
    at random moments and the same seed no longer gives the same run."""
    reflection = task.reflection_lm(noise_seed=seed)
    student = CountingStudent(task)
    config = gg.OptimizeConfig(
        minibatch_size=minibatch,
        candidate_selection=selection,
        use_merge=merge,
        seed=seed,
        max_rollouts=budget,
        **{"parallel_proposals": 1, **(options or {})},
    )
    with tempfile.TemporaryDirectory(prefix="gg-bench-") as tmp:
        started = time.perf_counter()
        result = gg.optimize(
            gg.FunctionSystem(modules=task.seed_prompts(), fn=student),
            task.train,
            task.val,
            metric=task.metric,
            reflection_lm=reflection,
            config=config,
            run_dir=Path(tmp) / "run",
            progress=False,
        )
        seconds = time.perf_counter() - started
    n_val = len(task.val)
    candidates = [
        {
            "at": c.rollouts_at_discovery,
            "val": c.mean_score,
            "test": task.mean_score(c.prompts, task.test),
            "origin": c.origin,
            # A partial vector (validation stopped early) is not a validation score.
            "complete": len(c.val_scores) == n_val,
        }
        for c in result.candidates
    ]
    return {
        "rollouts_used": result.rollouts_used,
        "validation_share": student.validation_share(),
        "seconds": seconds,
        "stop_reason": result.stop_reason,
        "reflection_calls": reflection.calls,
        "unparsed_prompts": reflection.unparsed,
        "candidates": candidates,
        "final_val": result.best_score,
        "final_test": task.mean_score(result.best_candidate, task.test),
    }


class _Quiet:
    def log(self, message: str) -> None:
        pass


def run_gepa(
    task: RuleTask, seed: int, budget: int, selection: str, merge: bool, minibatch: int
) -> dict[str, Any]:
    """One gepa 0.1.4 run, reduced like ``run_gepa_graph``'s."""
    import gepa

    reflection = task.reflection_lm(noise_seed=seed)
    counter = CountingStudent(task)
    started = time.perf_counter()
    result = cast(Any, gepa).optimize(  # gepa's annotations do not fit a scripted LM
        seed_candidate=task.seed_prompts(),
        trainset=task.train,
        valset=task.val,
        adapter=CountingAdapter(task, counter),
        reflection_lm=reflection,
        max_metric_calls=budget,
        reflection_minibatch_size=minibatch,
        candidate_selection_strategy=selection,
        use_merge=merge,
        seed=seed,
        logger=_Quiet(),
        display_progress_bar=False,
    )
    seconds = time.perf_counter() - started
    n_val = len(task.val)
    candidates = [
        {
            "at": count + n_val,
            "val": score,
            "test": task.mean_score(prompts, task.test),
            "origin": "merge" if len(parents) > 1 else ("seed" if i == 0 else "mutation"),
            "complete": True,
        }
        for i, (count, score, prompts, parents) in enumerate(
            zip(
                result.discovery_eval_counts,
                result.val_aggregate_scores,
                result.candidates,
                result.parents,
                strict=True,
            )
        )
    ]
    best = result.best_idx
    return {
        "rollouts_used": result.total_metric_calls,
        "validation_share": counter.validation_share(),
        "seconds": seconds,
        "stop_reason": "max_metric_calls",
        "reflection_calls": reflection.calls,
        "unparsed_prompts": reflection.unparsed,
        "candidates": candidates,
        "final_val": result.val_aggregate_scores[best],
        "final_test": task.mean_score(result.candidates[best], task.test),
    }


def one_run(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job (a worker process's unit): the job's fields plus the run's record."""
    task = RuleTask(FAMILY[job["task"]], data_seed=job["seed"])
    args = (task, job["seed"], job["budget"], job["selection"], job["merge"], job["minibatch"])
    if job["optimizer"] == "gepa":
        record = run_gepa(*args)
    else:
        record = run_gepa_graph(*args, options=VARIANTS.get(job["optimizer"]))
    return {**job, **record}
