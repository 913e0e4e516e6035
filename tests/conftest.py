import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    """Tests never write into the repository (default run dirs, MLflow stores go to tmp)."""
    monkeypatch.chdir(tmp_path)
