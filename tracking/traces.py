"""Datasets from production traces: what the agent was asked in production becomes the examples
of its next optimization.

``dataset_from_traces`` reads the traces MLflow recorded for an agent (``mlflow.langchain.
autolog()`` or ``@mlflow.trace``) and turns each into an example: the root span's inputs are the
example's fields (what the graph was invoked with), ``id`` is the trace id, and the field
``mlflow_trace`` (``TRACE_FIELD``) carries what the metric may use: the production ``output``
(the root span's outputs), the trace's ``expectations`` (name -> value, e.g. an expected answer
someone attached) and its ``feedback`` (name, value, rationale and source of each valid feedback
assessment). ``split`` divides them reproducibly by trace id, ``log_dataset`` records a split as
a dataset input of an MLflow run (its Datasets panel).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from gepa_graph.errors import InvalidInput, UnknownName

TRACE_FIELD = "mlflow_trace"
_PAGE = 200


def _since_ms(since: Any) -> int | None:
    """``since`` as epoch milliseconds: a datetime (naive means UTC), a timedelta (that long
    ago), an ISO 8601 string, or a number of epoch milliseconds."""
    if since is None:
        return None
    if isinstance(since, str):
        try:
            since = dt.datetime.fromisoformat(since)
        except ValueError:
            raise InvalidInput(f"since {since!r} is not an ISO 8601 date or time") from None
    if isinstance(since, dt.timedelta):
        since = dt.datetime.now(dt.UTC) - since
    if isinstance(since, dt.datetime):
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        return int(since.timestamp() * 1000)
    if isinstance(since, dt.date):
        return int(
            dt.datetime(since.year, since.month, since.day, tzinfo=dt.UTC).timestamp() * 1000
        )
    if isinstance(since, (int, float)) and not isinstance(since, bool):
        return int(since)
    raise InvalidInput(
        f"since must be a datetime, date, timedelta, ISO string or epoch ms, not "
        f"{type(since).__name__}"
    )


def experiment_id_of(client: Any, experiment: str) -> str:
    """The id of the experiment named (or with the id) ``experiment``; UnknownName if none."""
    found = client.get_experiment_by_name(experiment)
    if found is None and experiment.isdigit():
        try:
            found = client.get_experiment(experiment)
        except Exception:
            found = None
    if found is None:
        raise UnknownName(f"no MLflow experiment {experiment!r} at this tracking URI")
    return found.experiment_id


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy (assessment values and span payloads are JSON already; anything else
    becomes its string)."""
    return json.loads(json.dumps(value, default=str))


def example_from_trace(trace: Any) -> dict[str, Any]:
    """One example from one MLflow Trace (see the module docstring)."""
    from mlflow.entities.assessment import Expectation, Feedback

    trace_id = trace.info.trace_id
    spans = trace.data.spans if trace.data is not None else []
    root = next((span for span in spans if span.parent_id is None), None)
    if root is None:
        raise InvalidInput(f"trace {trace_id} has no root span (was it recorded with spans?)")
    inputs = root.inputs
    if not isinstance(inputs, Mapping):
        raise InvalidInput(
            f"trace {trace_id}: its root span {root.name!r} was called with a "
            f"{type(inputs).__name__}, not the dict a graph is invoked with; narrow the traces "
            "with filter_string (e.g. \"trace.name = 'LangGraph'\")"
        )
    clash = sorted({"id", TRACE_FIELD} & set(inputs))
    if clash:
        raise InvalidInput(
            f"trace {trace_id}: its inputs hold {clash}, which name the example's key and trace"
        )
    expectations: dict[str, Any] = {}
    feedback: list[dict[str, Any]] = []
    for assessment in trace.info.assessments or []:
        if assessment.valid is False:  # overridden by a later assessment
            continue
        if isinstance(assessment, Expectation):
            expectations[assessment.name] = _jsonable(assessment.value)
        elif isinstance(assessment, Feedback) and assessment.error is None:
            source = assessment.source
            feedback.append(
                {
                    "name": assessment.name,
                    "value": _jsonable(assessment.value),
                    "rationale": assessment.rationale or "",
                    "source": getattr(source, "source_type", None) or "",
                }
            )
    record = {
        "trace_id": trace_id,
        "experiment_id": trace.info.experiment_id,
        "request_time": trace.info.request_time,
        "state": str(getattr(trace.info.state, "value", trace.info.state)),
        "output": _jsonable(root.outputs),
        "expectations": expectations,
        "feedback": feedback,
    }
    return {"id": trace_id, **_jsonable(dict(inputs)), TRACE_FIELD: record}


def dataset_from_traces(
    experiment: str,
    filter_string: str | None = None,
    since: Any = None,
    max_traces: int | None = None,
    tracking_uri: str | None = None,
) -> list[dict[str, Any]]:
    """Examples from the traces of ``experiment`` (a name or id), oldest first, keyed by trace
    id: the newest ``max_traces`` of those matching ``filter_string`` (MLflow's trace search
    syntax, e.g. ``"tags.env = 'prod'"``) recorded at or after ``since``."""
    from mlflow.exceptions import MlflowException

    from gepa_graph.tracking.registry import client_for

    if max_traces is not None and max_traces < 1:
        raise InvalidInput(f"max_traces must be at least 1, got {max_traces}")
    client = client_for(tracking_uri)
    experiment_id = experiment_id_of(client, experiment)
    clauses = [filter_string] if filter_string else []
    since_ms = _since_ms(since)
    if since_ms is not None:
        clauses.append(f"trace.timestamp_ms >= {since_ms}")
    query = " AND ".join(clauses) or None
    traces: list[Any] = []
    token = None
    while max_traces is None or len(traces) < max_traces:
        page_size = _PAGE if max_traces is None else min(_PAGE, max_traces - len(traces))
        try:
            page = client.search_traces(
                [experiment_id],
                filter_string=query,
                max_results=page_size,
                order_by=["timestamp_ms DESC"],
                page_token=token,
            )
        except MlflowException as exc:
            if exc.error_code != "INVALID_PARAMETER_VALUE":
                raise
            first = (exc.message.splitlines() or [""])[0]
            raise InvalidInput(f"trace filter {query!r} is not valid: {first}") from None
        traces.extend(page)
        token = page.token
        if not token:
            break
    if not traces:
        where = f" matching {query!r}" if query else ""
        raise InvalidInput(f"experiment {experiment!r} holds no traces{where}")
    traces.sort(key=lambda t: (t.info.request_time, t.info.trace_id))
    return [example_from_trace(trace) for trace in traces]


class Splits(NamedTuple):
    """Training, validation and held-out test examples."""

    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    test: list[dict[str, Any]]


def _position(key: str, seed: int) -> float:
    """Where ``key`` falls in [0, 1): a hash of the key and the seed, the same everywhere."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split(
    examples: Sequence[Mapping[str, Any]], test: float = 0.2, val: float = 0.3, seed: int = 0
) -> Splits:
    """Split by a hash of each example's ``id`` (the trace id): an example's split depends only
    on its id and ``seed``, so adding traces never moves an earlier one. Positions below
    ``test`` go to test, the next ``val`` to validation, the rest to training. A split asked
    for but left empty (few examples) takes the training example nearest its range, so every
    split asked for holds at least one example while there are enough."""
    if test < 0 or val < 0 or test + val >= 1:
        raise InvalidInput(f"test ({test}) and val ({val}) must be >= 0 and sum to less than 1")
    keys = [str(e.get("id", "")) for e in examples]
    if "" in keys or len(set(keys)) != len(keys):
        raise InvalidInput("every example needs a unique 'id' (the trace id) to be split")
    placed: dict[str, list[tuple[float, Mapping[str, Any]]]] = {"train": [], "val": [], "test": []}
    for key, example in zip(keys, examples):
        position = _position(key, seed)
        name = "test" if position < test else "val" if position < test + val else "train"
        placed[name].append((position, example))
    for name, wanted in (("test", test), ("val", val)):
        if wanted > 0 and not placed[name] and len(placed["train"]) > 1:
            nearest = min(placed["train"], key=lambda item: item[0])  # the lowest position
            placed["train"].remove(nearest)
            placed[name].append(nearest)
    return Splits(*([dict(e) for _, e in sorted(placed[n], key=lambda i: i[0])] for n in placed))


def log_dataset(
    run_id: str,
    examples: Sequence[Mapping[str, Any]],
    context: str,
    tracking_uri: str | None = None,
) -> None:
    """Record ``examples`` as a dataset input of MLflow run ``run_id`` (its Datasets panel),
    named ``traces-<context>`` with ``context`` (train, val, test) as its input tag: one row
    per trace with its inputs, production output, expectations and feedback."""
    import pandas as pd
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    from gepa_graph.tracking.registry import client_for

    rows = []
    for example in examples:
        trace = example.get(TRACE_FIELD) or {}
        inputs = {k: v for k, v in example.items() if k not in ("id", TRACE_FIELD)}
        rows.append(
            {
                "trace_id": str(example.get("id")),
                "inputs": json.dumps(inputs, default=str),
                "output": json.dumps(trace.get("output"), default=str),
                "expectations": json.dumps(trace.get("expectations", {}), default=str),
                "feedback": json.dumps(trace.get("feedback", []), default=str),
            }
        )
    experiments = sorted({str((e.get(TRACE_FIELD) or {}).get("experiment_id")) for e in examples})
    source = CodeDatasetSource(
        tags={"gepa_graph.source": "mlflow_traces", "experiment_ids": ",".join(experiments)}
    )
    frame = pd.DataFrame(rows, columns=["trace_id", "inputs", "output", "expectations", "feedback"])
    dataset = from_pandas(frame, source=source, name=f"traces-{context}")
    entry = DatasetInput(
        dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]
    )
    client_for(tracking_uri).log_inputs(run_id, datasets=[entry])
