"""The per-example Pareto frontier over validation scores, and parent sampling from it.

A candidate is on the frontier of an example when no candidate scores higher there. Keeping
every candidate that is best *somewhere* (instead of only the best on average) is what lets
GEPA keep complementary strategies alive and escape local optima.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

Scores = Mapping[str, Mapping[str, float]]  # candidate id -> example key -> score


def mean_score(scores: Mapping[str, float], keys: Sequence[str]) -> float:
    return sum(scores[k] for k in keys) / len(keys)


def fronts(scores: Scores, keys: Sequence[str]) -> dict[str, set[str]]:
    """example key -> ids of the candidates with the top score on it."""
    result: dict[str, set[str]] = {}
    for key in keys:
        top = max(candidate[key] for candidate in scores.values())
        result[key] = {cid for cid, candidate in scores.items() if candidate[key] == top}
    return result


def nondominated(scores: Scores, keys: Sequence[str], order: Sequence[str]) -> list[str]:
    """Candidates on some front, minus those dominated in GEPA's sense: every front they are
    on also holds another surviving candidate that is on at least those fronts.

    Candidates are considered from the lowest mean upward (earliest first among equals), so of
    two candidates on exactly the same fronts the stronger, older one survives.
    """
    membership: dict[str, set[str]] = {cid: set() for cid in order}
    for key, members in fronts(scores, keys).items():
        for cid in members:
            membership[cid].add(key)
    alive = [cid for cid in order if membership[cid]]
    position = {cid: index for index, cid in enumerate(order)}
    by_weakness = sorted(alive, key=lambda c: (mean_score(scores[c], keys), -position[c]))
    survivors = set(alive)
    for cid in by_weakness:
        others = survivors - {cid}
        if any(membership[cid] <= membership[other] for other in others):
            survivors.discard(cid)
    return [cid for cid in order if cid in survivors]


def front_weights(scores: Scores, keys: Sequence[str], order: Sequence[str]) -> dict[str, int]:
    """Surviving candidate -> number of examples on whose front it is."""
    survivors = nondominated(scores, keys, order)
    weights = dict.fromkeys(survivors, 0)
    for members in fronts(scores, keys).values():
        for cid in members:
            if cid in weights:
                weights[cid] += 1
    return weights


def sample_parent(
    scores: Scores, keys: Sequence[str], order: Sequence[str], rng: random.Random
) -> str:
    """A parent drawn with probability proportional to the fronts it wins."""
    weights = front_weights(scores, keys, order)
    ids = list(weights)
    return rng.choices(ids, weights=[weights[c] for c in ids], k=1)[0]


def best_candidate(scores: Scores, keys: Sequence[str], order: Sequence[str]) -> str:
    """Highest mean validation score; the earliest wins ties."""
    return max(order, key=lambda c: (mean_score(scores[c], keys), -order.index(c)))


def pareto_aggregate(scores: Scores, keys: Sequence[str]) -> float:
    """Mean over examples of the best score any candidate reached: what the pool knows."""
    return sum(max(c[k] for c in scores.values()) for k in keys) / len(keys)
