import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Under `uv run`, Ray starts each worker with `uv run` in the shipped working directory (its uv
# runtime-env hook), which cannot resolve offline and never registers: workers use this venv.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    """Tests never write into the repository (default run dirs, MLflow stores go to tmp)."""
    monkeypatch.chdir(tmp_path)
