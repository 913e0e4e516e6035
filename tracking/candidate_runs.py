"""One nested MLflow run per accepted candidate (the seed included), named
``<origin>-<id>``: metric ``val_score`` (its mean validation score: the same column ranks the
optimization's run and every candidate), the per-example scores as one metric
``example_score`` (step = example index) and a table ``tables/val_scores.json``, so they stay
out of the runs list's columns; artifacts ``candidate.json`` and ``prompts/<module>.txt``; and
the ``best=true`` tag on the one winner."""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric

from gepa_graph.records import CandidateRecord
from gepa_graph.redact import redact, redact_text
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.tables import log_table, tag_tables
from gepa_graph.tracking.values import BATCH_MAX, chunks, param, rounded


class CandidateRuns:
    """The candidate runs nested under the optimization's run ``parent_run_id``:
    ``children`` maps a candidate id to its run id."""

    def __init__(self, client: MlflowClient, experiment_id: str, parent_run_id: str) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.children: dict[str, str] = {}  # candidate id -> nested run id
        self._best_run: str | None = None  # the candidate run holding the `best` tag

    def reload(self) -> None:
        """On resume: the candidate runs the optimization's run already has."""
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                f"tags.{S.MLFLOW_PARENT_RUN} = '{self.parent_run_id}'",
                max_results=1000,
                page_token=token,
            )
            for run in page:
                candidate_id = run.data.tags.get(S.TAG_CANDIDATE_ID)
                if candidate_id:
                    self.children[candidate_id] = run.info.run_id
                if run.data.tags.get(S.TAG_BEST) == "true":
                    self._best_run = run.info.run_id
            token = page.token
            if not token:
                return

    def record(self, info: CandidateRecord) -> str:
        """Create the finished run of candidate ``info``; its run id."""
        client = self.client
        tags = {
            S.MLFLOW_PARENT_RUN: self.parent_run_id,
            S.TAG_KIND: "candidate",
            S.TAG_CANDIDATE_ID: info.id,
            S.TAG_PARENT_IDS: ",".join(info.parent_ids),
            S.TAG_ORIGIN: info.origin,
            S.MLFLOW_NOTE: candidate_note(info),
        }
        child = client.create_run(
            self.experiment_id, run_name=f"{info.origin}-{info.id[:8]}", tags=tags
        )
        child_id: str = child.info.run_id
        self.children[info.id] = child_id
        now = int(time.time() * 1000)
        keys = list(info.val_scores)
        metrics = [Metric(S.VAL_SCORE, rounded(info.mean_score), now, info.rollouts_at_discovery)]
        metrics += [
            Metric(S.EXAMPLE_SCORE, rounded(info.val_scores[k]), now, i) for i, k in enumerate(keys)
        ]
        params = [
            param("candidate_id", info.id),
            param("parent_ids", ",".join(info.parent_ids)),
            param("origin", info.origin),
            param("changed_modules", ",".join(info.changed_modules)),
            param("iteration", info.iteration),
            param("rollouts_at_discovery", info.rollouts_at_discovery),
        ]
        for chunk in chunks(metrics, BATCH_MAX - len(params)):
            client.log_batch(child_id, metrics=chunk, params=params)
            params = []
        log_table(
            client,
            child_id,
            S.TABLE_VAL_SCORES,
            [
                {"example_index": i, "example": k, "score": info.val_scores[k]}
                for i, k in enumerate(keys)
            ],
        )
        tag_tables(client, child_id, [S.TABLE_VAL_SCORES])
        _log_candidate_files(client, child_id, info)
        client.set_terminated(child_id, "FINISHED")
        return child_id

    def mark_best(self, child_id: str) -> None:
        """Move the ``best`` tag to ``child_id``: one winner per optimization."""
        if self._best_run == child_id:
            return
        if self._best_run is not None:
            self.client.delete_tag(self._best_run, S.TAG_BEST)
        self.client.set_tag(child_id, S.TAG_BEST, "true")
        self._best_run = child_id


def _log_candidate_files(client: MlflowClient, run_id: str, info: CandidateRecord) -> None:
    """``candidate.json`` (the record, prompts masked) and each prompt as a text file."""
    record = {
        "id": info.id,
        "parent_ids": list(info.parent_ids),
        "origin": info.origin,
        "changed_modules": list(info.changed_modules),
        "iteration": info.iteration,
        "rollouts_at_discovery": info.rollouts_at_discovery,
        "mean_score": info.mean_score,
        "val_scores": info.val_scores,
        "prompts": redact(info.prompts),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / S.CANDIDATE_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
        (root / S.PROMPTS_DIR).mkdir()
        for module, text in info.prompts.items():
            filename = re.sub(r"[^A-Za-z0-9_.-]", "_", module) + ".txt"
            (root / S.PROMPTS_DIR / filename).write_text(redact_text(text), encoding="utf-8")
        client.log_artifacts(run_id, tmp)


def candidate_note(info: CandidateRecord) -> str:
    """The candidate run's description: where it came from and its validation score."""
    if not info.parent_ids:
        return f"The seed prompts: validation score {info.mean_score:.3f}."
    parents = ", ".join(p[:8] for p in info.parent_ids)
    changed = ", ".join(info.changed_modules) or "no module"
    return (
        f"{info.origin} of {parents}, changing {changed}: validation score {info.mean_score:.3f}."
    )
