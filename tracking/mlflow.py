"""MLflowTracker: an event listener that records an optimization in MLflow.

What one optimization looks like in MLflow (every name is in ``gepa_graph.tracking.schema``):

* one parent run named ``<experiment>-<date>`` (or the user's ``run_name``), with a description
  holding the headline (seed -> best score, rollouts, cost); the config as params (secrets
  redacted); metrics by step = rollouts used, each starting with the seed at step 0:
  ``val_score`` and ``best_score`` (best mean validation score so far), ``seed_score``,
  ``improvement``, ``pareto_score``, ``pool_size``, ``cost_usd``; with a testset,
  ``test_score`` (the seed's held-out score at step 0, the best candidate's at the end) and
  ``tables/test_scores.json``; end-of-run figures (rollouts, iterations, seconds, cost) as tags,
  so no chart is a single dot;
* one nested run per accepted candidate (the seed included), named ``<origin>-<id>``: metric
  ``val_score`` (its mean validation score: the same column ranks the parent and every candidate),
  per-example scores as one metric ``example_score`` (step = example index) and a table
  ``tables/val_scores.json``, so they stay out of the runs list's columns; tag ``best=true`` on the
  winner; artifacts ``candidate.json`` and ``prompts/<module>.txt``;
* tables on the parent run (``tables/candidates.json``, ``tables/rejected.json``,
  ``tables/reflections.json``), a ``report.md``, ``result.json`` and PNG plots under ``plots/``;
* when the seed came from the Prompt Registry (``seed_from_registry``), its reference and versions.

MLflow calls run on one background thread, so a slow or remote tracking server never blocks the
optimization's event loop; metrics are buffered and sent with ``log_batch``, one point per step.
The first tracking failure is logged once and switches tracking off for the rest of the run; the
optimization goes on. The parent run id is saved as attributes of the run folder (through
``gepa_graph.store.RunStore``, names in ``schema``) so ``resume=True`` continues that run.

``gepa_graph.tracking.reader`` reads an optimization's Result back from its run.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
import queue
import re
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

from gepa_graph.events import (
    BudgetUpdated,
    CandidateAccepted,
    Event,
    Listener,
    OptimizationFinished,
    OptimizationStarted,
    ProposalRejected,
    ReflectionCalled,
    TestsetEvaluated,
)
from gepa_graph.records import CandidateRecord
from gepa_graph.redact import redact, redact_text
from gepa_graph.result import Result
from gepa_graph.store import RunStore
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.console import quiet_mlflow

log = logging.getLogger("gepa_graph.tracking")

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


def _chunks(items: list[Any], size: int = _BATCH_MAX) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def headline(seed_score: float, best_score: float, rollouts: int, cost_usd: float) -> str:
    """One line a user reads first: the gain and what it cost."""
    return (
        f"validation score {seed_score:.3f} (seed) -> {best_score:.3f} (best), "
        f"{best_score - seed_score:+.3f}; {rollouts} rollouts, ${cost_usd:.4f}"
    )


def render_report(result: Result) -> str:
    """Markdown report: scores, budget, and per module the best prompt and its diff to the seed."""
    best = result.candidate(result.best_id)
    lines = [
        "# gepa_graph optimization report",
        "",
        headline(
            result.seed_score, result.best_score, result.rollouts_used, result.ledger.cost_usd
        ),
        "",
        "| what | value |",
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
            diff = "\n".join(
                difflib.unified_diff(
                    seed_text.splitlines(),
                    text.splitlines(),
                    fromfile="seed",
                    tofile="best",
                    lineterm="",
                )
            )
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


class MLflowTracker(Listener):
    """Listener recording an optimization in MLflow. Pass it as ``gg.optimize(tracking=...)``.

    ``tracking_uri=None`` uses MLflow's own default (``MLFLOW_TRACKING_URI``, else a SQLite
    database ``mlflow.db`` in the working directory); any URI works, including a remote server.
    MLflow's own console lines are silenced unless ``verbose=True``.
    """

    def __init__(
        self,
        experiment: str = "gepa-graph",
        tracking_uri: str | None = None,
        *,
        run_name: str | None = None,
        plots: bool = True,
        verbose: bool = False,
        flush_every_s: float = 5.0,
        flush_timeout_s: float = 120.0,
    ) -> None:
        self.experiment = experiment
        self.tracking_uri = tracking_uri
        self.run_name = run_name
        self.plots = plots
        self.verbose = verbose
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
        self._history: dict[int, dict[str, float]] = {}  # step -> metrics not yet sent
        self._sent_step = -1  # highest step already sent: a step is sent once, whole
        self._seed_score: float | None = None
        self._best_run: str | None = None  # the candidate run holding the `best` tag
        self._tables: dict[str, list[dict[str, Any]]] = {}
        self._dirty: set[str] = set()
        self._logged_tables: set[str] = set()
        self._children: dict[str, str] = {}  # candidate id -> nested run id
        self._test: TestsetEvaluated | None = None  # held-out scores, told before the end

    def __repr__(self) -> str:
        return f"MLflowTracker(experiment={self.experiment!r}, tracking_uri={self.tracking_uri!r})"

    # --- listener side (the optimization's thread) --------------------------------------------

    def __call__(self, event: Event) -> None:
        if self._closed:
            return
        if self._thread is None:
            quiet_mlflow(self.verbose)
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
            log.warning(
                "MLflow tracking did not finish writing within %.0f s", self.flush_timeout_s
            )
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
                self._send_metrics(everything=True)
                self._client.set_terminated(self.run_id, "FAILED")
            except Exception as exc:  # tracking never breaks the caller
                self._fail(exc)

    # --- worker side ---------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.flush_every_s)
            except queue.Empty:
                self._guard(self._send_metrics)
                continue
            if item is _STOP:
                return
            if isinstance(item, _Flush):
                self._guard(self._send_metrics)
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
                "optimization, which continues",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )

    def _handle(self, event: Event) -> None:
        if self.run_id is None and not isinstance(event, OptimizationStarted):
            return  # no OptimizationStarted seen: nothing to attach records to
        self.dispatch(event)

    # --- the hooks (the worker thread) ---------------------------------------------------------

    def on_optimization_started(self, event: OptimizationStarted) -> None:
        """Create (or, on resume, reopen) the optimization's run."""
        self._start(event)

    def on_budget_updated(self, event: BudgetUpdated) -> None:
        """Buffer a point of the score, pool and cost charts."""
        self._budget(event)

    def on_candidate_accepted(self, event: CandidateAccepted) -> None:
        """Record the candidate as a nested run and a row of the candidates table."""
        self._candidate(event.candidate, event.is_best)

    def on_reflection_called(self, event: ReflectionCalled) -> None:
        """A row of the reflections table."""
        self._row(
            S.TABLE_REFLECTIONS,
            {
                "iteration": event.iteration,
                "module": event.module,
                "parent_id": event.parent_id,
                "prompt": redact_text(event.prompt),
                "reply": redact_text(event.reply),
                "cost_usd": event.cost_usd,
            },
        )

    def on_proposal_rejected(self, event: ProposalRejected) -> None:
        """A row of the rejected table."""
        self._row(
            S.TABLE_REJECTED,
            {
                "iteration": event.iteration,
                "kind": event.kind,
                "reason": event.reason,
                "detail": redact_text(event.detail),
                "module": event.module,
                "parent_ids": ",".join(event.parent_ids),
                "proposed_text": redact_text(event.proposed_text or ""),
            },
        )

    def on_optimization_finished(self, event: OptimizationFinished) -> None:
        """End-of-run tags, report, result and plots; the run is marked FINISHED."""
        self._finish(event)

    def on_testset_evaluated(self, event: TestsetEvaluated) -> None:
        """The held-out scores."""
        self._testset(event)

    def _experiment(self) -> str:
        """The experiment, marked as one of runs (not GenAI traces) and holding the saved runs
        view with the score columns."""
        client = self._client
        tags = {S.EXPERIMENT_KIND: S.EXPERIMENT_KIND_RUNS, S.RUNS_VIEW_TAG: S.runs_view()}
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            return client.create_experiment(self.experiment, tags=tags)
        for key, value in tags.items():
            if key not in experiment.tags:
                client.set_experiment_tag(experiment.experiment_id, key, value)
        return experiment.experiment_id

    @property
    def runs_url(self) -> str | None:
        """The saved runs view of this experiment on an MLflow server (None for a local store)."""
        if self._client is None or self.experiment_id is None:
            return None
        return S.runs_url(self._client.tracking_uri, self.experiment_id)

    def _start(self, event: OptimizationStarted) -> None:
        _check_reachable(self.tracking_uri)
        self._client = client = MlflowClient(tracking_uri=self.tracking_uri)
        self.experiment_id = self._experiment()
        previous = self._previous_run(event) if event.resumed else None
        if previous is not None:
            self.run_id = previous
            client.update_run(previous, status="RUNNING")
            self._children = self._existing_children()
            self._existing_tables()
            history = client.get_metric_history(previous, S.BEST_SCORE)
            self._sent_step = max((m.step for m in history), default=-1)
            seed = client.get_metric_history(previous, S.SEED_SCORE)
            self._seed_score = seed[0].value if seed else None
            return
        tags = {
            S.TAG_KIND: "optimization",
            S.TAG_REFLECTION_LM: redact_text(event.reflection_lm),
            S.MLFLOW_NOTE: f"Optimizing {len(event.seed_prompts)} prompt(s) "
            f"({', '.join(sorted(event.seed_prompts))}); running.",
        }
        if event.run_dir:
            tags[S.TAG_RUN_DIR] = redact_text(event.run_dir)
        tags.update({k: redact_text(v) for k, v in _seed_origin_tags(event.seed_prompts).items()})
        run_name = self.run_name or f"{self.experiment}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        run = client.create_run(self.experiment_id, run_name=run_name, tags=tags)
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
        client.log_text(
            self.run_id, json.dumps(redact(event.seed_prompts), indent=2), S.SEED_PROMPTS_FILE
        )
        if event.run_dir:
            RunStore(event.run_dir).set_attributes(
                {
                    S.ATTR_RUN_ID: self.run_id,
                    S.ATTR_EXPERIMENT_ID: self.experiment_id,
                    S.ATTR_TRACKING_URI: client.tracking_uri,
                }
            )

    def _previous_run(self, event: OptimizationStarted) -> str | None:
        """The parent run recorded in run_dir, if it lives on this tracking server."""
        if not event.run_dir:
            return None
        saved = RunStore(event.run_dir).attributes()
        run_id = saved.get(S.ATTR_RUN_ID)
        if run_id is None:
            return None
        if saved.get(S.ATTR_TRACKING_URI) != self._client.tracking_uri:
            log.warning(
                "run_dir's MLflow run is on %s, not %s: starting a new MLflow run",
                saved.get(S.ATTR_TRACKING_URI),
                self._client.tracking_uri,
            )
            return None
        try:
            self._client.get_run(run_id)
        except Exception:
            log.warning(
                "MLflow run %s from %s no longer exists: starting a new one", run_id, event.run_dir
            )
            return None
        return run_id

    def _existing_children(self) -> dict[str, str]:
        children: dict[str, str] = {}
        token = None
        while True:
            page = self._client.search_runs(
                [self.experiment_id],
                f"tags.{S.MLFLOW_PARENT_RUN} = '{self.run_id}'",
                max_results=1000,
                page_token=token,
            )
            for run in page:
                candidate_id = run.data.tags.get(S.TAG_CANDIDATE_ID)
                if candidate_id:
                    children[candidate_id] = run.info.run_id
                if run.data.tags.get(S.TAG_BEST) == "true":
                    self._best_run = run.info.run_id
            token = page.token
            if not token:
                return children

    # --- metrics by rollouts: one point per step, the seed at step 0 ----------------------------

    def _point(self, step: int, values: dict[str, float]) -> None:
        if step > self._sent_step:  # never a second point at a step already sent
            self._history.setdefault(step, {}).update(values)

    def _send_metrics(self, everything: bool = False) -> None:
        """Send buffered points. The newest step stays buffered (a later event at the same step
        updates it in place) unless ``everything``."""
        if not self._history:
            return
        steps = sorted(self._history)
        if not everything:
            steps = steps[:-1]
        now = int(time.time() * 1000)
        metrics = []
        for step in steps:
            values = self._history.pop(step)
            if step > self._sent_step:
                metrics += [Metric(k, float(v), now, step) for k, v in values.items()]
                self._sent_step = step
        for chunk in _chunks(metrics):
            self._client.log_batch(self.run_id, metrics=chunk)

    def _scores(self, best: float) -> dict[str, float]:
        values = {S.VAL_SCORE: best, S.BEST_SCORE: best}
        if self._seed_score is not None:
            values[S.SEED_SCORE] = self._seed_score
            values[S.IMPROVEMENT] = best - self._seed_score
        return {k: _score(v) for k, v in values.items()}

    def _budget(self, event: BudgetUpdated) -> None:
        self._point(
            event.ledger.rollouts_used,
            {
                **self._scores(event.best_score),
                S.PARETO_SCORE: event.pareto_score,
                S.POOL_SIZE: event.pool_size,
                S.COST_USD: event.ledger.cost_usd,
                S.ROLLOUTS_IN_FLIGHT: event.rollouts_in_flight,
                **(
                    {S.SLOT_UTILIZATION: event.slot_utilization}
                    if event.slot_utilization is not None
                    else {}
                ),
            },
        )
        if len(self._history) > _BATCH_MAX // len(S.HISTORY_METRICS):
            self._send_metrics()

    # --- tables ----------------------------------------------------------------------------------

    def _row(self, table: str, row: dict[str, Any]) -> None:
        self._tables.setdefault(table, []).append(row)
        self._dirty.add(table)

    def _flush_tables(self) -> None:
        """Rewrite changed tables whole, in MLflow's table format (what ``log_table`` writes,
        without its download-and-append round trip on every call)."""
        for table in sorted(self._dirty):
            log_table(self._client, self.run_id, table, self._tables[table])
        if self._dirty - self._logged_tables:
            self._logged_tables |= self._dirty
            tag_tables(self._client, self.run_id, sorted(self._logged_tables))
        self._dirty.clear()

    def _existing_tables(self) -> None:
        """On resume: reload the rows written before, so rewritten tables keep them."""
        run = self._client.get_run(self.run_id)
        for entry in json.loads(run.data.tags.get(MLFLOW_LOGGED_ARTIFACTS, "[]")):
            path = entry.get("path", "")
            if entry.get("type") != "table" or not path.startswith(f"{S.TABLE_DIR}/"):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                local = self._client.download_artifacts(self.run_id, path, tmp)
                payload = json.loads(Path(local).read_text(encoding="utf-8"))
            table = path.removeprefix(f"{S.TABLE_DIR}/").removesuffix(".json")
            self._tables[table] = [dict(zip(payload["columns"], row)) for row in payload["data"]]
            self._logged_tables.add(table)

    # --- candidates ------------------------------------------------------------------------------

    def _candidate(self, info: CandidateRecord, is_best: bool) -> None:
        if not info.parent_ids and self._seed_score is None:
            self._seed_score = info.mean_score
            self._point(
                0,
                {**self._scores(info.mean_score), S.PARETO_SCORE: info.mean_score, S.POOL_SIZE: 1},
            )
        if info.id in self._children:
            return
        client = self._client
        tags = {
            S.MLFLOW_PARENT_RUN: self.run_id,
            S.TAG_KIND: "candidate",
            S.TAG_CANDIDATE_ID: info.id,
            S.TAG_PARENT_IDS: ",".join(info.parent_ids),
            S.TAG_ORIGIN: info.origin,
            S.MLFLOW_NOTE: _candidate_note(info),
        }
        child = client.create_run(
            self.experiment_id, run_name=f"{info.origin}-{info.id[:8]}", tags=tags
        )
        child_id = child.info.run_id
        self._children[info.id] = child_id
        now = int(time.time() * 1000)
        keys = list(info.val_scores)
        metrics = [Metric(S.VAL_SCORE, _score(info.mean_score), now, info.rollouts_at_discovery)]
        metrics += [
            Metric(S.EXAMPLE_SCORE, _score(info.val_scores[k]), now, i) for i, k in enumerate(keys)
        ]
        params = [
            _param("candidate_id", info.id),
            _param("parent_ids", ",".join(info.parent_ids)),
            _param("origin", info.origin),
            _param("changed_modules", ",".join(info.changed_modules)),
            _param("iteration", info.iteration),
            _param("rollouts_at_discovery", info.rollouts_at_discovery),
        ]
        for chunk in _chunks(metrics, _BATCH_MAX - len(params)):
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
            client.log_artifacts(child_id, tmp)
        client.set_terminated(child_id, "FINISHED")

        self._row(
            S.TABLE_CANDIDATES,
            {
                "candidate_id": info.id,
                "origin": info.origin,
                "parent_ids": ",".join(info.parent_ids),
                "changed_modules": ",".join(info.changed_modules),
                "iteration": info.iteration,
                "rollouts_at_discovery": info.rollouts_at_discovery,
                S.VAL_SCORE: info.mean_score,
                "val_scores": json.dumps(info.val_scores),
                "run_id": child_id,
            },
        )
        if is_best:
            client.set_tag(self.run_id, S.TAG_BEST_CANDIDATE, info.id)
            self._mark_best(child_id)
        self._send_metrics()
        self._flush_tables()

    def _mark_best(self, child_id: str) -> None:
        """Move the ``best`` tag to ``child_id``: one winner per optimization."""
        if self._best_run == child_id:
            return
        if self._best_run is not None:
            self._client.delete_tag(self._best_run, S.TAG_BEST)
        self._client.set_tag(child_id, S.TAG_BEST, "true")
        self._best_run = child_id

    def _sync_candidates(self, result: Result) -> None:
        """Record accepted candidates this run does not hold yet: those accepted while MLflow
        was unreachable reach it when the optimization is resumed."""
        for record in result.candidates:
            if record.id not in self._children:
                self._candidate(record, is_best=False)

    # --- the end ---------------------------------------------------------------------------------

    def _finish(self, event: OptimizationFinished) -> None:
        client = self._client
        if self._seed_score is None:
            self._seed_score = event.seed_score
        ledger = event.ledger
        self._point(
            ledger.rollouts_used, {**self._scores(event.best_score), S.COST_USD: ledger.cost_usd}
        )
        self._send_metrics(everything=True)
        summary = {
            "rollouts_used": ledger.rollouts_used,
            "iterations": event.iterations,
            "seconds": round(ledger.seconds, 1),
            "cost_usd": round(ledger.cost_usd, 6),
            "reflection_calls": ledger.reflection_calls,
            "failed_rollouts": ledger.failed_rollouts,
        }
        tags = [RunTag(S.TAG_SUMMARY[k], str(v)) for k, v in summary.items()]
        tags += [
            RunTag(S.TAG_STOP_REASON, event.stop_reason),
            RunTag(S.TAG_BEST_CANDIDATE, event.best_id),
            RunTag(
                S.MLFLOW_NOTE,
                headline(event.seed_score, event.best_score, ledger.rollouts_used, ledger.cost_usd)
                + f"; stopped by {event.stop_reason}; best candidate {event.best_id}. "
                "Charts: step = rollouts used." + self._test_note(),
            ),
        ]
        client.log_batch(self.run_id, metrics=self._test_metrics(), tags=tags)
        result = event.result
        if result is not None:
            self._sync_candidates(result)
        if event.best_id in self._children:
            self._mark_best(self._children[event.best_id])
        self._flush_tables()
        if result is not None:
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                (root / S.REPORT_FILE).write_text(render_report(result), encoding="utf-8")
                (root / S.BEST_PROMPTS_FILE).write_text(
                    json.dumps(redact(result.best_candidate), indent=2), encoding="utf-8"
                )
                (root / S.RESULT_FILE).write_text(
                    json.dumps(redact(result.model_dump(mode="json")), indent=1), encoding="utf-8"
                )
                if self.plots:
                    from gepa_graph.tracking.plots import save_plots

                    save_plots(result, root / S.PLOTS_DIR)
                client.log_artifacts(self.run_id, tmp)
        client.set_terminated(self.run_id, "FINISHED")
        client.set_experiment_tag(self.experiment_id, S.RUNS_VIEW_TAG, S.runs_view(self.run_id))
        self._finished = True

    def _testset(self, event: TestsetEvaluated) -> None:
        """Held-out scores (``optimize(testset=...)``), told before the end: the per-example
        table now, the metric and the headline's sentence with the end (``_finish``)."""
        self._test = event
        self._tables[S.TABLE_TEST_SCORES] = [
            {"example": key, "seed": event.seed_scores.get(key), "best": score}
            for key, score in event.best_scores.items()
        ]
        self._dirty.add(S.TABLE_TEST_SCORES)
        self._flush_tables()

    def _test_metrics(self) -> list[Metric]:
        """Metric ``test_score``: the seed's held-out score at step 0, the best candidate's at
        the last step."""
        if self._test is None:
            return []
        now = int(time.time() * 1000)
        return [
            Metric(S.TEST_SCORE, _score(self._test.seed_score), now, 0),
            Metric(S.TEST_SCORE, _score(self._test.best_score), now, max(self._sent_step, 1)),
        ]

    def _test_note(self) -> str:
        if self._test is None:
            return ""
        test = self._test
        return (
            f" Held-out score {test.seed_score:.3f} (seed) -> {test.best_score:.3f} (best) on "
            f"{len(test.best_scores)} test examples."
        )


def _check_reachable(uri: str | None, timeout_s: float = 3.0) -> None:
    """Fail at once for an MLflow server that does not answer: MLflow's own client retries a
    refused connection for minutes, and the optimization would wait for it at the end."""
    if not uri or not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        return  # it answers (a proxy or auth in front of it): let MLflow's client deal with it
    except OSError as exc:
        raise ConnectionError(f"MLflow server {uri} does not answer ({exc})") from None


def _score(value: float) -> float:
    """A mean of scores without float noise in the UI's columns (0.3875, not 0.38749999...)."""
    return round(float(value), 6)


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


def _candidate_note(info: CandidateRecord) -> str:
    if not info.parent_ids:
        return f"The seed prompts: validation score {info.mean_score:.3f}."
    parents = ", ".join(p[:8] for p in info.parent_ids)
    changed = ", ".join(info.changed_modules) or "no module"
    return (
        f"{info.origin} of {parents}, changing {changed}: validation score {info.mean_score:.3f}."
    )


def _seed_origin_tags(seed_prompts: dict[str, str]) -> dict[str, str]:
    """Where the seed came from, if ``seed_from_registry`` loaded it in this process."""
    from gepa_graph.tracking.registry import seed_origin

    origin = seed_origin(seed_prompts)
    if origin is None:
        return {}
    return {S.TAG_SEED_FROM: origin.ref, S.TAG_SEED_VERSIONS: json.dumps(origin.versions)}
