"""MLflowTracker: an event listener that records an optimization in MLflow.

What one optimization looks like in MLflow:

* one parent run: the config as params (secrets redacted), dataset sizes and the reflection LM;
  metrics by step = rollouts used (``best_val_score``, ``pareto_score``, ``pool_size``,
  ``cost_usd`` ...); tags ``gepa_graph.best_candidate_id`` and ``gepa_graph.stop_reason``;
* one nested run per accepted candidate (the seed included), named ``<origin>-<id>``: params for
  its id, parents, iteration and rollouts at discovery; metrics ``mean_score`` and one
  ``val_score/<example>`` per validation example; artifacts ``candidate.json`` (the full score
  vector, lineage and prompts) and ``prompts/<module>.txt``;
* tables on the parent run (``tables/candidates.json``, ``tables/rejected.json``,
  ``tables/reflections.json``), a ``report.md`` (best prompts, diff against the seed),
  ``result.json`` and PNG plots under ``plots/``.

MLflow calls run on one background thread, so a slow or remote tracking server never blocks the
optimization's event loop; metrics are buffered and sent with ``log_batch``. The first tracking
failure is logged once and switches tracking off for the rest of the run; the optimization goes on.
The parent run id is saved to ``<run_dir>/mlflow_run.json`` so ``resume=True`` continues that run.
"""

from __future__ import annotations

import difflib
import json
import logging
import queue
import re
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

from gepa_graph.events import (
    BudgetUpdated,
    CandidateAccepted,
    CandidateInfo,
    Event,
    OptimizationFinished,
    OptimizationStarted,
    ProposalRejected,
    ReflectionCalled,
)
from gepa_graph.redact import redact, redact_text

log = logging.getLogger("gepa_graph.tracking")

RUN_FILE = "mlflow_run.json"
_PARAM_MAX_CHARS = 6000
_BATCH_MAX = 1000

def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _param(key: str, value: Any) -> Param:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return Param(key, text[:_PARAM_MAX_CHARS])


def _metric_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", text)


def _chunks(items: list[Any], size: int = _BATCH_MAX) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def render_report(result: Any) -> str:
    """Markdown report: scores, budget, and per module the best prompt and its diff to the seed."""
    best = result.candidate(result.best_id)
    lines = [
        "# gepa_graph optimization report",
        "",
        "| | |",
        "|---|---|",
        f"| best candidate | `{result.best_id}` ({best.origin}, iteration {best.iteration}) |",
        f"| validation score | {result.seed_score:.4f} (seed) -> {result.best_score:.4f} (best) |",
        f"| stop reason | {result.stop_reason} |",
        f"| iterations | {result.iterations} |",
        f"| rollouts used | {result.rollouts_used} |",
        f"| cost (USD) | {result.ledger.cost_usd:.4f} |",
        f"| candidates accepted | {len(result.candidates)} |",
        f"| proposals rejected | {len(result.rejected)} |",
        "",
    ]
    changed = result.changed_modules()
    for module, text in sorted(result.best_candidate.items()):
        state = "changed" if module in changed else "unchanged"
        lines.append(f"## Module `{module}` ({state})")
        lines.append("")
        if module in changed:
            seed_text = result.seed_candidate.get(module, "")
            diff = "\n".join(difflib.unified_diff(
                seed_text.splitlines(), text.splitlines(), fromfile="seed", tofile="best",
                lineterm="",
            ))
            fence = _fence(diff)
            lines += ["Diff against the seed:", "", f"{fence}diff", diff, fence, ""]
        fence = _fence(text)
        lines += ["Best prompt:", "", f"{fence}text", text, fence, ""]
    return redact_text("\n".join(lines))


class _Flush:
    """Queue marker: the worker sets ``done`` once everything queued before it is sent."""

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class MLflowTracker:
    """Listener recording an optimization in MLflow. Pass it as ``gg.optimize(tracking=...)``.

    ``tracking_uri=None`` uses MLflow's own default (``MLFLOW_TRACKING_URI``, else a SQLite
    database ``mlflow.db`` in the working directory); any URI works, including a remote server.
    """

    def __init__(
        self,
        experiment: str = "gepa-graph",
        tracking_uri: str | None = None,
        *,
        run_name: str | None = None,
        plots: bool = True,
        flush_every_s: float = 5.0,
        flush_timeout_s: float = 120.0,
    ) -> None:
        self.experiment = experiment
        self.tracking_uri = tracking_uri
        self.run_name = run_name
        self.plots = plots
        self.flush_every_s = flush_every_s
        self.flush_timeout_s = flush_timeout_s
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.failed = False
        self._client: MlflowClient | None = None
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._finished = False
        self._metrics: list[Metric] = []
        self._tables: dict[str, list[dict[str, Any]]] = {}
        self._dirty: set[str] = set()
        self._logged_tables: set[str] = set()
        self._children: dict[str, str] = {}  # candidate id -> nested run id

    def __repr__(self) -> str:
        return f"MLflowTracker(experiment={self.experiment!r}, tracking_uri={self.tracking_uri!r})"

    # --- listener side (the optimization's thread) --------------------------------------------

    def __call__(self, event: Event) -> None:
        if self._closed:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="gepa-mlflow", daemon=True)
            self._thread.start()
        self._queue.put(event)
        if isinstance(event, OptimizationFinished):
            self.flush()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything received so far is written; False if it timed out."""
        if self._thread is None:
            return True
        marker = _Flush()
        self._queue.put(marker)
        done = marker.done.wait(self.flush_timeout_s if timeout is None else timeout)
        if not done:
            log.warning("MLflow tracking did not finish writing within %.0f s",
                        self.flush_timeout_s)
        return done

    def close(self) -> None:
        """Flush, mark an unfinished run FAILED (so it shows as interrupted), stop the worker."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=self.flush_timeout_s)
        if self.run_id is not None and not self._finished and not self.failed:
            try:
                self._client.set_terminated(self.run_id, "FAILED")
            except Exception as exc:  # tracking never breaks the caller
                self._fail(exc)

    # --- worker side ---------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.flush_every_s)
            except queue.Empty:
                self._guard(self._flush_metrics)
                continue
            if item is _STOP:
                return
            if isinstance(item, _Flush):
                self._guard(self._flush_metrics)
                item.done.set()
            else:
                self._guard(self._handle, item)

    def _guard(self, fn: Any, *args: Any) -> None:
        if self.failed:
            return
        try:
            fn(*args)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        if not self.failed:
            self.failed = True
            log.warning(
                "MLflow tracking failed (%s: %s); tracking is off for the rest of this "
                "optimization, which continues", type(exc).__name__, str(exc).splitlines()[0]
                if str(exc) else "",
            )

    def _handle(self, event: Event) -> None:
        if isinstance(event, OptimizationStarted):
            self._start(event)
        elif self.run_id is None:
            return  # no OptimizationStarted seen: nothing to attach records to
        elif isinstance(event, BudgetUpdated):
            self._budget(event)
        elif isinstance(event, CandidateAccepted):
            self._accepted(event)
        elif isinstance(event, ReflectionCalled):
            self._row("reflections", {
                "iteration": event.iteration, "module": event.module,
                "parent_id": event.parent_id, "prompt": redact_text(event.prompt),
                "reply": redact_text(event.reply), "cost_usd": event.cost_usd,
            })
        elif isinstance(event, ProposalRejected):
            self._row("rejected", {
                "iteration": event.iteration, "kind": event.kind, "reason": event.reason,
                "detail": redact_text(event.detail), "module": event.module,
                "parent_ids": ",".join(event.parent_ids),
                "proposed_text": redact_text(event.proposed_text or ""),
            })
        elif isinstance(event, OptimizationFinished):
            self._finish(event)

    def _start(self, event: OptimizationStarted) -> None:
        self._client = client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            self.experiment_id = client.create_experiment(self.experiment)
        else:
            self.experiment_id = experiment.experiment_id
        previous = self._previous_run(event) if event.resumed else None
        if previous is not None:
            self.run_id = previous
            client.update_run(previous, status="RUNNING")
            self._children = self._existing_children()
            self._existing_tables()
            return
        tags = {"gepa_graph.reflection_lm": redact_text(event.reflection_lm)}
        if event.run_dir:
            tags["gepa_graph.run_dir"] = event.run_dir
        run = client.create_run(self.experiment_id, run_name=self.run_name, tags=tags)
        self.run_id = run.info.run_id
        config = redact(_flatten(dict(event.config)), by_key=True)
        params = [_param(k, v) for k, v in sorted(config.items())]
        params += [
            _param("n_train", event.n_train),
            _param("n_val", event.n_val),
            _param("reflection_lm", redact_text(event.reflection_lm)),
            _param("modules", ",".join(sorted(event.seed_prompts))),
        ]
        for chunk in _chunks(params, 100):
            client.log_batch(self.run_id, params=chunk)
        client.log_text(self.run_id, json.dumps(redact(event.seed_prompts), indent=2),
                        "seed_prompts.json")
        if event.run_dir:
            path = Path(event.run_dir) / RUN_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({
                "run_id": self.run_id, "experiment_id": self.experiment_id,
                "tracking_uri": client.tracking_uri,
            }, indent=2), encoding="utf-8")

    def _previous_run(self, event: OptimizationStarted) -> str | None:
        """The parent run recorded in run_dir, if it lives on this tracking server."""
        if not event.run_dir:
            return None
        path = Path(event.run_dir) / RUN_FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("tracking_uri") != self._client.tracking_uri:
            log.warning("run_dir's MLflow run is on %s, not %s: starting a new MLflow run",
                        saved.get("tracking_uri"), self._client.tracking_uri)
            return None
        run_id = saved.get("run_id")
        try:
            self._client.get_run(run_id)
        except Exception:
            log.warning("MLflow run %s from %s no longer exists: starting a new one", run_id, path)
            return None
        return run_id

    def _existing_children(self) -> dict[str, str]:
        children: dict[str, str] = {}
        token = None
        while True:
            page = self._client.search_runs(
                [self.experiment_id], f"tags.mlflow.parentRunId = '{self.run_id}'",
                max_results=1000, page_token=token,
            )
            for run in page:
                candidate_id = run.data.tags.get("gepa_graph.candidate_id")
                if candidate_id:
                    children[candidate_id] = run.info.run_id
            token = page.token
            if not token:
                return children

    def _budget(self, event: BudgetUpdated) -> None:
        now = int(time.time() * 1000)
        step = event.ledger.rollouts_used
        values = {
            "best_val_score": event.best_score,
            "pareto_score": event.pareto_score,
            "pool_size": event.pool_size,
            "cost_usd": event.ledger.cost_usd,
            "reflection_cost_usd": event.ledger.reflection_cost_usd,
            "task_cost_usd": event.ledger.task_cost_usd,
            "reflection_calls": event.ledger.reflection_calls,
            "failed_rollouts": event.ledger.failed_rollouts,
            "iteration": event.iteration,
        }
        self._metrics += [Metric(k, float(v), now, step) for k, v in values.items()]
        if len(self._metrics) >= _BATCH_MAX:
            self._flush_metrics()

    def _flush_metrics(self) -> None:
        pending, self._metrics = self._metrics, []
        for chunk in _chunks(pending):
            self._client.log_batch(self.run_id, metrics=chunk)

    def _row(self, table: str, row: dict[str, Any]) -> None:
        self._tables.setdefault(table, []).append(row)
        self._dirty.add(table)

    def _flush_tables(self) -> None:
        """Rewrite changed tables whole, in MLflow's table format (what ``log_table`` writes,
        without its download-and-append round trip on every call)."""
        for table in sorted(self._dirty):
            rows = self._tables[table]
            columns = list(rows[0])
            payload = {"columns": columns, "data": [[row.get(c) for c in columns] for row in rows]}
            self._client.log_text(self.run_id, json.dumps(payload), f"tables/{table}.json")
        if self._dirty - self._logged_tables:
            self._logged_tables |= self._dirty
            tag = [{"path": f"tables/{name}.json", "type": "table"}
                   for name in sorted(self._logged_tables)]
            self._client.set_tag(self.run_id, MLFLOW_LOGGED_ARTIFACTS, json.dumps(tag))
        self._dirty.clear()

    def _existing_tables(self) -> None:
        """On resume: reload the rows written before, so rewritten tables keep them."""
        run = self._client.get_run(self.run_id)
        for entry in json.loads(run.data.tags.get(MLFLOW_LOGGED_ARTIFACTS, "[]")):
            path = entry.get("path", "")
            if entry.get("type") != "table" or not path.startswith("tables/"):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                local = self._client.download_artifacts(self.run_id, path, tmp)
                payload = json.loads(Path(local).read_text(encoding="utf-8"))
            table = path.removeprefix("tables/").removesuffix(".json")
            self._tables[table] = [dict(zip(payload["columns"], row)) for row in payload["data"]]
            self._logged_tables.add(table)

    def _accepted(self, event: CandidateAccepted) -> None:
        info = event.candidate
        if info.id in self._children:
            return
        client = self._client
        tags = {
            "mlflow.parentRunId": self.run_id,
            "gepa_graph.candidate_id": info.id,
            "gepa_graph.parent_ids": ",".join(info.parent_ids),
            "gepa_graph.origin": info.origin,
        }
        child = client.create_run(self.experiment_id, run_name=f"{info.origin}-{info.id[:8]}",
                                  tags=tags)
        child_id = child.info.run_id
        self._children[info.id] = child_id
        now = int(time.time() * 1000)
        metrics = [Metric("mean_score", event.mean_score, now, event.rollouts_used)]
        metrics += [Metric(f"val_score/{_metric_key(k)}", v, now, event.rollouts_used)
                    for k, v in event.val_scores.items()]
        params = [
            _param("candidate_id", info.id),
            _param("parent_ids", ",".join(info.parent_ids)),
            _param("origin", info.origin),
            _param("changed_modules", ",".join(info.changed_modules)),
            _param("iteration", event.iteration),
            _param("rollouts_at_discovery", event.rollouts_used),
        ]
        for chunk in _chunks(metrics, _BATCH_MAX - len(params)):
            client.log_batch(child_id, metrics=chunk, params=params)
            params = []
        record = {
            "id": info.id, "parent_ids": list(info.parent_ids), "origin": info.origin,
            "changed_modules": list(info.changed_modules), "iteration": event.iteration,
            "rollouts_at_discovery": event.rollouts_used, "mean_score": event.mean_score,
            "val_scores": event.val_scores, "prompts": redact(info.prompts),
        }
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "candidate.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
            (root / "prompts").mkdir()
            for module, text in info.prompts.items():
                filename = re.sub(r"[^A-Za-z0-9_.-]", "_", module) + ".txt"
                (root / "prompts" / filename).write_text(redact_text(text), encoding="utf-8")
            client.log_artifacts(child_id, tmp)
        client.set_terminated(child_id, "FINISHED")

        self._row("candidates", {
            "candidate_id": info.id, "origin": info.origin,
            "parent_ids": ",".join(info.parent_ids),
            "changed_modules": ",".join(info.changed_modules), "iteration": event.iteration,
            "rollouts_at_discovery": event.rollouts_used, "mean_score": event.mean_score,
            "val_scores": json.dumps(event.val_scores), "run_id": child_id,
        })
        if event.is_best:
            client.set_tag(self.run_id, "gepa_graph.best_candidate_id", info.id)
        self._flush_metrics()
        self._flush_tables()

    def _sync_candidates(self, result: Any) -> None:
        """Record accepted candidates this run does not hold yet: those accepted while MLflow
        was unreachable reach it when the optimization is resumed."""
        for record in result.candidates:
            if record.id in self._children:
                continue
            self._accepted(CandidateAccepted(
                iteration=record.iteration,
                candidate=CandidateInfo(
                    id=record.id, prompts=record.prompts, parent_ids=record.parent_ids,
                    origin=record.origin, changed_modules=record.changed_modules,
                ),
                val_scores=record.val_scores, mean_score=record.mean_score,
                rollouts_used=record.rollouts_at_discovery, is_best=False,
            ))

    def _finish(self, event: OptimizationFinished) -> None:
        client = self._client
        now = int(time.time() * 1000)
        step = event.ledger.rollouts_used
        final = {
            "final_best_score": event.best_score,
            "seed_score": event.seed_score,
            "improvement": event.best_score - event.seed_score,
            "rollouts_used": event.ledger.rollouts_used,
            "iterations": event.iterations,
            "total_cost_usd": event.ledger.cost_usd,
            "seconds": event.ledger.seconds,
        }
        self._metrics += [Metric(k, float(v), now, step) for k, v in final.items()]
        self._flush_metrics()
        client.log_batch(self.run_id, tags=[
            RunTag("gepa_graph.stop_reason", event.stop_reason),
            RunTag("gepa_graph.best_candidate_id", event.best_id),
        ])
        result = event.result
        if result is not None:
            self._sync_candidates(result)
        self._flush_tables()
        if result is not None:
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                (root / "report.md").write_text(render_report(result), encoding="utf-8")
                (root / "best_prompts.json").write_text(
                    json.dumps(redact(result.best_candidate), indent=2), encoding="utf-8")
                (root / "result.json").write_text(
                    json.dumps(redact(result.model_dump(mode="json")), indent=1),
                    encoding="utf-8")
                if self.plots:
                    from gepa_graph.tracking.plots import save_plots

                    save_plots(result, root / "plots")
                client.log_artifacts(self.run_id, tmp)
        client.set_terminated(self.run_id, "FINISHED")
        self._finished = True
