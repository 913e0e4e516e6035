"""The optimization run's charts: metrics by rollouts, one point per step (step = rollouts
used), the seed at step 0. Points are buffered and sent with ``log_batch``; a step is sent once,
whole, and the newest stays buffered (a later event at the same step updates it in place)."""

from __future__ import annotations

import time

from mlflow import MlflowClient
from mlflow.entities import Metric

from gepa_graph.tracking import schema as S
from gepa_graph.tracking.values import chunks, rounded


class MetricHistory:
    """The buffered points of one run; ``seed_score`` (once known) makes every point carry
    the seed's score and the improvement over it; ``sent_step`` is the highest step sent."""

    def __init__(self) -> None:
        self._points: dict[int, dict[str, float]] = {}  # step -> metrics not yet sent
        self.sent_step = -1  # a step is sent once, whole
        self.seed_score: float | None = None

    def __len__(self) -> int:
        return len(self._points)

    def point(self, step: int, values: dict[str, float]) -> None:
        """Buffer ``values`` at ``step`` (never a second point at a step already sent)."""
        if step > self.sent_step:
            self._points.setdefault(step, {}).update(values)

    def scores(self, best: float) -> dict[str, float]:
        """The score metrics of a point whose best mean validation score is ``best``."""
        values = {S.VAL_SCORE: best, S.BEST_SCORE: best}
        if self.seed_score is not None:
            values[S.SEED_SCORE] = self.seed_score
            values[S.IMPROVEMENT] = best - self.seed_score
        return {k: rounded(v) for k, v in values.items()}

    def send(self, client: MlflowClient, run_id: str, everything: bool = False) -> None:
        """Send the buffered points to run ``run_id``: all of them with ``everything``, else
        all but the newest step."""
        if not self._points:
            return
        steps = sorted(self._points)
        if not everything:
            steps = steps[:-1]
        now = int(time.time() * 1000)
        metrics = []
        for step in steps:
            values = self._points.pop(step)
            if step > self.sent_step:
                metrics += [Metric(k, float(v), now, step) for k, v in values.items()]
                self.sent_step = step
        for chunk in chunks(metrics):
            client.log_batch(run_id, metrics=chunk)
