"""Parent selectors: which pool candidate a proposal mutates."""

from __future__ import annotations

from gepa_graph import pareto
from gepa_graph.candidate import Candidate
from gepa_graph.strategies.base import Search


class ParetoSelector:
    """GEPA's: a candidate of the per-example front, weighted by the fronts it wins."""

    def select(self, search: Search) -> Candidate:
        order = list(search.scores)
        return search.candidates[pareto.sample_parent(search.scores, search.val_keys, order,
                                                      search.rng)]


class CurrentBestSelector:
    """Always the best mean: greedy hill climbing."""

    def select(self, search: Search) -> Candidate:
        return search.candidates[search.best_id]


SELECTORS = {"pareto": ParetoSelector, "current_best": CurrentBestSelector}
