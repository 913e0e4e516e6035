"""The search's decisions as small strategy classes the engine receives.

Each kind has a protocol (base.py) and named implementations; ``OptimizeConfig`` names the
ones a run uses, and ``gg.optimize(..., strategies={...})`` replaces any of them with an object:

    kind              config field          names
    sampler           minibatch_sampler     epoch, failure_aware
    parent_selector   candidate_selection   pareto, current_best
    module_selector   module_selection      round_robin, all, adaptive, bandit
    acceptance        acceptance            strict_improvement, confident_improvement
    validation        validation            full, screening, racing, parent_test, best_bound,
                                            predicted, lazy (sequential.py, bounds.py)
    merge_scheduler   merge_schedule        after_accept, diversity
    stop              (always the budgets)  extra conditions given as objects are added
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gepa_graph.config import OptimizeConfig
from gepa_graph.errors import InvalidInput, WrongType
from gepa_graph.strategies.acceptance import (
    ACCEPTANCES,
    ConfidentImprovement,
    StrictImprovement,
)
from gepa_graph.strategies.base import (
    Acceptance,
    MergeScheduler,
    MinibatchSampler,
    ModuleSelector,
    ParentSelector,
    ProposalOutcome,
    Search,
    Selectable,
    StopCondition,
    ValidationPolicy,
    Verdict,
)
from gepa_graph.strategies.bounds import contenders
from gepa_graph.strategies.merging import MERGE_SCHEDULERS, AfterAccept, OnDiversity
from gepa_graph.strategies.modules import (
    MODULE_SELECTORS,
    Adaptive,
    AllModules,
    Bandit,
    RoundRobin,
)
from gepa_graph.strategies.sampling import SAMPLERS, EpochSampler, FailureAwareSampler
from gepa_graph.strategies.selection import SELECTORS, CurrentBestSelector, ParetoSelector
from gepa_graph.strategies.sequential import BestBound, Lazy, ParentTest, Predicted, Sequential
from gepa_graph.strategies.stopping import Budgets, StopAll
from gepa_graph.strategies.validation import VALIDATIONS, FullValidation, Racing, Screening

__all__ = [
    "Acceptance",
    "Adaptive",
    "AfterAccept",
    "AllModules",
    "Bandit",
    "BestBound",
    "Budgets",
    "ConfidentImprovement",
    "CurrentBestSelector",
    "EpochSampler",
    "FailureAwareSampler",
    "FullValidation",
    "Lazy",
    "MergeScheduler",
    "MinibatchSampler",
    "ModuleSelector",
    "OnDiversity",
    "ParentSelector",
    "ParentTest",
    "ParetoSelector",
    "Predicted",
    "ProposalOutcome",
    "Racing",
    "RoundRobin",
    "Screening",
    "Search",
    "Selectable",
    "Sequential",
    "StopCondition",
    "StrictImprovement",
    "Strategies",
    "ValidationPolicy",
    "Verdict",
    "build",
    "contenders",
]


@dataclass
class Strategies:
    """The collaborators that make the search's decisions."""

    sampler: MinibatchSampler
    parent_selector: ParentSelector
    module_selector: ModuleSelector
    acceptance: Acceptance
    validation: ValidationPolicy
    merge_scheduler: MergeScheduler
    stop: StopCondition


_KINDS = {
    "sampler": MinibatchSampler,
    "parent_selector": ParentSelector,
    "module_selector": ModuleSelector,
    "acceptance": Acceptance,
    "validation": ValidationPolicy,
    "merge_scheduler": MergeScheduler,
    "stop": StopCondition,
}


def build(config: OptimizeConfig, given: Mapping[str, Any] | None = None) -> Strategies:
    """The strategies ``config`` names, with any in ``given`` (kind -> object) put in their place.

    A given ``stop`` condition is added to the budgets, never replaces them.
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(_KINDS))
    if unknown:
        raise InvalidInput(f"strategies: unknown kind {unknown[0]!r}; kinds are {sorted(_KINDS)}")
    for kind, value in given.items():
        if not isinstance(value, _KINDS[kind]):
            raise WrongType(
                f"strategies[{kind!r}]: {type(value).__name__} lacks the "
                f"{_KINDS[kind].__name__} methods"
            )
    stop = Budgets() if "stop" not in given else StopAll(Budgets(), given.pop("stop"))
    named = Strategies(
        sampler=SAMPLERS[config.minibatch_sampler](),
        parent_selector=SELECTORS[config.candidate_selection](),
        module_selector=MODULE_SELECTORS[config.module_selection](),
        acceptance=ACCEPTANCES[config.acceptance](),
        validation=VALIDATIONS["screening" if config.adaptive_validation else config.validation](),
        merge_scheduler=MERGE_SCHEDULERS[config.merge_schedule](),
        stop=stop,
    )
    for kind, value in given.items():
        setattr(named, kind, value)
    return named
