"""Parent selectors: which pool candidate a proposal mutates."""

from __future__ import annotations

from gepa_graph import pareto
from gepa_graph.candidate import Candidate
from gepa_graph.strategies.base import ParentSelector, Search


def _open(search: Search) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Pool candidates in order, without the exhausted ones (unless all are), and their scores."""
    order = [cid for cid in search.scores if cid not in search.exhausted] or list(search.scores)
    return order, {cid: search.scores[cid] for cid in order}


class ParetoSelector:
    """GEPA's: a candidate of the per-example front, weighted by the fronts it wins. The front
    is taken over the candidates not exhausted, so when the leaders stop producing anything
    new, the ones they dominated get their turn."""

    def select(self, search: Search) -> Candidate:
        """A front candidate among those not exhausted, drawn with ``search.rng``."""
        order, scores = _open(search)
        return search.candidates[pareto.sample_parent(scores, search.val_keys, order, search.rng)]

    def selectable(self, search: Search) -> set[str]:
        """The surviving front candidates among those not exhausted."""
        order, scores = _open(search)
        return set(pareto.nondominated(scores, search.val_keys, order))


class CurrentBestSelector:
    """Always the best mean: greedy hill climbing."""

    def select(self, search: Search) -> Candidate:
        """The candidate with the best mean."""
        return search.candidates[search.best_id]

    def selectable(self, search: Search) -> set[str]:
        """The best only."""
        return {search.best_id}


SELECTORS: dict[str, type[ParentSelector]] = {
    "pareto": ParetoSelector,
    "current_best": CurrentBestSelector,
}
