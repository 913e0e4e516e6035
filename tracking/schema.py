"""Every name gepa_graph writes into MLflow, in one place: run tags, metrics, params, artifacts,
and the Prompt Registry's tags. The tracker, the registry, the promotion gate and the CLI read
them from here, so a reader of the MLflow UI and a reader of this file see the same names.
"""

from __future__ import annotations

import json

# --- runs: tags ----------------------------------------------------------------------------------

TAG_KIND = "gepa_graph.kind"  # "optimization", "candidate" or "promotion" on every run we create
TAG_CANDIDATE_ID = "gepa_graph.candidate_id"  # on candidate runs
TAG_PARENT_IDS = "gepa_graph.parent_ids"
TAG_ORIGIN = "gepa_graph.origin"  # seed, mutation, merge
TAG_BEST = "best"  # "true" on the winning candidate's run (one per optimization)
TAG_BEST_CANDIDATE = "gepa_graph.best_candidate_id"  # on the optimization run
TAG_STOP_REASON = "gepa_graph.stop_reason"
TAG_REFLECTION_LM = "gepa_graph.reflection_lm"
TAG_RUN_DIR = "gepa_graph.run_dir"
TAG_SEED_FROM = "gepa_graph.seed_from"  # e.g. "agent@production"
TAG_SEED_VERSIONS = "gepa_graph.seed_versions"  # JSON: module -> registry version
# End-of-run figures: tags, not metrics (no single-point charts) nor params (a resumed run
# finishes again with other values, and MLflow params are write-once).
TAG_SUMMARY = {
    "rollouts_used": "gepa_graph.rollouts_used",
    "iterations": "gepa_graph.iterations",
    "seconds": "gepa_graph.seconds",
    "cost_usd": "gepa_graph.cost_usd",
    "reflection_calls": "gepa_graph.reflection_calls",
    "failed_rollouts": "gepa_graph.failed_rollouts",
}
TAG_PROMOTION_NAME = "gepa_graph.promotion.name"  # on promotion (gate) runs
TAG_PROMOTION_DECISION = "gepa_graph.promotion.decision"  # "promoted", "kept" or "passed"
TAG_PROMOTION_REASON = "gepa_graph.promotion.reason"  # why, in one line
TAG_PROMOTION_WORSE_MODULES = "gepa_graph.promotion.worse_modules"  # JSON list of modules
# gepa-graph improve: the traces a dataset came from, and the runs of one improvement.
TAG_TRACES_EXPERIMENT = "gepa_graph.traces.experiment"
TAG_TRACES_FILTER = "gepa_graph.traces.filter"
TAG_IMPROVE_NAME = "gepa_graph.improve.name"
TAG_IMPROVE_OPTIMIZATION_RUN = "gepa_graph.improve.optimization_run"  # on the gate run

# MLflow's own tags and the experiment tag that opens the experiment on its runs list.
MLFLOW_NOTE = "mlflow.note.content"
MLFLOW_PARENT_RUN = "mlflow.parentRunId"
EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_RUNS = "custom_model_development"

# --- runs: metrics -------------------------------------------------------------------------------

# On the optimization run and on every candidate run: a candidate's mean validation score (the
# optimization run's is its best candidate's), so one column ranks them all.
VAL_SCORE = "val_score"
# Optimization run, by rollouts used (step), starting with the seed at step 0.
BEST_SCORE = "best_score"
SEED_SCORE = "seed_score"
IMPROVEMENT = "improvement"
PARETO_SCORE = "pareto_score"
POOL_SIZE = "pool_size"
COST_USD = "cost_usd"
ROLLOUTS_IN_FLIGHT = "rollouts_in_flight"
SLOT_UTILIZATION = "slot_utilization"  # busy slot-seconds / (concurrency x elapsed seconds)
HISTORY_METRICS = (
    VAL_SCORE,
    BEST_SCORE,
    SEED_SCORE,
    IMPROVEMENT,
    PARETO_SCORE,
    POOL_SIZE,
    COST_USD,
    ROLLOUTS_IN_FLIGHT,
    SLOT_UTILIZATION,
)
# Held-out (testset) score on the optimization run: the seed's at step 0, the best candidate's
# at the last step (so the column shows the winner's held-out score).
TEST_SCORE = "test_score"
# Candidate runs: per-example validation scores as one metric, step = example index (the
# example keys are in the candidate's table artifact).
EXAMPLE_SCORE = "example_score"
# Promotion (gate) runs.
GATE_CANDIDATE_SCORE = "candidate_score"
GATE_PRODUCTION_SCORE = "production_score"
GATE_MARGIN = "margin"
GATE_ALPHA = "alpha"
GATE_STATS = ("mean_diff", "ci_low", "ci_high", "p_wilcoxon", "p_sign", "wins", "losses", "ties")
# Both score vectors, step = example index (the keys are in the gate's table).
GATE_CANDIDATE_EXAMPLE = "candidate_example_score"
GATE_PRODUCTION_EXAMPLE = "production_example_score"

# --- runs: artifacts -----------------------------------------------------------------------------

# Attributes of the run folder (gepa_graph.store.RunStore): which MLflow run an optimization
# writes to, so a resume continues it and the registry links to it.
ATTR_RUN_ID = "mlflow_run_id"
ATTR_EXPERIMENT_ID = "mlflow_experiment_id"
ATTR_TRACKING_URI = "mlflow_tracking_uri"
# Where run folders written before the RunStore kept them ({"run_id": ...}); the store reads
# this file as the attributes above.
RUN_FILE = "mlflow_run.json"
TABLE_DIR = "tables"
TABLE_CANDIDATES = "candidates"
TABLE_REJECTED = "rejected"
TABLE_REFLECTIONS = "reflections"
TABLE_VAL_SCORES = "val_scores"  # on candidate runs: example, score
TABLE_GATE = "scores"  # on promotion runs: example, candidate, production
TABLE_GATE_MODULES = "modules"  # on promotion runs: module, n, mean_diff, worse
TABLE_TEST_SCORES = "test_scores"  # on the optimization run: example, seed, best
CANDIDATE_FILE = "candidate.json"
PROMPTS_DIR = "prompts"
SEED_PROMPTS_FILE = "seed_prompts.json"
BEST_PROMPTS_FILE = "best_prompts.json"
RESULT_FILE = "result.json"  # the Result (gg.load_result(run_id) reads it back)
REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


def table_path(name: str) -> str:
    """The artifact path of table ``name``: where the tracker writes it and the CLI reads it."""
    return f"{TABLE_DIR}/{name}.json"


# --- Prompt Registry -----------------------------------------------------------------------------

# Prompt-level tags (on ``NAME.<module>``).
PROMPT_GROUP = "gepa_graph.name"  # NAME: the registration this module prompt belongs to
PROMPT_MODULE = "gepa_graph.module"  # the original module name (the prompt name is sanitized)
PROMPT_HISTORY = "gepa_graph.alias_history"  # JSON list: every alias move, newest last
# Version-level tags.
VERSION_BRACES = "gepa_graph.brace_format"  # "double" or "verbatim"
VERSION_RUN_ID = "gepa_graph.run_id"
VERSION_CANDIDATE = "gepa_graph.candidate_id"
VERSION_SCORE = "gepa_graph.score"
# Aliases gepa_graph moves by default.
CANDIDATE_ALIAS = "candidate"
PRODUCTION_ALIAS = "production"


# --- the runs list as the MLflow UI shows it ---------------------------------------------------

# A saved view of the runs list, stored where the UI's own "Share" button stores one (an
# experiment tag ``mlflow.sharedViewState.<key>``): score columns shown, best first.
RUNS_VIEW_KEY = "gepa-graph"
RUNS_VIEW_TAG = f"mlflow.sharedViewState.{RUNS_VIEW_KEY}"


def runs_view(expanded_run: str | None = None) -> str:
    """The saved view: val_score, seed_score, best_score, improvement, test_score, cost and the
    ``best`` tag as columns, sorted by val_score; ``expanded_run``'s candidates unfolded."""
    metrics = (VAL_SCORE, SEED_SCORE, BEST_SCORE, IMPROVEMENT, TEST_SCORE, COST_USD)
    columns = [f"metrics.`{name}`" for name in metrics] + [f"tags.`{TAG_BEST}`"]
    state = {
        "orderByKey": f"metrics.`{VAL_SCORE}`",
        "orderByAsc": False,
        "selectedColumns": columns,
        "runsExpanded": {expanded_run: True} if expanded_run else {},
    }
    return json.dumps(state)


def runs_url(tracking_uri: str, experiment_id: str) -> str | None:
    """Address of the saved runs view on an MLflow server (None for a local store: start
    ``gepa-graph ui`` and open the same path on it). ``workflowType`` opens the UI in its
    model-training mode, where optimizations are runs rather than GenAI evaluations."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    return (
        f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs"
        f"?workflowType=machine_learning&viewStateShareKey={RUNS_VIEW_KEY}"
    )
