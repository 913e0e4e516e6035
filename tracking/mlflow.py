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

The parts, each in its module: the background thread (``worker``), the charts' points
(``history``), the candidate runs (``candidate_runs``), the tables (``tables``), the report
(``report``); reading a run back is ``reader``'s. A slow or remote tracking server never blocks
the optimization's event loop; the first tracking failure is logged once and switches tracking
off for the rest of the run, and the optimization goes on. The parent run id is saved as
attributes of the run folder (through ``gepa_graph.store.RunStore``, names in ``schema``) so
``resume=True`` continues that run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

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
from gepa_graph.store import RunStore
from gepa_graph.tracking import schema as S
from gepa_graph.tracking.candidate_runs import CandidateRuns
from gepa_graph.tracking.console import quiet_mlflow
from gepa_graph.tracking.history import MetricHistory
from gepa_graph.tracking.report import headline, log_report
from gepa_graph.tracking.server import check_reachable
from gepa_graph.tracking.tables import RunTables
from gepa_graph.tracking.values import BATCH_MAX, chunks, flatten, param, rounded
from gepa_graph.tracking.worker import Worker

log = logging.getLogger("gepa_graph.tracking")


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
        self._live: _Live | None = None  # the run being written, once it exists
        self._worker = Worker(self._handle, self._send_metrics, flush_every_s, flush_timeout_s)
        self._closed = False
        self._finished = False
        self._history = MetricHistory()
        self._tables = RunTables()
        self._test: TestsetEvaluated | None = None  # held-out scores, told before the end

    def __repr__(self) -> str:
        return f"MLflowTracker(experiment={self.experiment!r}, tracking_uri={self.tracking_uri!r})"

    @property
    def run_id(self) -> str | None:
        """The optimization's MLflow run (None until the first event is handled)."""
        return self._live.run_id if self._live is not None else None

    @property
    def experiment_id(self) -> str | None:
        """The experiment of that run (None until then)."""
        return self._live.experiment_id if self._live is not None else None

    @property
    def failed(self) -> bool:
        """Whether tracking failed (and so stopped) in this optimization."""
        return self._worker.failed

    # --- listener side (the optimization's thread) --------------------------------------------

    def __call__(self, event: Event) -> None:
        if self._closed:
            return
        if not self._worker.started:
            quiet_mlflow(self.verbose)
        self._worker.put(event)
        if isinstance(event, OptimizationFinished):
            self.flush()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything received so far is written; False if it timed out."""
        return self._worker.flush(timeout)

    def close(self) -> None:
        """Flush, mark an unfinished run FAILED (so it shows as interrupted), stop the worker."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._worker.stop()
        if self._live is not None and not self._finished and not self.failed:
            try:
                self._send_metrics(everything=True)
                self._live.client.set_terminated(self._live.run_id, "FAILED")
            except Exception as exc:  # tracking never breaks the caller
                self._worker.fail(exc)

    # --- the hooks (the worker thread) ---------------------------------------------------------

    def _handle(self, event: Event) -> None:
        if self._live is None and not isinstance(event, OptimizationStarted):
            return  # no OptimizationStarted seen: nothing to attach records to
        self.dispatch(event)

    def _run(self) -> _Live:
        """The run being written (every hook but the first runs once it exists)."""
        if self._live is None:
            raise RuntimeError("MLflowTracker: no run started")
        return self._live

    def on_optimization_started(self, event: OptimizationStarted) -> None:
        """Create (or, on resume, reopen) the optimization's run."""
        self._start(event)

    def on_budget_updated(self, event: BudgetUpdated) -> None:
        """Buffer a point of the score, pool and cost charts."""
        self._history.point(
            event.ledger.rollouts_used,
            {
                **self._history.scores(event.best_score),
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
        if len(self._history) > BATCH_MAX // len(S.HISTORY_METRICS):
            self._send_metrics()

    def on_candidate_accepted(self, event: CandidateAccepted) -> None:
        """Record the candidate as a nested run and a row of the candidates table."""
        self._candidate(event.candidate, event.is_best)

    def on_reflection_called(self, event: ReflectionCalled) -> None:
        """A row of the reflections table."""
        self._tables.add(
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
        self._tables.add(
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

    def on_testset_evaluated(self, event: TestsetEvaluated) -> None:
        """Held-out scores (``optimize(testset=...)``), told before the end: the per-example
        table now, the metric and the headline's sentence with the end."""
        self._test = event
        self._tables.replace(
            S.TABLE_TEST_SCORES,
            [
                {"example": key, "seed": event.seed_scores.get(key), "best": score}
                for key, score in event.best_scores.items()
            ],
        )
        self._tables.flush(self._run().client, self._run().run_id)

    def on_optimization_finished(self, event: OptimizationFinished) -> None:
        """End-of-run tags, report, result and plots; the run is marked FINISHED."""
        self._finish(event)

    # --- the optimization's run ------------------------------------------------------------------

    def _experiment(self, client: MlflowClient) -> str:
        """The experiment, marked as one of runs (not GenAI traces) and holding the saved runs
        view with the score columns."""
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
        if self._live is None:
            return None
        return S.runs_url(self._live.client.tracking_uri, self._live.experiment_id)

    def _start(self, event: OptimizationStarted) -> None:
        check_reachable(self.tracking_uri)
        client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment_id = self._experiment(client)
        previous = self._previous_run(client, event) if event.resumed else None
        if previous is not None:
            client.update_run(previous, status="RUNNING")
            self._live = _Live(client, previous, experiment_id)
            self._live.candidates.reload()
            self._tables.reload(client, previous)
            history = client.get_metric_history(previous, S.BEST_SCORE)
            self._history.sent_step = max((m.step for m in history), default=-1)
            seed = client.get_metric_history(previous, S.SEED_SCORE)
            self._history.seed_score = seed[0].value if seed else None
            return
        tags = {
            S.TAG_KIND: "optimization",
            S.TAG_REFLECTION_LM: redact_text(event.reflection_lm),
            S.MLFLOW_NOTE: f"Optimizing {len(event.seed_prompts)} prompt(s) "
            f"({', '.join(sorted(event.seed_prompts))}); running.",
        }
        if event.run_dir:
            tags[S.TAG_RUN_DIR] = redact_text(event.run_dir)
        from gepa_graph.tracking.registry import seed_origin_tags

        tags.update({k: redact_text(v) for k, v in seed_origin_tags(event.seed_prompts).items()})
        run_name = self.run_name or f"{self.experiment}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        run_id = client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
        self._live = _Live(client, run_id, experiment_id)
        config = redact(flatten(dict(event.config)), by_key=True)
        params = [param(k, v) for k, v in sorted(config.items())]
        params += [
            param("n_train", event.n_train),
            param("n_val", event.n_val),
            param("reflection_lm", redact_text(event.reflection_lm)),
            param("modules", ",".join(sorted(event.seed_prompts))),
        ]
        for chunk in chunks(params, 100):
            client.log_batch(run_id, params=chunk)
        client.log_text(
            run_id, json.dumps(redact(event.seed_prompts), indent=2), S.SEED_PROMPTS_FILE
        )
        if event.run_dir:
            RunStore(event.run_dir).set_attributes(
                {
                    S.ATTR_RUN_ID: run_id,
                    S.ATTR_EXPERIMENT_ID: experiment_id,
                    S.ATTR_TRACKING_URI: client.tracking_uri,
                }
            )

    def _previous_run(self, client: MlflowClient, event: OptimizationStarted) -> str | None:
        """The parent run recorded in run_dir, if it lives on this tracking server."""
        if not event.run_dir:
            return None
        saved = RunStore(event.run_dir).attributes()
        run_id = saved.get(S.ATTR_RUN_ID)
        if run_id is None:
            return None
        if saved.get(S.ATTR_TRACKING_URI) != client.tracking_uri:
            log.warning(
                "run_dir's MLflow run is on %s, not %s: starting a new MLflow run",
                saved.get(S.ATTR_TRACKING_URI),
                client.tracking_uri,
            )
            return None
        try:
            client.get_run(run_id)
        except Exception:
            log.warning(
                "MLflow run %s from %s no longer exists: starting a new one", run_id, event.run_dir
            )
            return None
        return run_id

    def _send_metrics(self, everything: bool = False) -> None:
        if self._live is not None:
            self._history.send(self._live.client, self._live.run_id, everything)

    def _candidate(self, info: CandidateRecord, is_best: bool) -> None:
        if not info.parent_ids and self._history.seed_score is None:
            self._history.seed_score = info.mean_score
            self._history.point(
                0,
                {
                    **self._history.scores(info.mean_score),
                    S.PARETO_SCORE: info.mean_score,
                    S.POOL_SIZE: 1,
                },
            )
        live = self._run()
        if info.id in live.candidates.children:
            return
        child_id = live.candidates.record(info)
        self._tables.add(
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
            live.client.set_tag(live.run_id, S.TAG_BEST_CANDIDATE, info.id)
            live.candidates.mark_best(child_id)
        self._send_metrics()
        self._tables.flush(live.client, live.run_id)

    # --- the end ---------------------------------------------------------------------------------

    def _finish(self, event: OptimizationFinished) -> None:
        live = self._run()
        client, run_id, candidates = live.client, live.run_id, live.candidates
        if self._history.seed_score is None:
            self._history.seed_score = event.seed_score
        ledger = event.ledger
        self._history.point(
            ledger.rollouts_used,
            {**self._history.scores(event.best_score), S.COST_USD: ledger.cost_usd},
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
        client.log_batch(run_id, metrics=self._test_metrics(), tags=tags)
        result = event.result
        if result is not None:  # candidates accepted while MLflow was unreachable, on resume
            for record in result.candidates:
                if record.id not in candidates.children:
                    self._candidate(record, is_best=False)
        if event.best_id in candidates.children:
            candidates.mark_best(candidates.children[event.best_id])
        self._tables.flush(client, run_id)
        if result is not None:
            log_report(client, run_id, result, self.plots)
        client.set_terminated(run_id, "FINISHED")
        client.set_experiment_tag(live.experiment_id, S.RUNS_VIEW_TAG, S.runs_view(run_id))
        self._finished = True

    def _test_metrics(self) -> list[Metric]:
        """Metric ``test_score``: the seed's held-out score at step 0, the best candidate's at
        the last step."""
        if self._test is None:
            return []
        now = int(time.time() * 1000)
        last = max(self._history.sent_step, 1)
        return [
            Metric(S.TEST_SCORE, rounded(self._test.seed_score), now, 0),
            Metric(S.TEST_SCORE, rounded(self._test.best_score), now, last),
        ]

    def _test_note(self) -> str:
        if self._test is None:
            return ""
        test = self._test
        return (
            f" Held-out score {test.seed_score:.3f} (seed) -> {test.best_score:.3f} (best) on "
            f"{len(test.best_scores)} test examples."
        )


class _Live:
    """The optimization's run being written: the client, its ids, its candidate runs."""

    def __init__(self, client: MlflowClient, run_id: str, experiment_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.candidates = CandidateRuns(client, experiment_id, run_id)
