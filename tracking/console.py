"""MLflow's own console output, off unless asked for.

MLflow prints "View run / View experiment" lines for every run a remote server creates, logs
"Waiting up to 300 seconds ..." on every prompt registration and draws "Downloading artifacts"
bars. gepa_graph prints its own one-line summaries instead; ``verbose=True`` (CLI ``--verbose``)
leaves MLflow's lines on.
"""

from __future__ import annotations

import logging
import os

_ENV = {
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
_LOGGERS = (
    "mlflow.store.model_registry.abstract_store",
    "mlflow.tracking._tracking_service.client",
    "mlflow.tracking.client",
    "mlflow.store.artifact",
    "alembic",
    "mlflow.store.db.utils",
)


def quiet_mlflow(verbose: bool = False) -> None:
    """Silence MLflow's informational console lines for this process (a user's own setting of
    the same environment variables wins). No-op with ``verbose``."""
    if verbose:
        return
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)
