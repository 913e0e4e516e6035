"""OptimizeConfig: every knob of an optimization, validated with clear errors."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gepa_graph.errors import ConfigError


def one_line(exc: ValidationError) -> str:
    """Pydantic's multi-line report as one line: 'field: problem; field: problem'."""
    parts = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {message}" if where else message)
    return "invalid OptimizeConfig: " + "; ".join(parts)


class OptimizeConfig(BaseModel):
    """Settings of one optimization. Unknown fields are an error, so typos do not pass silently."""

    # No NaN or infinity anywhere: NaN compares false with everything and breaks the search.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    def __init__(self, **fields: Any) -> None:
        try:
            super().__init__(**fields)
        except ValidationError as exc:
            raise ConfigError(one_line(exc)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise ConfigError(one_line(exc)) from None

    # Budgets: the run stops at whichever is hit first. At least one must be set.
    max_rollouts: int | None = Field(200, gt=0, description="rollouts of the system, all kinds")
    max_cost_usd: float | None = Field(None, gt=0, description="reflection + task LM spend")
    max_seconds: float | None = Field(None, gt=0, description="wall-clock limit")
    max_iterations: int | None = Field(
        None, gt=0, description="stop after this many proposals (and merges) have started"
    )
    max_stale_iterations: int | None = Field(
        None, gt=0, description="stop after this many iterations without a new best"
    )

    minibatch_size: int = Field(
        3,
        gt=0,
        description="training examples a parent runs on before each reflection: "
        "the traces the reflection LM reads, and the test a child must pass before validation",
    )
    concurrency: int = Field(8, gt=0, le=1024, description="rollouts running at once")
    parallel_proposals: int | None = Field(
        None,
        gt=0,
        le=1024,
        description="proposals in flight at most; the engine starts one whenever a rollout "
        "slot is free. None: concurrency / (2 x minibatch_size); more buys wall time with "
        "rollouts (benchmarks/concurrency_quality.py); 1: the sequential GEPA loop",
    )
    reuse_rollouts: bool = Field(
        True,
        description="a candidate takes, instead of running it, another candidate's rollout on "
        "the same example when the two agree on every prompt that rollout read (a "
        "FunctionSystem notes what its function reads; a LangGraph rollout, the prompts its "
        "model calls carried): exact, as the rollout never saw the prompts they differ in",
    )
    regression_screen: int = Field(
        0,
        ge=0,
        description="a child that won its minibatch also runs this many training examples its "
        "parent is known to get right, and must still win on them together before validation",
    )
    catch_up: bool = Field(
        False,
        description="a proposal whose pool changed while it ran (and that cancel_stale let "
        "through) is rebased onto a better newer sibling that left its modules alone, else "
        "screened against it on the minibatch before validation (off: within 0.01 of the "
        "defaults at C=16 and 64 in benchmarks/concurrency_quality.py)",
    )
    cancel_stale: bool = Field(
        True,
        description="a proposal whose parent the parent selector would no longer pick (a "
        "candidate that joined meanwhile dominates it), or whose parent being validated did not "
        "join, is cancelled before its reflection or its child's minibatch, and the slot goes "
        "to a proposal from the pool as it is now (benchmarks/concurrency_quality.py: at "
        "C=64 the validation lost to proposals in flight falls from 0.06-0.11 to 0.02-0.07)",
    )
    seed: int = Field(
        0,
        description="seeds every random choice of the search (sampling, "
        "parent selection), so a run can be repeated",
    )

    # The search's strategies by name (gepa_graph/strategies/; objects via optimize(strategies=)).
    candidate_selection: Literal["pareto", "current_best"] = Field(
        "pareto",
        description="pareto: a parent from the per-example front, weighted by the "
        "examples it is best on; current_best: always the best mean score",
    )
    # Defaults: the best configuration measured by benchmarks/search_efficiency.py.
    module_selection: Literal["round_robin", "all", "adaptive", "bandit"] = Field(
        "adaptive",
        description="round_robin: one module per proposal, in turn; all: every "
        "module at once (joint proposal); adaptive: round robin escalating to a joint proposal "
        "when single-module children keep tying their parent; bandit: modules still improving "
        "get more turns",
    )
    minibatch_sampler: Literal["epoch", "failure_aware"] = Field(
        "epoch",
        description="failure_aware: fill minibatches with the parent's known failures "
        "and skip examples it is known to get right",
    )
    validation: Literal[
        "full", "screening", "racing", "parent_test", "best_bound", "predicted", "lazy"
    ] = Field(
        "full",
        description="screening: a quarter first (same as adaptive_validation); racing: "
        "stages of 1/4, 1/2, all, stopping a child that can no longer lead; parent_test, "
        "best_bound, predicted, lazy: stages stopped by a confidence bound on the child's full "
        "score (gepa_graph/strategies/sequential.py)",
    )
    merge_schedule: Literal["after_accept", "diversity"] = Field(
        "after_accept",
        description="after_accept: one merge due per accepted child; diversity: "
        "whenever two front lineages changed disjoint modules",
    )
    rejected_attempts_shown: int = Field(
        0,
        ge=0,
        description="earlier rejected proposals for the same parent and module shown to "
        "the reflection LM, so it does not repeat them",
    )
    mode: Literal["optimize", "search"] = Field(
        "optimize",
        description="search: inference-time search over the tasks themselves "
        "(trainset = validation set); the result also holds the best candidate per task",
    )
    skip_perfect_score: bool = Field(
        True, description="skip reflection when the parent already scores perfect_score everywhere"
    )
    perfect_score: float = Field(
        1.0,
        description="the best score an example can get: a run where the best candidate "
        "has it everywhere stops",
    )
    failure_score: float = Field(0.0, description="score of a rollout that raised or timed out")

    adaptive_validation: bool = Field(
        False,
        description="validate a child on a quarter of the validation set first and drop "
        "it there if it does worse than its parent and sets no new per-example best",
    )

    use_merge: bool = Field(
        True, description="try merging two frontier candidates that improved different modules"
    )
    max_merge_attempts: int = Field(5, ge=0, description="merges tried in one run, at most")
    merge_subsample_size: int = Field(
        5,
        gt=0,
        description="validation examples a merge must do well on before its full validation run",
    )

    rollout_timeout_s: float | None = Field(
        300.0,
        gt=0,
        description="a rollout (or a metric call) running longer is scored a "
        "failure; None waits forever (max_seconds still cuts it off)",
    )
    rollout_retries: int = Field(
        3, ge=0, description="re-runs of a rollout that failed transiently (rate limit, timeout)"
    )
    score_range: tuple[float, float] | None = Field(
        (0.0, 1.0), description="metric values outside it are errors; None accepts any finite value"
    )

    reflection_temperature: float | None = Field(
        None, ge=0, description="sampling temperature of the reflection LM (None: its default)"
    )
    reflection_max_tokens: int | None = Field(
        4096,
        gt=0,
        description="reply length limit of a reflection call; a reply cut there is "
        "rejected as truncated",
    )
    reflection_timeout_s: float = Field(
        120.0,
        gt=0,
        description="one reflection call running longer is retried once, then "
        "its proposal is rejected",
    )
    lm_max_retries: int = Field(
        6, ge=0, description="retries of a reflection call that failed transiently"
    )
    lm_backoff_s: float = Field(1.0, ge=0, description="first retry delay; doubles each retry")
    max_chars_per_field: int = Field(
        2000, gt=0, description="long trace fields are cut to this in the reflection prompt"
    )

    # Reflection guidance (gepa_graph/guidance.py) and repeated scoring (evaluation.py).
    reflection_instructions: str | dict[str, str] | None = Field(
        None,
        description="standing instructions for the reflection LM (domain rules, style, "
        "length limits), shown in every reflection prompt; a dict gives them per module",
    )
    max_prompt_chars: int | None = Field(
        None,
        gt=0,
        description="the most characters a module's prompt may have: a longer proposal is "
        "compressed by one more reflection call, then rejected (over_length_cap) if still over",
    )
    score_repeats: int = Field(
        1,
        ge=1,
        le=100,
        description="metric calls per rollout output (a noisy judge): the score is their "
        "mean, the spread is kept; the rollout itself runs once",
    )
    acceptance: Literal["strict_improvement", "confident_improvement"] = Field(
        "strict_improvement",
        description="strict_improvement: the child's minibatch sum beats the parent's; "
        "confident_improvement: by more than the repeats' standard error (score_repeats > 1)",
    )
    staged_minibatch: bool = Field(
        True,
        description="a child runs first the minibatch examples where its parent scored below "
        "the top of score_range (the only ones where it can gain) and stops there when even the "
        "top score on the rest would not pass the acceptance (score_range None: off). On: "
        "fewer rollouts to the same scores (benchmarks/search_efficiency.py), for up to 15 % "
        "more wall time where both waves run (benchmarks/concurrency_quality.py)",
    )

    @model_validator(mode="after")
    def _guidance_is_usable(self) -> OptimizeConfig:
        given = self.reflection_instructions
        texts = [given] if isinstance(given, str) else list((given or {}).values())
        if any(not text.strip() for text in texts):
            raise ValueError("reflection_instructions holds an empty text; leave it out instead")
        return self

    @model_validator(mode="after")
    def _scores_are_consistent(self) -> OptimizeConfig:
        if self.score_range is not None:
            low, high = self.score_range
            if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
                raise ValueError(
                    f"score_range {self.score_range} must be (low, high) with low < high"
                )
            if not low <= self.failure_score <= high:
                raise ValueError(
                    f"failure_score {self.failure_score} is outside score_range {self.score_range}"
                )
        return self

    @model_validator(mode="after")
    def _needs_a_budget(self) -> OptimizeConfig:
        if self.max_rollouts is None and self.max_cost_usd is None and self.max_seconds is None:
            raise ValueError("set at least one budget: max_rollouts, max_cost_usd or max_seconds")
        return self
