"""Reading an optimization back from MLflow: its Result (``gg.load_result`` of a run id comes
here) and what the runs list says of its run (``gepa-graph show --run-id``). The one reader of
what ``MLflowTracker`` wrote; ``ResultNotFound`` in one line when there is nothing to read."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient

from gepa_graph.errors import ResultNotFound
from gepa_graph.result import Result
from gepa_graph.store import RunStore
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.console import quiet_mlflow


@dataclass(frozen=True)
class RecordedRun:
    """An MLflow run as the runs list shows it: ``run_id``, ``name``, ``status`` (e.g.
    FINISHED), ``note`` (its description, "" if none), ``tags``; ``candidate_id`` and
    ``parent_run_id`` for the nested run of one candidate (None for an optimization's run)."""

    run_id: str
    name: str
    status: str
    note: str
    tags: dict[str, str]
    candidate_id: str | None = None
    parent_run_id: str | None = None


def recorded_run(run: str, tracking_uri: str | None = None) -> RecordedRun:
    """The MLflow run ``run`` (an id or ``runs:/<id>``) at ``tracking_uri`` (default: MLflow's
    own); ResultNotFound if there is none."""
    from mlflow.exceptions import MlflowException

    run_id = run.removeprefix("runs:/").strip("/").split("/")[0]
    quiet_mlflow()
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        found = client.get_run(run_id)
    except MlflowException:
        raise ResultNotFound(f"no MLflow run {run_id!r} at {client.tracking_uri}") from None
    tags = dict(found.data.tags)
    candidate = tags.get(S.TAG_CANDIDATE_ID) if tags.get(S.TAG_KIND) == "candidate" else None
    return RecordedRun(
        run_id=run_id,
        name=found.info.run_name or run_id,
        status=found.info.status,
        note=tags.get(S.MLFLOW_NOTE, ""),
        tags=tags,
        candidate_id=candidate,
        parent_run_id=tags.get(S.MLFLOW_PARENT_RUN) if candidate else None,
    )


def load_result(run: str, tracking_uri: str | None = None) -> Result:
    """The Result of the optimization recorded in the MLflow run ``run`` (an id or
    ``runs:/<id>``; a candidate run stands for its optimization), from ``tracking_uri`` (default:
    MLflow's own): the run's ``result.json``, or, for a run that did not finish, the checkpoint
    of its run folder when that folder is on this machine. ResultNotFound (a LookupError) if
    there is neither."""
    recorded = recorded_run(run, tracking_uri)
    if recorded.parent_run_id is not None:
        return load_result(recorded.parent_run_id, tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(recorded.run_id, S.RESULT_FILE, tmp)
        except Exception:
            local = None
        if local is not None:
            return Result.model_validate_json(Path(local).read_text(encoding="utf-8"))
    run_dir = recorded.tags.get(S.TAG_RUN_DIR)
    if run_dir:
        try:
            return RunStore(run_dir).load_result()
        except FileNotFoundError:
            pass
    raise ResultNotFound(
        f"MLflow run {recorded.run_id} holds no {S.RESULT_FILE} (it did not finish) and its run "
        f"folder {run_dir or '(none recorded)'} has no checkpoint on this machine"
    )
