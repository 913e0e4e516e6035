"""The ``gepa-graph`` command: optimize, inspect, show, ui, promote, rollback, improve, demo.

An app on top of the library: the core never imports it. User errors (a bad JSONL line, a
``module:attr`` that does not import, an unknown registry name: every ``GepaGraphError``) are one
line on stderr and exit code 2; any other exception is a bug and shows its traceback. MLflow's
own console lines are off unless ``--verbose``. Everything printed passes through
``gepa_graph.redact``.

Modules: ``common`` (the Typer app, output, the error boundary), ``inputs`` (``module:attr`` and
JSONL), ``optimize`` (optimize, inspect), ``runs`` (show, ui), ``promote`` (promote, rollback),
``improve`` (production traces to a gated promotion), ``demo`` (the quick-start demo and its
command).
"""

from __future__ import annotations

import os

# Before anything can import litellm: never fetch the model price map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# Each module registers its commands on ``app`` when imported; the order is the help's order.
from gepa_graph.cli import demo, improve, optimize, promote, runs  # noqa: F401
from gepa_graph.cli.common import app, main
from gepa_graph.errors import CLIError

__all__ = ["CLIError", "app", "main"]
