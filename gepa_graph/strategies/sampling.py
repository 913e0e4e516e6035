"""Minibatch samplers: which training examples a proposal runs its parent on."""

from __future__ import annotations

from collections import Counter

from gepa_graph.candidate import Candidate
from gepa_graph.example import Example
from gepa_graph.strategies.base import MinibatchSampler, Search


class EpochSampler:
    """Epoch-shuffled minibatches: every training example is seen once per epoch."""

    def __init__(self) -> None:
        self._queue: list[int] = []

    def _refill(self, search: Search) -> None:
        order = list(range(len(search.trainset)))
        search.rng.shuffle(order)
        pending = set(self._queue)
        # Examples still queued from the last epoch go to the end of the new one, so a
        # minibatch never holds the same example twice.
        self._queue += [i for i in order if i not in pending] + [i for i in order if i in pending]

    def sample(self, search: Search, parent: Candidate) -> list[Example]:
        """The next ``minibatch_size`` examples of the epoch queue, starting a new shuffled
        epoch when it runs short."""
        size = min(search.config.minibatch_size, len(search.trainset))
        while len(self._queue) < size:
            self._refill(search)
        batch, self._queue = self._queue[:size], self._queue[size:]
        return [search.trainset[i] for i in batch]


class FailureAwareSampler(EpochSampler):
    """Minibatches that teach: a third of each minibatch (at least one example) goes to
    examples the cache already knows the parent fails, the least used first (free to run
    again, and what reflection learns from); the rest comes from the epoch queue, skipping
    examples the parent is already known to get right (they stay queued for other parents, so
    every example is still seen). Fresh examples keep the feedback varied and guard against
    children that fix the known failures by breaking something else."""

    def __init__(self) -> None:
        super().__init__()
        self._used: Counter[tuple[str, int]] = Counter()

    def sample(self, search: Search, parent: Candidate) -> list[Example]:
        """Known failures of the parent (least used first) and fresh examples from the
        epoch queue, skipping those the parent is known to get right while it can."""
        train, perfect = search.trainset, search.config.perfect_score
        size = min(search.config.minibatch_size, len(train))
        known = search.known(parent.id, train)
        failing = [i for i, ex in enumerate(train) if known.get(ex.key, perfect) < perfect]
        search.rng.shuffle(failing)
        failing.sort(key=lambda i: self._used[parent.id, i])
        picked = failing[: max(1, size // 3)]
        self._used.update((parent.id, i) for i in picked)
        for fresh_only in (True, True, False):
            wanted = [
                i
                for i in self._queue
                if i not in picked and not (fresh_only and train[i].key in known)
            ][: size - len(picked)]
            for i in wanted:
                picked.append(i)
                self._queue.remove(i)
            if len(picked) == size:
                break
            # Queue the examples drawn since the last epoch again, in a new shuffled order.
            order = list(range(len(train)))
            search.rng.shuffle(order)
            self._queue += [i for i in order if i not in self._queue]
        return [train[i] for i in picked]


SAMPLERS: dict[str, type[MinibatchSampler]] = {
    "epoch": EpochSampler,
    "failure_aware": FailureAwareSampler,
}
