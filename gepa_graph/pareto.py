"""The per-example Pareto frontier over validation scores, and parent sampling from it.

A candidate is on the frontier of an example when no candidate scores higher there. Keeping
every candidate that is best *somewhere* (instead of only the best on average) is what lets
GEPA keep complementary strategies alive and escape local optima.

Score vectors may be partial (racing validation stops a hopeless child early; search mode
knows only the tasks a candidate ran on): an example a candidate has not run is no evidence
either way, so it is left out of that candidate's mean and fronts, and only a candidate with
a complete vector can be the best.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

Scores = Mapping[str, Mapping[str, float]]  # candidate id -> example key -> score


def mean_score(scores: Mapping[str, float], keys: Sequence[str]) -> float:
    """Mean over the examples of ``keys`` the candidate has run (0.0 if none)."""
    known = [scores[k] for k in keys if k in scores]
    return sum(known) / len(known) if known else 0.0


def is_complete(scores: Mapping[str, float], keys: Sequence[str]) -> bool:
    """Whether a candidate has a score on every one of ``keys`` (a child that screening or
    racing stopped early has not): a partial mean is not compared with full ones."""
    return all(k in scores for k in keys)


def fronts(scores: Scores, keys: Sequence[str]) -> dict[str, set[str]]:
    """example key -> ids of the candidates with the top score on it (among those that ran it)."""
    result: dict[str, set[str]] = {}
    for key in keys:
        ran = {cid: candidate[key] for cid, candidate in scores.items() if key in candidate}
        if ran:
            top = max(ran.values())
            result[key] = {cid for cid, value in ran.items() if value == top}
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
    """Highest mean validation score among complete vectors; the earliest wins ties."""
    complete = [c for c in order if is_complete(scores[c], keys)] or list(order)
    return max(complete, key=lambda c: (mean_score(scores[c], keys), -order.index(c)))


def pareto_aggregate(scores: Scores, keys: Sequence[str]) -> float:
    """Mean over examples of the best score any candidate reached: what the pool knows."""
    tops = [max(c[k] for c in scores.values() if k in c) for k in fronts(scores, keys)]
    return sum(tops) / len(keys)
