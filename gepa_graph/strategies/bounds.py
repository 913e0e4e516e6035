"""How good a partly validated candidate could still be: an upper confidence bound on its total
over the whole validation set, from the examples it has run.

The examples a candidate has not run are predicted from an *anchor*, a candidate with a
complete vector that resembles it (its parent, or the pool candidate it agrees with most on the
examples both ran: a nearest-neighbour, low-rank guess), shifted by the mean difference seen so
far. The bound adds ``z`` standard deviations of that prediction; its variance includes a prior
of ``PRIOR`` pseudo-observations spread over the score range, so a child that has so far tied
its anchor everywhere is not taken to tie it everywhere else. A child whose bound stays below
what it must beat (the best total, or its parent's) is one whose full validation pass could not
change the search's answer: validation economy spends the rest of its rollouts elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from gepa_graph import pareto
from gepa_graph.candidate import Candidate
from gepa_graph.strategies.base import Search

# Pseudo-observations of prior variance (width**2) in the difference estimate.
PRIOR = 1.0
# Standard deviations above the prediction: the bound's confidence.
Z = 1.0
# Score differences below this are ties (floating-point sums).
EPS = 1e-9


def upper_total(
    scores: Mapping[str, float],
    anchor: Mapping[str, float],
    keys: Sequence[str],
    *,
    z: float = Z,
    width: float = 1.0,
    high: float | None = None,
) -> float:
    """Upper bound on the sum of ``scores`` over ``keys`` once every key is run.

    ``anchor`` must score every key the candidate has not run; ``width`` is the score range
    (the prior's scale), ``high`` the top score (the bound never exceeds scoring it on every
    example left)."""
    ran = [k for k in keys if k in scores]
    rest = [k for k in keys if k not in scores]
    observed = sum(scores[k] for k in ran)
    if not rest:
        return observed
    paired = [scores[k] - anchor[k] for k in ran if k in anchor]
    m, u = len(paired), len(rest)
    shift = sum(paired) / m if m else 0.0
    spread = sum((d - shift) ** 2 for d in paired) + PRIOR * width**2
    variance = spread / (max(m - 1, 0) + PRIOR)
    # The rest's sum is predicted from a mean estimated on m examples: both vary.
    sd = math.sqrt(variance * u * (m + u) / max(m, 1))
    bound = observed + sum(anchor[k] for k in rest) + u * shift + z * sd
    return bound if high is None else min(bound, observed + u * high)


def width_of(search: Search) -> float:
    """The score range: ``score_range`` when set, else the spread of the scores seen."""
    if search.config.score_range is not None:
        low, high = search.config.score_range
        return high - low
    seen = [s for vector in search.scores.values() for s in vector.values()]
    return max(max(seen, default=1.0) - min(seen, default=0.0), 1e-9)


def complete_ids(search: Search) -> list[str]:
    """Pool candidates scored on every validation example, in order of joining."""
    return [c for c, s in search.scores.items() if pareto.is_complete(s, search.val_keys)]


def anchor_of(
    search: Search, candidate: Candidate, scores: Mapping[str, float], nearest: bool
) -> str:
    """The complete candidate that predicts ``candidate``'s unrun examples: its first complete
    parent, or (``nearest``) the complete candidate closest to it on the examples it ran
    (parents first on ties); the best when no parent is complete."""
    complete = complete_ids(search)
    parents = [p for p in candidate.parent_ids if p in complete]
    if not nearest:
        return parents[0] if parents else search.best_id
    order = parents + [c for c in complete if c not in parents]

    def distance(cid: str) -> float:
        theirs = search.scores[cid]
        return sum(abs(scores[k] - theirs[k]) for k in scores if k in theirs)

    return min(order, key=distance) if order else search.best_id


def bound_of(
    search: Search,
    candidate: Candidate,
    scores: Mapping[str, float],
    *,
    nearest: bool = False,
    z: float = Z,
) -> float:
    """``upper_total`` of a candidate's (partial) scores, anchored as ``anchor_of`` says."""
    anchor = search.scores[anchor_of(search, candidate, scores, nearest)]
    high = search.config.score_range[1] if search.config.score_range else None
    return upper_total(scores, anchor, search.val_keys, z=z, width=width_of(search), high=high)


def best_total(search: Search) -> float:
    """The best complete candidate's total over the validation set."""
    return search.mean(search.best_id) * len(search.val_keys)


def contenders(search: Search, z: float = Z) -> list[Candidate]:
    """Pool candidates with a partial vector whose bound could still beat the best, the most
    promising first: the ones final selection completes so that the returned best is the best
    on the whole validation set, not a partial mean."""
    target = best_total(search)
    ranked: list[tuple[float, int, str]] = []
    for cid, scores in search.scores.items():
        if pareto.is_complete(scores, search.val_keys):
            continue
        bound = bound_of(search, search.candidates[cid], scores, z=z)
        if bound > target + EPS:
            ranked.append((-bound, len(ranked), cid))
    return [search.candidates[cid] for _, _, cid in sorted(ranked)]
