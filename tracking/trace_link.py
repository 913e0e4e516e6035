"""Link registry prompt versions to the MLflow traces of a graph that runs them.

``with_registry_prompts`` returns a graph running registered prompts; when MLflow tracing is on
(``mlflow.langchain.autolog()``, or the caller's own ``@mlflow.trace``), each invocation's trace
should say which prompt versions produced it. A LangChain callback bound to the graph's config
registers the versions with the active trace as the outermost run ends, which is what MLflow's
own ``load_prompt`` does for a prompt loaded inside a trace; the trace then lists them under
Prompts. With tracing off the callback does nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

log = logging.getLogger("gepa_graph.tracking")


class PromptTraceLinker(BaseCallbackHandler):
    """Registers ``versions`` (MLflow PromptVersions) with the active trace of each top-level
    invocation."""

    def __init__(self, versions: list[Any]) -> None:
        self.versions = list(versions)

    def on_chain_end(
        self, outputs: Any, *, run_id: Any, parent_run_id: Any = None, **kwargs: Any
    ) -> None:
        if parent_run_id is None:
            self.link_active_trace()

    def on_chain_error(
        self, error: BaseException, *, run_id: Any, parent_run_id: Any = None, **kwargs: Any
    ) -> None:
        if parent_run_id is None:
            self.link_active_trace()

    def link_active_trace(self) -> str | None:
        """Link the versions to the trace in progress; returns its id (None: tracing is off)."""
        import mlflow

        trace_id = mlflow.get_active_trace_id()
        if trace_id is None:
            return None
        try:
            from mlflow.tracing.trace_manager import InMemoryTraceManager

            manager = InMemoryTraceManager.get_instance()
            for version in self.versions:
                manager.register_prompt(trace_id, version)
        except Exception as exc:  # linking is bookkeeping: never fail the user's invocation
            log.debug("could not link prompt versions to trace %s: %s", trace_id, exc)
        return trace_id


def link_traces(graph: Any, versions: list[Any]) -> Any:
    """``graph`` with a :class:`PromptTraceLinker` bound to its config (a copy; LangGraph's
    ``with_config`` keeps it a compiled graph)."""
    with_config = getattr(graph, "with_config", None)
    if with_config is None:
        return graph
    return with_config(callbacks=[PromptTraceLinker(versions)])
