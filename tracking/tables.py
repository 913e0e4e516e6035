"""Run tables in MLflow's table format (``tables/<name>.json``, which the UI shows as a table
once the run's ``mlflow.loggedArtifacts`` tag names it): ``log_table`` writes one whole,
``tag_tables`` names them, and ``RunTables`` keeps one run's rows here and rewrites the changed
tables whole (what ``mlflow.log_table`` does, without its download-and-append round trip on
every call)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

from gepa_graph.tracking import schema as S


def log_table(client: MlflowClient, run_id: str, name: str, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as the run's table artifact ``name`` in MLflow's table JSON (the first
    row's keys are the columns; a key missing from a later row is null), replacing any earlier
    version. The UI lists it as a table only after ``tag_tables``."""
    columns = list(rows[0]) if rows else []
    payload = {"columns": columns, "data": [[row.get(c) for c in columns] for row in rows]}
    client.log_text(run_id, json.dumps(payload), S.table_path(name))


def tag_tables(client: MlflowClient, run_id: str, names: list[str]) -> None:
    """MLflow's own tag that makes the UI list these JSON files as tables."""
    tag = [{"path": S.table_path(name), "type": "table"} for name in names]
    client.set_tag(run_id, MLFLOW_LOGGED_ARTIFACTS, json.dumps(tag))


class RunTables:
    """The tables of one run: rows kept here, the tables changed since the last ``flush``
    rewritten whole by it; ``reload`` reads back the rows a run wrote before (a resume)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self._dirty: set[str] = set()
        self._logged: set[str] = set()

    def add(self, table: str, row: dict[str, Any]) -> None:
        """Append ``row`` to ``table`` (written at the next ``flush``)."""
        self.rows.setdefault(table, []).append(row)
        self._dirty.add(table)

    def replace(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Make ``rows`` the whole of ``table`` (written at the next ``flush``)."""
        self.rows[table] = rows
        self._dirty.add(table)

    def flush(self, client: MlflowClient, run_id: str) -> None:
        """Rewrite the changed tables of run ``run_id``, and tag any new one as a table."""
        for table in sorted(self._dirty):
            log_table(client, run_id, table, self.rows[table])
        if self._dirty - self._logged:
            self._logged |= self._dirty
            tag_tables(client, run_id, sorted(self._logged))
        self._dirty.clear()

    def reload(self, client: MlflowClient, run_id: str) -> None:
        """On resume: the rows run ``run_id`` holds, so the rewritten tables keep them."""
        run = client.get_run(run_id)
        for entry in json.loads(run.data.tags.get(MLFLOW_LOGGED_ARTIFACTS, "[]")):
            path = entry.get("path", "")
            if entry.get("type") != "table" or not path.startswith(f"{S.TABLE_DIR}/"):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                local = client.download_artifacts(run_id, path, tmp)
                payload = json.loads(Path(local).read_text(encoding="utf-8"))
            table = path.removeprefix(f"{S.TABLE_DIR}/").removesuffix(".json")
            self.rows[table] = [dict(zip(payload["columns"], row)) for row in payload["data"]]
            self._logged.add(table)
